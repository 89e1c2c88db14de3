package linux

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// Task walkers and accessors of include/linux/sched.h, sched/signal.h and
// fs/proc/array.c. Every task below is a struct task_struct object.

// ForEachProcess yields each thread-group leader, as for_each_process:
// those on init_task.tasks (init_task, the list's head, is not
// yielded). In a damaged kernel a broken link is a *Damage (noted in the
// Program's log), and the leaders the list lost are recovered as
// ForEachTask recovers tasks.
func ForEachProcess(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		for t, err := range ForEachTask(p) {
			if err != nil {
				if !yield(objects.Value{}, err) || !objects.IsDamage(err) {
					return
				}
				continue
			}
			pid, err1 := t.MemberInt("pid")
			tgid, err2 := t.MemberInt("tgid")
			if err1 != nil || err2 != nil || pid != tgid {
				continue
			}
			if !yield(t, nil) {
				return
			}
		}
	}
}

// processList yields the leaders on init_task.tasks, walked back from
// its head past a broken link (objects.ListForEach).
func processList(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		init, err := p.Variable("init_task")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("for_each_process: %w", err))
			return
		}
		head, err := init.Member("tasks")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("for_each_process: %w", err))
			return
		}
		for t, err := range objects.ListForEachEntry(head, "struct task_struct", "tasks") {
			if err != nil {
				if d := p.DamageOf(err, "init_task.tasks"); d != nil {
					if !yield(objects.Value{}, d) {
						return
					}
					continue
				}
				yield(objects.Value{}, fmt.Errorf("for_each_process: %w", err))
				return
			}
			if !yield(t, nil) {
				return
			}
		}
	}
}

// ForEachThread yields every thread of task's thread group, the leader
// included, as for_each_thread: the list signal->thread_head linked by
// task->thread_node (3.14+, 0c740d0afc3b "introduce for_each_thread() to
// replace the buggy while_each_thread()"), or, where BTF has no
// thread_head, the ring of task->thread_group (removed in 6.7 by
// 8e1f385104ac "kill task_struct->thread_group"), starting at task.
func ForEachThread(task objects.Value) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		addr, err := objects.ObjectAddr(task, "for_each_thread")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		sig, err := task.Member("signal")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("for_each_thread of task %#x: %w", addr, err))
			return
		}
		if head, herr := sig.Member("thread_head"); herr == nil {
			yieldThreads(task.Program(), addr, objects.ListForEachEntry(head, "struct task_struct", "thread_node"), yield)
			return
		} else if !errors.Is(herr, objects.ErrNotFound) {
			yield(objects.Value{}, fmt.Errorf("for_each_thread of task %#x: %w", addr, herr))
			return
		}
		// Before 3.14: the leader, then the ring of thread_group.
		obj := task.Program().Object(task.Type(), addr)
		if _, isPtr := btfload.Underlying(task.Type()).(*btf.Pointer); isPtr {
			obj, _ = task.Deref()
		}
		if !yield(obj, nil) {
			return
		}
		ring, err := obj.Member("thread_group")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("for_each_thread of task %#x: %w", addr, err))
			return
		}
		yieldThreads(task.Program(), addr, objects.ListForEachEntry(ring, "struct task_struct", "thread_group"), yield)
	}
}

// yieldThreads passes a thread list's tasks on, each damaged link as
// damage of task addr's threads, the walk going on past it.
func yieldThreads(p *objects.Program, addr uint64, list iter.Seq2[objects.Value, error], yield func(objects.Value, error) bool) {
	for t, err := range list {
		if err != nil {
			if d := p.DamageOf(err, fmt.Sprintf("threads of task %#x", addr)); d != nil {
				if !yield(objects.Value{}, d) {
					return
				}
				continue
			}
			yield(objects.Value{}, fmt.Errorf("for_each_thread of task %#x: %w", addr, err))
			return
		}
		if !yield(t, nil) {
			return
		}
	}
}

