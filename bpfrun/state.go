package bpfrun

import (
	"fmt"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
)

// The BPF view of a program on a stack: for a frame of bt in a BPF
// program, the xlated instruction executing (or called from), its source
// line, R0-R10 from the x86 registers of the frame by the x86-64 JIT's
// fixed mapping (arch/x86/net/bpf_jit_comp.c reg2hex), the BPF stack
// below R10, and the BPF-to-BPF calls the frame is in.

// jitRegs is the x86-64 JIT's register of each BPF register (R0-R10,
// then BPF_REG_AX of constant blinding), by pt_regs' names.
var jitRegs = [12]string{"ax", "di", "si", "dx", "cx", "r8", "bx", "r13", "r14", "r15", "bp", "r10"}

// x86Names are the callee-saved registers by their AT&T names.
var x86Names = map[string]string{"bx": "%rbx", "r13": "%r13", "r14": "%r14", "r15": "%r15"}

// BPFReg is a BPF register in a frame.
type BPFReg struct {
	Reg string `json:"reg"`
	// X86 is the x86 register the JIT keeps it in.
	X86   string      `json:"x86"`
	Value objects.Hex `json:"value"`
	// Known says the value is the register's: a frame interrupted (or
	// the CPU's) has them all; a caller only R10 (its frame pointer) and
	// what its BPF callee saved of R6-R9.
	Known bool `json:"known"`
	// From says where a known value was read.
	From string `json:"from,omitempty"`
}

// FrameState is the BPF view of one frame.
type FrameState struct {
	// Frame is the frame's index in its backtrace.
	Frame    int         `json:"frame"`
	PC       objects.Hex `json:"pc"`
	ProgID   uint32      `json:"prog_id"`
	ProgName string      `json:"prog_name"`
	// Func is the subprogram (its BTF name) and Image its JIT image's
	// symbol.
	Func  string `json:"func"`
	Image string `json:"image"`
	// Interrupted says PC is where the frame was interrupted (its
	// registers are the CPU's or an interrupt's); otherwise it is a
	// return address, and Insn the call.
	Interrupted bool `json:"interrupted"`
	// Insn is the xlated instruction (-1: in the prologue, before the
	// first); when not Exact, Insn to InsnLast are the candidates.
	Insn     int  `json:"insn"`
	InsnLast int  `json:"insn_last"`
	Exact    bool `json:"exact"`
	// Mid says PC is inside the instruction's x86 code, not at its start
	// (a register may hold an intermediate value).
	Mid bool `json:"mid,omitempty"`
	// Text is the instruction as prog dump xlated prints it.
	Text string        `json:"text"`
	Line *bpfinsn.Line `json:"line,omitempty"`
	How  string        `json:"how"`
	Regs []BPFReg      `json:"regs"`
	// Stack is the frame's BPF stack, [R10 - StackDepth, R10).
	StackDepth uint32   `json:"stack_depth"`
	Stack      HexBytes `json:"stack"`
	// CalledFrom is the frame index of the BPF caller of a subprogram
	// (-1: none on the stack), Depth its depth in the BPF-to-BPF calls
	// (0: the program's main function).
	CalledFrom int    `json:"called_from"`
	Depth      int    `json:"depth"`
	Err        string `json:"error,omitempty"`
}

// StackState is a stack's BPF frames: prog state's rows.
type StackState struct {
	PID    int          `json:"pid"`
	TID    int          `json:"tid"`
	Comm   string       `json:"comm"`
	Task   objects.Hex  `json:"task"`
	CPU    int          `json:"cpu"`
	OnCPU  bool         `json:"on_cpu"`
	Frames []FrameState `json:"frames"`
}

