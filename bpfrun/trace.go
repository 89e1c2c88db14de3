package bpfrun

import (
	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/objects"
)

// TraceStep is one executed instruction: where, what, and the registers
// it changed.
type TraceStep struct {
	// Prog is the program's name, Insn the instruction's index in it and
	// Depth the BPF-to-BPF call depth (0: the program's main function).
	Prog  string `json:"prog"`
	Insn  int    `json:"insn"`
	Depth int    `json:"depth"`
	// Text is the instruction as prog dump xlated prints it.
	Text string `json:"text"`
	// Regs are the registers the instruction changed, with their new
	// values.
	Regs []RegValue `json:"regs"`
	// Mem is the memory it accessed, if any.
	Mem *MemAccess `json:"mem,omitempty"`
}

// RegValue is a register's value.
type RegValue struct {
	Reg   string      `json:"reg"`
	Value objects.Hex `json:"value"`
}

// MemAccess is an instruction's memory access.
type MemAccess struct {
	Addr  objects.Hex `json:"addr"`
	Size  int         `json:"size"`
	Write bool        `json:"write"`
}

type textKey struct {
	p *bpfvm.Program
	i int
}

// tracer collects the trace of a run into res.
func (s *Session) tracer(res *Result, ro RunOptions) bpfvm.TraceFunc {
	if !ro.Trace {
		return nil
	}
	limit := ro.MaxTrace
	if limit <= 0 {
		limit = DefaultMaxTrace
	}
	texts := map[textKey]string{}
	return func(ev *bpfvm.TraceEvent) {
		if len(res.Trace) >= limit {
			res.TraceTruncated = true
			return
		}
		res.Trace = append(res.Trace, s.step(ev, texts))
	}
}

// step renders a trace event.
func (s *Session) step(ev *bpfvm.TraceEvent, texts map[textKey]string) TraceStep {
	k := textKey{ev.Prog, ev.Index}
	text, ok := texts[k]
	if !ok {
		if p := s.progOf(ev.Prog); p != nil {
			text = p.InsnText(ev.Index)
		}
		texts[k] = text
	}
	st := TraceStep{Prog: ev.Prog.Name, Insn: ev.Index, Depth: ev.Depth, Text: text, Regs: []RegValue{}}
	for _, r := range ev.Changed() {
		st.Regs = append(st.Regs, RegValue{Reg: bpfvm.RegName(r), Value: objects.Hex(ev.After[r])})
	}
	if ev.Access.Size > 0 {
		st.Mem = &MemAccess{Addr: objects.Hex(ev.Access.Addr), Size: ev.Access.Size, Write: ev.Access.Write}
	}
	return st
}