// ForEachTask yields every task (thread) of every process, as
// for_each_process_thread. The idle tasks (swapper/N, pid 0), which are
// on no list, are not yielded: see IdleTask.
//
// In a damaged kernel the lists lose tasks. Each damaged link is a
// *Damage (noted in the Program's log); the walk then goes on with the
// kernel's other indexes of tasks, as crash builds its task table from
// the PID hash as well as the task list: the PID IDR of the initial PID
// namespace (which holds every task's PID, whatever namespace it lives
// in: a task has a number at every level up to the root) and the
// runqueues' current tasks, then the thread rings and children lists of
// every task found (walked from the tasks, where the lists' heads are
// lost), and the task_struct slab cache. The tasks only they found are
// yielded after the others, and
// named in one more *Damage saying which index found them. A task is
// yielded once.
func ForEachTask(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		seen := map[uint64]bool{}
		damaged := false
		// emit yields t once; false ends the walk.
		var all []objects.Value // every task yielded, in order
		emit := func(t objects.Value) bool {
			a, _ := t.Address()
			if seen[a] {
				return true
			}
			seen[a] = true
			all = append(all, t)
			return yield(t, nil)
		}
		// hurt yields a damage; false ends the walk.
		hurt := func(d *objects.Damage) bool {
			damaged = true
			return yield(objects.Value{}, d)
		}
		for leader, err := range processList(p) {
			if err != nil {
				d := objects.AsDamage(err)
				if d == nil {
					d = p.NoteDamage(&objects.Damage{Walk: "init_task.tasks", Expected: "a walkable task list", Err: err})
				}
				if !hurt(d) {
					return
				}
				if objects.AsDamage(err) == nil {
					break
				}
				continue
			}
			threads := 0
			for t, err := range ForEachThread(leader) {
				if err != nil {
					d := objects.AsDamage(err)
					if d == nil {
						la, _ := leader.Address()
						d = p.NoteDamage(&objects.Damage{Walk: fmt.Sprintf("threads of task %#x", la), Addr: objects.Hex(la),
							Object: "struct task_struct", Expected: "a readable thread list", Err: err})
					}
					if !hurt(d) {
						return
					}
					if objects.AsDamage(err) == nil {
						break
					}
					continue
				}
				threads++
				if !emit(t) {
					return
				}
			}
			if threads == 0 && !emit(leader) {
				return
			}
		}
		if !damaged {
			return
		}
		var found []string
		var index []string
		recovered := func(t objects.Value, how string) bool {
			a, _ := t.Address()
			if seen[a] {
				return true
			}
			pid, err := t.MemberInt("pid")
			if err != nil {
				// An index points at a task_struct the dump lacks (a
				// misfiltered or absent page): name it, yield nothing a
				// caller could not read.
				seen[a] = true
				return yield(objects.Value{}, p.NoteDamage(&objects.Damage{Walk: "tasks (" + how + ")", Addr: objects.Hex(a),
					Object: "struct task_struct", Expected: "a readable task_struct", Err: err}))
			}
			found = append(found, fmt.Sprintf("pid %d (%#x)", pid, a))
			if !slices.Contains(index, how) {
				index = append(index, how)
			}
			return emit(t)
		}
		for t, err := range pidIDRTasks(p) {
			if err != nil {
				if d := objects.AsDamage(err); d != nil {
					if !yield(objects.Value{}, d) {
						return
					}
					continue
				}
				p.NoteDamage(&objects.Damage{Walk: "init_pid_ns.idr", Expected: "a walkable PID IDR", Err: err})
				break
			}
			if !recovered(t, "the PID IDR (init_pid_ns.idr)") {
				return
			}
		}
		if n, err := p.NrCPUIDs(); err == nil {
			for cpu := range n {
				t, err := CurrentTask(p, cpu)
				if err != nil {
					continue
				}
				if idle, err := IdleTask(p, cpu); err == nil {
					if a, _ := idle.Address(); t.Addr() == a {
						continue
					}
				}
				if !recovered(t, "the runqueues' current tasks") {
					return
				}
			}
		}
		// Every task found so far links to others the lists lost: the
		// threads on its thread ring (walked from the task itself, for
		// when the ring's head, in the signal_struct, is what is gone)
		// and its children (leaders, on task->children by sibling).
		// init_task's children are init and kthreadd.
		// Last, the task_struct slab cache: every allocated task_struct
		// whose page the dump holds, for the tasks no link reaches (a
		// run of them between two missing pages of a list).
		slabDone := false
		for i := -1; ; i++ {
			if i == len(all) {
				if slabDone {
					break
				}
				slabDone = true
				for t := range slabTasks(p) {
					if !recovered(t, "the task_struct slab cache") {
						return
					}
				}
				if i == len(all) {
					break
				}
			}
			var t objects.Value
			if i < 0 {
				init, err := p.Variable("init_task")
				if err != nil {
					continue
				}
				t = init
			} else {
				t = all[i]
				for th := range threadRing(t) {
					if !recovered(th, "the thread rings") {
						return
					}
				}
			}
			kids, err := t.Member("children")
			if err != nil {
				continue
			}
			for c, err := range objects.ListForEachEntry(kids, "struct task_struct", "sibling") {
				if err != nil {
					if d := p.DamageOf(err, fmt.Sprintf("children of task %#x", t.Addr())); d != nil {
						if !yield(objects.Value{}, d) {
							return
						}
						continue
					}
					break
				}
				if !recovered(c, "the children lists") {
					return
				}
			}
		}
		if len(found) > 0 {
			yield(objects.Value{}, p.NoteDamage(&objects.Damage{Walk: "tasks",
				Expected: "every task on init_task.tasks and its thread lists",
				Found:    fmt.Sprintf("%d more: %s", len(found), strings.Join(found, ", ")),
				Recovery: "found through " + strings.Join(index, " and "), Err: objects.ErrCorrupt}))
		}
	}
}

