package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/orc"
)

func init() {
	register(&command{name: "bt", summary: "kernel stack traces of CPUs and tasks (ORC)", run: runBt,
		help: btHelp, syntax: "[PID...]", opts: []*option{{short: "-a", help: "every CPU"}, {short: "-T", long: "--all-tasks", help: "every task"},
			{short: "-f", help: "each frame's stack and frame pointers, and registers"},
			{short: "-t", help: "also the other text addresses on the stacks (the kernel's \"?\" entries)"}, optKallsyms}})
}

const btHelp = `Usage: kinspect [-c DUMP | --live] [--json] bt [-a] [-f] [-t] [-k FILE] [--all-tasks | PID...]

Prints kernel stack traces, unwound with the kernel's own ORC tables (and
the frame pointer through BPF programs, which have none), as crash's bt:

  bt               the panicking CPU's task; with no panic, every CPU
  bt -a            every CPU, from the registers the dump saved
  bt PID...        those tasks (thread IDs); a task running on a CPU is
                   unwound from that CPU's registers
  bt --all-tasks   every task and each CPU's idle task

  -f               show each frame's stack and frame pointers and the
                   registers of interrupt, exception and syscall frames,
                   and under a BPF program's frame its BPF view: the
                   instruction, source line, R0-R10 and stack (as prog
                   state shows them)
  -t               also list, after the trace, the other kernel text
                   addresses on the stacks it crossed: what the kernel
                   prints with "?" (stale return addresses), unreliable
  -k FILE          symbols from FILE, a copy of the kernel's /proc/kallsyms

Each frame: "#N [SLOT] function+0xoff/0xsize [module] at PC", SLOT being
the stack address the return address was read from. The stacks are
marked as the kernel marks them: <IRQ> ... </IRQ>, <NMI>, <#DF>, <TASK>.
Frames in a BPF program name it bpf_prog_TAG_NAME and show its ID and
source line. A frame found without ORC data (by the frame pointer, or by
following the code of a function objtool left without it, as
__crash_kexec) says so, and makes the trace unreliable; one that could
not be finished ends with the reason.

JSON: an array of {"pid", "tid", "comm", "task", "cpu", "on_cpu",
"panic", "reliable", "end", "unwind_error", "frames": [{"index", "pc",
"sp", "bp", "slot", "stack", "function", "offset", "size", "module",
"symbol", "signal", "guess", "how", "regs", "bpf": {"id", "file",
"line_num", "line_col", "line_error"}}], "user_regs", "scanned": [{"slot", "pc",
"stack", "function", "offset", "size", "module", "symbol", "after"}]}.
`

type btOptions struct {
	all, allTasks, frames, scan bool
	file                        string
	pids                        []int
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
		case a == "-t":
			o.scan = true
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
	b, err := orc.NewBacktracer(k)
	if err != nil {
		return fmt.Errorf("bt: %w", err)
	}
	results, err := b.Collect(orc.Selection{AllTasks: o.allTasks, AllCPUs: o.all, PIDs: o.pids})
	if err != nil && len(results) == 0 {
		return err
	}
	if e.json {
		if results == nil {
			results = []*orc.Backtrace{}
		}
		writeJSON(e, results)
	} else {
		printBt(e.stdout, results, o.frames, o.scan, bpfViews(k, o.frames))
	}
	return err
}

// stackMarkers are the names the kernel's show_trace_log_lvl gives the
// stacks (stack_type_name, exception_stack_names), by kinspect's names.
var stackMarkers = map[string]string{"task": "TASK", "IRQ": "IRQ", "entry": "ENTRY_TRAMPOLINE",
	"NMI": "NMI", "DF": "#DF", "DB": "#DB", "MCE": "#MC", "VC": "#VC", "VC2": "#VC2"}

func stackMarker(s string) string {
	if m, ok := stackMarkers[s]; ok {
		return m
	}
	return s
}

