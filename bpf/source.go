package bpf

import "github.com/kinspect/kinspect/bpfinsn"

// Source is a program's func_info and line_info decoded through its BTF,
// with the JIT address of each line: what the xlated and jited dumpers
// and the unwinder show of the program's source.
type Source struct {
	// Funcs are the func_info records with their prototypes.
	Funcs []bpfinsn.Func
	// Lines are the line_info records with their file and source text.
	Lines []bpfinsn.Line
	// JitAddrs[i] is the JIT address of Lines[i] (jited_linfo); nil when
	// the kernel kept none or their count differs from the lines'.
	JitAddrs []uint64
	// JitErr says why jited_linfo could not be read.
	JitErr error
}

// Source reads the program's source information once (later calls return
// the first answer). A program without BTF has an empty Source.
func (p *Prog) Source() (*Source, error) {
	p.srcOnce.Do(func() { p.src, p.srcErr = p.readSource() })
	return p.src, p.srcErr
}

func (p *Prog) readSource() (*Source, error) {
	s := &Source{}
	if p.BTFAddr == 0 {
		return s, nil
	}
	b, err := p.BTF()
	if err != nil {
		return nil, err
	}
	fi, err := p.FuncInfo()
	if err != nil {
		return nil, err
	}
	li, err := p.LineInfo()
	if err != nil {
		return nil, err
	}
	s.Funcs, s.Lines = b.Funcs(fi), b.Lines(li)
	jl, err := p.JitedLineInfo()
	if err != nil {
		s.JitErr = err
	} else if len(jl) == len(s.Lines) {
		s.JitAddrs = jl
	}
	return s, nil
}