// slabTasks yields the allocated objects of the task_struct slab cache
// that look like tasks (a plausible pid, not the idle tasks' 0):
// SlabCacheForEachAllocatedObject walks every
// struct page, so it is only asked when the lists are damaged.
func slabTasks(p *objects.Program) iter.Seq[objects.Value] {
	return func(yield func(objects.Value) bool) {
		cache, err := FindSlabCache(p, "task_struct")
		if err != nil {
			return
		}
		for t, err := range SlabCacheForEachAllocatedObject(cache, "struct task_struct") {
			if err != nil {
				return
			}
			pid, err1 := t.MemberInt("pid")
			tgid, err2 := t.MemberInt("tgid")
			if err1 != nil || err2 != nil || pid <= 0 || tgid <= 0 || pid > 1<<22 || tgid > 1<<22 {
				continue
			}
			if !yield(t) {
				return
			}
		}
	}
}

// threadRing yields the other threads on task's thread ring, walked from
// the task itself both ways (objects.ListForEachEntryFrom), stopping at
// the ring's head in task->signal without reading it.
func threadRing(task objects.Value) iter.Seq[objects.Value] {
	return func(yield func(objects.Value) bool) {
		p := task.Program()
		member, head := "thread_node", uint64(0)
		if off, _, err := p.MemberOffset("struct signal_struct", "thread_head"); err == nil {
			sig, err := task.MemberUint("signal")
			if err != nil {
				return
			}
			head = sig + off
		} else {
			member = "thread_group" // before 3.14: a ring of tasks, no head
		}
		for t, err := range objects.ListForEachEntryFrom(task, head, "struct task_struct", member) {
			if err != nil || !yield(t) {
				return
			}
		}
	}
}

