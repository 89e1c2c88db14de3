package bpfrun

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/objects"
)

// RunOptions are a test run's attributes, as BPF_PROG_TEST_RUN takes
// them (bpftool prog run's data_in, ctx_in, repeat).
type RunOptions struct {
	// DataIn is the packet (data_in).
	DataIn []byte
	// CtxIn is the context's fields (ctx_in): struct __sk_buff,
	// struct xdp_md, a raw tracepoint's u64 arguments; nil for none.
	CtxIn []byte
	// Repeat runs the program that many times on the same context (0:
	// once), as the kernel does; the result is the last run's.
	Repeat int
	// Trace collects each executed instruction (Result.Trace), at most
	// MaxTrace of them (0: DefaultMaxTrace).
	Trace    bool
	MaxTrace int
}

// DefaultMaxTrace bounds a trace.
const DefaultMaxTrace = 1 << 20

// Result is what a test run returned, as bpftool prog run prints it
// (retval, duration, data_out, ctx_out), with what kinspect adds: the
// instructions executed, the records the program output, and the map
// entries it changed.
type Result struct {
	ProgID   uint32 `json:"prog_id"`
	ProgName string `json:"prog_name"`
	// Retval is the program's return value (R0, truncated to 32 bits
	// as the kernel's test run does).
	Retval uint32 `json:"retval"`
	// Duration is the replay's own time per run, in ns (the kernel's
	// ktime of its run loop does not exist here).
	Duration uint32 `json:"duration"`
	// DataOut is the packet after the runs (nil for a context without
	// one); CtxOut the context's fields (nil without CtxIn).
	DataOut []byte `json:"data_out"`
	CtxOut  []byte `json:"ctx_out"`
	// Insns is the number of instructions the runs executed.
	Insns uint64 `json:"insns"`
	// Outputs are the records sent to ring buffers and perf event
	// arrays; Printk the bpf_trace_printk messages.
	Outputs []Output `json:"outputs"`
	Printk  []string `json:"printk"`
	// MapChanges are the map entries the runs changed.
	MapChanges []MapChange `json:"map_changes"`
	// Trace is the instructions executed (with Trace), TraceTruncated
	// says MaxTrace cut it.
	Trace          []TraceStep `json:"trace,omitempty"`
	TraceTruncated bool        `json:"trace_truncated,omitempty"`
}

// Output is a record a program sent to user space.
type Output struct {
	Helper string   `json:"helper"`
	Insn   int      `json:"insn"`
	Prog   string   `json:"prog"`
	MapID  uint32   `json:"map_id"`
	CPU    uint32   `json:"cpu"`
	Data   HexBytes `json:"data"`
	// Discarded: a ring buffer reservation discarded.
	Discarded bool `json:"discarded,omitempty"`
}

// HexBytes are bytes that JSON and scripts show as a hex string.
type HexBytes []byte

// MarshalText renders the bytes in hex.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText parses hex.
func (h *HexBytes) UnmarshalText(b []byte) error {
	x, err := hex.DecodeString(string(b))
	*h = x
	return err
}

// Run runs a program once as a test run of its own session: from the
// dump's state, which it does not change.
func (r *Replayer) Run(p *Prog, ro RunOptions, o Options) (*Result, error) {
	s, err := r.NewSession(o)
	if err != nil {
		return nil, err
	}
	return s.Run(p, ro)
}

// ctxState is a built context.
type ctxState struct {
	addr uint64
	skb  *skbCtx
	xdp  *xdpCtx
	raw  bool
}

