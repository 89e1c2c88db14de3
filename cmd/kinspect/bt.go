package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
	"github.com/kinspect/kinspect/vmcore"
)

func init() {
	register(&command{name: "bt", summary: "kernel stack traces of CPUs and tasks (ORC)", run: runBt})
}

const btHelp = `Usage: kinspect [-c DUMP | --live] [--json] bt [-a] [-f] [-k FILE] [--all-tasks | PID...]

Prints kernel stack traces, unwound with the kernel's own ORC tables (and
the frame pointer through BPF programs, which have none), as crash's bt:

  bt               the panicking CPU's task; with no panic, every CPU
  bt -a            every CPU, from the registers the dump saved
  bt PID...        those tasks (thread IDs); a task running on a CPU is
                   unwound from that CPU's registers
  bt --all-tasks   every task and each CPU's idle task

  -f               show each frame's stack and frame pointers and the
                   registers of interrupt, exception and syscall frames
  -k FILE          symbols from FILE, a copy of the kernel's /proc/kallsyms

Each frame: "#N [SLOT] function+0xoff/0xsize [module] at PC", SLOT being
the stack address the return address was read from. Frames in a BPF
program name it bpf_prog_TAG_NAME and show its ID and source line. A
trace that needed a guess (the frame pointer) is marked unreliable; one
that could not be finished ends with the reason.

JSON: an array of {"pid", "tid", "comm", "task", "cpu", "on_cpu",
"panic", "reliable", "end", "unwind_error", "frames": [{"index", "pc",
"sp", "bp", "slot", "stack", "function", "offset", "size", "module",
"symbol", "signal", "guess", "regs", "bpf": {"id", "file", "line_num",
"line_col"}}], "user_regs"}.
`

// btFrame is one frame of a result.
type btFrame struct {
	Index    int     `json:"index"`
	PC       hexU64  `json:"pc"`
	SP       hexU64  `json:"sp"`
	BP       hexU64  `json:"bp"`
	Slot     *hexU64 `json:"slot,omitempty"`
	Stack    string  `json:"stack"`
	Function string  `json:"function"`
	Offset   uint64  `json:"offset"`
	Size     uint64  `json:"size"`
	Module   string  `json:"module,omitempty"`
	Symbol   string  `json:"symbol"`
	Signal   bool    `json:"signal,omitempty"`
	Guess    bool    `json:"guess,omitempty"`
	Regs     *btRegs `json:"regs,omitempty"`
	BPF      *btBPF  `json:"bpf,omitempty"`
}

// btBPF is a BPF program frame's program; the line keys are bpftool's
// (prog dump jited linum).
type btBPF struct {
	ID      uint32 `json:"id"`
	File    string `json:"file,omitempty"`
	LineNum uint32 `json:"line_num,omitempty"`
	LineCol uint32 `json:"line_col,omitempty"`
}

// btRegs is a register set, pt_regs' names.
type btRegs struct {
	Addr    *hexU64 `json:"address,omitempty"` // the pt_regs on the stack
	Partial bool    `json:"partial,omitempty"`
	IP      hexU64  `json:"ip"`
	SP      hexU64  `json:"sp"`
	Flags   hexU64  `json:"flags"`
	CS      hexU64  `json:"cs"`
	SS      hexU64  `json:"ss"`
	OrigAX  hexU64  `json:"orig_ax"`
	AX      hexU64  `json:"ax"`
	BX      hexU64  `json:"bx"`
	CX      hexU64  `json:"cx"`
	DX      hexU64  `json:"dx"`
	SI      hexU64  `json:"si"`
	DI      hexU64  `json:"di"`
	BP      hexU64  `json:"bp"`
	R8      hexU64  `json:"r8"`
	R9      hexU64  `json:"r9"`
	R10     hexU64  `json:"r10"`
	R11     hexU64  `json:"r11"`
	R12     hexU64  `json:"r12"`
	R13     hexU64  `json:"r13"`
	R14     hexU64  `json:"r14"`
	R15     hexU64  `json:"r15"`
}

