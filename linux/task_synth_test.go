package linux

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// TestCurrentIdleTask: the task running on each CPU comes from the
// per-CPU current_task (x86 before 6.2 and from 6.15), pcpu_hot (6.2-6.14)
// or runqueues.curr, in that order of preference; the idle task from
// runqueues.idle (kernel/sched/sched.h).
func TestCurrentIdleTask(t *testing.T) {
	for _, cur := range []string{"", "current_task", "pcpu_hot"} {
		t.Run("via "+cur, func(t *testing.T) {
			k := newKernel(t, sk.LinuxLayout{Current: cur})
			var running, idle, other [2]sk.Obj
			for cpu := range 2 {
				idle[cpu] = k.Task(0, 0, fmt.Sprintf("swapper/%d", cpu), 0)
				running[cpu] = k.Task(100+cpu, 100+cpu, fmt.Sprintf("run%d", cpu), 0)
				other[cpu] = k.Task(200+cpu, 200+cpu, "stale", 0)
				rq := k.Obj("rq", sk.PerCPUAddr(cpu, k.PerCPU["runqueues"]))
				rq.Set("idle", idle[cpu].Addr)
				switch cur {
				case "":
					rq.Set("curr", running[cpu].Addr)
				case "current_task":
					// rq->curr is not what current_task reads: the
					// walker must prefer the per-CPU variable.
					rq.Set("curr", other[cpu].Addr)
					k.Syms["current_task"] = uint64(k.PerCPU["current_task"])
					k.M.U64(sk.PerCPUAddr(cpu, k.PerCPU["current_task"]), running[cpu].Addr)
				case "pcpu_hot":
					rq.Set("curr", other[cpu].Addr)
					k.Syms["pcpu_hot"] = uint64(k.PerCPU["pcpu_hot"])
					k.Obj("pcpu_hot", sk.PerCPUAddr(cpu, k.PerCPU["pcpu_hot"])).Set("current_task", running[cpu].Addr)
				}
			}
			k.Syms["runqueues"] = uint64(k.PerCPU["runqueues"])
			for cpu := range 2 {
				c, err := CurrentTask(k.p, cpu)
				if err != nil {
					t.Fatal(err)
				}
				if c.Addr() != running[cpu].Addr {
					t.Errorf("CPU %d runs %#x, want %#x", cpu, c.Addr(), running[cpu].Addr)
				}
				i, err := IdleTask(k.p, cpu)
				if err != nil {
					t.Fatal(err)
				}
				tk, err := NewTask(i)
				if err != nil {
					t.Fatal(err)
				}
				if i.Addr() != idle[cpu].Addr || tk.Comm != fmt.Sprintf("swapper/%d", cpu) || tk.PID != 0 || tk.PPID != 0 {
					t.Errorf("CPU %d idle task %#x %+v", cpu, i.Addr(), tk)
				}
			}
			if _, err := CurrentTask(k.p, 2); !errors.Is(err, objects.ErrNotFound) {
				t.Errorf("CPU 2 of 2: %v", err)
			}
			// A NULL rq->idle is named, not followed.
			k.Obj("rq", sk.PerCPUAddr(1, k.PerCPU["runqueues"])).Set("idle", 0)
			if _, err := IdleTask(k.p, 1); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), "CPU 1") {
				t.Errorf("NULL idle: %v", err)
			}
		})
	}
}