// OfProgs keeps the frames of the programs progs in states, and the
// stacks that still have one (prog state PROG).
func OfProgs(states []StackState, progs []*bpf.Prog) []StackState {
	want := map[uint32]bool{}
	for _, p := range progs {
		want[p.ID] = true
	}
	var keep []StackState
	for _, st := range states {
		var fs []FrameState
		for _, f := range st.Frames {
			if want[f.ProgID] {
				fs = append(fs, f)
			}
		}
		if len(fs) > 0 {
			st.Frames = fs
			keep = append(keep, st)
		}
	}
	return keep
}

// State computes the BPF view of every BPF frame of the backtraces;
// stacks without one are left out.
func (r *Replayer) State(bts []*orc.Backtrace) []StackState {
	var out []StackState
	for _, bt := range bts {
		st := StackState{PID: bt.PID, TID: bt.TID, Comm: bt.Comm, Task: bt.Task, CPU: bt.CPU, OnCPU: bt.OnCPU}
		st.Frames = r.StackFrames(bt)
		if len(st.Frames) > 0 {
			out = append(out, st)
		}
	}
	return out
}

// StackFrames is the BPF view of bt's BPF frames, innermost first.
func (r *Replayer) StackFrames(bt *orc.Backtrace) []FrameState {
	var out []FrameState
	idx := map[int]int{} // frame -> index in out
	for i := range bt.Frames {
		f := &bt.Frames[i]
		if f.BPF == nil || f.BPF.ID == 0 {
			continue
		}
		fs := r.frameState(bt, i)
		// A BPF callee right inside: its prologue saved this frame's
		// R6-R9, and this frame called it.
		if i > 0 {
			if k, ok := idx[i-1]; ok && out[k].ProgID == fs.ProgID {
				out[k].CalledFrom = i
				r.callerRegs(&fs, &out[k])
			}
		}
		idx[i] = len(out)
		out = append(out, fs)
	}
	// Depths: a frame's BPF callers above it.
	for k := len(out) - 1; k >= 0; k-- {
		if c := out[k].CalledFrom; c >= 0 {
			out[k].Depth = out[idx[c]].Depth + 1
		}
	}
	return out
}

// FrameState is the BPF view of frame i of bt (a frame in a BPF
// program); its caller's registers saved by a BPF callee are not
// filled in (StackFrames does).
func (r *Replayer) FrameState(bt *orc.Backtrace, i int) FrameState { return r.frameState(bt, i) }