// btResult is one trace.
type btResult struct {
	PID         int       `json:"pid"`
	TID         int       `json:"tid"`
	Comm        string    `json:"comm"`
	Task        hexU64    `json:"task"`
	CPU         int       `json:"cpu"`
	OnCPU       bool      `json:"on_cpu"` // unwound from the CPU's saved registers
	Panic       bool      `json:"panic,omitempty"`
	Reliable    bool      `json:"reliable"`
	End         string    `json:"end,omitempty"`
	UnwindError string    `json:"unwind_error,omitempty"`
	Frames      []btFrame `json:"frames"`
	UserRegs    *btRegs   `json:"user_regs,omitempty"`
}

type btOptions struct {
	all, allTasks, frames bool
	file                  string
	pids                  []int
}

func runBt(e *env, args []string) error {
	var o btOptions
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "help" && i == 0, a == "-h", a == "--help":
			fmt.Fprint(e.stdout, btHelp)
			return nil
		case a == "-a":
			o.all = true
		case a == "--all-tasks" || a == "-T":
			o.allTasks = true
		case a == "-f":
			o.frames = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("bt %s: want a file: %w", a, errUsage)
			}
			i++
			o.file = args[i]
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("bt: unknown option %q (see kinspect bt help): %w", a, errUsage)
		default:
			n, err := strconv.Atoi(a)
			if err != nil || n < 0 {
				return fmt.Errorf("bt: %q is not a PID: %w", a, errUsage)
			}
			o.pids = append(o.pids, n)
		}
	}
	if o.allTasks && (o.all || len(o.pids) > 0) {
		return fmt.Errorf("bt: --all-tasks excludes -a and PIDs: %w", errUsage)
	}
	k, err := openKernel(e, o.file)
	if err != nil {
		return err
	}
	defer k.Close()
	b, err := newBacktracer(k)
	if err != nil {
		return err
	}
	results, err := b.collect(o)
	if err != nil && len(results) == 0 {
		return err
	}
	if e.json {
		if results == nil {
			results = []btResult{}
		}
		writeJSON(e, results)
	} else {
		printBt(e.stdout, results, o.frames)
	}
	return err
}

// backtracer builds results.
type backtracer struct {
	k        *kernel
	orc      *orc.Kernel
	running  *orc.Running // each CPU's registers and current task
	panicCPU int          // -1 without a panic
}

func newBacktracer(k *kernel) (*backtracer, error) {
	release := ""
	if k.dump != nil {
		release = k.dump.Release()
	}
	ok, err := orc.Load(k.prog, release)
	if err != nil {
		return nil, fmt.Errorf("bt: %w", err)
	}
	// Module and BPF symbols come with openKernel (addKernelSymbols); a
	// module whose symbols could not be read shows its frames as
	// "? [module]", a BPF frame is named from bpf_kallsyms by orc.
	b := &backtracer{k: k, orc: ok, panicCPU: -1}
	var cpus []vmcore.CPU
	if k.dump != nil {
		cpus = k.dump.CPUs()
	}
	b.running = orc.NewRunning(k.prog, cpus)
	if v, err := k.prog.Variable("panic_cpu"); err == nil {
		if c, err := v.Member("counter"); err == nil {
			if n, err := c.Int(); err == nil && n >= 0 {
				b.panicCPU = int(n)
			}
		}
	}
	return b, nil
}

func (b *backtracer) collect(o btOptions) ([]btResult, error) {
	var out []btResult
	var errs []error
	add := func(r btResult, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		out = append(out, r)
	}
	switch {
	case o.allTasks:
		seen := map[uint64]bool{}
		for cpu := range b.cpuList() {
			t, err := objects.IdleTask(b.k.prog, cpu)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			a, _ := t.Address()
			seen[a] = true
			add(b.task(t))
		}
		for t, err := range objects.ForEachTask(b.k.prog) {
			if err != nil {
				errs = append(errs, err)
				break
			}
			if a, _ := t.Address(); !seen[a] {
				add(b.task(t))
			}
		}
	case len(o.pids) > 0:
		for _, pid := range o.pids {
			t, err := b.findTask(pid)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(b.task(t))
		}
	case o.all || b.panicCPU < 0:
		if len(b.running.CPUs()) == 0 {
			return nil, fmt.Errorf("bt: no CPU registers (a live kernel, or a dump without CPU notes): give PIDs or --all-tasks")
		}
		for cpu := range b.cpuList() {
			add(b.cpu(cpu))
		}
	default:
		if !b.running.HasRegs(b.panicCPU) {
			return nil, fmt.Errorf("bt: the panicking CPU %d has no saved registers in the dump", b.panicCPU)
		}
		add(b.cpu(b.panicCPU))
	}
	return out, errors.Join(errs...)
}

