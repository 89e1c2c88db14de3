package main

import (
	"bufio"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
)

func init() {
	register(&command{name: "foreach", summary: "run bt, files, vm, sig or task on every task, or those selected (like crash's foreach)", run: runForeach,
		help: foreachHelp, syntax: "[SELECTOR...] { bt | files | vm | sig | task }", opts: []*option{
			{short: "-f", help: "bt: each frame's stack and frame pointers, and registers"},
			{short: "-t", help: "bt: also the other text addresses on the stacks"},
			{long: "--max", value: "N", help: "task: show at most N elements of an array"}}})
}

const foreachHelp = `Usage: kinspect [-c DUMP | --live] [--json] foreach [SELECTOR...] COMMAND [-f] [-t] [--max N]

Runs a command on every task, or on the tasks selected, as crash's
foreach. SELECTORs (any number; a task matching one is chosen):

  PID          a thread ID
  COMM         the tasks of that name (a glob: * ? [...])
  user         the user tasks
  kernel       the kernel threads

COMMAND is one of:

  bt           each task's stack trace (-f, -t as bt's)
  files        each process's open files (a thread sharing its group
               leader's fd table is shown once)
  vm           each process's address space and VMAs (a thread sharing
               its leader's mm is shown once)
  sig          each task's signals
  task         each task's task_struct (--max N as task's)

The tasks come by thread ID, without the idle tasks.

JSON: the command's JSON, an array with an element per task.
`

func runForeach(e *env, args []string) error {
	var sel []string
	cmd := ""
	var full, scan bool
	max := 0
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && (a == "help" || a == "-h" || a == "--help"):
			fmt.Fprint(e.stdout, foreachHelp)
			return nil
		case a == "-f":
			full = true
		case a == "-t":
			scan = true
		case a == "--max":
			if i+1 == len(args) {
				return fmt.Errorf("foreach --max: want a number: %w", errUsage)
			}
			i++
			if _, err := fmt.Sscan(args[i], &max); err != nil || max <= 0 {
				return fmt.Errorf("foreach --max %q: want a positive number: %w", args[i], errUsage)
			}
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("foreach: unknown option %q: %w", a, errUsage)
		case cmd != "":
			return fmt.Errorf("foreach %s: unexpected %q (the selectors come before the command): %w", cmd, a, errUsage)
		case slices.Contains([]string{"bt", "files", "vm", "sig", "task"}, a):
			cmd = a
		default:
			if _, err := path.Match(a, ""); err != nil {
				return fmt.Errorf("foreach: bad pattern %q: %w", a, errUsage)
			}
			sel = append(sel, a)
		}
	}
	if cmd == "" {
		return fmt.Errorf("foreach: give a command: bt, files, vm, sig or task: %w", errUsage)
	}
	if (full || scan) && cmd != "bt" || max > 0 && cmd != "task" {
		return fmt.Errorf("foreach %s: -f and -t go with bt, --max with task: %w", cmd, errUsage)
	}
	k, err := openKernel(e, "")
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	tasks, err := selectTasks(p, sel)
	if err != nil {
		return fmt.Errorf("foreach: %w", err)
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	switch cmd {
	case "bt":
		b, err := orc.NewBacktracer(k)
		if err != nil {
			return fmt.Errorf("foreach bt: %w", err)
		}
		results := []*orc.Backtrace{}
		var errs []error
		for _, t := range tasks {
			tv, err := p.ObjectOf("struct task_struct", t.Addr)
			if err != nil {
				return err
			}
			r, err := b.Task(tv)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			results = append(results, r)
		}
		berr := errors.Join(errs...)
		if e.json {
			w.Flush()
			writeJSON(e, results)
		} else {
			printBt(w, results, full, scan, bpfViews(k, full))
		}
		return berr
	}
	seen := map[uint64]bool{}
	var out []any
	var ferr error
	for _, t := range tasks {
		tv, err := p.ObjectOf("struct task_struct", t.Addr)
		if err != nil {
			return err
		}
		shared := map[string]string{"files": "files", "vm": "mm"}[cmd]
		if shared != "" {
			a, err := tv.MemberUint(shared)
			if err != nil {
				return fmt.Errorf("foreach %s: %w", cmd, err)
			}
			if a != 0 && seen[a] {
				continue
			}
			seen[a] = true
		}
		var r any
		switch cmd {
		case "files":
			fi, err := linux.ReadTaskFiles(tv)
			if err != nil {
				if fi == nil {
					return fmt.Errorf("foreach files: %w", err)
				}
				ferr = fmt.Errorf("foreach files: %w", err)
			}
			r = fi
			if !e.json {
				printFiles(w, p, fi)
			}
		case "vm":
			v, err := linux.ReadTaskVM(tv)
			if err != nil {
				if v == nil {
					return fmt.Errorf("foreach vm: %w", err)
				}
				ferr = fmt.Errorf("foreach vm: %w", err)
			}
			r = v
			if !e.json {
				printVm(w, p, v)
			}
		case "sig":
			s, err := linux.ReadTaskSignals(tv)
			if err != nil {
				return fmt.Errorf("foreach sig: %w", err)
			}
			r = s
			if !e.json {
				printSig(w, p, s)
			}
		case "task":
			d, err := linux.NewTaskDetail(tv)
			if err != nil {
				return fmt.Errorf("foreach task: %w", err)
			}
			r = d
			if !e.json {
				if err := printTask(w, d, max); err != nil {
					return fmt.Errorf("foreach task %d: %w", d.TID, err)
				}
			}
		}
		out = append(out, r)
		if !e.json {
			fmt.Fprintln(w)
		}
	}
	if e.json {
		w.Flush()
		if out == nil {
			out = []any{}
		}
		writeJSON(e, out)
	}
	return ferr
}

// selectTasks returns every task (thread) matching one of the
// selectors (every task without any), by thread ID.
func selectTasks(p *objects.Program, sel []string) ([]*linux.Task, error) {
	var out []*linux.Task
	for t, err := range linux.ForEachTask(p) {
		if err != nil {
			return out, err
		}
		tk, err := linux.NewTask(t)
		if err != nil {
			return out, err
		}
		ok := len(sel) == 0
		for _, s := range sel {
			if n, err := strconv.Atoi(s); err == nil {
				ok = ok || n == tk.TID
				continue
			}
			switch s {
			case "user":
				ok = ok || !tk.IsKThread()
			case "kernel":
				ok = ok || tk.IsKThread()
			default:
				m, _ := path.Match(s, tk.Comm)
				ok = ok || m
			}
		}
		if ok {
			out = append(out, tk)
		}
	}
	slices.SortStableFunc(out, func(a, b *linux.Task) int { return a.TID - b.TID })
	return out, nil
}
