package orc

import (
	"errors"
	"fmt"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// BacktraceFrame is one frame of a Backtrace, as bt prints it.
type BacktraceFrame struct {
	Index    int          `json:"index"`
	PC       objects.Hex  `json:"pc"`
	SP       objects.Hex  `json:"sp"`
	BP       objects.Hex  `json:"bp"`
	Slot     *objects.Hex `json:"slot,omitempty"`
	Stack    string       `json:"stack"`
	Function string       `json:"function"`
	Offset   uint64       `json:"offset"`
	Size     uint64       `json:"size"`
	Module   string       `json:"module,omitempty"`
	Symbol   string       `json:"symbol"`
	Signal   bool         `json:"signal,omitempty"`
	Guess    bool         `json:"guess,omitempty"`
	// How says how a Guess frame was found: "frame pointer", "code
	// analysis".
	How  string         `json:"how,omitempty"`
	Regs *BacktraceRegs `json:"regs,omitempty"`
	BPF  *BacktraceBPF  `json:"bpf,omitempty"`
}

// BacktraceBPF is a BPF program frame's program; the line keys are
// bpftool's (prog dump jited linum).
type BacktraceBPF struct {
	ID      uint32 `json:"id"`
	File    string `json:"file,omitempty"`
	LineNum uint32 `json:"line_num,omitempty"`
	LineCol uint32 `json:"line_col,omitempty"`
	// LineError says why the line is unknown, when its line info could
	// not be read.
	LineError string `json:"line_error,omitempty"`
}

// BacktraceRegs is a register set with pt_regs' names.
type BacktraceRegs struct {
	Addr    *objects.Hex `json:"address,omitempty"` // the pt_regs on the stack
	Partial bool         `json:"partial,omitempty"`
	IP      objects.Hex  `json:"ip"`
	SP      objects.Hex  `json:"sp"`
	Flags   objects.Hex  `json:"flags"`
	CS      objects.Hex  `json:"cs"`
	SS      objects.Hex  `json:"ss"`
	OrigAX  objects.Hex  `json:"orig_ax"`
	AX      objects.Hex  `json:"ax"`
	BX      objects.Hex  `json:"bx"`
	CX      objects.Hex  `json:"cx"`
	DX      objects.Hex  `json:"dx"`
	SI      objects.Hex  `json:"si"`
	DI      objects.Hex  `json:"di"`
	BP      objects.Hex  `json:"bp"`
	R8      objects.Hex  `json:"r8"`
	R9      objects.Hex  `json:"r9"`
	R10     objects.Hex  `json:"r10"`
	R11     objects.Hex  `json:"r11"`
	R12     objects.Hex  `json:"r12"`
	R13     objects.Hex  `json:"r13"`
	R14     objects.Hex  `json:"r14"`
	R15     objects.Hex  `json:"r15"`
}

// Backtrace is one task's stack as bt shows it: the task, the frames
// symbolized, and the registers of interrupted contexts.
type Backtrace struct {
	PID         int         `json:"pid"`
	TID         int         `json:"tid"`
	Comm        string      `json:"comm"`
	Task        objects.Hex `json:"task"`
	CPU         int         `json:"cpu"`
	OnCPU       bool        `json:"on_cpu"` // unwound from the CPU's saved registers
	Panic       bool        `json:"panic,omitempty"`
	Reliable    bool        `json:"reliable"`
	End         string      `json:"end,omitempty"`
	UnwindError string      `json:"unwind_error,omitempty"`
	// TaskError says why the task_struct could not be read (a page the
	// dump lacks): PID, TID and Comm are then unknown (-1, -1, ""), and
	// a task running on a CPU is still unwound from its registers.
	TaskError string           `json:"task_error,omitempty"`
	Frames    []BacktraceFrame `json:"frames"`
	UserRegs  *BacktraceRegs   `json:"user_regs,omitempty"`
	// Scanned are the other kernel text addresses on the stacks crossed:
	// the kernel's "?" entries, kept apart as unreliable.
	Scanned []BacktraceScan `json:"scanned"`
}

// BacktraceScan is a text address found by scanning a stack.
type BacktraceScan struct {
	Slot     objects.Hex `json:"slot"`
	PC       objects.Hex `json:"pc"`
	Stack    string      `json:"stack"`
	Function string      `json:"function"`
	Offset   uint64      `json:"offset"`
	Size     uint64      `json:"size"`
	Module   string      `json:"module,omitempty"`
	Symbol   string      `json:"symbol"`
	// After is the index of the frame above which it lies.
	After int `json:"after"`
}

// Target is a kernel to unwind, with its symbols and saved CPU
// registers: *kinspect.Kernel satisfies it.
type Target interface {
	Program() *objects.Program
	Symbols() *kallsyms.Table
	// CPUs are the CPUs whose registers were saved (none live).
	CPUs() []vmcore.CPU
	Release() string
}

// Backtracer unwinds tasks and CPUs of a Target into Backtraces, the
// results bt prints and scripts get.
type Backtracer struct {
	prog     *objects.Program
	syms     *kallsyms.Table
	orc      *Kernel
	running  *Running // each CPU's registers and current task
	panicCPU int      // -1 without a panic
}

// NewBacktracer loads the target's ORC tables. Errors are Load's.
func NewBacktracer(k Target) (*Backtracer, error) {
	ok, err := Load(k.Program(), k.Release(), WithSymbols(k.Symbols()))
	if err != nil {
		return nil, err
	}
	// Module and BPF symbols come with kinspect.Open (AddKernelSymbols);
	// a module whose symbols could not be read shows its frames as
	// "? [module]"; a BPF frame is named from bpf_kallsyms.
	b := &Backtracer{prog: k.Program(), syms: k.Symbols(), orc: ok, panicCPU: -1}
	b.running = NewRunning(k.Program(), k.CPUs())
	if cpu, ok, err := linux.PanicCPU(k.Program()); err == nil && ok {
		b.panicCPU = cpu
	}
	return b, nil
}

// PanicCPU is the CPU that panicked; -1 without a panic.
func (b *Backtracer) PanicCPU() int { return b.panicCPU }

// Running is which task each CPU was running, with its registers.
func (b *Backtracer) Running() *Running { return b.running }

// Selection says which stacks Collect unwinds: every task (AllTasks, each
// CPU's idle task first), the tasks of PIDs, every CPU with saved
// registers (AllCPUs), or by default the panicking CPU (every CPU when
// none panicked).
type Selection struct {
	AllTasks bool
	AllCPUs  bool
	PIDs     []int
}

// Collect unwinds the selection. Each stack that cannot be had is an
// error joined into the one returned, the others are returned.
func (b *Backtracer) Collect(o Selection) ([]*Backtrace, error) {
	var out []*Backtrace
	var errs []error
	add := func(r *Backtrace, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		out = append(out, r)
	}
	switch {
	case o.AllTasks:
		seen := map[uint64]bool{}
		for cpu := range b.cpuList() {
			t, err := linux.IdleTask(b.prog, cpu)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			a, _ := t.Address()
			seen[a] = true
			add(b.Task(t))
		}
		for t, err := range linux.ForEachTask(b.prog) {
			if err != nil {
				if objects.IsDamage(err) {
					continue // noted in the Program's damage log
				}
				errs = append(errs, err)
				break
			}
			if a, _ := t.Address(); !seen[a] {
				add(b.Task(t))
			}
		}
	case len(o.PIDs) > 0:
		for _, pid := range o.PIDs {
			t, err := b.FindTask(pid)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(b.Task(t))
		}
	case o.AllCPUs || b.panicCPU < 0:
		if len(b.running.CPUs()) == 0 {
			return nil, fmt.Errorf("bt: no CPU registers (a live kernel, or a dump without CPU notes): give PIDs or --all-tasks")
		}
		for cpu := range b.cpuList() {
			add(b.CPU(cpu))
		}
	default:
		if !b.running.HasRegs(b.panicCPU) {
			return nil, fmt.Errorf("bt: the panicking CPU %d has no saved registers in the dump", b.panicCPU)
		}
		add(b.CPU(b.panicCPU))
	}
	return out, errors.Join(errs...)
}

// cpuList yields the CPUs with saved registers, in order.
func (b *Backtracer) cpuList() func(func(int) bool) {
	return func(yield func(int) bool) {
		for _, cpu := range b.running.CPUs() {
			if !yield(cpu) {
				return
			}
		}
	}
}

// FindTask finds a task by thread ID; 0 is the idle task of the first
// CPU with registers (as crash's "bt 0").
func (b *Backtracer) FindTask(pid int) (objects.Value, error) {
	if pid == 0 {
		cpu := 0
		for c := range b.cpuList() {
			cpu = c
			break
		}
		return linux.IdleTask(b.prog, cpu)
	}
	t, err := linux.FindTask(b.prog, pid)
	if err != nil {
		return objects.Value{}, fmt.Errorf("bt %d: %w", pid, err)
	}
	return t, nil
}

// CPU unwinds CPU cpu's current task from its saved registers.
func (b *Backtracer) CPU(cpu int) (*Backtrace, error) {
	t, err := linux.CurrentTask(b.prog, cpu)
	if err != nil {
		return nil, fmt.Errorf("bt: CPU %d: %w", cpu, err)
	}
	return b.Task(t)
}

// Task unwinds a task: from its CPU's registers when it is running
// there, else from its switch frame. An unwind that fails is said in
// the Backtrace (UnwindError), not returned.
func (b *Backtracer) Task(t objects.Value) (*Backtrace, error) {
	info, err := linux.NewTask(t)
	if err != nil {
		// A task the dump lacks the task_struct of: only a running one,
		// whose registers its CPU saved, can still be unwound.
		a, ok := t.Address()
		if _, running := b.running.CPUOf(a); !ok || !running {
			return nil, fmt.Errorf("bt: %w", err)
		}
		info = &linux.Task{Addr: a, PID: -1, TID: -1}
	}
	r := &Backtrace{PID: info.PID, TID: info.TID, Comm: info.Comm, Task: objects.Hex(info.Addr), CPU: info.CPU, Frames: []BacktraceFrame{}}
	if err != nil {
		r.TaskError = err.Error()
	}
	tr, cpu, err := b.orc.Unwind(t, b.running)
	if cpu >= 0 {
		r.CPU, r.OnCPU, r.Panic = cpu, true, cpu == b.panicCPU
	}
	if err != nil {
		r.UnwindError = err.Error()
		return r, nil
	}
	r.Reliable, r.End = tr.Reliable, tr.End
	if tr.Err != nil {
		r.UnwindError = tr.Err.Error()
	}
	if tr.UserRegs != nil {
		r.UserRegs = regsOf(tr.UserRegs)
	}
	r.Frames = make([]BacktraceFrame, 0, len(tr.Frames))
	for i, f := range tr.Frames {
		s := b.orc.Symbolize(b.syms, f)
		bf := BacktraceFrame{Index: i, PC: objects.Hex(f.PC), SP: objects.Hex(f.SP), BP: objects.Hex(f.BP), Stack: f.Stack,
			Function: s.Name, Offset: s.Offset, Size: s.Size, Module: s.Module, Symbol: s.String(),
			Signal: f.Signal, Guess: f.Guess, How: f.How}
		if f.Slot != 0 {
			sl := objects.Hex(f.Slot)
			bf.Slot = &sl
		}
		if f.Regs != nil {
			bf.Regs = regsOf(f.Regs)
		}
		if s.BPF != nil {
			bf.BPF = &BacktraceBPF{ID: s.BPF.ID}
			if l := s.BPF.Line; l != nil {
				bf.BPF.File, bf.BPF.LineNum, bf.BPF.LineCol = l.File, l.Line, l.Col
			} else if s.BPF.LineErr != nil {
				bf.BPF.LineError = s.BPF.LineErr.Error()
			}
		}
		r.Frames = append(r.Frames, bf)
	}
	r.Scanned = make([]BacktraceScan, 0, len(tr.Scan))
	for _, sc := range tr.Scan {
		s := b.orc.Symbolize(b.syms, Frame{PC: sc.PC})
		r.Scanned = append(r.Scanned, BacktraceScan{Slot: objects.Hex(sc.Slot), PC: objects.Hex(sc.PC), Stack: sc.Stack,
			Function: s.Name, Offset: s.Offset, Size: s.Size, Module: s.Module, Symbol: s.String(), After: sc.After})
	}
	return r, nil
}

func regsOf(r *Regs) *BacktraceRegs {
	x := &BacktraceRegs{Partial: r.Partial, IP: objects.Hex(r.RIP), SP: objects.Hex(r.RSP), Flags: objects.Hex(r.EFlags), CS: objects.Hex(r.CS),
		SS: objects.Hex(r.SS), OrigAX: objects.Hex(r.OrigRAX), AX: objects.Hex(r.RAX), BX: objects.Hex(r.RBX), CX: objects.Hex(r.RCX),
		DX: objects.Hex(r.RDX), SI: objects.Hex(r.RSI), DI: objects.Hex(r.RDI), BP: objects.Hex(r.RBP), R8: objects.Hex(r.R8),
		R9: objects.Hex(r.R9), R10: objects.Hex(r.R10), R11: objects.Hex(r.R11), R12: objects.Hex(r.R12), R13: objects.Hex(r.R13),
		R14: objects.Hex(r.R14), R15: objects.Hex(r.R15)}
	if r.Addr != 0 {
		a := objects.Hex(r.Addr)
		x.Addr = &a
	}
	return x
}
