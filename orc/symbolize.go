package orc

import (
	"fmt"
	"sync"

	"github.com/kinspect/kinspect/kallsyms"
)

// FrameSymbol is what a frame's PC is: function+offset/size [module], and
// for BPF code the program.
type FrameSymbol struct {
	Name   string // "" when no symbol covers the PC
	Offset uint64 // PC - the symbol's address
	Size   uint64 // 0 when unknown
	Module string // "" for vmlinux, the module's name, or "bpf"
	// BPF describes the BPF program of a frame in one: its ID and the
	// source line.
	BPF *Prog
}

// String renders the symbol as the kernel prints a frame:
// "name+0xoff/0xsize [module]", or "?" when nothing is known.
func (s FrameSymbol) String() string {
	if s.Name == "" {
		if s.Module != "" {
			return "? [" + s.Module + "]"
		}
		return "?"
	}
	return kallsyms.Location{Symbol: kallsyms.Symbol{Name: s.Name, Size: s.Size, Module: s.Module}, Offset: s.Offset}.String()
}

type symbolCache struct {
	mu sync.Mutex
	m  map[symKey]FrameSymbol
}

type symKey struct {
	pc     uint64
	signal bool
}

// Symbolize names a frame's PC with syms (vmlinux and, when added,
// module and BPF symbols) and the BPF programs on bpf_kallsyms. A return
// address is looked up minus one, as the kernel's %pB does, so a call at
// a function's very end names that function; the offset is the PC's.
func (k *Kernel) Symbolize(syms *kallsyms.Table, f Frame) FrameSymbol {
	key := symKey{f.PC, f.Signal}
	c := &k.syms
	c.mu.Lock()
	s, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return s
	}
	s = k.symbolize(syms, f)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[symKey]FrameSymbol{}
	}
	c.m[key] = s
	c.mu.Unlock()
	return s
}

func (k *Kernel) symbolize(syms *kallsyms.Table, f Frame) FrameSymbol {
	look := f.PC
	if !f.Signal && look > 0 {
		look--
	}
	if b, ok := k.BPFSymbolAt(look); ok {
		s := FrameSymbol{Name: b.Name, Offset: f.PC - b.Start, Size: b.End - b.Start, Module: kallsyms.BPFModule}
		if prog, ok, err := k.BPFProgAt(look); ok && b.Prog {
			prog.LineErr = err
			s.BPF = &prog
		}
		return s
	}
	if syms != nil {
		if l, err := syms.LookupAddr(look); err == nil {
			return FrameSymbol{Name: l.Name, Offset: f.PC - l.Addr, Size: l.Size, Module: l.Module}
		}
	}
	return FrameSymbol{Module: k.ModuleAt(look)}
}

// FormatLine renders a BPF line as "file:line:col".
func (l BPFLine) String() string { return fmt.Sprintf("%s:%d:%d", l.File, l.Line, l.Col) }
