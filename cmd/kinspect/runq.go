package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "runq", summary: "each CPU's runqueue: current and queued tasks (like crash's runq)", run: runRunq,
		help: runqHelp, syntax: "[CPU...]", opts: []*option{{short: "-t", help: "also each task's run time and last arrival, and the runqueue's clock"}, optKallsyms}})
}

const runqHelp = `Usage: kinspect [-c DUMP | --live] [--json] runq [-t] [-k FILE] [CPU...]

Lists each CPU's runqueue (every possible CPU's, or those named), as
crash's runq: the struct rq, the task running on the CPU (CURRENT), then
the tasks queued in the deadline, real-time and fair (CFS) classes, each
with its priority in brackets (task->prio: 0-99 real-time, 100-139
normal, 120 being nice 0), PID, task_struct and command. The RT tasks
come by priority, then in queue order; the CFS tasks in the order of
their red-black tree (by vruntime), a task group's where the group's
entity is, indented by its depth. The current task is not queued: the
kernel takes it out of its class's queue while it runs. A task queued
after it went to sleep, until its lag is spent (6.12's delayed dequeue),
is marked "(delayed)".

Options:
  -t                   also each task's vruntime, total run time
                       (sum_exec_runtime) and last arrival (ns, on the
                       runqueue's clock), and the runqueue's clock
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"cpu", "rq", "clock", "nr_running", "current", "idle"
(the current task is the CPU's idle task), "rt", "cfs", "dl"}, each task
{"task", "pid", "comm", "prio", "class" ("CFS", "RT", "DL", "IDLE",
"STOP", "EXT"), "vruntime", "exec_runtime", "last_arrival", "group" (the
task group's struct cfs_rq, absent for the root's), "depth", "delayed"}.
`

func runRunq(e *env, args []string) error {
	var file string
	var cpus []int
	times := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, runqHelp)
			return nil
		case a == "-t":
			times = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("runq %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			n, err := strconv.Atoi(a)
			if err != nil || n < 0 {
				return fmt.Errorf("runq: unexpected %q, want a CPU number (see kinspect runq help): %w", a, errUsage)
			}
			cpus = append(cpus, n)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	var rqs []linux.RunQueue
	var rerr error
	if len(cpus) == 0 {
		rqs, rerr = linux.RunQueues(p)
		if rerr != nil && len(rqs) == 0 {
			return rerr
		}
	}
	for _, c := range cpus {
		rq, err := linux.ReadRunQueue(p, c)
		if err != nil {
			return fmt.Errorf("runq: %w", err)
		}
		rqs = append(rqs, *rq)
	}
	if e.json {
		if rqs == nil {
			rqs = []linux.RunQueue{}
		}
		writeJSON(e, rqs)
		return rerr
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for i, rq := range rqs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printRunq(w, rq, times)
	}
	return rerr
}

func printRunq(w io.Writer, rq linux.RunQueue, times bool) {
	fmt.Fprintf(w, "CPU %d RUNQUEUE: %x\n", rq.CPU, uint64(rq.RQ))
	if times {
		fmt.Fprintf(w, "  CLOCK: %d  NR_RUNNING: %d\n", rq.Clock, rq.NrRunning)
	}
	fmt.Fprintf(w, "  CURRENT: %s\n", rqTaskLine(rq.Current, times))
	for _, q := range []struct {
		name  string
		tasks []linux.RQTask
	}{{"DL", rq.DL}, {"RT", rq.RT}, {"CFS", rq.CFS}} {
		if q.name == "DL" && len(q.tasks) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s:\n", q.name)
		if len(q.tasks) == 0 {
			fmt.Fprintln(w, "     [no tasks queued]")
		}
		for _, t := range q.tasks {
			fmt.Fprintf(w, "     %s[%3d] %s\n", strings.Repeat("  ", t.Depth), t.Prio, rqTaskLine(t, times))
		}
	}
}

func rqTaskLine(t linux.RQTask, times bool) string {
	s := fmt.Sprintf("PID: %-6d TASK: %x  COMMAND: %q", t.PID, uint64(t.Task), t.Comm)
	if t.Group != 0 {
		s += fmt.Sprintf("  GROUP: %x", uint64(t.Group))
	}
	if t.Delayed {
		s += " (delayed)"
	}
	if times {
		s += fmt.Sprintf("  VRUNTIME: %d  RUNTIME: %d  ARRIVAL: %d", t.Vruntime, t.ExecRuntime, t.LastArrival)
	}
	return s
}
