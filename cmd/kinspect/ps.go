package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "ps", summary: "list tasks: every thread, with state and CPU (like crash's ps)", run: runPs,
		help: psHelp, syntax: "[PID...]", opts: []*option{{short: "-t", long: "--threads", help: "every thread (the default)"},
			{short: "-a", long: "--args", help: "each process's arguments and environment, read from its memory"}, optKallsyms}})
}

const psHelp = `Usage: kinspect [-c DUMP | --live] [--json] ps [-k FILE] [-t] [PID...]
       kinspect [-c DUMP | --live] [--json] ps -a [-k FILE] [PID...]

Lists every task like crash's ps: each CPU's idle task (swapper/N, PID 0),
then every thread of every process, by PID. A '>' marks the task running on
a CPU at the time of the dump. Columns:

  PID    the task's own ID (a thread's TID, as in crash)
  PPID   the parent process's ID ("?", in JSON -1, where the parent's
         task_struct cannot be read: the damage report says why)
  CPU    the CPU the task last ran on
  TASK   the address of its struct task_struct
  ST     the state letter ps and /proc show: R running, S sleeping,
         D disk sleep, T stopped, t tracing stop, X dead, Z zombie,
         P parked, I idle
  COMM   the name /proc shows (kernel threads in brackets: a kernel
         thread's full name, a workqueue worker's current workqueue)

With PIDs, lists only those tasks, and every thread of those processes.

With -a, as crash's ps -a, shows each user process's command line and
environment instead (/proc/PID/cmdline, environ), read from its memory
through its page tables (or its files' page cache): ARG and ENV lines. A
page the process never touched, or that the dump left out
(makedumpfile -d 8 and up drop user pages), leaves its area unread, and
the line says why.

Options:
  -t, --threads        list every thread (the default; for crash's users)
  -a, --args           each process's arguments and environment
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"pid" (the thread group's ID), "tid", "ppid", "cpu",
"task" (a "0x..." string), "state" (the letter), "comm" (task->comm),
"name" (as /proc shows it), "running"}. With -a: an array of {"task",
"pid", "tid", "comm", "args", "env", "args_error", "env_error"}.
`

func runPs(e *env, args []string) error {
	var file string
	var pids []int
	withArgs := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, psHelp)
			return nil
		case a == "-t" || a == "--threads":
		case a == "-a" || a == "--args":
			withArgs = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("ps %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			n, err := strconv.Atoi(a)
			if err != nil || n < 0 {
				return fmt.Errorf("ps: %q is not a PID or an option (see kinspect ps help): %w", a, errUsage)
			}
			pids = append(pids, n)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	if withArgs {
		return psArgs(e, k.Program(), pids)
	}
	tasks, notes, werr := linux.PSRows(k.Program())
	if werr != nil && (e.json || len(tasks) == 0) {
		return werr
	}
	if len(pids) > 0 {
		tasks = slices.DeleteFunc(tasks, func(t linux.PSRow) bool {
			return !slices.Contains(pids, t.TID) && !slices.Contains(pids, t.PID)
		})
		if len(tasks) == 0 {
			return fmt.Errorf("ps: no task with PID %s", joinInts(pids))
		}
	}
	if e.json {
		return writeJSON(e, tasks)
	}
	printPs(e.stdout, tasks)
	for _, n := range notes {
		fmt.Fprintf(e.stderr, "note: %s\n", n)
	}
	return werr
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func printPs(w io.Writer, tasks []linux.PSRow) {
	fmt.Fprintf(w, "   %7s %7s %4s %16s  %2s  %s\n", "PID", "PPID", "CPU", "TASK", "ST", "COMM")
	for _, t := range tasks {
		mark := " "
		if t.Running {
			mark = ">"
		}
		name := t.Name
		if t.KThread {
			name = "[" + name + "]"
		}
		ppid := strconv.Itoa(t.PPID)
		if t.PPID < 0 {
			ppid = "?"
		}
		fmt.Fprintf(w, "%s  %7d %7s %4d %016x  %2s  %s\n", mark, t.TID, ppid, t.CPU, uint64(t.Task), t.State, name)
	}
}

// psArgs is ps -a: each user process's arguments and environment.
func psArgs(e *env, p *objects.Program, pids []int) error {
	var out []*linux.ProcArgs
	for task, err := range linux.ForEachProcess(p) {
		if err != nil {
			return fmt.Errorf("ps -a: %w", err)
		}
		t, err := linux.NewTask(task)
		if err != nil {
			return fmt.Errorf("ps -a: %w", err)
		}
		if t.IsKThread() || len(pids) > 0 && !slices.Contains(pids, t.PID) {
			continue
		}
		a, err := linux.ReadProcArgs(task)
		if a == nil {
			return fmt.Errorf("ps -a: %w", err)
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b *linux.ProcArgs) int { return a.PID - b.PID })
	if len(pids) > 0 && len(out) == 0 {
		return fmt.Errorf("ps -a: no user process with PID %s", joinInts(pids))
	}
	if e.json {
		if out == nil {
			out = []*linux.ProcArgs{}
		}
		return writeJSON(e, out)
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for i, a := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		cpu := -1
		if t, err := p.ObjectOf("struct task_struct", uint64(a.Task)); err == nil {
			cpu, _ = linux.TaskCPU(t)
		}
		taskHeader(w, a.TID, a.Task, cpu, a.Comm)
		if a.ArgsErr != "" {
			fmt.Fprintf(w, "ARG: (%s)\n", a.ArgsErr)
		} else {
			fmt.Fprintf(w, "ARG: %s\n", strings.Join(a.Args, " "))
		}
		if a.EnvErr != "" {
			fmt.Fprintf(w, "ENV: (%s)\n", a.EnvErr)
		} else {
			fmt.Fprintf(w, "ENV: %s\n", strings.Join(a.Env, "\n     "))
		}
	}
	return nil
}