// pidIDRTasks yields the task of every PID in the initial PID namespace's
// IDR (init_pid_ns.idr, 4.15+: 95846ecf9dac "pid: replace pid bitmap
// implementation with IDR API"), as pid_task(pid, PIDTYPE_PID): the
// first task on pid->tasks[PIDTYPE_PID], linked by task->pid_links[0]
// (4.19+; task->pids[PIDTYPE_PID].node before).
func pidIDRTasks(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		ns, err := p.Variable("init_pid_ns")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		idr, err := ns.Member("idr")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		member := "pid_links[0]"
		if _, _, err := p.MemberOffset("struct task_struct", member); err != nil {
			member = "pids[0].node"
		}
		for e, err := range objects.IDRForEachEntry(idr, "struct pid") {
			if err != nil {
				if d := p.DamageOf(err, "init_pid_ns.idr"); d != nil {
					if !yield(objects.Value{}, d) {
						return
					}
					continue
				}
				yield(objects.Value{}, err)
				return
			}
			head, err := e.Value.Path("tasks[0]")
			if err != nil {
				yield(objects.Value{}, p.NoteDamage(&objects.Damage{Walk: "init_pid_ns.idr", Addr: objects.Hex(e.Value.Addr()),
					Object: fmt.Sprintf("struct pid of %d", e.Index), Expected: "a readable struct pid", Err: err}))
				continue
			}
			for t, err := range objects.HlistForEachEntry(head, "struct task_struct", member) {
				if err != nil {
					if d := p.DamageOf(err, fmt.Sprintf("tasks of pid %d", e.Index)); d != nil {
						yield(objects.Value{}, d)
					}
					break
				}
				if !yield(t, nil) {
					return
				}
				break // PIDTYPE_PID has one task
			}
		}
	}
}

// FindTask returns the task whose pid (the thread's ID) is tid, as
// find_task_by_pid_ns in the initial namespace, by walking every task.
// Errors wrap ErrNotFound, or are the walk's.
func FindTask(p *objects.Program, tid int) (objects.Value, error) {
	for t, err := range ForEachTask(p) {
		if err != nil {
			if objects.IsDamage(err) {
				continue
			}
			return objects.Value{}, err
		}
		pid, err := t.MemberInt("pid")
		if err != nil {
			continue // an unreadable task is not the one
		}
		if int(pid) == tid {
			return t, nil
		}
	}
	return objects.Value{}, fmt.Errorf("no task with pid %d: %w", tid, objects.ErrNotFound)
}

// TaskCPU returns the CPU a task last ran on, as task_cpu:
// task->thread_info.cpu (5.16+, bcf9033e5449 "sched: move CPU field back
// into thread_info if THREAD_INFO_IN_TASK"), else task->cpu (4.9-5.15).
func TaskCPU(task objects.Value) (int, error) {
	if c, err := task.Path("thread_info.cpu"); err == nil {
		n, err := c.Uint()
		return int(n), err
	} else if !errors.Is(err, objects.ErrNotFound) {
		return 0, err
	}
	n, err := task.MemberInt("cpu")
	return int(n), err
}

// CurrentTask returns the task running on cpu, the per-CPU current
// (get_current): the per-CPU variable current_task (x86 before 6.2, and
// again from 6.15), or pcpu_hot.current_task (6.2-6.14, 7d9b7d2b5ee7
// "x86/percpu: Move current_task to percpu hot section"), whichever BTF's
// per-CPU section has. Falls back to runqueues.curr (cpu_curr) elsewhere.
func CurrentTask(p *objects.Program, cpu int) (objects.Value, error) {
	var cur objects.Value
	var err error
	if _, e := p.Types().PerCPUVar("current_task"); e == nil {
		cur, err = perCPUMember(p, cpu, "current_task", "")
	} else if _, e := p.Types().PerCPUVar("pcpu_hot"); e == nil {
		cur, err = perCPUMember(p, cpu, "pcpu_hot", "current_task")
	} else {
		cur, err = perCPUMember(p, cpu, "runqueues", "curr")
	}
	if err != nil {
		return objects.Value{}, fmt.Errorf("current task of CPU %d: %w", cpu, err)
	}
	t, err := cur.Deref()
	if err != nil {
		return objects.Value{}, fmt.Errorf("current task of CPU %d: %w", cpu, err)
	}
	return t, nil
}

