package linux

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

func TestTaskStateIndex(t *testing.T) {
	tests := []struct {
		state, exit uint64
		want        byte
	}{
		{0x0000, 0, 'R'},
		{0x0001, 0, 'S'},           // TASK_INTERRUPTIBLE
		{0x0002, 0, 'D'},           // TASK_UNINTERRUPTIBLE
		{0x0102, 0, 'D'},           // TASK_KILLABLE
		{0x0402, 0, 'I'},           // TASK_IDLE
		{0x0004, 0, 'T'},           // __TASK_STOPPED
		{0x0104, 0, 'T'},           // TASK_STOPPED
		{0x0008, 0, 't'},           // __TASK_TRACED
		{0x0000, 0x20, 'Z'},        // EXIT_ZOMBIE
		{0x0000, 0x10, 'X'},        // EXIT_DEAD
		{0x0040, 0, 'P'},           // TASK_PARKED
		{0x1000, 0, 'D'},           // TASK_RTLOCK_WAIT
		{0x8001, 0, 'D'},           // TASK_FROZEN
		{0x2001, 0, 'S'},           // TASK_FREEZABLE | TASK_INTERRUPTIBLE
		{0x0001 | 0x0080, 0, 'S'},  // TASK_DEAD (0x80) is outside TASK_REPORT
		{0x0201, 0, 'S'},           // TASK_WAKING is outside TASK_REPORT
		{0x0001, 0x20 | 0x10, 'Z'}, // fls picks the highest
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%#x/%#x", tt.state, tt.exit), func(t *testing.T) {
			if got := TaskStateIndex(tt.state, tt.exit).Letter(); got != tt.want {
				t.Errorf("state %#x exit %#x: %c, want %c", tt.state, tt.exit, got, tt.want)
			}
		})
	}
	if s := TaskState(42).String(); !strings.Contains(s, "42") {
		t.Errorf("unknown state prints %q", s)
	}
	if s := TaskSleeping.String(); s != "S (sleeping)" {
		t.Errorf("TaskSleeping prints %q", s)
	}
}

