package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "ps", summary: "list tasks: every thread, with state and CPU (like crash's ps)", run: runPs})
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

// psEntry is one task of ps; the text and JSON printers render it.
type psEntry struct {
	PID     int         `json:"pid"`
	TID     int         `json:"tid"`
	PPID    int         `json:"ppid"`
	CPU     int         `json:"cpu"`
	Task    objects.Hex `json:"task"`
	State   string      `json:"state"`
	Comm    string      `json:"comm"`
	Name    string      `json:"name"`
	Running bool        `json:"running"`
	kthread bool
}

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
	tasks, notes, werr := psTasks(k.Program())
	if werr != nil && (e.json || len(tasks) == 0) {
		return werr
	}
	if len(pids) > 0 {
		tasks = slices.DeleteFunc(tasks, func(t psEntry) bool {
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

// psTasks reads the idle task of every CPU and every task, marking those
// running on a CPU, sorted by PID (the idle tasks by CPU first). A name
// that cannot be read (a kthread's or worker's, in a filtered dump) is
// the comm, with a note; a walk that fails returns what it read before.
func psTasks(p *objects.Program) ([]psEntry, []string, error) {
	var notes []string
	ncpu, err := p.NrCPUIDs()
	if err != nil {
		return nil, nil, fmt.Errorf("ps: %w", err)
	}
	running := map[uint64]bool{}
	var out []psEntry
	finish := func(err error) ([]psEntry, []string, error) {
		for i := range out {
			out[i].Running = running[uint64(out[i].Task)]
		}
		slices.SortStableFunc(out, func(a, b psEntry) int { return a.TID - b.TID })
		if err != nil {
			err = fmt.Errorf("ps: %w", err)
		}
		return out, notes, err
	}
	for cpu := range ncpu {
		cur, err := linux.CurrentTask(p, cpu)
		if err != nil {
			return finish(err)
		}
		a, _ := cur.Address()
		running[a] = true
		idle, err := linux.IdleTask(p, cpu)
		if err != nil {
			return finish(err)
		}
		e, err := psRead(idle, &notes)
		if err != nil {
			return finish(err)
		}
		e.kthread = true // PF_IDLE, and no PF_KTHREAD
		out = append(out, e)
	}
	for t, err := range linux.ForEachTask(p) {
		if err != nil {
			return finish(err)
		}
		e, err := psRead(t, &notes)
		if err != nil {
			return finish(err)
		}
		out = append(out, e)
	}
	return finish(nil)
}

func psRead(task objects.Value, notes *[]string) (psEntry, error) {
	t, err := linux.NewTask(task)
	if err != nil {
		return psEntry{}, err
	}
	name, err := linux.TaskName(task)
	if err != nil {
		*notes = append(*notes, fmt.Sprintf("task %d (%#x): full name unknown, showing comm: %v", t.TID, t.Addr, err))
		name = t.Comm
	}
	return psEntry{PID: t.PID, TID: t.TID, PPID: t.PPID, CPU: t.CPU, Task: objects.Hex(t.Addr),
		State: string(t.State.Letter()), Comm: t.Comm, Name: name, kthread: t.IsKThread()}, nil
}

func printPs(w io.Writer, tasks []psEntry) {
	fmt.Fprintf(w, "   %7s %7s %4s %16s  %2s  %s\n", "PID", "PPID", "CPU", "TASK", "ST", "COMM")
	for _, t := range tasks {
		mark := " "
		if t.Running {
			mark = ">"
		}
		name := t.Name
		if t.kthread {
			name = "[" + name + "]"
		}
		fmt.Fprintf(w, "%s  %7d %7d %4d %016x  %2s  %s\n", mark, t.TID, t.PPID, t.CPU, uint64(t.Task), t.State, name)
	}
}