// IdleTask returns CPU cpu's idle task (swapper/N), runqueues.idle, as
// idle_task(cpu).
func IdleTask(p *objects.Program, cpu int) (objects.Value, error) {
	v, err := perCPUMember(p, cpu, "runqueues", "idle")
	if err == nil {
		v, err = v.Deref()
	}
	if err != nil {
		return objects.Value{}, fmt.Errorf("idle task of CPU %d: %w", cpu, err)
	}
	return v, nil
}

// perCPUMember reads CPU cpu's copy of the per-CPU variable name, and of
// its member path when given.
func perCPUMember(p *objects.Program, cpu int, name, path string) (objects.Value, error) {
	v, err := p.Variable(name)
	if err != nil {
		return objects.Value{}, err
	}
	v, err = p.PerCPU(v, cpu)
	if err != nil || path == "" {
		return v, err
	}
	return v.Path(path)
}

// TaskState is a task's state as /proc shows it: an index into
// fs/proc/array.c's task_state_array, the "RSDTtXZPI" of ps.
type TaskState uint8

// The states of task_state_array, in its order.
const (
	TaskRunning     TaskState = iota // R (running)
	TaskSleeping                     // S (sleeping)
	TaskDiskSleep                    // D (disk sleep)
	TaskStopped                      // T (stopped)
	TaskTracingStop                  // t (tracing stop)
	TaskDead                         // X (dead)
	TaskZombie                       // Z (zombie)
	TaskParked                       // P (parked)
	TaskIdle                         // I (idle)
)

const taskStateLetters = "RSDTtXZPI"

var taskStateNames = [...]string{"running", "sleeping", "disk sleep", "stopped", "tracing stop", "dead", "zombie", "parked", "idle"}

// Letter is the state's letter as ps and /proc/PID/stat show it; '?' for
// an index past the table.
func (s TaskState) Letter() byte {
	if int(s) < len(taskStateLetters) {
		return taskStateLetters[s]
	}
	return '?'
}

// String is the state as /proc/PID/status shows it: "S (sleeping)".
func (s TaskState) String() string {
	if int(s) < len(taskStateNames) {
		return fmt.Sprintf("%c (%s)", s.Letter(), taskStateNames[s])
	}
	return fmt.Sprintf("? (state index %d)", uint8(s))
}

// The task state bits of include/linux/sched.h that task_state_index
// reads. They are macros, absent from BTF; their values are unchanged
// since they were introduced.
const (
	taskInterruptible   = 0x0001
	taskUninterruptible = 0x0002
	taskReport          = 0x007f // TASK_REPORT: the states up to TASK_PARKED
	taskReportIdle      = taskReport + 1
	taskNoload          = 0x0400
	taskIdleBits        = taskUninterruptible | taskNoload // TASK_IDLE
	taskRTLockWait      = 0x1000                           // 5.15+
	taskFrozen          = 0x8000                           // 6.1+ (unused before)
)

// TaskStateIndex computes the /proc state of a task from its __state
// (or state) and exit_state, as the kernel's __task_state_index: the
// highest TASK_REPORT bit, TASK_IDLE reported as I, and tasks waiting on
// an rtlock or frozen reported as D.
func TaskStateIndex(state, exitState uint64) TaskState {
	s := (state | exitState) & taskReport
	if state&taskIdleBits == taskIdleBits {
		s = taskReportIdle
	}
	if state&(taskRTLockWait|taskFrozen) != 0 {
		s = taskUninterruptible
	}
	n := 0 // fls
	for s != 0 {
		n++
		s >>= 1
	}
	return TaskState(n)
}

