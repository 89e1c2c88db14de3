package main

import (
	"errors"
	"fmt"

	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// Module and BPF program symbols of a dump: the kallsyms tables in memory
// hold vmlinux's only, so the module list and bpf_kallsyms are walked to
// add what /proc/kallsyms would list with them.

func init() { symbolSources = append(symbolSources, dumpExtraSymbols) }

// dumpExtraSymbols is sym's source of module and BPF symbols: it types
// the dump's memory with the BTF found there.
func dumpExtraSymbols(d *vmcore.Dump, t *kallsyms.Table) error {
	as, err := d.Kernel()
	if err != nil {
		return fmt.Errorf("module and BPF symbols: %w", err)
	}
	syms := tableSymbols{t}
	spec, err := btfload.FromMemory(as, syms)
	if err != nil {
		return fmt.Errorf("module and BPF symbols: load BTF: %w", err)
	}
	return addKernelSymbols(objects.NewProgram(as, spec, syms), t)
}

// addKernelSymbols adds the symbols of the loaded modules and of the BPF
// programs (trampolines, dispatchers) to t. What fails is returned, the
// rest is added.
func addKernelSymbols(p *objects.Program, t *kallsyms.Table) error {
	var errs []error
	if err := objects.AddModuleSymbols(p, t); err != nil {
		errs = append(errs, fmt.Errorf("module symbols: %w", err))
	}
	if err := objects.AddBPFSymbols(p, t); err != nil {
		errs = append(errs, fmt.Errorf("BPF symbols: %w", err))
	}
	return errors.Join(errs...)
}
