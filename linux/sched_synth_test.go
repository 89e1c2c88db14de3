package linux

import (
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
)

// TestRunQueue: the current task apart; the CFS tree in order, a task
// group's entity replaced by its own queue's tasks (one level deeper);
// the RT array by priority; a cycle in the CFS tree is noted as damage
// and the rest of the queue read.
func TestRunQueue(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	k.Syms["runqueues"] = uint64(k.PerCPU["runqueues"])
	rq := k.Obj("rq", sk.PerCPUAddr(0, k.PerCPU["runqueues"]))
	idle := k.Task(0, 0, "swapper/0", 0)
	cur := k.Task(10, 10, "cur", 0).Set("prio", 120)
	rq.Set("idle", idle.Addr).Set("curr", cur.Addr).Set("nr_running", 6).Set("clock", 12345)
	task := func(pid int, vr uint64, prio int) sk.Obj {
		return k.Task(pid, pid, fmt.Sprintf("t%d", pid), 0).Set("prio", uint64(prio)).Set("se.vruntime", vr).Set("se.sum_exec_runtime", vr*2)
	}
	b, c, d, e := task(11, 100, 120), task(12, 5, 120), task(13, 6, 120), task(14, 300, 120)
	group := k.New("cfs_rq")
	gse := k.New("sched_entity").Set("my_q", group.Addr).Set("vruntime", 200)
	k.M.RBTree(group.At("tasks_timeline"), c.At("se.run_node"), d.At("se.run_node"))
	k.M.RBTree(rq.At("cfs.tasks_timeline"), b.At("se.run_node"), gse.At("run_node"), e.At("se.run_node"))
	f, g := task(15, 0, 5), task(16, 0, 50)
	for i := range 100 {
		h := rq.At("rt.active.queue") + uint64(i)*16
		switch i {
		case 5:
			k.M.List(h, f.At("rt.run_list"))
		case 50:
			k.M.List(h, g.At("rt.run_list"))
		default:
			k.M.List(h)
		}
	}
	rq1 := k.Obj("rq", sk.PerCPUAddr(1, k.PerCPU["runqueues"]))
	idle1 := k.Task(0, 0, "swapper/1", 0)
	rq1.Set("idle", idle1.Addr).Set("curr", idle1.Addr)
	for i := range 100 {
		k.M.List(rq1.At("rt.active.queue") + uint64(i)*16)
	}

	rqs, err := RunQueues(k.p)
	if err != nil {
		t.Fatal(err)
	}
	if len(rqs) != 2 || rqs[0].Current.PID != 10 || rqs[0].Idle || !rqs[1].Idle || rqs[0].Clock != 12345 {
		t.Fatalf("%+v", rqs)
	}
	show := func(ts []RQTask) string {
		var out []string
		for _, t := range ts {
			out = append(out, fmt.Sprintf("%d/%d/%d/%d/%v", t.PID, t.Prio, t.Vruntime, t.Depth, t.Group != 0))
		}
		return strings.Join(out, " ")
	}
	if got := show(rqs[0].CFS); got != "11/120/100/0/false 12/120/5/1/true 13/120/6/1/true 14/120/300/0/false" {
		t.Errorf("CFS: %s", got)
	}
	if got := show(rqs[0].RT); got != "15/5/0/0/false 16/50/0/0/false" || rqs[0].RT[0].Class != "RT" {
		t.Errorf("RT: %s", got)
	}
	// The group's tree points back at its root: a cycle.
	k.M.U64(d.At("se.run_node")+8, c.At("se.run_node"))
	rq0, err := ReadRunQueue(k.p, 0)
	if err != nil {
		t.Fatal(err)
	}
	dm := k.p.Damaged()
	t.Logf("with a cycle: CFS %s, damage %v", show(rq0.CFS), dm)
	if len(dm) == 0 || len(rq0.CFS) < 3 {
		t.Errorf("with a cycle: CFS %s, damage %v", show(rq0.CFS), dm)
	}
}