// ReadTaskState reads a task's state, as task_state_index: from
// task->__state (5.14+, 2f064a59a11f "sched: Change
// task_struct::state"), else task->state, and task->exit_state.
func ReadTaskState(task objects.Value) (TaskState, error) {
	st, err := task.Member("__state")
	if errors.Is(err, objects.ErrNotFound) {
		st, err = task.Member("state")
	}
	if err != nil {
		return 0, err
	}
	s, err := st.Uint()
	if err != nil {
		return 0, err
	}
	x, err := task.MemberInt("exit_state")
	if err != nil {
		return 0, err
	}
	return TaskStateIndex(s&0xffffffff, uint64(x)&0xffffffff), nil
}

// Task is what ps shows of a task_struct.
type Task struct {
	Addr uint64 // the task_struct's address
	// PID is the thread group's ID (task->tgid), what userspace calls the
	// process ID; TID is the task's own (task->pid).
	PID, TID int
	// PPID is the thread group ID of the real parent (0 for init,
	// kthreadd and the idle tasks), as /proc shows it; -1 where the
	// parent cannot be read (ParentErr says why: in a damaged or
	// filtered dump, the parent's task_struct page may be missing while
	// the task's is not).
	PPID      int
	ParentErr error
	Comm      string // task->comm
	State     TaskState
	CPU       int    // task_cpu
	Flags     uint64 // task->flags (PF_*)
}

// The PF_* flags of include/linux/sched.h that Task and TaskName use.
const (
	PFKThread  = 0x00200000 // PF_KTHREAD: a kernel thread
	PFWQWorker = 0x00000020 // PF_WQ_WORKER: a workqueue worker
)

// IsKThread says the task is a kernel thread.
func (t Task) IsKThread() bool { return t.Flags&PFKThread != 0 }

// ContextSwitches reads a task's voluntary and involuntary context
// switches (task->nvcsw and task->nivcsw: /proc/PID/status's
// voluntary_ctxt_switches and nonvoluntary_ctxt_switches).
func ContextSwitches(task objects.Value) (voluntary, involuntary uint64, err error) {
	v, e1 := task.MemberUint("nvcsw")
	n, e2 := task.MemberUint("nivcsw")
	if err := errors.Join(e1, e2); err != nil {
		return 0, 0, fmt.Errorf("context switches of task %#x: %w", task.Addr(), err)
	}
	return v, n, nil
}

// NewTask reads what ps shows of a task. Errors name the task.
func NewTask(task objects.Value) (*Task, error) {
	addr, err := objects.ObjectAddr(task, "read task")
	if err != nil {
		return nil, err
	}
	t := Task{Addr: addr}
	fail := func(err error) (*Task, error) {
		return nil, fmt.Errorf("task %#x: %w", addr, err)
	}
	pid, err := task.MemberInt("pid")
	if err != nil {
		return fail(err)
	}
	tgid, err := task.MemberInt("tgid")
	if err != nil {
		return fail(err)
	}
	t.TID, t.PID = int(pid), int(tgid)
	c, err := task.Member("comm")
	if err != nil {
		return fail(err)
	}
	if t.Comm, err = c.CString(); err != nil {
		return fail(err)
	}
	if t.State, err = ReadTaskState(task); err != nil {
		return fail(err)
	}
	if t.CPU, err = TaskCPU(task); err != nil {
		return fail(err)
	}
	f, err := task.Member("flags")
	if err == nil {
		t.Flags, err = f.Uint()
	}
	if err != nil {
		return fail(err)
	}
	// /proc: the real parent's tgid while the task is alive (pid_alive:
	// thread_pid set), else 0.
	if t.PID != 0 {
		parent, err := task.Path("real_parent")
		if err != nil {
			return fail(err)
		}
		if pa, err := parent.Uint(); err != nil {
			return fail(err)
		} else if pa != 0 && pa != addr {
			pp, err := parent.Member("tgid")
			if err != nil {
				return fail(fmt.Errorf("real_parent: %w", err))
			}
			n, err := pp.Int()
			if err != nil {
				t.PPID, t.ParentErr = -1, fmt.Errorf("real_parent %#x: %w", pa, err)
			} else {
				t.PPID = int(n)
			}
		}
	}
	return &t, nil
}

