package linux

import (
	"fmt"
	"slices"

	"github.com/kinspect/kinspect/objects"
)

// PSRow is one task as crash's ps lists it.
type PSRow struct {
	// PID is the thread group's ID, TID the task's own.
	PID  int         `json:"pid"`
	TID  int         `json:"tid"`
	PPID int         `json:"ppid"` // -1: the parent cannot be read
	CPU  int         `json:"cpu"`
	Task objects.Hex `json:"task"`
	// State is the letter ps and /proc show.
	State string `json:"state"`
	// Comm is task->comm; Name the name /proc shows (a workqueue
	// worker's with its workqueue, a kthread's in full).
	Comm string `json:"comm"`
	Name string `json:"name"`
	// Running says the task was running on a CPU (its runqueue's curr).
	Running bool `json:"running"`
	// KThread: a kernel thread (or an idle task), which ps brackets.
	KThread bool `json:"-"`
}

// PSRows reads the idle task of every CPU and every task, marking those
// running on a CPU, sorted by PID (the idle tasks by CPU first). A name
// that cannot be read (a kthread's or worker's, in a filtered dump) is
// the comm, with a note.
//
// In a damaged kernel, a task that cannot be read (its page missing
// from the dump, or garbage) is left out and noted in the Program's
// damage log, as is every damaged link of the walk (ForEachTask, which
// also recovers what the lists lost); the error is for a walk that
// could not start.
func PSRows(p *objects.Program) ([]PSRow, []string, error) {
	var notes []string
	ncpu, err := p.NrCPUIDs()
	if err != nil {
		return nil, nil, fmt.Errorf("ps: %w", err)
	}
	running := map[uint64]bool{}
	var out []PSRow
	unreadable := func(what string, addr uint64, err error) {
		p.NoteDamage(&objects.Damage{Walk: "ps", Addr: objects.Hex(addr), Object: what, Expected: "a readable task", Err: err})
	}
	for cpu := range ncpu {
		if cur, err := CurrentTask(p, cpu); err != nil {
			unreadable(fmt.Sprintf("current task of CPU %d", cpu), 0, err)
		} else {
			running[cur.Addr()] = true
		}
		idle, err := IdleTask(p, cpu)
		if err != nil {
			unreadable(fmt.Sprintf("idle task of CPU %d", cpu), 0, err)
			continue
		}
		e, err := psRow(idle, &notes)
		if err != nil {
			unreadable(fmt.Sprintf("idle task of CPU %d", cpu), idle.Addr(), err)
			continue
		}
		e.KThread = true // PF_IDLE, and no PF_KTHREAD
		out = append(out, e)
	}
	var werr error
	for t, err := range ForEachTask(p) {
		if err != nil {
			if !objects.IsDamage(err) {
				werr = fmt.Errorf("ps: %w", err)
				break
			}
			continue
		}
		e, err := psRow(t, &notes)
		if err != nil {
			unreadable("struct task_struct", t.Addr(), err)
			continue
		}
		out = append(out, e)
	}
	for i := range out {
		out[i].Running = running[uint64(out[i].Task)]
	}
	slices.SortStableFunc(out, func(a, b PSRow) int { return a.TID - b.TID })
	return out, notes, werr
}

func psRow(task objects.Value, notes *[]string) (PSRow, error) {
	t, err := NewTask(task)
	if err != nil {
		return PSRow{}, err
	}
	if t.ParentErr != nil {
		task.Program().NoteDamage(&objects.Damage{Walk: "ps", Addr: objects.Hex(t.Addr), Object: "struct task_struct",
			Expected: "a readable real_parent", Recovery: "its PPID is unknown (-1)", Err: t.ParentErr})
	}
	name, err := TaskName(task)
	if err != nil {
		*notes = append(*notes, fmt.Sprintf("task %d (%#x): full name unknown, showing comm: %v", t.TID, t.Addr, err))
		name = t.Comm
	}
	return PSRow{PID: t.PID, TID: t.TID, PPID: t.PPID, CPU: t.CPU, Task: objects.Hex(t.Addr),
		State: string(t.State.Letter()), Comm: t.Comm, Name: name, KThread: t.IsKThread()}, nil
}
