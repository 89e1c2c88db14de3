package bpfinsn

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// The control-flow graph of bpftool's cfg.c: functions split at the
// targets of BPF-to-BPF calls, basic blocks at jump targets and after
// conditional jumps, an ENTRY (0) and EXIT (1) block per function.

type cfgFunc struct {
	idx        int // in order of discovery, as bpftool numbers them
	start, end int // instruction range, inclusive
	bbs        []*cfgBB
}

type cfgBB struct {
	idx        int
	head, tail int // -1 for ENTRY and EXIT
	succs      []*cfgBB
}

func (p *Program) buildCFG() []*cfgFunc {
	n := len(p.Insns)
	var funcs []*cfgFunc
	add := func(start int) {
		for _, f := range funcs {
			if f.start == start {
				return
			}
		}
		funcs = append(funcs, &cfgFunc{idx: len(funcs), start: start})
	}
	add(0)
	for i, in := range p.Insns {
		if in.Code == CodeCall && in.Src == PseudoCall {
			t := i + int(in.Off) + 1
			if t >= 0 && t < n {
				add(t)
			}
		}
	}
	ordered := append([]*cfgFunc(nil), funcs...)
	sort.Slice(ordered, func(a, b int) bool { return ordered[a].start < ordered[b].start })
	for k, f := range ordered {
		if k+1 < len(ordered) {
			f.end = ordered[k+1].start - 1
		} else {
			f.end = n - 1
		}
		p.partition(f)
	}
	return ordered
}

func isJmp(code uint8) bool {
	c := code & 0x07
	return c == ClassJMP || c == ClassJMP32
}

func (p *Program) partition(f *cfgFunc) {
	heads := map[int]bool{f.start: true}
	for i := f.start; i <= f.end; i++ {
		in := p.Insns[i]
		if !isJmp(in.Code) || in.Op() == OpExit || in.Op() == OpCall {
			continue
		}
		if t := i + int(in.Off) + 1; t >= f.start && t <= f.end {
			heads[t] = true
		}
		if in.Op() != OpJA && i+1 <= f.end {
			heads[i+1] = true
		}
	}
	var hs []int
	for h := range heads {
		hs = append(hs, h)
	}
	sort.Ints(hs)
	entry := &cfgBB{idx: 0, head: -1, tail: -1}
	exit := &cfgBB{idx: 1, head: -1, tail: -1}
	f.bbs = append(f.bbs, entry)
	for k, h := range hs {
		bb := &cfgBB{idx: k + 2, head: h}
		if k+1 < len(hs) {
			bb.tail = hs[k+1] - 1
		} else {
			bb.tail = f.end
		}
		f.bbs = append(f.bbs, bb)
	}
	f.bbs = append(f.bbs, exit)
	byHead := func(h int) *cfgBB {
		for _, bb := range f.bbs {
			if bb.head == h {
				return bb
			}
		}
		return nil
	}
	entry.succs = []*cfgBB{f.bbs[1]}
	for k := 1; k < len(f.bbs)-1; k++ {
		bb, next := f.bbs[k], f.bbs[k+1]
		in := p.Insns[bb.tail]
		switch {
		case !isJmp(in.Code) || in.Op() == OpExit:
			bb.succs = append(bb.succs, next)
		case in.Op() == OpJA:
			bb.succs = append(bb.succs, byHead(bb.tail+int(in.Off)+1))
		default:
			bb.succs = append(bb.succs, next, byHead(bb.tail+int(in.Off)+1))
		}
	}
}

// graphEscape is bpftool's print_insn_for_graph: the text cut to 63
// bytes, each newline made a left-aligned line break and <, >, |, &
// escaped for a record label.
func graphEscape(s string) string {
	s += "\n"
	if len(s) > 63 {
		s = s[:63]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n':
			b.WriteString(`\l\` + "\n")
		case '<', '>', '|', '&':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// WriteDot writes the program's control-flow graph as `bpftool prog
// dump xlated visual` does. BPF-to-BPF calls show only their offsets, as
// there; an edge to a block that does not exist (a jump out of its
// function, which bpftool would crash on) is left out.
func (p *Program) WriteDot(w io.Writer) error {
	n := p.namer(true)
	var b strings.Builder
	b.WriteString("digraph \"DOT graph for eBPF program\" {\n")
	if len(p.Insns) > 0 {
		funcs := p.buildCFG()
		for _, f := range funcs {
			fmt.Fprintf(&b, "subgraph \"cluster_%d\" {\n\tstyle=\"dashed\";\n\tcolor=\"black\";\n\tlabel=\"func_%d ()\";\n", f.idx, f.idx)
			for _, bb := range f.bbs {
				shape := "record"
				if bb.idx < 2 {
					shape = "Mdiamond"
				}
				fmt.Fprintf(&b, "\tfn_%d_bb_%d [shape=%s,style=filled,label=\"", f.idx, bb.idx, shape)
				switch bb.idx {
				case 0:
					b.WriteString("ENTRY")
				case 1:
					b.WriteString("EXIT")
				default:
					b.WriteString("{")
					// The second half of a 64-bit load is skipped, as
					// since bpftool 7.2 ("bpftool: Fix bug for
					// long instructions in program CFG dumps", in
					// Debian's 7.1 too).
					double := false
					for i := bb.head; i <= bb.tail; i++ {
						if double {
							double = false
							continue
						}
						double = p.Insns[i].IsLdImm64()
						fmt.Fprintf(&b, "%4d: ", i-f.start)
						b.WriteString(graphEscape(n.format(p.Insns, i)))
						if i != bb.tail {
							b.WriteString(" | ")
						}
					}
					b.WriteString("}")
				}
				b.WriteString("\"];\n\n")
			}
			for _, bb := range f.bbs {
				for _, s := range bb.succs {
					if s == nil {
						continue
					}
					fmt.Fprintf(&b, "\tfn_%d_bb_%d:s -> fn_%d_bb_%d:n [style=\"solid,bold\", color=black, weight=10, constraint=true];\n", f.idx, bb.idx, f.idx, s.idx)
				}
			}
			fmt.Fprintf(&b, "\tfn_%d_bb_0:s -> fn_%d_bb_1:n [style=\"invis\", constraint=true];\n", f.idx, f.idx)
			b.WriteString("}\n")
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
