package bpf

import (
	"fmt"

	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// DumpXlated gathers what the xlated dumpers render (bpftool's "prog dump
// xlated"): the instructions as the kernel hands them out, func_info with
// prototypes and line_info with source from the program's BTF, the JIT
// addresses of subprograms, and a resolver over the program's own images
// and syms (nil: the kernel's symbols are not named). Render it with its
// WriteText, JSON or WriteDot.
func (p *Prog) DumpXlated(syms *kallsyms.Table) (*bpfinsn.Program, error) {
	if p.Len == 0 {
		return nil, fmt.Errorf("no instructions: %w", objects.ErrNotFound)
	}
	insns, err := p.XlatedInsns()
	if err != nil {
		return nil, err
	}
	x := &bpfinsn.Program{Insns: insns}
	if base, err := p.Obj.Program().Symbol("__bpf_call_base"); err == nil {
		x.CallBase = base
	}
	funcs, err := p.Funcs()
	if err != nil {
		return nil, err
	}
	own := map[uint64]string{}
	for _, f := range funcs {
		x.FuncAddrs = append(x.FuncAddrs, f.Addr)
		own[f.Addr] = f.Name
	}
	x.Syms = symbolsAt(syms, own)
	src, err := p.Source()
	if err != nil {
		return nil, err
	}
	x.Funcs, x.Lines = src.Funcs, src.Lines
	return x, nil
}

// symbolsAt resolves an address to the symbol starting exactly there:
// the program's own images first, then the kernel's table.
func symbolsAt(syms *kallsyms.Table, own map[uint64]string) bpfinsn.Resolver {
	return bpfinsn.ResolverFunc(func(addr uint64) (string, bool) {
		if n, ok := own[addr]; ok {
			return n, true
		}
		if syms == nil {
			return "", false
		}
		return syms.NameAt(addr)
	})
}
