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
	// values (absent when none).
	Regs []RegValue `json:"regs,omitempty"`
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
	var mems []MemAccess
	return func(ev *bpfvm.TraceEvent) {
		if len(res.Trace) >= limit {
			res.TraceTruncated = true
			return
		}
		if cap(res.Trace) == 0 {
			res.Trace = make([]TraceStep, 0, 4096)
		}
		res.Trace = append(res.Trace, s.step(ev, texts, &mems))
	}
}

// regNames are RegName's answers, made once.
var regNames = func() (n [12]string) {
	for i := range n {
		n[i] = bpfvm.RegName(i)
	}
	return n
}()

// step renders a trace event; memory accesses are allocated from mems
// a chunk at a time.
func (s *Session) step(ev *bpfvm.TraceEvent, texts map[textKey]string, mems *[]MemAccess) TraceStep {
	k := textKey{ev.Prog, ev.Index}
	text, ok := texts[k]
	if !ok {
		if p := s.progOf(ev.Prog); p != nil {
			text = p.InsnText(ev.Index)
		}
		texts[k] = text
	}
	st := TraceStep{Prog: ev.Prog.Name, Insn: ev.Index, Depth: ev.Depth, Text: text}
	n := 0
	for i := range ev.Before {
		if ev.Before[i] != ev.After[i] {
			n++
		}
	}
	if n > 0 {
		st.Regs = make([]RegValue, 0, n)
		for i := range ev.Before {
			if ev.Before[i] != ev.After[i] {
				st.Regs = append(st.Regs, RegValue{Reg: regNames[i], Value: objects.Hex(ev.After[i])})
			}
		}
	}
	if ev.Access.Size > 0 {
		if len(*mems) == cap(*mems) {
			*mems = make([]MemAccess, 0, 1024)
		}
		*mems = append(*mems, MemAccess{Addr: objects.Hex(ev.Access.Addr), Size: ev.Access.Size, Write: ev.Access.Write})
		st.Mem = &(*mems)[len(*mems)-1]
	}
	return st
}