// TaskName returns a task's name as /proc/PID/comm shows it
// (proc_task_name): a workqueue worker's comm followed by "+" (busy) or
// "-" and the workqueue it last served (wq_worker_comm), a kernel
// thread's full name (kthread->full_name, 5.17+, when longer than comm),
// else task->comm.
func TaskName(task objects.Value) (string, error) {
	c, err := task.Member("comm")
	if err != nil {
		return "", err
	}
	comm, err := c.CString()
	if err != nil {
		return "", err
	}
	fv, err := task.Member("flags")
	if err != nil {
		return "", err
	}
	flags, err := fv.Uint()
	if err != nil {
		return "", err
	}
	const max = 63 // proc_task_name's char tcomm[64]
	switch {
	case flags&PFWQWorker != 0:
		id, suffix, err := workerComm(task, comm)
		if err != nil {
			return comm, err
		}
		return truncName(id+suffix, max), nil
	case flags&PFKThread != 0:
		kt, err := toKthread(task)
		if err != nil || kt.Addr() == 0 {
			return comm, err
		}
		fn, err := kt.Member("full_name")
		if errors.Is(err, objects.ErrNotFound) {
			return comm, nil // before 5.17 (d6986ce24fc0 "kthread: dynamically allocate memory to store kthread's full name")
		}
		if err != nil {
			return comm, err
		}
		if a, err := fn.Uint(); err != nil || a == 0 {
			return comm, err
		}
		s, err := fn.CString()
		if err != nil {
			return comm, err
		}
		return truncName(s, max), nil
	}
	return comm, nil
}

