package bpfvm

import (
	"errors"
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpfinsn"
)

// DefaultBudget is the instruction budget of a run when Options.Budget is
// 0.
const DefaultBudget = 1 << 24

// Options configure a Machine. Every field is optional.
type Options struct {
	// Budget is the most instructions one run (Start to exit) executes,
	// callbacks included; 0 means DefaultBudget.
	Budget uint64
	// CallBase is the address of __bpf_call_base: a call's target is
	// CallBase + imm.
	CallBase uint64
	// Syms names call targets (kallsyms); it must name only the symbol
	// starting exactly at an address.
	Syms bpfinsn.Resolver
	// Helpers implements the functions called; see StandardHelpers.
	Helpers *Registry
	// TailCalls finds tail call targets; without it a tail call is an
	// error wrapping ErrUnknownHelper.
	TailCalls TailCaller
	// CPU is the CPU the program runs on (bpf_get_smp_processor_id);
	// PerCPUOffset its per-CPU offset (__per_cpu_offset[CPU]), which
	// BPF_MOV64_PERCPU_REG adds (6.10+ inlined helpers and lookups);
	// NumaNode its node (bpf_get_numa_node_id).
	CPU          uint32
	PerCPUOffset uint64
	NumaNode     uint32
	// Task is the current task of the run (bpf_get_current_*); nil: the
	// helpers fail as the kernel's do with no task (-EINVAL).
	Task *Task
	// Clock gives the values of bpf_ktime_get_ns, _boot_ns, _coarse_ns
	// and _tai_ns, in order of the calls, and Jiffies bpf_jiffies64's;
	// Random bpf_get_prandom_u32's (truncated to 32 bits).
	Clock, Jiffies, Random Series
	// MapRef resolves the 64-bit loads whose src_reg marks a reference
	// the kernel has not resolved in the instructions given: a map by ID
	// (BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE with the value's offset in
	// imm2) as bpf_insn_prepare_dump and bpftool show them, by fd or
	// index as loaded, a ksym by BTF ID. It returns the address to load;
	// without it, or when it says !ok, the load gives the 64-bit constant
	// as the kernel's interpreter does (it ignores src_reg). The
	// instructions the kernel holds (prog->insnsi) have addresses there
	// and src_reg 0.
	MapRef func(src uint8, imm, imm2 int32) (addr uint64, ok bool)
	// MaxAlloc, if positive, lowers AllocLimit: the most the machine
	// allocates (Alloc, bpf_ringbuf_reserve).
	MaxAlloc int
	// Trace, if set, is called after each instruction.
	Trace TraceFunc
}

// Task is the current task as the bpf_get_current_* helpers see it.
type Task struct {
	PID, TGID uint32
	UID, GID  uint32
	Comm      string
	// Addr is the task_struct's address (bpf_get_current_task).
	Addr uint64
}

// Series is the values of a nondeterministic helper: Values first, in
// order, then Next's (Next nil: a deterministic default).
type Series struct {
	Values []uint64
	Next   func() uint64
}

// Stop says why Run or Step returned without an error.
type Stop int

// Reasons to stop.
const (
	// StopExit: the program exited; Return gives R0.
	StopExit Stop = iota
	// StopBreakpoint: the next instruction has a breakpoint.
	StopBreakpoint
	// StopStep: Step executed its instruction, or StepOver and StepOut
	// reached their end.
	StopStep
)

// String names the reason: "exit", "breakpoint", "step".
func (s Stop) String() string {
	switch s {
	case StopExit:
		return "exit"
	case StopBreakpoint:
		return "breakpoint"
	case StopStep:
		return "step"
	}
	return fmt.Sprintf("Stop(%d)", int(s))
}

type frameKind uint8

const (
	frameMain frameKind = iota
	frameCall
	frameCallback
)

// frame is one BPF function being run.
type frame struct {
	prog *Program
	kind frameKind
	// ret is where the caller continues (frameCall).
	ret int
	// callPC is the caller's instruction (the call, or the helper call of
	// a callback).
	callPC int
	// saved are the caller's registers at the call.
	saved [16]uint64
}

// Machine runs BPF programs. It is not safe for concurrent use.
type Machine struct {
	opts Options
	mem

	r      [16]uint64 // R0-R10, AX; 12-15 unused (indexes are masked)
	frames []frame
	pc     int // the top frame's next instruction

	budget    uint64
	left      uint64
	tailCalls int
	started   bool
	done      bool
	failed    error
	ctx       uint64

	helperCache map[uint64]helperEntry
	slots       map[*Program]int
	progs       []*Program

	breaks map[*Program]map[int]bool
	nbreak int

	outputs  []Output
	reserved []reservation
	printk   []string
	counts   [numSeries]int
	evs      [MaxCallFrames]TraceEvent // the trace hook's, reused
	rng      uint64
}

