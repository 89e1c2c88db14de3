package linux

import (
	"errors"
	"fmt"
	"iter"

	"github.com/kinspect/kinspect/objects"
)

// Walkers of the scheduler's per-CPU runqueues (kernel/sched/sched.h):
// struct rq, its CFS red-black tree of sched_entity, its RT priority
// array of sched_rt_entity lists and its deadline tree, as crash's runq
// shows them.

// maxGroupDepth bounds the nesting of CFS task groups (the kernel's
// own bound is the depth of the cgroup hierarchy).
const maxGroupDepth = 64

// CPURQ returns CPU cpu's runqueue (struct rq), the per-CPU runqueues:
// cpu_rq(cpu).
func CPURQ(p *objects.Program, cpu int) (objects.Value, error) {
	v, err := perCPUMember(p, cpu, "runqueues", "")
	if err != nil {
		return objects.Value{}, fmt.Errorf("runqueue of CPU %d: %w", cpu, err)
	}
	return v, nil
}

// RQTask is a task on a runqueue: the one running, or one queued.
type RQTask struct {
	Task objects.Hex `json:"task"`
	PID  int         `json:"pid"`
	Comm string      `json:"comm"`
	// Prio is task->prio, the kernel's priority (0-99 RT, 100-139
	// normal: 120 is nice 0), as crash prints it in brackets.
	Prio int `json:"prio"`
	// Policy is the scheduling class the task was queued by: "CFS"
	// (fair), "RT", "DL" (deadline); the current task's is its own.
	Class string `json:"class"`
	// Vruntime is se.vruntime, ns of weighted run time (CFS), and
	// ExecRuntime se.sum_exec_runtime, the ns it ran in all.
	Vruntime    uint64 `json:"vruntime"`
	ExecRuntime uint64 `json:"exec_runtime"`
	// LastArrival is sched_info.last_arrival, the runqueue clock (ns)
	// when it last began to run, 0 where unknown.
	LastArrival uint64 `json:"last_arrival"`
	// Group is the CFS task group's cfs_rq the task is queued on, 0 for
	// the root's; Depth how deep that group is (se.depth).
	Group objects.Hex `json:"group,omitempty"`
	Depth int         `json:"depth,omitempty"`
	// Delayed: the entity stays queued after its task went to sleep,
	// until its lag is spent (6.12+, sched_delayed, "sched/fair:
	// Implement delayed dequeue").
	Delayed bool `json:"delayed,omitempty"`
}

// RunQueue is a CPU's runqueue as crash's runq shows it.
type RunQueue struct {
	CPU int         `json:"cpu"`
	RQ  objects.Hex `json:"rq"`
	// Clock is rq->clock, ns, the runqueue's last update of its clock.
	Clock     uint64 `json:"clock"`
	NrRunning int    `json:"nr_running"`
	Current   RQTask `json:"current"`
	// Idle: the current task is the CPU's idle task (swapper/N).
	Idle bool `json:"idle"`
	// RT, CFS and DL are the queued tasks (the current task is not
	// queued in its class's tree, as the kernel takes it out while it
	// runs): RT by priority, then in queue order; CFS in vruntime
	// order of the root's tree, a group's tasks where its entity is;
	// DL by deadline.
	RT  []RQTask `json:"rt"`
	CFS []RQTask `json:"cfs"`
	DL  []RQTask `json:"dl"`
}

// RunQueues reads every possible CPU's runqueue. A task that cannot
// be read is left out and noted in the Program's damage log, as is a
// damaged link of a queue's tree or list; a runqueue that cannot be
// read at all ends the walk with an error, after those read before.
func RunQueues(p *objects.Program) ([]RunQueue, error) {
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return nil, fmt.Errorf("runq: %w", err)
	}
	var out []RunQueue
	for _, cpu := range cpus {
		rq, err := ReadRunQueue(p, cpu)
		if err != nil {
			return out, fmt.Errorf("runq: %w", err)
		}
		out = append(out, *rq)
	}
	return out, nil
}