func truncName(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// toKthread returns a kernel thread's struct kthread, as to_kthread:
// task->worker_private (5.17+, e32cf5dfbe22 "kthread: Generalize
// pf_io_worker so it can point to struct kthread"), else
// task->set_child_tid. A zero address means none.
func toKthread(task objects.Value) (objects.Value, error) {
	ptr, err := task.Member("worker_private")
	if errors.Is(err, objects.ErrNotFound) {
		ptr, err = task.Member("set_child_tid")
	}
	if err != nil {
		return objects.Value{}, err
	}
	a, err := ptr.Uint()
	if err != nil {
		return objects.Value{}, err
	}
	kt, err := task.Program().ObjectOf("struct kthread", a)
	if err != nil {
		return objects.Value{}, err
	}
	return kt, nil
}

// workerComm returns a workqueue worker's name as wq_worker_comm makes
// it: an ID, then "+desc" while it runs a work item, "-desc" otherwise,
// nothing when it has no desc (the worker is kthread_data(task)). The ID
// is task->comm, except where the kernel has format_worker_id (6.12,
// 2a1b02bcba78 "workqueue: Refactor worker ID formatting and make
// wq_worker_comm() use full ID string"), which rebuilds it untruncated.
func workerComm(task objects.Value, comm string) (id, suffix string, err error) {
	p := task.Program()
	kt, err := toKthread(task)
	if err != nil || kt.Addr() == 0 {
		return comm, "", err
	}
	data, err := kt.Member("data")
	if err != nil {
		return comm, "", err
	}
	wa, err := data.Uint()
	if err != nil || wa == 0 {
		return comm, "", err
	}
	w, err := p.ObjectOf("struct worker", wa)
	if err != nil {
		return comm, "", err
	}
	pool, err := w.Member("pool")
	if err != nil {
		return comm, "", err
	}
	pa, err := pool.Uint()
	if err != nil {
		return comm, "", err
	}
	id = comm
	if p.Probe("format_worker_id", func() bool { _, err := p.Symbol("format_worker_id"); return err == nil }) {
		if id, err = formatWorkerID(w, pool, pa); err != nil {
			return comm, "", err
		}
	}
	if pa == 0 {
		// No pool (a rescuer between rescues, a dying worker): the kernel
		// shows no desc, whatever the worker last ran.
		return id, "", nil
	}
	dv, err := w.Member("desc")
	if err != nil {
		return id, "", err
	}
	desc, err := dv.CString()
	if err != nil || desc == "" {
		return id, "", err
	}
	cw, err := w.Member("current_work")
	if err != nil {
		return id, "", err
	}
	busy, err := cw.Bool()
	if err != nil {
		return id, "", err
	}
	if busy {
		return id, "+" + desc, nil
	}
	return id, "-" + desc, nil
}

// formatWorkerID is the kernel's format_worker_id: "kworker/R-WQ" for a
// rescuer, "kworker/CPU:ID" ("H" added for a high-priority pool) or
// "kworker/uPOOL:ID" for a worker of a pool, "kworker/dying" without one.
func formatWorkerID(w, pool objects.Value, poolAddr uint64) (string, error) {
	if rw, err := w.Member("rescue_wq"); err == nil {
		if a, err := rw.Uint(); err != nil {
			return "", err
		} else if a != 0 {
			n, err := rw.Member("name")
			if err != nil {
				return "", err
			}
			s, err := n.CString()
			return "kworker/R-" + s, err
		}
	}
	if poolAddr == 0 {
		return "kworker/dying", nil
	}
	wid, err := w.MemberInt("id")
	if err != nil {
		return "", err
	}
	cpu, err := pool.Member("cpu")
	if err != nil {
		return "", err
	}
	c, err := cpu.Int()
	if err != nil {
		return "", err
	}
	if c < 0 {
		pid, err := pool.Member("id")
		if err != nil {
			return "", err
		}
		n, err := pid.Int()
		return fmt.Sprintf("kworker/u%d:%d", n, wid), err
	}
	h := ""
	if nice, err := pool.Path("attrs->nice"); err != nil {
		return "", err
	} else if n, err := nice.Int(); err != nil {
		return "", err
	} else if n < 0 {
		h = "H"
	}
	return fmt.Sprintf("kworker/%d:%d%s", c, wid, h), nil
}

// PanicCPU returns the CPU that panicked, from the kernel's panic_cpu
// (kernel/panic.c: the CPU that won the right to run panic(), -1 until
// one did); false with no panic.
func PanicCPU(p *objects.Program) (int, bool, error) {
	v, err := p.Variable("panic_cpu")
	if err != nil {
		return -1, false, err
	}
	n, err := v.MemberInt("counter")
	if err != nil {
		return -1, false, err
	}
	return int(n), n >= 0, nil
}

// TaskDetail is what crash's task shows: the task's IDs and the
// task_struct itself, printed through the object engine.
type TaskDetail struct {
	Task  objects.Hex `json:"task"`
	PID   int         `json:"pid"` // the thread group
	TID   int         `json:"tid"`
	PPID  int         `json:"ppid"`
	CPU   int         `json:"cpu"`
	State string      `json:"state"`
	Comm  string      `json:"comm"`
	// Value is the struct task_struct.
	Value objects.Value `json:"value"`
}

// NewTaskDetail reads a task for the task command.
func NewTaskDetail(task objects.Value) (*TaskDetail, error) {
	t, err := NewTask(task)
	if err != nil {
		return nil, err
	}
	v, err := task.Program().ObjectOf("struct task_struct", t.Addr)
	if err != nil {
		return nil, err
	}
	return &TaskDetail{Task: objects.Hex(t.Addr), PID: t.PID, TID: t.TID, PPID: t.PPID, CPU: t.CPU, State: string(t.State.Letter()), Comm: t.Comm, Value: v}, nil
}