// New returns a machine over base memory (nil: none).
func New(base Memory, opts Options) *Machine {
	m := &Machine{opts: opts}
	m.base = base
	m.frames = make([]frame, 0, MaxCallFrames)
	m.budget = opts.Budget
	if m.budget == 0 {
		m.budget = DefaultBudget
	}
	return m
}

// SetTrace sets (nil: removes) the per-instruction hook.
func (m *Machine) SetTrace(fn TraceFunc) { m.opts.Trace = fn }

// Options returns the machine's options.
func (m *Machine) Options() Options { return m.opts }

// Start prepares a run of prog from its first instruction with args in
// R1-R5 (args[0] is the context, see Ctx), a fresh stack and the whole
// budget. Memory (the overlay, regions) is kept from earlier runs, as a
// kernel keeps map contents between runs.
func (m *Machine) Start(prog *Program, args ...uint64) error {
	if len(args) > 5 {
		return fmt.Errorf("bpfvm: start %s with %d arguments, at most 5", prog.Name, len(args))
	}
	m.r = [16]uint64{}
	for i, a := range args {
		m.r[1+i] = a
	}
	m.ctx = 0
	if len(args) > 0 {
		m.ctx = args[0]
	}
	m.frames = m.frames[:0]
	m.depth = 0
	m.progSlot(prog)
	m.pushFrame(prog, -1, frameMain)
	m.pc = 0
	m.left = m.budget
	m.tailCalls = 0
	m.started, m.done, m.failed = true, false, nil
	return nil
}

// StartAt prepares a run of prog that resumes at instruction pc with
// the registers regs (R10 is the machine's: regs[10] is ignored) and the
// top of the stack holding stack (at most StackSize bytes, ending at
// R10): the rest of a run that was stopped there, as a dump holds a
// program interrupted on a CPU. Errors wrap ErrBadInsn for a pc outside
// the program.
func (m *Machine) StartAt(prog *Program, pc int, regs Regs, stack []byte) error {
	if pc < 0 || pc >= prog.Len() {
		return &ExecError{Prog: prog.Name, Insn: pc, Reason: fmt.Sprintf("resume outside the program's %d instructions", prog.Len()), Err: ErrBadInsn}
	}
	if len(stack) > StackSize {
		return fmt.Errorf("bpfvm: resume %s with %d bytes of stack, at most %d", prog.Name, len(stack), StackSize)
	}
	if err := m.Start(prog); err != nil {
		return err
	}
	for i, v := range regs {
		if i != 10 {
			m.r[i] = v
		}
	}
	copy(m.stacks[0][StackSize-len(stack):], stack)
	m.pc = pc
	return nil
}

// Exec starts prog with args and runs it to its exit, ignoring
// breakpoints: it returns R0. Errors are *ExecError values.
func (m *Machine) Exec(prog *Program, args ...uint64) (uint64, error) {
	if err := m.Start(prog, args...); err != nil {
		return 0, err
	}
	if err := m.ready(); err != nil {
		return 0, err
	}
	if err := m.finish(m.run(1, false, nil)); err != nil {
		return 0, err
	}
	return m.r[0], nil
}

// Ctx is the context pointer the run started with (R1 of Start).
func (m *Machine) Ctx() uint64 { return m.ctx }

// Exited says the program exited.
func (m *Machine) Exited() bool { return m.done }

// Return is R0: the program's return value once it exited.
func (m *Machine) Return() uint64 { return m.r[0] }

// Executed is the number of instructions the current run executed.
func (m *Machine) Executed() uint64 { return m.budget - m.left }

// TailCallCount is the number of tail calls the current run made.
func (m *Machine) TailCallCount() int { return m.tailCalls }

// Err is the error that ended the current run, nil if none did.
func (m *Machine) Err() error { return m.failed }

// Regs returns the registers of the top frame.
func (m *Machine) Regs() Regs {
	var r Regs
	copy(r[:], m.r[:len(r)])
	return r
}

// SetReg sets register i (0-11) of the top frame, for a debugger.
func (m *Machine) SetReg(i int, v uint64) {
	if i >= 0 && i < len(Regs{}) {
		m.r[i] = v
	}
}