// ReadRunQueue reads CPU cpu's runqueue: its current task and the tasks
// queued in its RT, CFS and deadline classes.
func ReadRunQueue(p *objects.Program, cpu int) (*RunQueue, error) {
	rq, err := CPURQ(p, cpu)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*RunQueue, error) {
		return nil, fmt.Errorf("runqueue of CPU %d at %#x: %w", cpu, rq.Addr(), err)
	}
	out := &RunQueue{CPU: cpu, RQ: objects.Hex(rq.Addr()), RT: []RQTask{}, CFS: []RQTask{}, DL: []RQTask{}}
	if out.Clock, err = rq.MemberUint("clock"); err != nil {
		return fail(err)
	}
	n, err := rq.MemberUint("nr_running")
	if err != nil {
		return fail(err)
	}
	out.NrRunning = int(n)
	cur, err := rq.Path("curr")
	if err == nil {
		cur, err = cur.Deref()
	}
	if err != nil {
		return fail(err)
	}
	if out.Current, err = newRQTask(cur, ""); err != nil {
		return fail(err)
	}
	if idle, err := rq.MemberUint("idle"); err == nil && idle == cur.Addr() {
		out.Idle = true
	}
	walk := fmt.Sprintf("runqueue of CPU %d", cpu)
	note := func(err error, what string) {
		if d := objects.AsDamage(err); d != nil {
			p.NoteDamage(d)
			return
		}
		p.NoteDamage(&objects.Damage{Walk: walk, Object: what, Expected: "a readable queue", Err: err})
	}
	for t, err := range rtQueued(rq) {
		if err != nil {
			note(err, "RT priority array")
			continue
		}
		out.RT = append(out.RT, t)
	}
	cfs, err := rq.Member("cfs")
	if err != nil {
		return fail(err)
	}
	for t, err := range cfsQueued(cfs, 0) {
		if err != nil {
			note(err, "CFS tasks_timeline")
			continue
		}
		out.CFS = append(out.CFS, t)
	}
	if dl, err := rq.Path("dl.root"); err == nil {
		for se, err := range objects.RBTreeForEachEntry(dl, "struct sched_dl_entity", "rb_node") {
			if err != nil {
				note(err, "deadline tree")
				continue
			}
			t, err := entityTask(se, "dl", "DL")
			if err != nil {
				note(err, "deadline entity")
				continue
			}
			out.DL = append(out.DL, t)
		}
	}
	return out, nil
}

// newRQTask reads the runqueue's view of a task. class is the class
// it was queued by, or "" to take it from its scheduling class.
func newRQTask(task objects.Value, class string) (RQTask, error) {
	p := task.Program()
	t := RQTask{Task: objects.Hex(task.Addr()), Class: class}
	pid, err := task.MemberInt("pid")
	if err != nil {
		return t, err
	}
	t.PID = int(pid)
	comm, err := task.Member("comm")
	if err == nil {
		t.Comm, err = comm.CString()
	}
	if err != nil {
		return t, err
	}
	prio, err := task.MemberInt("prio")
	if err != nil {
		return t, err
	}
	t.Prio = int(prio)
	if t.Vruntime, err = task.MemberUint("se.vruntime"); err != nil {
		return t, err
	}
	if t.ExecRuntime, err = task.MemberUint("se.sum_exec_runtime"); err != nil {
		return t, err
	}
	t.LastArrival, _ = task.MemberUint("sched_info.last_arrival")
	if class == "" {
		t.Class = "CFS"
		if sc, err := task.MemberUint("sched_class"); err == nil {
			switch knownFunc(p, schedClasses, sc) {
			case "rt_sched_class":
				t.Class = "RT"
			case "dl_sched_class":
				t.Class = "DL"
			case "idle_sched_class":
				t.Class = "IDLE"
			case "stop_sched_class":
				t.Class = "STOP"
			case "ext_sched_class":
				t.Class = "EXT"
			}
		}
	}
	return t, nil
}

