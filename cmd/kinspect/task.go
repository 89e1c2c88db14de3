package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "task", summary: "a task's task_struct, printed member by member (like crash's task)", run: runTask,
		help: taskHelp, syntax: "PID...", opts: []*option{{long: "--max", value: "N", help: "show at most N elements of an array"}, optKallsyms}})
	register(&command{name: "sig", summary: "a task's signals: pending, blocked, handlers (like crash's sig)", run: runSig,
		help: sigHelp, syntax: "PID...", opts: []*option{optKallsyms}})
}

const taskHelp = `Usage: kinspect [-c DUMP | --live] [--json] task [--max N] [-k FILE] PID...

Prints each task's struct task_struct (PID a thread ID; 0 is CPU 0's idle
task) as crash's task: a header with its IDs, CPU and name, then every
member, nested, as print shows a value.

Options:
  --max N              show at most N elements of an array (default 1024)
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"task", "pid" (the thread group), "tid", "ppid",
"cpu", "state", "comm", "value" (the task_struct, as print --json shows
a value)}.
`

const sigHelp = `Usage: kinspect [-c DUMP | --live] [--json] sig [-k FILE] PID...

Shows each task's signals, as crash's sig: its signal_struct and number
of threads; each signal's handler (SIG_DFL, SIG_IGN or the user address
of the handler), sa_flags and sa_mask; the signals pending for the task
and for its whole thread group, blocked, ignored and caught, as
/proc/PID/status's SigPnd, ShdPnd, SigBlk, SigIgn and SigCgt show them;
and the signals queued (struct sigqueue: number, si_code, sender's PID).

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"task", "pid", "tid", "comm", "signal_struct",
"sighand", "nr_threads", "pending", "shared_pending", "blocked",
"ignored", "caught" (16 hex digits, as status shows them), "actions":
[{"signal", "name", "handler", "flags", "mask"}], "queued": [{"signal",
"code", "pid", "shared"}]}.
`

func runTask(e *env, args []string) error {
	var file string
	max := 0
	pids, done, err := parsePIDs("task", args, taskHelp, e, func(i int) (int, error) {
		if args[i] == "--max" {
			if i+1 == len(args) {
				return 0, fmt.Errorf("task --max: want a number: %w", errUsage)
			}
			if _, err := fmt.Sscan(args[i+1], &max); err != nil || max <= 0 {
				return 0, fmt.Errorf("task --max %q: want a positive number: %w", args[i+1], errUsage)
			}
			return 2, nil
		}
		return kallsymsOpt("task", args, &file)(i)
	})
	if done || err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("task: give a PID: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	tasks, err := findTasks(k.Program(), "task", pids)
	if err != nil {
		return err
	}
	var out []*linux.TaskDetail
	for _, t := range tasks {
		d, err := linux.NewTaskDetail(t)
		if err != nil {
			return fmt.Errorf("task: %w", err)
		}
		out = append(out, d)
	}
	if e.json {
		return writeJSON(e, out)
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for i, d := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printTask(w, d, max); err != nil {
			return fmt.Errorf("task %d: %w", d.TID, err)
		}
	}
	return nil
}

func printTask(w io.Writer, d *linux.TaskDetail, max int) error {
	taskHeader(w, d.TID, d.Task, d.CPU, d.Comm)
	s, err := objects.Format(d.Value, objects.FormatOptions{MaxElements: max})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, s)
	return nil
}

func runSig(e *env, args []string) error {
	k, tasks, err := openTasks(e, "sig", args, sigHelp, "task")
	if k == nil || err != nil {
		return err
	}
	defer k.Close()
	var out []*linux.TaskSignals
	for _, t := range tasks {
		s, err := linux.ReadTaskSignals(t)
		if err != nil {
			return fmt.Errorf("sig: %w", err)
		}
		out = append(out, s)
	}
	if e.json {
		return writeJSON(e, out)
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for i, s := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printSig(w, k.Program(), s)
	}
	return nil
}

func printSig(w io.Writer, p *objects.Program, s *linux.TaskSignals) {
	cpu := -1
	if t, err := p.ObjectOf("struct task_struct", uint64(s.Task)); err == nil {
		cpu, _ = linux.TaskCPU(t)
	}
	taskHeader(w, s.TID, s.Task, cpu, s.Comm)
	fmt.Fprintf(w, "SIGNAL_STRUCT: %016x  NR_THREADS: %d  SIGHAND: %016x\n", uint64(s.SignalStruct), s.NrThreads, uint64(s.Sighand))
	fmt.Fprintf(w, " %-4s %-12s %-16s %-16s %s\n", "SIG", "NAME", "HANDLER", "MASK", "FLAGS")
	for _, a := range s.Actions {
		fmt.Fprintf(w, " [%2d] %-12s %-16s %s %x\n", a.Signal, a.Name, a.Disposition(), a.Mask, uint64(a.Flags))
	}
	for _, x := range []struct {
		name string
		set  linux.SigSet
	}{{"SHARED_PENDING", s.SharedPending}, {"PENDING", s.Pending}, {"BLOCKED", s.Blocked}, {"IGNORED", s.Ignored}, {"CAUGHT", s.Caught}} {
		fmt.Fprintf(w, "%-15s %s", x.name, x.set)
		if names := linux.SigSetNames(x.set); names != "" && x.name != "CAUGHT" && x.name != "IGNORED" {
			fmt.Fprintf(w, "  %s", names)
		}
		fmt.Fprintln(w)
	}
	for _, q := range s.Queued {
		where := "task"
		if q.Shared {
			where = "shared"
		}
		fmt.Fprintf(w, "QUEUED (%s): %s code %d from PID %d\n", where, linux.SigName(q.Signal), q.Code, q.PID)
	}
}
