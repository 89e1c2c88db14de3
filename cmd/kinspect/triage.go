package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/kinspect/kinspect/triage"
)

func init() {
	register(&command{name: "triage", summary: "the crash in one page: what, where, which task, through which code", run: runTriage,
		help: triageHelp, opts: []*option{optKallsyms}})
}

const triageHelp = `Usage: kinspect [-c DUMP | --live] [--json] triage [-k FILE]

The first page of a crash dump: what crashed, on which CPU, in which task
and context, through which code, in the crashing kernel's own words where
it said them (its crash report, read from the printk ring in the dump),
checked against and completed by its memory:

  - the report's kind and first line (Oops, BUG, WARNING, soft lockup,
    hung task, panic) and the panic message
  - the crash time, the panicking CPU (the kernel's panic_cpu), its task,
    and its context (process, softirq, hardirq, NMI: its preempt count)
  - the registers the report printed (the exception's or interrupt's),
    RIP as the kernel prints it, and the code around it disassembled;
    a page fault's address and access
  - the taint, as the report printed it (and as it is now, when the
    kernel added flags since: D as it died), each flag with the modules that
    set it
  - every CPU's stack, the crashing one first; every BPF program on any
    stack, with its id and source line
  - the tasks in D state, longest blocked first (the hung task detector's
    one named), and the soft lockup's CPU and task
  - the kernel log from the report on

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"kind", "first_line", "panic_message", "crash_time", "cpu", "pid",
"comm", "context", "taint", "taint_now", "taints": [{"bit", "char", "desc",
"modules"}], "rip", "regs", "code": [{"addr", "symbol", "bytes", "text",
"fault"}], "fault": {"address", "access", "error"}, "stacks" (as bt
--json), "bpf": [{"id", "symbol", "line", "cpu", "on_cpu", "pid",
"comm"}], "blocked": [{"pid", "comm", "seconds", "stack"}], "hung_task",
"lockup": {"cpu", "seconds", "comm", "pid"}, "log", "problems"}.
`

func runTriage(e *env, args []string) error {
	var file string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, triageHelp)
			return nil
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("triage %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			return fmt.Errorf("triage: unexpected %q (see kinspect triage help): %w", a, errUsage)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	r, err := triage.Build(k)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, r)
	}
	printTriage(e.stdout, r)
	return nil
}

func printTriage(out io.Writer, r *triage.Report) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%14s: %s\n", k, v)
		}
	}
	row("CRASH", r.Kind)
	row("REPORT", r.FirstLine)
	row("PANIC", r.PanicMessage)
	row("CRASH TIME", r.CrashTime)
	if r.CPU >= 0 {
		row("CPU", fmt.Sprintf("%d (%s)", r.CPU, r.Context))
	}
	if r.PID >= 0 {
		row("TASK", fmt.Sprintf("%d %q", r.PID, r.Comm))
	}
	taint := func(t string) string {
		if t == "" {
			return "not tainted"
		}
		return strings.TrimRight(t, " ")
	}
	if r.TaintNow != "" {
		row("TAINTED", taint(r.Taint)+" (in the report); now "+taint(r.TaintNow))
	} else {
		row("TAINTED", taint(r.Taint))
	}
	{
		for _, f := range r.Taints {
			m := ""
			if len(f.Modules) > 0 {
				m = " (" + strings.Join(f.Modules, ", ") + ")"
			}
			fmt.Fprintf(w, "%16s%s: %s%s\n", "", f.Char, f.Desc, m)
		}
	}
	row("RIP", r.RIP)
	if f := r.Fault; f != nil {
		row("FAULT", strings.TrimSpace(fmt.Sprintf("address %s %s %s", f.Address, f.Access, f.Error)))
	}
	if r.Regs != nil {
		fmt.Fprintln(w)
		printRegs(w, r.Regs)
	}
	if len(r.Code) > 0 {
		fmt.Fprintln(w)
		for _, c := range r.Code {
			mark := " "
			if c.Fault {
				mark = ">"
			}
			fmt.Fprintf(w, "%s %016x <%s>: %s\n", mark, uint64(c.Addr), c.Symbol, c.Text)
		}
	}
	if r.Lockup != nil {
		fmt.Fprintf(w, "\nsoft lockup: CPU %d stuck for %ds in %s:%d\n", r.Lockup.CPU, r.Lockup.Seconds, r.Lockup.Comm, r.Lockup.PID)
	}
	if len(r.BPF) > 0 {
		fmt.Fprintln(w, "\nBPF programs on stacks:")
		for _, b := range r.BPF {
			where := fmt.Sprintf("task %d %q", b.PID, b.Comm)
			if b.OnCPU {
				where = fmt.Sprintf("CPU %d, %s", b.CPU, where)
			}
			line := ""
			if b.Line != "" {
				line = " at " + b.Line
			}
			fmt.Fprintf(w, "  prog %d %s%s (%s)\n", b.ID, b.Symbol, line, where)
		}
	}
	if len(r.Blocked) > 0 {
		fmt.Fprintln(w, "\nblocked tasks (D state):")
		for i, b := range r.Blocked {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more\n", len(r.Blocked)-10)
				break
			}
			mark := ""
			if r.HungTask != nil && r.HungTask.PID == b.PID {
				mark = "  (the hung task reported)"
			}
			since := "for an unknown time (the hung task detector has not seen it)"
			if b.Seconds >= 0 {
				since = fmt.Sprintf("for %.0fs", b.Seconds)
			}
			fmt.Fprintf(w, "  %d %q blocked %s%s\n", b.PID, b.Comm, since, mark)
			if len(b.Stack) > 0 {
				fmt.Fprintf(w, "      %s\n", strings.Join(b.Stack[:min(len(b.Stack), 6)], " < "))
			}
		}
	}
	fmt.Fprintln(w)
	w.Flush()
	printBt(out, r.Stacks, false, false, nil)
	if len(r.Log) > 0 {
		fmt.Fprintln(out, "\nkernel log from the report:")
		for _, l := range r.Log[max(len(r.Log)-60, 0):] {
			fmt.Fprintln(out, "  "+l)
		}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(out, "note: %s\n", p)
	}
}