// cpuList yields the CPUs with saved registers, in order.
func (b *backtracer) cpuList() func(func(int) bool) {
	return func(yield func(int) bool) {
		for _, cpu := range b.running.CPUs() {
			if !yield(cpu) {
				return
			}
		}
	}
}

// findTask finds a task by thread ID; 0 is the idle task of the first
// CPU with registers (as crash's "bt 0").
func (b *backtracer) findTask(pid int) (objects.Value, error) {
	if pid == 0 {
		cpu := 0
		for c := range b.cpuList() {
			cpu = c
			break
		}
		return objects.IdleTask(b.k.prog, cpu)
	}
	t, err := objects.FindTask(b.k.prog, pid)
	if err != nil {
		return objects.Value{}, fmt.Errorf("bt %d: %w", pid, err)
	}
	return t, nil
}

// cpu traces CPU cpu's current task from its saved registers.
func (b *backtracer) cpu(cpu int) (btResult, error) {
	t, err := objects.CurrentTask(b.k.prog, cpu)
	if err != nil {
		return btResult{}, fmt.Errorf("bt: CPU %d: %w", cpu, err)
	}
	return b.task(t)
}

// task traces a task: from its CPU's registers when it is running there,
// else from its switch frame.
func (b *backtracer) task(t objects.Value) (btResult, error) {
	info, err := objects.ReadTask(t)
	if err != nil {
		return btResult{}, fmt.Errorf("bt: %w", err)
	}
	r := btResult{PID: info.PID, TID: info.TID, Comm: info.Comm, Task: hexU64(info.Addr), CPU: info.CPU, Frames: []btFrame{}}
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
	r.Frames = make([]btFrame, 0, len(tr.Frames))
	for i, f := range tr.Frames {
		s := b.orc.Symbolize(b.k.syms, f)
		bf := btFrame{Index: i, PC: hexU64(f.PC), SP: hexU64(f.SP), BP: hexU64(f.BP), Stack: f.Stack,
			Function: s.Name, Offset: s.Offset, Size: s.Size, Module: s.Module, Symbol: s.String(),
			Signal: f.Signal, Guess: f.Guess}
		if f.Slot != 0 {
			sl := hexU64(f.Slot)
			bf.Slot = &sl
		}
		if f.Regs != nil {
			bf.Regs = regsOf(f.Regs)
		}
		if s.BPF != nil {
			bf.BPF = &btBPF{ID: s.BPF.ID}
			if l := s.BPF.Line; l != nil {
				bf.BPF.File, bf.BPF.LineNum, bf.BPF.LineCol = l.File, l.Line, l.Col
			}
		}
		r.Frames = append(r.Frames, bf)
	}
	return r, nil
}

func regsOf(r *orc.Regs) *btRegs {
	x := &btRegs{Partial: r.Partial, IP: hexU64(r.RIP), SP: hexU64(r.RSP), Flags: hexU64(r.EFlags), CS: hexU64(r.CS),
		SS: hexU64(r.SS), OrigAX: hexU64(r.OrigRAX), AX: hexU64(r.RAX), BX: hexU64(r.RBX), CX: hexU64(r.RCX),
		DX: hexU64(r.RDX), SI: hexU64(r.RSI), DI: hexU64(r.RDI), BP: hexU64(r.RBP), R8: hexU64(r.R8),
		R9: hexU64(r.R9), R10: hexU64(r.R10), R11: hexU64(r.R11), R12: hexU64(r.R12), R13: hexU64(r.R13),
		R14: hexU64(r.R14), R15: hexU64(r.R15)}
	if r.Addr != 0 {
		a := hexU64(r.Addr)
		x.Addr = &a
	}
	return x
}