func (r *Replayer) frameState(bt *orc.Backtrace, i int) FrameState {
	f := bt.Frames[i]
	fs := FrameState{Frame: i, PC: f.PC, Insn: -2, InsnLast: -2, CalledFrom: -1, Image: f.Function}
	fail := func(err error) FrameState {
		fs.Err = err.Error()
		return fs
	}
	if f.BPF == nil {
		return fail(fmt.Errorf("frame %d is not in a BPF program", i))
	}
	fs.ProgID = f.BPF.ID
	p, err := r.Prog(bpf.Selector{Kind: bpf.SelectID, ID: f.BPF.ID})
	if err != nil {
		return fail(err)
	}
	fs.ProgName = p.Name
	fs.Interrupted = f.Regs != nil
	// The registers: every one from an interrupt's (or the CPU's) saved
	// registers, else R10 from the frame pointer.
	fs.Regs = make([]BPFReg, 11)
	for k := range fs.Regs {
		fs.Regs[k] = BPFReg{Reg: fmt.Sprintf("r%d", k), X86: jitRegs[k]}
	}
	if f.Regs != nil {
		vals := []objects.Hex{f.Regs.AX, f.Regs.DI, f.Regs.SI, f.Regs.DX, f.Regs.CX, f.Regs.R8, f.Regs.BX, f.Regs.R13, f.Regs.R14, f.Regs.R15, f.Regs.BP}
		from := "the CPU's registers"
		if i > 0 || f.Regs.Addr != nil {
			from = "the interrupted registers (pt_regs)"
		}
		for k, v := range vals {
			fs.Regs[k].Value, fs.Regs[k].Known, fs.Regs[k].From = v, true, from
		}
	} else {
		fs.Regs[10].Value, fs.Regs[10].Known, fs.Regs[10].From = f.BP, true, "the frame pointer"
	}
	// The instruction.
	pc := uint64(f.PC)
	if !fs.Interrupted {
		pc-- // a return address: the call is before it
	}
	ims, err := p.JIT()
	if err != nil {
		return fail(err)
	}
	var im *JITImage
	for _, m := range ims {
		if pc >= m.Func.Addr && pc < m.Func.Addr+uint64(m.Func.Len) {
			im = m
		}
	}
	if im == nil {
		return fail(fmt.Errorf("pc %#x is in none of prog %d's JIT images", pc, p.ID))
	}
	fs.Image = im.Func.Name
	fs.Func = p.FuncName(im.First)
	fs.StackDepth = (im.Func.StackDepth + 7) &^ 7
	fs.Insn, fs.InsnLast, fs.Exact = im.Where(pc)
	switch {
	case fs.Insn == -1:
		fs.How = "in the prologue, before the first instruction"
	case fs.Insn < 0:
		fs.How = "in no instruction's code"
	case fs.Exact:
		fs.How = fmt.Sprintf("x86 code of each instruction derived from the JIT's code generation; %d of %d line_info addresses checked", im.Checked, im.Anchors)
		for _, s := range im.Spans {
			if s.Insn == fs.Insn && pc != s.Start {
				fs.Mid = fs.Interrupted
			}
		}
	default:
		for _, x := range im.Inexact {
			if fs.Insn == x.From {
				fs.How = "instructions " + fmt.Sprint(x.From) + "-" + fmt.Sprint(x.To-1) + ": " + x.Why
			}
		}
	}
	if fs.Insn >= 0 {
		fs.Text = p.InsnText(fs.Insn)
		if l, ok := p.Line(fs.Insn); ok {
			fs.Line = &l
		}
	}
	// The stack below R10.
	if fs.Regs[10].Known && fs.StackDepth > 0 {
		b := make([]byte, fs.StackDepth)
		if err := r.prog.Read(b, uint64(fs.Regs[10].Value)-uint64(fs.StackDepth)); err != nil {
			fs.Err = fmt.Sprintf("stack: %v", err)
		} else {
			fs.Stack = b
		}
	}
	return fs
}

// callerRegs fills the R6-R9 of a BPF caller from what its BPF callee's
// prologue pushed, or, for a register the callee does not save (nor
// use), the callee's own value.
func (r *Replayer) callerRegs(caller, callee *FrameState) {
	p, err := r.Prog(bpf.Selector{Kind: bpf.SelectID, ID: callee.ProgID})
	if err != nil {
		return
	}
	ims, err := p.JIT()
	if err != nil {
		return
	}
	var im *JITImage
	for _, m := range ims {
		if m.Func.Name == callee.Image {
			im = m
		}
	}
	if im == nil || !callee.Regs[10].Known || callee.Insn < 0 {
		return
	}
	rbp := uint64(callee.Regs[10].Value)
	for k := 6; k <= 9; k++ {
		x := x86Names[jitRegs[k]]
		if off, ok := im.Saved[x]; ok {
			v, err := r.prog.ReadU64(rbp + uint64(off))
			if err != nil {
				continue
			}
			caller.Regs[k].Value, caller.Regs[k].Known = objects.Hex(v), true
			caller.Regs[k].From = fmt.Sprintf("saved by %s's prologue at %#x", callee.Func, rbp+uint64(off))
		} else if callee.Regs[k].Known && !usesReg(p.VM.Insns[im.First:im.Last], uint8(k)) {
			caller.Regs[k] = callee.Regs[k]
			caller.Regs[k].From = fmt.Sprintf("unchanged by %s, which does not use it", callee.Func)
		}
	}
}

func usesReg(insns []bpfinsn.Insn, reg uint8) bool {
	for _, in := range insns {
		if in.Dst == reg || in.Src == reg {
			return true
		}
	}
	return false
}
