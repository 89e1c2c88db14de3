package bpf

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/x86dis"
)

// JitedFunc is one JIT image disassembled, as bpftool's "prog dump
// jited" shows it with a disassembler: the function's prototype (from
// BTF) and symbol, then its instructions.
type JitedFunc struct {
	Proto string      `json:"proto,omitempty"`
	Name  string      `json:"name"`
	Addr  objects.Hex `json:"addr"`
	Insns []JitedInsn `json:"insns"`
}

// JitedInsn is one x86-64 instruction of a JIT image, in objdump's AT&T
// syntax.
type JitedInsn struct {
	// PC is the offset in the image; Addr the kernel address.
	PC   uint64      `json:"pc"`
	Addr objects.Hex `json:"addr"`
	// Bytes are the instruction's bytes.
	Bytes []byte `json:"opcodes"`
	// Text is objdump's text, a call's or jump's target named after it
	// ("call 0xffffffffc0201234 <__htab_map_lookup_elem>").
	Text string `json:"text"`
	// Operation and Operands split Text as bpftool's JSON does.
	Operation string   `json:"operation"`
	Operands  []string `json:"operands"`
	// Line is the source line the JIT recorded as starting at this
	// instruction (line_info through jited_linfo), nil for none.
	Line *bpfinsn.Line `json:"line,omitempty"`
}

// DumpJited disassembles the program's JIT images: one per subprogram, each
// with the source lines the JIT recorded, call and jump targets named
// from the program's own images and syms (nil: not named). Errors wrap
// objects.ErrNotFound for a program that is not JITed.
func (p *Prog) DumpJited(syms *kallsyms.Table) ([]JitedFunc, error) {
	funcs, err := p.Funcs()
	if err != nil {
		return nil, err
	}
	if len(funcs) == 0 {
		return nil, fmt.Errorf("not JITed: no instructions returned: %w", objects.ErrNotFound)
	}
	own := map[uint64]string{}
	for _, f := range funcs {
		own[f.Addr] = f.Name
	}
	src, err := p.Source()
	if err != nil {
		return nil, err
	}
	if src.JitErr != nil {
		return nil, src.JitErr
	}
	out := make([]JitedFunc, 0, len(funcs))
	for fi, f := range funcs {
		img, err := f.Image()
		if err != nil {
			return nil, err
		}
		jf := JitedFunc{Name: f.Name, Addr: objects.Hex(f.Addr)}
		if fi < len(src.Funcs) {
			jf.Proto = src.Funcs[fi].Proto
		}
		// This function's line records: those whose JIT address is in it.
		var fl []bpfinsn.Line
		var fa []uint64
		for i, a := range src.JitAddrs {
			if a >= f.Addr && a < f.Addr+uint64(f.Len) {
				fl, fa = append(fl, src.Lines[i]), append(fa, a)
			}
		}
		// An instruction shows the last line record at or before it that
		// no earlier instruction showed (bpftool's dump_jited lookup).
		skip := 0
		findLine := func(addr uint64) *bpfinsn.Line {
			if skip >= len(fa) || addr < fa[skip] {
				return nil
			}
			i := skip
			for i < len(fa) && addr >= fa[i] {
				i++
			}
			skip++
			l := fl[i-1]
			return &l
		}
		for _, in := range x86dis.Disassemble(img, f.Addr) {
			ji := JitedInsn{PC: in.Addr - f.Addr, Addr: objects.Hex(in.Addr), Bytes: in.Bytes, Text: in.Text, Line: findLine(in.Addr)}
			if in.Target != 0 {
				if loc, ok := symbolNear(syms, own, in.Target); ok {
					ji.Text += " <" + loc + ">"
				}
			}
			ji.Operation, ji.Operands = splitInst(in)
			jf.Insns = append(jf.Insns, ji)
		}
		out = append(out, jf)
	}
	return out, nil
}

// WriteJited renders disassembled images as bpftool's "prog dump jited"
// text: per function its prototype and name, then "%4x:\t" offsets and
// the text, each source line before the instructions it starts ("; SRC",
// with "[file:F line_num:N line_col:C]" under o.Linum) and the bytes
// under o.Opcodes.
func WriteJited(w io.Writer, funcs []JitedFunc, o bpfinsn.TextOptions) error {
	bw := bufio.NewWriter(w)
	for _, f := range funcs {
		if f.Proto != "" {
			fmt.Fprintf(bw, "%s:\n", f.Proto)
		}
		fmt.Fprintf(bw, "%s:\n", f.Name)
		for _, in := range f.Insns {
			if l := in.Line; l != nil && !l.NoSrc {
				fmt.Fprintf(bw, "; %s", strings.TrimLeft(l.Src, " \t\n\v\f\r"))
				if o.Linum {
					fmt.Fprintf(bw, " [file:%s line_num:%d line_col:%d]", l.File, l.LineNum, l.LineCol)
				}
				bw.WriteByte('\n')
			}
			fmt.Fprintf(bw, "%4x:\t%s", in.PC, in.Text)
			if o.Opcodes {
				bw.WriteString("\n\t")
				for _, c := range in.Bytes {
					fmt.Fprintf(bw, "%02x ", c)
				}
			}
			bw.WriteByte('\n')
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// symbolNear names a call or jump target: a program image of its own,
// or the kernel symbol it falls in ("__htab_map_lookup_elem",
// "ki_xdp+0x70").
func symbolNear(syms *kallsyms.Table, own map[uint64]string, addr uint64) (string, bool) {
	if n, ok := own[addr]; ok {
		return n, true
	}
	if syms == nil {
		return "", false
	}
	loc, err := syms.LookupAddr(addr)
	if err != nil {
		return "", false
	}
	return loc.Short(), true
}

// splitInst splits objdump text into the operation and its operands,
// as bpftool's JSON has them.
func splitInst(in x86dis.Inst) (string, []string) {
	text := in.Text
	if i := strings.Index(text, "        # "); i >= 0 {
		text = text[:i]
	}
	op := in.Mnemonic()
	rest := strings.TrimSpace(strings.TrimPrefix(text, op))
	if rest == "" {
		return op, nil
	}
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, rest[start:i])
				start = i + 1
			}
		}
	}
	return op, append(out, rest[start:])
}