// printBt renders results as crash's bt does.
func printBt(out io.Writer, results []btResult, full bool) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "PID: %-7d TASK: %016x  CPU: %-3d COMMAND: %q", r.TID, uint64(r.Task), r.CPU, r.Comm)
		if r.Panic {
			fmt.Fprint(w, "  (panic)")
		}
		if !r.Reliable && r.UnwindError == "" {
			fmt.Fprint(w, "  (unreliable)")
		}
		fmt.Fprintln(w)
		stack := ""
		for _, f := range r.Frames {
			if f.Stack != stack && stack != "" {
				fmt.Fprintf(w, "    --- <%s stack> -> <%s stack> ---\n", stack, f.Stack)
			}
			stack = f.Stack
			at := uint64(f.SP)
			if f.Slot != nil {
				at = uint64(*f.Slot)
			}
			fmt.Fprintf(w, " #%-2d [%016x] %s at %016x", f.Index, at, f.Symbol, uint64(f.PC))
			if f.Guess {
				fmt.Fprint(w, " (frame pointer)")
			}
			fmt.Fprintln(w)
			if f.BPF != nil {
				fmt.Fprintf(w, "     bpf prog id %d", f.BPF.ID)
				if f.BPF.File != "" {
					fmt.Fprintf(w, " at %s:%d:%d", f.BPF.File, f.BPF.LineNum, f.BPF.LineCol)
				}
				fmt.Fprintln(w)
			}
			if full {
				fmt.Fprintf(w, "     sp %016x  bp %016x\n", uint64(f.SP), uint64(f.BP))
				if f.Regs != nil && f.Index > 0 {
					printRegs(w, f.Regs)
				}
			}
		}
		if r.UnwindError != "" {
			fmt.Fprintf(w, "    (unwind stopped: %s)\n", r.UnwindError)
		}
		if r.UserRegs != nil {
			if full {
				fmt.Fprintln(w, "    --- user mode registers ---")
				printRegs(w, r.UserRegs)
			} else if len(r.Frames) == 0 {
				fmt.Fprintf(w, "    (in user mode at %016x)\n", uint64(r.UserRegs.IP))
			}
		}
	}
}

func printRegs(w io.Writer, r *btRegs) {
	if r.Addr != nil {
		fmt.Fprintf(w, "     pt_regs at %016x%s\n", uint64(*r.Addr), map[bool]string{true: " (iret frame only)"}[r.Partial])
	}
	fmt.Fprintf(w, "     RIP: %016x  RSP: %016x  RFLAGS: %08x\n", uint64(r.IP), uint64(r.SP), uint64(r.Flags))
	if r.Partial {
		fmt.Fprintf(w, "     CS: %04x  SS: %04x\n", uint64(r.CS), uint64(r.SS))
		return
	}
	fmt.Fprintf(w, "     RAX: %016x  RBX: %016x  RCX: %016x\n", uint64(r.AX), uint64(r.BX), uint64(r.CX))
	fmt.Fprintf(w, "     RDX: %016x  RSI: %016x  RDI: %016x\n", uint64(r.DX), uint64(r.SI), uint64(r.DI))
	fmt.Fprintf(w, "     RBP: %016x  R8:  %016x  R9:  %016x\n", uint64(r.BP), uint64(r.R8), uint64(r.R9))
	fmt.Fprintf(w, "     R10: %016x  R11: %016x  R12: %016x\n", uint64(r.R10), uint64(r.R11), uint64(r.R12))
	fmt.Fprintf(w, "     R13: %016x  R14: %016x  R15: %016x\n", uint64(r.R13), uint64(r.R14), uint64(r.R15))
	fmt.Fprintf(w, "     ORIG_RAX: %016x  CS: %04x  SS: %04x\n", uint64(r.OrigAX), uint64(r.CS), uint64(r.SS))
}