// printBt renders results as crash's bt does, with the kernel's stack
// markers: <IRQ> ... </IRQ> <TASK> ... </TASK>; with views (-f), the BPF
// view of each BPF frame under it (prog state's).
// bpfViews returns, under -f, the BPF view of each BPF frame of a
// backtrace (bpfrun's state of a running program), by frame index.
func bpfViews(k *kinspect.Kernel, frames bool) func(*orc.Backtrace) map[int]bpfrun.FrameState {
	if !frames {
		return nil
	}
	r := bpfrun.FromKernel(k)
	return func(bt *orc.Backtrace) map[int]bpfrun.FrameState {
		m := map[int]bpfrun.FrameState{}
		for _, f := range r.StackFrames(bt) {
			m[f.Frame] = f
		}
		return m
	}
}

func printBt(out io.Writer, results []*orc.Backtrace, full, scan bool, views func(*orc.Backtrace) map[int]bpfrun.FrameState) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if r.TaskError != "" {
			fmt.Fprintf(w, "PID: %-7s TASK: %016x  CPU: %-3d COMMAND: ?", "?", uint64(r.Task), r.CPU)
		} else {
			fmt.Fprintf(w, "PID: %-7d TASK: %016x  CPU: %-3d COMMAND: %q", r.TID, uint64(r.Task), r.CPU, r.Comm)
		}
		if r.Panic {
			fmt.Fprint(w, "  (panic)")
		}
		if !r.Reliable && r.UnwindError == "" {
			fmt.Fprint(w, "  (unreliable)")
		}
		fmt.Fprintln(w)
		if r.TaskError != "" {
			fmt.Fprintf(w, "    (task unreadable: %s)\n", r.TaskError)
		}
		var view map[int]bpfrun.FrameState
		if views != nil {
			view = views(r)
		}
		stack := ""
		for _, f := range r.Frames {
			if f.Stack != stack {
				if stack != "" {
					fmt.Fprintf(w, " </%s>\n", stackMarker(stack))
				}
				if f.Stack != "" {
					fmt.Fprintf(w, " <%s>\n", stackMarker(f.Stack))
				}
				stack = f.Stack
			}
			at := uint64(f.SP)
			if f.Slot != nil {
				at = uint64(*f.Slot)
			}
			fmt.Fprintf(w, " #%-2d [%016x] %s at %016x", f.Index, at, f.Symbol, uint64(f.PC))
			if f.Guess {
				fmt.Fprintf(w, " (%s)", f.How)
			}
			fmt.Fprintln(w)
			if f.BPF != nil {
				fmt.Fprintf(w, "     bpf prog id %d", f.BPF.ID)
				if f.BPF.File != "" {
					fmt.Fprintf(w, " at %s:%d:%d", f.BPF.File, f.BPF.LineNum, f.BPF.LineCol)
				} else if f.BPF.LineError != "" {
					fmt.Fprintf(w, " (line unknown: %s)", f.BPF.LineError)
				}
				fmt.Fprintln(w)
			}
			if full {
				fmt.Fprintf(w, "     sp %016x  bp %016x\n", uint64(f.SP), uint64(f.BP))
				if f.Regs != nil && f.Index > 0 {
					printRegs(w, f.Regs)
				}
				if v, ok := view[f.Index]; ok {
					fmt.Fprintln(w, "     --- BPF view ---")
					printFrameState(w, v, "     ")
				}
			}
		}
		if stack != "" {
			fmt.Fprintf(w, " </%s>\n", stackMarker(stack))
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
		if scan && len(r.Scanned) > 0 {
			fmt.Fprintln(w, "    other text addresses on the stacks (the kernel's \"?\" entries, unreliable):")
			for _, s := range r.Scanned {
				fmt.Fprintf(w, "    ? [%016x] %s at %016x (after #%d, %s)\n", uint64(s.Slot), s.Symbol, uint64(s.PC), s.After, stackMarker(s.Stack))
			}
		}
	}
}

func printRegs(w io.Writer, r *orc.BacktraceRegs) {
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