// TestTaskName: /proc/PID/comm as proc_task_name makes it
// (kernel/workqueue.c wq_worker_comm and format_worker_id,
// kernel/kthread.c's full_name).
func TestTaskName(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	k.Syms["format_worker_id"] = 0xffffffff81234560 // 6.12+
	worker := func(comm string, cpu, poolID, workerID, nice int, desc string, busy bool, rescue string, noPool bool) sk.Obj {
		tk := k.Task(500, 500, comm, 0).Set("flags", PFKThread|PFWQWorker)
		w := k.New("worker").Set("id", uint64(workerID)).Str("desc", desc)
		if busy {
			w.Set("current_work", k.New("work_struct").Addr)
		}
		if rescue != "" {
			w.Set("rescue_wq", k.New("workqueue_struct").Str("name", rescue).Addr)
		}
		if !noPool {
			attrs := k.New("workqueue_attrs").Set("nice", uint64(int64(nice)))
			pool := k.New("worker_pool").Set("cpu", uint64(int64(cpu))).Set("id", uint64(poolID)).Set("attrs", attrs.Addr)
			w.Set("pool", pool.Addr)
		}
		kt := k.New("kthread").Set("data", w.Addr)
		return tk.Set("worker_private", kt.Addr)
	}
	long := k.Task(600, 600, "a_long_kthread_", 0).Set("flags", PFKThread)
	long.Set("worker_private", k.New("kthread").Set("full_name", k.Str("a_long_kthread_name_past_comm")).Addr)
	short := k.Task(601, 601, "kthreadd", 0).Set("flags", PFKThread)
	short.Set("worker_private", k.New("kthread").Addr)
	bare := k.Task(602, 602, "ksoftirqd/0", 0).Set("flags", PFKThread)
	tests := []struct {
		task sk.Obj
		want string
	}{
		{worker("kworker/1:2H", 1, 3, 2, -20, "events_highpri", true, "", false), "kworker/1:2H+events_highpri"},
		{worker("kworker/0:1", 0, 0, 1, 0, "events", false, "", false), "kworker/0:1-events"},
		{worker("kworker/u9:7", -1, 9, 7, 0, "writeback", false, "", false), "kworker/u9:7-writeback"},
		{worker("kworker/u9:8", -1, 9, 8, 0, "", false, "", false), "kworker/u9:8"},
		{worker("kworker/R-kbl", 0, 0, 0, 0, "kblockd", false, "kblockd", true), "kworker/R-kblockd"},
		{worker("kworker/dying", 0, 0, 0, 0, "events", true, "", true), "kworker/dying"},
		{long, "a_long_kthread_name_past_comm"},
		{short, "kthreadd"},
		{bare, "ksoftirqd/0"},
		{k.Task(1, 1, "systemd", 0), "systemd"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := TaskName(k.value(t, "task_struct", tt.task.Addr))
			if err != nil || got != tt.want {
				t.Errorf("TaskName = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	// Before format_worker_id (6.12) the id is the comm as it stands.
	k2 := newKernel(t, sk.LinuxLayout{})
	k = k2
	w := worker("kworker/3:0", 3, 0, 5, 0, "mm_percpu_wq", true, "", false)
	if got, err := TaskName(k.value(t, "task_struct", w.Addr)); err != nil || got != "kworker/3:0+mm_percpu_wq" {
		t.Errorf("TaskName without format_worker_id = %q, %v", got, err)
	}
	// A worker whose struct worker is on an absent page: the comm and
	// an error naming the page.
	kt, _ := k.p.ReadU64(w.At("worker_private"))
	wa := k.M.AllocPage(4096)
	k.Obj("kthread", kt).Set("data", wa)
	k.M.Drop(wa)
	if got, err := TaskName(k.value(t, "task_struct", w.Addr)); got != "kworker/3:0" || !errors.Is(err, sk.ErrFault) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", k.Obj("worker", wa).At("pool"))) {
		t.Errorf("worker on an absent page: %q, %v", got, err)
	}
}

// TestOldTaskLayout: before 6.7 threads are a ring through
// task->thread_group; before 5.16 the CPU is task->cpu; before 5.14 the
// state is task->state.
func TestOldTaskLayout(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{OldThreads: true, CPUInTask: true, OldState: true})
	init := k.Syms["init_task"]
	p1 := k.Task(1, 1, "init", init).Set("state", 1).Set("cpu", 1)
	p7 := k.Task(7, 7, "daemon", p1.Addr).Set("state", 0x402)
	t8 := k.Task(8, 7, "daemon-t1", p1.Addr).Set("cpu", 1)
	t9 := k.Task(9, 7, "daemon-t2", p1.Addr).Set("exit_state", 0x20) // EXIT_ZOMBIE
	k.Process(p1)
	k.Process(p7, t8, t9)
	k.Processes(p1, p7)
	var got []string
	for task, err := range ForEachTask(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		tk, err := NewTask(task)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%d/%d/%s/%c/%d", tk.PID, tk.TID, tk.PPID, tk.Comm, tk.State.Letter(), tk.CPU))
	}
	want := "1/1/0/init/S/1 7/7/1/daemon/I/0 7/8/1/daemon-t1/R/1 7/9/1/daemon-t2/Z/0"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	var procs []int64
	for task, err := range ForEachProcess(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := task.MemberInt("pid")
		procs = append(procs, pid)
	}
	if fmt.Sprint(procs) != "[1 7]" {
		t.Errorf("processes %v", procs)
	}
	// Stopping a walk early is honoured at each level.
	n := 0
	for range ForEachTask(k.p) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("stopped after %d", n)
	}
	// A pointer to a task walks the same.
	pt := k.p.Pointer(k.S("task_struct"), p7.Addr)
	n = 0
	for _, err := range ForEachThread(pt) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("threads of a pointer: %d", n)
	}
	// The ring broken: prev of t9 does not point back.
	k.M.U64(t9.At("thread_group")+8, 0)
	var werr error
	n = 0
	for _, err := range ForEachThread(k.value(t, "task_struct", p7.Addr)) {
		if err != nil && werr == nil {
			werr = err
		}
		n++
	}
	if !objects.IsDamage(werr) || !errors.Is(werr, objects.ErrCorrupt) || !strings.Contains(werr.Error(), fmt.Sprintf("%#x", t9.At("thread_group"))) {
		t.Errorf("broken ring: %v", werr)
	}
	// The leader, t8, the damage, then t9 recovered walking the ring
	// backward (its next still points at the leader).
	if n != 4 {
		t.Errorf("broken ring: %d yields", n)
	}
}

