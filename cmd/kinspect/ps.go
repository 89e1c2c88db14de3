package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "ps", summary: "list tasks: every thread, with state and CPU (like crash's ps)", run: runPs,
		help: psHelp, syntax: "[PID...]", opts: []*option{{short: "-t", long: "--threads", help: "every thread (the default)"}, optKallsyms}})
}

const psHelp = `Usage: kinspect [-c DUMP | --live] [--json] ps [-k FILE] [-t] [PID...]

Lists every task like crash's ps: each CPU's idle task (swapper/N, PID 0),
then every thread of every process, by PID. A '>' marks the task running on
a CPU at the time of the dump. Columns:

  PID    the task's own ID (a thread's TID, as in crash)
  PPID   the parent process's ID
  CPU    the CPU the task last ran on
  TASK   the address of its struct task_struct
  ST     the state letter ps and /proc show: R running, S sleeping,
         D disk sleep, T stopped, t tracing stop, X dead, Z zombie,
         P parked, I idle
  COMM   the name /proc shows (kernel threads in brackets: a kernel
         thread's full name, a workqueue worker's current workqueue)

With PIDs, lists only those tasks, and every thread of those processes.

Options:
  -t, --threads        list every thread (the default; for crash's users)
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"pid" (the thread group's ID), "tid", "ppid", "cpu",
"task" (a "0x..." string), "state" (the letter), "comm" (task->comm),
"name" (as /proc shows it), "running"}.
`

func runPs(e *env, args []string) error {
	var file string
	var pids []int
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, psHelp)
			return nil
		case a == "-t" || a == "--threads":
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
		fmt.Fprintf(w, "%s  %7d %7d %4d %016x  %2s  %s\n", mark, t.TID, t.PPID, t.CPU, uint64(t.Task), t.State, name)
	}
}