// PC returns the top frame's program and its next instruction.
func (m *Machine) PC() (*Program, int) {
	if len(m.frames) == 0 {
		return nil, 0
	}
	return m.frames[len(m.frames)-1].prog, m.pc
}

// Frame is a frame of the BPF call stack.
type Frame struct {
	Prog *Program
	// Func is the subprogram the frame runs.
	Func Subprog
	// PC is the frame's instruction: the next to execute in the top
	// frame, the call it waits on in the others.
	PC int
	// Return is where the caller continues when the frame exits: -1 for
	// the main frame and for callbacks, which return to a helper.
	Return int
	// Callback says the frame was called by a helper (bpf_loop).
	Callback bool
	// Regs are the frame's registers: the current ones for the top frame,
	// the ones at its call for the others.
	Regs Regs
	// Stack is the frame's stack, ending at R10 (Regs[10] of the top
	// frame).
	Stack []byte
	// StackTop is the frame's R10.
	StackTop uint64
}

// Frames returns the call stack, the main frame first.
func (m *Machine) Frames() []Frame {
	out := make([]Frame, len(m.frames))
	for i := range m.frames {
		f := &m.frames[i]
		fr := Frame{Prog: f.prog, Return: -1, Callback: f.kind == frameCallback, StackTop: stackTop(i), Stack: append([]byte(nil), m.stacks[i][:]...)}
		if f.kind == frameCall {
			fr.Return = f.ret
		}
		var regs *[16]uint64
		if i == len(m.frames)-1 {
			fr.PC, regs = m.pc, &m.r
		} else {
			fr.PC, regs = m.frames[i+1].callPC, &m.frames[i+1].saved
		}
		copy(fr.Regs[:], regs[:len(fr.Regs)])
		fr.Func = f.prog.SubprogAt(fr.PC)
		out[i] = fr
	}
	return out
}

// pushFrame enters a function of prog: a frame with the caller's
// registers saved, R10 at a fresh stack.
func (m *Machine) pushFrame(prog *Program, ret int, kind frameKind) {
	d := len(m.frames)
	m.frames = m.frames[:d+1]
	f := &m.frames[d]
	f.prog, f.kind, f.ret, f.callPC, f.saved = prog, kind, ret, m.pc, m.r
	m.setDepth(d + 1)
	m.r[10] = stackTop(d)
}

// popFrame leaves the top frame: R6-R10 as the caller had them.
func (m *Machine) popFrame() *frame {
	d := len(m.frames) - 1
	f := &m.frames[d]
	copy(m.r[6:11], f.saved[6:11])
	m.frames = m.frames[:d]
	m.setDepth(d)
	return f
}

// Breakpoints.

// SetBreakpoint makes Run stop before instruction i of p.
func (m *Machine) SetBreakpoint(p *Program, i int) {
	if m.breaks == nil {
		m.breaks = map[*Program]map[int]bool{}
	}
	if m.breaks[p] == nil {
		m.breaks[p] = map[int]bool{}
	}
	if !m.breaks[p][i] {
		m.breaks[p][i] = true
		m.nbreak++
	}
}

// ClearBreakpoint removes the breakpoint at instruction i of p.
func (m *Machine) ClearBreakpoint(p *Program, i int) {
	if m.breaks[p][i] {
		delete(m.breaks[p], i)
		m.nbreak--
	}
}