// schedClasses are the struct sched_class objects a task's sched_class
// points to, by symbol.
var schedClasses = []string{"rt_sched_class", "dl_sched_class", "idle_sched_class", "stop_sched_class", "ext_sched_class", "fair_sched_class"}

// entityTask returns the task whose member is entity se (se, rt or dl).
func entityTask(se objects.Value, member, class string) (RQTask, error) {
	a, err := objects.ObjectAddr(se, "entity")
	if err != nil {
		return RQTask{}, err
	}
	task, err := objects.ContainerOf(se, "struct task_struct", member)
	if err != nil {
		return RQTask{}, fmt.Errorf("task of entity %#x: %w", a, err)
	}
	t, err := newRQTask(task, class)
	if err != nil {
		return RQTask{}, fmt.Errorf("task %#x: %w", task.Addr(), err)
	}
	return t, nil
}

// cfsQueued yields the tasks queued on a cfs_rq, in the order of its
// tasks_timeline, descending into the cfs_rq of each group entity
// (se->my_q, CONFIG_FAIR_GROUP_SCHED) where it is.
func cfsQueued(cfs objects.Value, depth int) iter.Seq2[RQTask, error] {
	return func(yield func(RQTask, error) bool) {
		p := cfs.Program()
		group := uint64(0)
		if depth > 0 {
			group = cfs.Addr()
		}
		if depth > maxGroupDepth {
			yield(RQTask{}, &objects.Damage{Walk: "CFS task groups", Addr: objects.Hex(cfs.Addr()), Object: "struct cfs_rq",
				Expected: fmt.Sprintf("groups nested at most %d deep", maxGroupDepth), Err: objects.ErrCorrupt})
			return
		}
		tl, err := cfs.Member("tasks_timeline")
		if err != nil {
			yield(RQTask{}, err)
			return
		}
		for se, err := range objects.RBTreeForEachEntry(tl, "struct sched_entity", "run_node") {
			if err != nil {
				if !yield(RQTask{}, err) {
					return
				}
				continue
			}
			myq, err := se.MemberUint("my_q")
			if err != nil && !errors.Is(err, objects.ErrNotFound) {
				if !yield(RQTask{}, fmt.Errorf("sched_entity %#x: %w", se.Addr(), err)) {
					return
				}
				continue
			}
			if myq != 0 {
				q, err := p.ObjectOf("struct cfs_rq", myq)
				if err != nil {
					yield(RQTask{}, err)
					return
				}
				for t, err := range cfsQueued(q, depth+1) {
					if !yield(t, err) {
						return
					}
				}
				continue
			}
			t, err := entityTask(se, "se", "CFS")
			if err == nil {
				t.Group, t.Depth = objects.Hex(group), depth
				if d, e := se.MemberUint("sched_delayed"); e == nil {
					t.Delayed = d != 0
				}
			}
			if !yield(t, err) {
				return
			}
		}
	}
}

// rtQueued yields the tasks queued on a runqueue's rt_rq: its priority
// array's lists, highest priority (lowest index) first.
func rtQueued(rq objects.Value) iter.Seq2[RQTask, error] {
	return func(yield func(RQTask, error) bool) {
		queue, err := rq.Path("rt.active.queue")
		if err != nil {
			yield(RQTask{}, err)
			return
		}
		n, err := queue.Len()
		if err != nil {
			yield(RQTask{}, err)
			return
		}
		for i := range n {
			head, err := queue.Index(int64(i))
			if err != nil {
				yield(RQTask{}, err)
				return
			}
			if empty, err := objects.ListEmpty(head); err != nil || empty {
				if err != nil && !yield(RQTask{}, err) {
					return
				}
				continue
			}
			for rt, err := range objects.ListForEachEntry(head, "struct sched_rt_entity", "run_list") {
				if err != nil {
					if !yield(RQTask{}, err) {
						return
					}
					continue
				}
				// A group's entity (RT_GROUP_SCHED) has a queue of its own.
				if myq, err := rt.MemberUint("my_q"); err == nil && myq != 0 {
					continue
				}
				if !yield(entityTask(rt, "rt", "RT")) {
					return
				}
			}
		}
	}
}