// buildCtx builds the context a test run of p builds. Errors wrap
// ErrInvalid or ErrNotSupported.
func (s *Session) buildCtx(p *Prog, ro RunOptions) (*ctxState, error) {
	switch p.Type {
	case progSocketFilter, progSchedCLS, progSchedACT, progCgroupSKB, progLWTIn, progLWTOut, progLWTXmit, progLWTSeg6:
		c, err := s.buildSKB(p.Type, ro.DataIn, ro.CtxIn, ro.CtxIn != nil)
		if err != nil {
			return nil, err
		}
		return &ctxState{addr: c.skb.Addr, skb: c}, nil
	case progXDP:
		c, err := s.buildXDP(ro.DataIn, ro.CtxIn, ro.CtxIn != nil)
		if err != nil {
			return nil, err
		}
		return &ctxState{addr: c.xdp.Addr, xdp: c}, nil
	case progRawTP, progRawTPWritable:
		// bpf_prog_test_run_raw_tp: no data, ctx_in the arguments.
		if len(ro.DataIn) > 0 {
			return nil, fmt.Errorf("a raw tracepoint takes no data_in: %w", ErrInvalid)
		}
		maxOff, _ := p.Aux.MemberUint("max_ctx_offset")
		if uint64(len(ro.CtxIn)) < maxOff || len(ro.CtxIn) > 12*8 {
			return nil, fmt.Errorf("ctx_in of %d bytes: the program reads %d, at most 96 are taken: %w", len(ro.CtxIn), maxOff, ErrInvalid)
		}
		reg, err := s.m.Alloc("raw_tracepoint args", max(len(ro.CtxIn), 8), false)
		if err != nil {
			return nil, err
		}
		copy(reg.Bytes(), ro.CtxIn)
		return &ctxState{addr: reg.Addr, raw: true}, nil
	}
	return nil, fmt.Errorf("program type %s: no test run context: %w", p.TypeName, ErrNotSupported)
}

// finish returns the context's data_out and ctx_out.
func (s *Session) finish(c *ctxState) ([]byte, []byte, error) {
	switch {
	case c.skb != nil:
		return s.finishSKB(c.skb)
	case c.xdp != nil:
		return s.finishXDP(c.xdp)
	}
	return nil, nil, nil
}

// Run runs the program as a test run: builds its context from ro, runs
// it ro.Repeat times, and reports what it returned and changed. The
// session keeps the runs' writes. A run that fails returns the result so
// far (its trace, the changes made) with the *bpfvm.ExecError.
func (s *Session) Run(p *Prog, ro RunOptions) (*Result, error) {
	c, err := s.buildCtx(p, ro)
	if err != nil {
		return nil, err
	}
	res := &Result{ProgID: p.ID, ProgName: p.Name}
	tr := s.tracer(res, ro)
	if tr != nil {
		s.m.SetTrace(tr)
		defer s.m.SetTrace(nil)
	}
	s.ran(p)
	repeat := max(ro.Repeat, 1)
	outs, prints := len(s.m.Outputs()), len(s.m.Printk())
	start := time.Now()
	var runErr error
	for i := 0; i < repeat; i++ {
		var ret uint64
		ret, runErr = s.m.Exec(p.VM, c.addr)
		res.Insns += s.m.Executed()
		if runErr != nil {
			break
		}
		res.Retval = uint32(ret)
	}
	d := time.Since(start) / time.Duration(repeat)
	res.Duration = uint32(min(d.Nanoseconds(), 1<<32-1))
	if runErr == nil {
		if res.DataOut, res.CtxOut, err = s.finish(c); err != nil {
			return res, err
		}
	}
	for _, o := range s.m.Outputs()[outs:] {
		res.Outputs = append(res.Outputs, s.output(o))
	}
	res.Printk = append(res.Printk, s.m.Printk()[prints:]...)
	ch, err := s.MapChanges()
	res.MapChanges = ch
	if runErr != nil {
		return res, runErr
	}
	return res, err
}

func (s *Session) output(o bpfvm.Output) Output {
	out := Output{Helper: o.Helper, Insn: o.Insn, Prog: o.Prog, CPU: o.CPU, Data: o.Data, Discarded: o.Discarded}
	if mi, err := s.mapAt(o.Map); err == nil {
		out.MapID = mi.model.ID
	}
	return out
}

// Prog finds a program of the replayer's kernel (bpftool's PROG).
func (r *Replayer) Prog(sel bpf.Selector) (*Prog, error) {
	progs, err := bpf.SelectProgs(r.prog, sel)
	if err != nil && len(progs) == 0 {
		return nil, err
	}
	if len(progs) == 0 {
		return nil, fmt.Errorf("no such program: %w", objects.ErrNotFound)
	}
	return r.Load(progs[0])
}
