package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// kernel is an opened target with types and symbols: what print and btf
// work on.
type kernel struct {
	dump  *vmcore.Dump // nil when memory is unavailable
	types *btfload.Spec
	syms  *kallsyms.Table
	prog  *objects.Program
	// noMemory says why memory cannot be read (live without /proc/kcore).
	noMemory error
	// symErr says which module or BPF symbols could not be added to a
	// dump's table (see addKernelSymbols).
	symErr  error
	closers []func()
}

func (k *kernel) Close() {
	for _, c := range k.closers {
		c()
	}
	if k.dump != nil {
		k.dump.Close()
	}
}

// openKernel opens the target the globals name with its BTF, symbols
// (from kallsymsFile, a /proc/kallsyms copy, when given) and
// declarations. Under --live, BTF comes from /sys/kernel/btf/vmlinux and
// a missing /proc/kcore is not an error: the Program then fails each read
// with the reason. From a dump, BTF is read from the kernel's memory
// between __start_BTF and __stop_BTF, found by the symbols.
func openKernel(e *env, kallsymsFile string) (*kernel, error) {
	decls, err := openDecls(e)
	if err != nil {
		return nil, err
	}
	k := &kernel{}
	d, err := openDump(e)
	switch {
	case err == nil:
		k.dump = d
	case e.live && !errors.Is(err, errUsage):
		k.noMemory = err
	default:
		return nil, err
	}
	var mem objects.Memory = objects.NoMemory(k.noMemory)
	if k.dump != nil {
		as, err := k.dump.Kernel()
		if err != nil {
			k.Close()
			return nil, err
		}
		mem = as
	}
	if kallsymsFile != "" || e.live {
		s, err := openSymbols(e, kallsymsFile)
		if err != nil {
			k.Close()
			return nil, err
		}
		k.syms = s.Table
		k.closers = append(k.closers, s.close)
	} else {
		t, err := kallsyms.FromDump(k.dump)
		if err == nil {
			err = t.Load()
		}
		if err != nil {
			k.Close()
			return nil, fmt.Errorf("%s: %w (give -k FILE, a copy of the kernel's /proc/kallsyms)", k.dump.Path(), err)
		}
		k.syms = t
	}
	syms := tableSymbols{k.syms}
	if e.live {
		k.types, err = btfload.LoadLive()
	} else {
		k.types, err = btfload.FromMemory(mem, syms)
	}
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("load BTF: %w", err)
	}
	k.prog = objects.NewProgram(mem, k.types, syms, objects.WithDecls(decls))
	if k.dump != nil && kallsymsFile == "" && !e.live {
		k.symErr = addKernelSymbols(k.prog, k.syms)
	}
	return k, nil
}

// openTypes opens only the target's BTF: under --live the running
// kernel's /sys/kernel/btf/vmlinux (no memory or symbols needed, and no
// kernel: k is nil), otherwise as openKernel does. Close k when not nil.
func openTypes(e *env, kallsymsFile string) (spec *btfload.Spec, k *kernel, err error) {
	if e.live && e.dump == "" {
		s, err := btfload.LoadLive()
		if err != nil {
			return nil, nil, fmt.Errorf("load BTF: %w", err)
		}
		return s, nil, nil
	}
	k, err = openKernel(e, kallsymsFile)
	if err != nil {
		return nil, nil, err
	}
	return k.types, k, nil
}

// openDecls returns the built-in declarations plus --declare-file's and
// --declare's, in that order (a later one of a name wins).
func openDecls(e *env) (*btfload.Decls, error) {
	d := btfload.NewDecls()
	if e.declareFile != "" {
		if err := d.AddFile(e.declareFile); err != nil {
			return nil, fmt.Errorf("--declare-file: %w: %w", err, errUsage)
		}
	}
	for _, s := range e.declares {
		if err := d.Add(s); err != nil {
			return nil, fmt.Errorf("--declare: %w: %w", err, errUsage)
		}
	}
	return d, nil
}

// tableSymbols adapts a kallsyms.Table to objects.Symbolizer: a name
// several local symbols share resolves to vmlinux's first data symbol.
type tableSymbols struct{ t *kallsyms.Table }

func (s tableSymbols) Lookup(name string) (uint64, error) {
	a, err := s.t.Addr(name)
	if err == nil || errors.Is(err, kallsyms.ErrNotFound) {
		return a, err
	}
	all, lerr := s.t.Lookup(name)
	if lerr != nil {
		return 0, err
	}
	for _, sym := range all {
		if sym.Module == "" && strings.ContainsRune("dDbBrR", rune(sym.Type)) {
			return sym.Addr, nil
		}
	}
	return 0, err
}

// Names lists the symbols, for suggestions.
func (s tableSymbols) Names(f func(string)) {
	for sym := range s.t.All() {
		f(sym.Name)
	}
}