// Breakpoints returns the breakpoints of p, sorted.
func (m *Machine) Breakpoints(p *Program) []int {
	var out []int
	for i := range m.breaks[p] {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

func (m *Machine) atBreak() bool {
	if len(m.frames) == 0 {
		return false
	}
	return m.breaks[m.frames[len(m.frames)-1].prog][m.pc]
}

// errStop ends run early without an error: a breakpoint or until.
var (
	errBreak = errors.New("breakpoint")
	errUntil = errors.New("until")
)

func (m *Machine) ready() error {
	switch {
	case !m.started:
		return &ExecError{Insn: -1, Reason: "no program started", Err: ErrNotRunning}
	case m.done:
		return m.errAt(m.pc, ErrNotRunning, "the program exited", nil)
	case m.failed != nil:
		return m.errAt(m.pc, ErrNotRunning, "the run failed", m.failed)
	}
	return nil
}

// finish records the end of a run's piece.
func (m *Machine) finish(err error) error {
	if err != nil && err != errBreak && err != errUntil {
		m.failed = err
	}
	return err
}

func (m *Machine) stopped(err error) (Stop, error) {
	switch {
	case err == errBreak:
		return StopBreakpoint, nil
	case err == errUntil:
		return StopStep, nil
	case err != nil:
		return StopStep, err
	case m.done:
		return StopExit, nil
	}
	return StopStep, nil
}

// Run continues the program until it exits (StopExit), reaches a
// breakpoint (StopBreakpoint; the instruction it starts at is never one)
// or fails. Errors are *ExecError values.
func (m *Machine) Run() (Stop, error) {
	if err := m.ready(); err != nil {
		return StopStep, err
	}
	return m.stopped(m.finish(m.run(1, true, nil)))
}

// Step executes one instruction (a helper call with the callbacks it
// makes, a BPF-to-BPF call into the callee).
func (m *Machine) Step() (Stop, error) {
	if err := m.ready(); err != nil {
		return StopStep, err
	}
	return m.stopped(m.finish(m.step()))
}

// StepOver executes one instruction, or a whole BPF-to-BPF call, stopping
// at breakpoints on the way.
func (m *Machine) StepOver() (Stop, error) {
	if err := m.ready(); err != nil {
		return StopStep, err
	}
	p, pc := m.PC()
	if pc >= len(p.code) || p.code[pc].Code != codeBPFCall {
		return m.Step()
	}
	depth := len(m.frames)
	return m.stopped(m.finish(m.run(1, true, func() bool { return len(m.frames) == depth && m.pc == pc+1 })))
}

// StepOut runs until the top frame returns (or the program exits),
// stopping at breakpoints on the way.
func (m *Machine) StepOut() (Stop, error) {
	if err := m.ready(); err != nil {
		return StopStep, err
	}
	depth := len(m.frames)
	return m.stopped(m.finish(m.run(1, true, func() bool { return len(m.frames) < depth })))
}

// run executes until the frame at depth-1 returns or the program exits
// (nil), a breakpoint (errBreak) if breaks, until is true (errUntil), or
// an error. Neither is checked before the first instruction.
func (m *Machine) run(depth int, breaks bool, until func() bool) error {
	first := true
	for len(m.frames) >= depth && !m.done {
		if m.opts.Trace == nil && until == nil && (!breaks || m.nbreak == 0) {
			// The fast path: exec returns at the exit of a callback frame
			// or of the main frame.
			return m.exec(false)
		}
		if !first {
			if breaks && m.nbreak > 0 && m.atBreak() {
				return errBreak
			}
			if until != nil && until() {
				return errUntil
			}
		}
		first = false
		if err := m.step(); err != nil {
			return err
		}
	}
	return nil
}

// step executes one instruction and reports it to the trace hook.
func (m *Machine) step() error {
	if m.opts.Trace == nil {
		return m.exec(true)
	}
	f := &m.frames[len(m.frames)-1]
	// A helper's callbacks step at greater depths while its own event
	// waits: one event per depth.
	ev := &m.evs[len(m.frames)-1]
	ev.Prog, ev.Index, ev.Depth, ev.Access = f.prog, m.pc, len(m.frames)-1, access(f.prog, m.pc, &m.r)
	ev.Insn = bpfinsn.Insn{}
	if m.pc >= 0 && m.pc < len(f.prog.Insns) {
		ev.Insn = f.prog.Insns[m.pc]
	}
	ev.Before = Regs(m.r[:len(ev.Before)])
	if err := m.exec(true); err != nil {
		return err
	}
	ev.After = Regs(m.r[:len(ev.After)])
	m.opts.Trace(ev)
	return nil
}

// errAt builds the error of instruction pc of the top frame.
func (m *Machine) errAt(pc int, sentinel error, reason string, cause error) *ExecError {
	e := &ExecError{Insn: pc, Reason: reason, Err: sentinel, Cause: cause}
	if len(m.frames) > 0 {
		e.Prog = m.frames[len(m.frames)-1].prog.Name
	}
	return e
}

// memErr turns a memory fault of instruction pc into the run's error.
func (m *Machine) memErr(pc int, err error) error {
	e := m.errAt(pc, ErrFault, "", nil)
	var me *MemError
	if errors.As(err, &me) {
		e.Addr, e.HasAddr = me.Addr, true
		op := "load"
		if me.Write {
			op = "store"
		}
		e.Reason = fmt.Sprintf("%s of %d bytes at %#x: %s", op, me.Size, me.Addr, me.Reason)
		e.Cause = me.Cause
		return e
	}
	e.Reason, e.Cause = "memory access", err
	return e
}