// taskSpec is BTF with a minimal task_struct and signal_struct:
//
//	struct task_struct { struct thread_info thread_info; unsigned int __state;
//	    struct list_head tasks; int pid; int tgid; struct task_struct *real_parent;
//	    struct list_head thread_node; char comm[16]; struct signal_struct *signal;
//	    int exit_state; unsigned int flags; };
//	struct signal_struct { struct list_head thread_head; };
func taskSpec(t testing.TB) *btfload.Spec {
	t.Helper()
	ch := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed | btf.Char}
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	lh := &btf.Struct{Name: "list_head", Size: 16}
	lh.Members = []btf.Member{{Name: "next", Type: &btf.Pointer{Target: lh}}, {Name: "prev", Type: &btf.Pointer{Target: lh}, Offset: 64}}
	ti := &btf.Struct{Name: "thread_info", Size: 8, Members: []btf.Member{{Name: "flags", Type: u32}, {Name: "cpu", Type: u32, Offset: 32}}}
	sig := &btf.Struct{Name: "signal_struct", Size: 16, Members: []btf.Member{{Name: "thread_head", Type: lh}}}
	task := &btf.Struct{Name: "task_struct", Size: 128}
	task.Members = []btf.Member{
		{Name: "thread_info", Type: ti},
		{Name: "__state", Type: u32, Offset: 64},
		{Name: "tasks", Type: lh, Offset: 128},
		{Name: "pid", Type: i32, Offset: 256},
		{Name: "tgid", Type: i32, Offset: 288},
		{Name: "real_parent", Type: &btf.Pointer{Target: task}, Offset: 320},
		{Name: "thread_node", Type: lh, Offset: 384},
		{Name: "comm", Type: &btf.Array{Index: u32, Type: ch, Nelems: 16}, Offset: 512},
		{Name: "signal", Type: &btf.Pointer{Target: sig}, Offset: 640},
		{Name: "exit_state", Type: i32, Offset: 704},
		{Name: "flags", Type: u32, Offset: 736},
	}
	b, err := btf.NewBuilder([]btf.Type{task, sig, lh, ti, i32, u32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := btfload.Parse(raw, "synthetic tasks")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// synthTasks lays out init_task and processes with threads; links
// decides each process's thread list: tids[i] are its threads' pids, the
// first the leader.
type synthTask struct {
	addr     uint64
	pid, tid int
	comm     string
	state    uint32
}

func writeTask(m *synthkernel.Mem, tk synthTask, parent, sig uint64) {
	m.U32(tk.addr+8, tk.state)
	m.U32(tk.addr+32, uint32(tk.tid))
	m.U32(tk.addr+36, uint32(tk.pid))
	m.U64(tk.addr+40, parent)
	c := make([]byte, 16)
	copy(c, tk.comm)
	m.Write(tk.addr+64, c)
	m.U64(tk.addr+80, sig)
}

// link writes a circular list through the list_heads at nodes, headed by
// head.
func link(m *synthkernel.Mem, head uint64, nodes ...uint64) {
	all := append([]uint64{head}, nodes...)
	for i, n := range all {
		m.U64(n, all[(i+1)%len(all)])
		m.U64(n+8, all[(i+len(all)-1)%len(all)])
	}
}

func synthTaskProgram(t *testing.T) (*objects.Program, *synthkernel.Mem) {
	m := synthkernel.NewMem()
	d := btfload.NewDecls()
	const initTask = 0xffff000000001000
	p := objects.NewProgram(m, taskSpec(t), synthkernel.Syms{"init_task": initTask}, objects.WithDecls(d), objects.WithLimit(100))
	// init_task, a process 1 with one thread, a process 10 with threads
	// 10, 11, 12.
	const (
		sig1  = 0xffff000000010000
		sig10 = 0xffff000000011000
	)
	tasks := []synthTask{
		{0xffff000000002000, 1, 1, "init", 1},
		{0xffff000000003000, 10, 10, "app", 0x402},
		{0xffff000000004000, 10, 11, "app-worker", 0},
		{0xffff000000005000, 10, 12, "app-io", 2},
	}
	writeTask(m, synthTask{addr: initTask, comm: "swapper/0"}, initTask, 0)
	writeTask(m, tasks[0], initTask, sig1)
	for _, tk := range tasks[1:] {
		writeTask(m, tk, tasks[0].addr, sig10)
	}
	link(m, initTask+16, tasks[0].addr+16, tasks[1].addr+16)
	link(m, sig1, tasks[0].addr+48)
	link(m, sig10, tasks[1].addr+48, tasks[2].addr+48, tasks[3].addr+48)
	return p, m
}

func TestForEachTaskSynthetic(t *testing.T) {
	p, m := synthTaskProgram(t)
	var got []string
	for task, err := range ForEachTask(p) {
		if err != nil {
			t.Fatal(err)
		}
		tk, err := NewTask(task)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%d/%d/%s/%c", tk.PID, tk.TID, tk.PPID, tk.Comm, tk.State.Letter()))
	}
	want := "1/1/0/init/S 10/10/1/app/I 10/11/1/app-worker/R 10/12/1/app-io/D"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	task, err := FindTask(p, 12)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := task.Address(); a != 0xffff000000005000 {
		t.Errorf("FindTask(12) at %#x", a)
	}
	if _, err := FindTask(p, 99); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("FindTask(99): %v", err)
	}

	// A thread list that loops back to its second node: a cycle, named.
	m.U64(0xffff000000005000+48, 0xffff000000004000+48)
	m.U64(0xffff000000004000+48+8, 0xffff000000005000+48)
	var werr error
	for _, err := range ForEachTask(p) {
		if err != nil {
			werr = err
		}
	}
	if !errors.Is(werr, objects.ErrCorrupt) || !strings.Contains(werr.Error(), "0xffff000000004030") {
		t.Errorf("cyclic thread list: %v", werr)
	}
	// A NULL in the process list.
	m.U64(0xffff000000003000+16, 0)
	werr = nil
	for _, err := range ForEachProcess(p) {
		if err != nil {
			werr = err
		}
	}
	if !errors.Is(werr, objects.ErrCorrupt) || !strings.Contains(werr.Error(), "0xffff000000003010") {
		t.Errorf("NULL next: %v", werr)
	}
}
