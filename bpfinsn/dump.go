package bpfinsn

import (
	"fmt"
	"io"
	"strings"
)

// Resolver names the kernel symbol that starts exactly at an address,
// as bpftool's lookup in /proc/kallsyms does.
type Resolver interface {
	SymbolAt(addr uint64) (name string, ok bool)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(addr uint64) (string, bool)

// SymbolAt calls f.
func (f ResolverFunc) SymbolAt(addr uint64) (string, bool) { return f(addr) }

// Func is a func_info record: the subprogram starting at InsnOff, and
// its prototype rendered from the program's BTF ("" when there is none).
type Func struct {
	InsnOff uint32
	TypeID  uint32
	Proto   string
}

// Line is a line_info record with its strings resolved from the
// program's BTF. NoSrc (NoFile) says the record's offset is outside
// the BTF's strings, where bpftool prints nothing.
type Line struct {
	InsnOff uint32 `json:"insn_off"`
	Src     string `json:"src,omitempty"`
	File    string `json:"file,omitempty"`
	LineNum uint32 `json:"line_num,omitempty"`
	LineCol uint32 `json:"line_col,omitempty"`
	NoSrc   bool   `json:"-"`
	NoFile  bool   `json:"-"`
}

// Program is what the dumpers render: a program's xlated instructions
// as the kernel hands them to user space (see PrepareDump), and what
// names them.
type Program struct {
	Insns []Insn
	// Funcs are the func_info records in order (nil without BTF).
	Funcs []Func
	// Lines are the line_info records in order.
	Lines []Line
	// CallBase is the address of __bpf_call_base: a helper call's
	// immediate is the helper's address minus it.
	CallBase uint64
	// FuncAddrs are the JIT addresses of the subprograms (jited_ksyms),
	// nil for a program that is not JITed: BPF-to-BPF calls then show
	// only their offset.
	FuncAddrs []uint64
	// Syms names addresses; nil names nothing.
	Syms Resolver
}

func (p *Program) symbol(addr uint64) (string, bool) {
	if p.Syms == nil {
		return "", false
	}
	return p.Syms.SymbolAt(addr)
}

// namer returns bpftool's callbacks (xlated_dumper.c print_call,
// print_imm); graph mode knows no JIT addresses, as bpftool's cfg.c.
func (p *Program) namer(graph bool) namer {
	funcAddrs := p.FuncAddrs
	if graph {
		funcAddrs = nil
	}
	return namer{
		call: func(in Insn) string {
			addr := p.CallBase + uint64(int64(in.Imm))
			if in.Src == PseudoCall && in.Imm >= 0 && int(in.Imm) < len(funcAddrs) {
				addr = funcAddrs[in.Imm]
			}
			sym, ok := p.symbol(addr)
			if in.Src == PseudoCall {
				switch {
				case len(funcAddrs) == 0:
					return fmt.Sprintf("%+d", in.Off)
				case ok:
					return fmt.Sprintf("%+d#%s", in.Off, sym)
				}
				return fmt.Sprintf("%+d#0x%x", in.Off, addr)
			}
			if ok {
				return sym
			}
			return fmt.Sprintf("0x%x", addr)
		},
		imm: func(in, next Insn, full uint64) string {
			switch in.Src {
			case PseudoMapFD:
				return fmt.Sprintf("map[id:%d]", uint32(in.Imm))
			case PseudoMapValue:
				return fmt.Sprintf("map[id:%d][0]+%d", uint32(in.Imm), uint32(next.Imm))
			case PseudoMapIdxValue:
				return fmt.Sprintf("map[idx:%d]+%d", uint32(in.Imm), uint32(next.Imm))
			case PseudoFunc:
				return fmt.Sprintf("subprog[%+d]", in.Imm)
			}
			return fmt.Sprintf("0x%x", full)
		},
	}
}

// InsnText renders instruction i as bpftool does, with symbol and map
// names: "(85) call bpf_map_lookup_elem#1", "(18) r1 = map[id:7]".
func (p *Program) InsnText(i int) string { return p.namer(false).format(p.Insns, i) }

// lineFinder is libbpf's bpf_prog_linfo__lfind as bpftool drives it:
// the last record at or before the instruction, searching from the
// number of records already printed (so records sharing an offset show
// the last of them, possibly more than once).
type lineFinder struct {
	lines []Line
	skip  int
}

func (f *lineFinder) find(insn int) (Line, bool) {
	if f.skip >= len(f.lines) || uint32(insn) < f.lines[f.skip].InsnOff {
		return Line{}, false
	}
	k := f.skip
	for k < len(f.lines) && uint32(insn) >= f.lines[k].InsnOff {
		k++
	}
	f.skip++
	return f.lines[k-1], true
}

// TextOptions select bpftool's "opcodes" and "linum" forms.
type TextOptions struct {
	Opcodes bool // the instruction's bytes under each line
	Linum   bool // file, line and column after each source line
}

// step is one instruction as bpftool walks them: the prototype and
// source line printed before it.
type step struct {
	index int
	proto string
	line  *Line
}

// walk yields the instructions as bpftool's dump_xlated_* visit them:
// skipping the second half of each 64-bit load, a func_info record when
// its offset comes up (records are consumed in order), a line when
// lfind finds one.
func (p *Program) walk(f func(step)) {
	lf := &lineFinder{lines: p.Lines}
	rec := 0
	double := false
	for i := range p.Insns {
		if double {
			double = false
			continue
		}
		s := step{index: i}
		if rec < len(p.Funcs) && p.Funcs[rec].InsnOff == uint32(i) {
			s.proto = p.Funcs[rec].Proto
			rec++
		}
		if l, ok := lf.find(i); ok {
			s.line = &l
		}
		double = p.Insns[i].IsLdImm64()
		f(s)
	}
}

// WriteText writes the program as `bpftool prog dump xlated` does.
func (p *Program) WriteText(w io.Writer, o TextOptions) error {
	n := p.namer(false)
	var b strings.Builder
	p.walk(func(s step) {
		if s.proto != "" {
			b.WriteString(s.proto + ":\n")
		}
		if l := s.line; l != nil && !l.NoSrc {
			b.WriteString("; " + strings.TrimLeft(l.Src, " \t\n\v\f\r"))
			if o.Linum {
				fmt.Fprintf(&b, " [file:%s line_num:%d line_col:%d]", l.File, l.LineNum, l.LineCol)
			}
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%4d: %s\n", s.index, n.format(p.Insns, s.index))
		if o.Opcodes {
			b.WriteString("       ")
			raw := p.Insns[s.index].Bytes()
			writeHex(&b, raw[:])
			if p.Insns[s.index].IsLdImm64() {
				var next Insn
				if s.index+1 < len(p.Insns) {
					next = p.Insns[s.index+1]
				}
				nb := next.Bytes()
				b.WriteByte(' ')
				writeHex(&b, nb[:])
			}
			b.WriteByte('\n')
		}
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHex is bpftool's fprint_hex with a " " separator.
func writeHex(b *strings.Builder, data []byte) {
	for i, c := range data {
		switch {
		case i == 0:
		case i%16 == 0:
			b.WriteByte('\n')
		case i%8 == 0:
			b.WriteString("  ")
		default:
			b.WriteByte(' ')
		}
		fmt.Fprintf(b, "%02x", c)
	}
}

// JSONInsn is one element of bpftool's `prog dump xlated --json`.
type JSONInsn struct {
	Proto   string       `json:"proto,omitempty"`
	Src     *string      `json:"src,omitempty"`
	File    *string      `json:"file,omitempty"`
	LineNum uint32       `json:"line_num,omitempty"`
	LineCol uint32       `json:"line_col,omitempty"`
	Disasm  string       `json:"disasm"`
	Opcodes *JSONOpcodes `json:"opcodes,omitempty"`
}

// JSONOpcodes are an instruction's fields in hex, as bpftool prints them.
type JSONOpcodes struct {
	Code   string   `json:"code"`
	SrcReg string   `json:"src_reg"`
	DstReg string   `json:"dst_reg"`
	Off    []string `json:"off"`
	Imm    []string `json:"imm"`
}

// JSON returns the program as `bpftool prog dump xlated --json` does.
func (p *Program) JSON(o TextOptions) []JSONInsn {
	n := p.namer(false)
	out := []JSONInsn{}
	p.walk(func(s step) {
		j := JSONInsn{Proto: s.proto, Disasm: n.format(p.Insns, s.index)}
		if l := s.line; l != nil {
			if !l.NoSrc {
				src := strings.TrimLeft(l.Src, " \t\n\v\f\r")
				j.Src = &src
			}
			if o.Linum {
				if !l.NoFile {
					file := l.File
					j.File = &file
				}
				j.LineNum, j.LineCol = l.LineNum, l.LineCol
			}
		}
		if o.Opcodes {
			in := p.Insns[s.index]
			raw := in.Bytes()
			imm := raw[4:8]
			if in.IsLdImm64() {
				var next Insn
				if s.index+1 < len(p.Insns) {
					next = p.Insns[s.index+1]
				}
				nb := next.Bytes()
				imm = append(append([]byte{}, imm...), nb[:]...)
			}
			j.Opcodes = &JSONOpcodes{
				Code:   fmt.Sprintf("0x%02x", in.Code),
				SrcReg: fmt.Sprintf("0x%x", in.Src),
				DstReg: fmt.Sprintf("0x%x", in.Dst),
				Off:    hexList(raw[2:4]),
				Imm:    hexList(imm),
			}
		}
		out = append(out, j)
	})
	return out
}

func hexList(b []byte) []string {
	s := make([]string, len(b))
	for i, c := range b {
		s[i] = fmt.Sprintf("0x%02x", c)
	}
	return s
}