func TestNewTaskErrors(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	p1 := k.Task(1, 1, "init", k.Syms["init_task"]).Set("flags", 0x400100)
	if tk, err := NewTask(k.value(t, "task_struct", p1.Addr)); err != nil || tk.Flags != 0x400100 || tk.IsKThread() {
		t.Errorf("NewTask: %+v, %v", tk, err)
	}
	kt := k.Task(2, 2, "kthreadd", 0).Set("flags", PFKThread)
	if tk, err := NewTask(k.value(t, "task_struct", kt.Addr)); err != nil || !tk.IsKThread() {
		t.Errorf("kthreadd: %+v, %v", tk, err)
	}
	// A NULL task pointer, and a task whose parent is on an absent page.
	if _, err := NewTask(k.p.Pointer(k.S("task_struct"), 0)); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("NULL task: %v", err)
	}
	orphan := k.Task(3, 3, "orphan", 0xffff888077700000)
	// The task is still read; only its PPID is unknown.
	if tk, err := NewTask(k.value(t, "task_struct", orphan.Addr)); err != nil || tk.PID != 3 || tk.PPID != -1 ||
		!errors.Is(tk.ParentErr, sk.ErrFault) || !strings.Contains(tk.ParentErr.Error(), "real_parent 0xffff888077700000") {
		t.Errorf("parent on an absent page: %+v, %v", tk, err)
	}
	if _, err := NewTask(k.value(t, "task_struct", 0xffff888077700000)); !errors.Is(err, sk.ErrFault) || !strings.Contains(err.Error(), "0xffff888077700000") {
		t.Errorf("task on an absent page: %v", err)
	}
	if _, err := FindTask(k.p, 1); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("FindTask on an empty list: %v", err)
	}
}

// TestPanicCPU: kernel/panic.c's panic_cpu, PANIC_CPU_INVALID (-1) until
// a CPU panics.
func TestPanicCPU(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	if _, _, err := PanicCPU(k.p); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("no panic_cpu: %v", err)
	}
	a := k.M.Global(k.Syms, "panic_cpu", 4)
	k.M.U32(a, 0xffffffff)
	if c, ok, err := PanicCPU(k.p); err != nil || ok || c != -1 {
		t.Errorf("no panic: %d, %v, %v", c, ok, err)
	}
	k.M.U32(a, 1)
	if c, ok, err := PanicCPU(k.p); err != nil || !ok || c != 1 {
		t.Errorf("panic on CPU 1: %d, %v, %v", c, ok, err)
	}
}
