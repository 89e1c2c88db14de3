package kallsyms

import (
	"encoding/hex"
	"fmt"
)

// BPFModule is the Module of BPF symbols (programs, trampolines,
// dispatchers): /proc/kallsyms prints them with "[bpf]".
const BPFModule = "bpf"

// BPFSymbolType is the type of BPF symbols, BPF_SYM_ELF_TYPE in
// include/linux/filter.h.
const BPFSymbolType = 't'

// Symbol is one kernel symbol.
type Symbol struct {
	Name string
	Addr uint64
	// Type is nm's type letter as /proc/kallsyms prints it: 'T'/'t'
	// text, 'D'/'d' data, 'R'/'r' read-only data, 'B'/'b' bss, 'W'
	// weak, 'A' absolute... Upper case is global (exported, for modules).
	Type byte
	// Module is "" for vmlinux, the module's name (without brackets)
	// otherwise, BPFModule for BPF programs, and the pseudo-modules of
	// /proc/kallsyms such as "__builtin__ftrace".
	Module string
	// Size is the symbol's size in bytes, 0 if unknown. Module and BPF
	// symbols carry theirs; a vmlinux symbol's is the distance to the
	// next symbol at a higher address (as the kernel's kallsyms_lookup
	// computes it), 0 for the last.
	Size uint64
}

// String renders the symbol like a line of /proc/kallsyms.
func (s Symbol) String() string {
	if s.Module != "" {
		return fmt.Sprintf("%016x %c %s\t[%s]", s.Addr, s.Type, s.Name, s.Module)
	}
	return fmt.Sprintf("%016x %c %s", s.Addr, s.Type, s.Name)
}

// IsText reports whether the symbol is in a text section ('T', 't').
func (s Symbol) IsText() bool { return s.Type == 'T' || s.Type == 't' }

// Location is the answer to an address lookup: the symbol whose extent
// holds the address, and the address's offset into it.
type Location struct {
	Symbol
	Offset uint64
}

// String renders the location as the kernel prints stack frames:
// "name+0xoff/0xsize [module]", without "/0xsize" when the size is
// unknown.
func (l Location) String() string {
	s := fmt.Sprintf("%s+%#x", l.Name, l.Offset)
	if l.Size != 0 {
		s += fmt.Sprintf("/%#x", l.Size)
	}
	if l.Module != "" {
		s += " [" + l.Module + "]"
	}
	return s
}

// Short renders the location as objdump names an address: "name", or
// "name+0xoff" inside the symbol.
func (l Location) Short() string {
	if l.Offset == 0 {
		return l.Name
	}
	return fmt.Sprintf("%s+%#x", l.Name, l.Offset)
}

// BPFProgName returns the kallsyms name of a BPF program, as the kernel's
// bpf_get_prog_name (kernel/bpf/core.c) builds it: "bpf_prog_", the
// program's 8-byte tag in hex, and "_" and the name (the function's name
// from BTF, else prog->aux->name) when there is one.
func BPFProgName(tag [8]byte, name string) string {
	s := "bpf_prog_" + hex.EncodeToString(tag[:])
	if name != "" {
		s += "_" + name
	}
	return s
}
