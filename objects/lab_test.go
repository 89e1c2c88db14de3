package objects_test

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/objects"
)

func TestLabInitTask(t *testing.T) {
	for name, p := range labkernel.Programs(t, labkernel.Formats...) {
		t.Run(name, func(t *testing.T) {
			v, err := p.Eval("init_task.comm")
			if err != nil {
				t.Fatal(err)
			}
			s, err := v.CString()
			if err != nil || s != "swapper/0" {
				t.Errorf("init_task.comm = %q, %v; want swapper/0", s, err)
			}
			rel, err := p.Eval("init_uts_ns.name.release")
			if err != nil {
				t.Fatal(err)
			}
			r, _ := rel.CString()
			if want := labkernel.Scenario(name).Release; r != want {
				t.Errorf("release %q, want %q", r, want)
			}
		})
	}
}

func TestLabTasks(t *testing.T) {
	for name, p := range labkernel.Programs(t, labkernel.Formats...) {
		t.Run(name, func(t *testing.T) {
			var ps []struct {
				PID  int    `json:"pid"`
				TID  int    `json:"tid"`
				PPID int    `json:"ppid"`
				Comm string `json:"comm"`
			}
			labdata.ReadJSON(t, labkernel.Scenario(name).Path("truth/ps.json"), &ps)
			truth := map[int]string{}
			ppid := map[int]int{}
			for _, e := range ps {
				if e.PID == e.TID {
					truth[e.PID] = e.Comm
					ppid[e.PID] = e.PPID
				}
			}
			head, err := p.Eval("init_task.tasks")
			if err != nil {
				t.Fatal(err)
			}
			got := map[int]string{}
			for task, err := range objects.ListForEachEntry(head, "struct task_struct", "tasks") {
				if err != nil {
					labkernel.FatalUnlessDropped(t, name, err)
				}
				pid, err := task.Member("pid")
				if err != nil {
					labkernel.FatalUnlessDropped(t, name, err)
				}
				n, _ := pid.Int()
				c, _ := task.Member("comm")
				s, _ := c.CString()
				got[int(n)] = s
			}
			matched := 0
			var missing, exited []string
			for pid, comm := range truth {
				if _, ok := got[pid]; !ok && labdata.ExitedAfterTruth(ppid[pid], comm) {
					exited = append(exited, strconv.Itoa(pid)+":"+comm)
					matched++
					continue
				}
				// /proc shows a workqueue worker's comm with its workqueue
				// ("kworker/0:1-events", proc_task_name) and longer names
				// in full for kernel threads; task_struct.comm has 15 bytes.
				if g, ok := got[pid]; ok && (g == comm || strings.HasPrefix(comm, g+"-") || len(g) == 15 && strings.HasPrefix(comm, g)) {
					matched++
				} else {
					missing = append(missing, strconv.Itoa(pid)+":"+comm+"→"+g)
				}
			}
			sort.Strings(missing)
			t.Logf("%d tasks walked, %d truth leaders, %d match (of which kworkers exited since the truth: %v); differing: %v", len(got), len(truth), matched, exited, missing)
			if matched < len(truth) {
				t.Errorf("only %d of %d truth leaders found: %v", matched, len(truth), missing)
			}
		})
	}
}

func TestLabBPF(t *testing.T) {
	for name, p := range labkernel.Programs(t, labkernel.Formats...) {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			// The programs hidden from bpftool are in prog_idr, and
			// workload.json names them (labdata.Hidden).
			hidden := sc.Hidden(t).Progs
			for _, kind := range []struct {
				idr, typ, name, file string
				hidden               map[uint32]string
			}{
				{"prog_idr", "struct bpf_prog", "aux->name", "truth/bpftool/prog.json", hidden},
				{"map_idr", "struct bpf_map", "name", "truth/bpftool/map.json", nil},
			} {
				var truth []struct {
					ID   uint64 `json:"id"`
					Name string `json:"name"`
				}
				labdata.ReadJSON(t, sc.Path(kind.file), &truth)
				for id, name := range kind.hidden {
					truth = append(truth, struct {
						ID   uint64 `json:"id"`
						Name string `json:"name"`
					}{uint64(id), name})
				}
				idr, err := p.Variable(kind.idr)
				if err != nil {
					labkernel.FatalUnlessDropped(t, name, err)
				}
				got := map[uint64]string{}
				for e, err := range objects.IDRForEachEntry(idr, kind.typ) {
					if err != nil {
						labkernel.FatalUnlessDropped(t, name, err)
					}
					n, err := e.Value.Path(kind.name)
					if err != nil {
						labkernel.FatalUnlessDropped(t, name, err)
					}
					s, err := n.CString()
					if err != nil {
						labkernel.FatalUnlessDropped(t, name, err)
					}
					got[e.Index] = s
				}
				for _, tr := range truth {
					if got[tr.ID] != tr.Name {
						t.Errorf("%s: id %d: name %q, truth %q", kind.idr, tr.ID, got[tr.ID], tr.Name)
					}
				}
				if len(got) != len(truth) {
					t.Errorf("%s: %d entries, truth %d", kind.idr, len(got), len(truth))
				}
				t.Logf("%s: %d entries match the truth", kind.idr, len(truth))
			}
		})
	}
}

func TestLabPerCPU(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		t.Run(name, func(t *testing.T) {
			n, err := p.NrCPUIDs()
			if err != nil {
				t.Fatal(err)
			}
			if want := labkernel.Scenario(name).CPUs; n != want {
				t.Errorf("nr_cpu_ids %d, want %d", n, want)
			}
			for cpu := range n {
				rq, err := p.Eval("per_cpu(runqueues, " + strconv.Itoa(cpu) + ").cpu")
				if err != nil {
					t.Fatal(err)
				}
				c, err := rq.Int()
				if err != nil || int(c) != cpu {
					t.Errorf("runqueues[%d].cpu = %d, %v", cpu, c, err)
				}
			}
		})
	}
}

// BenchmarkMemberAccess reads init_task.pid through a member lookup each
// time (cached member offsets, one 4-byte read through the dump).
func BenchmarkMemberAccess(b *testing.B) {
	progs := labkernel.Programs(b)
	for name, p := range progs {
		task, err := p.Variable("init_task")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				v, err := task.Member("pid")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := v.Int(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTaskWalk walks init_task.tasks reading each pid and comm.
func BenchmarkTaskWalk(b *testing.B) {
	for name, p := range labkernel.Programs(b) {
		b.Run(name, func(b *testing.B) {
			head, err := p.Eval("init_task.tasks")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				for task, err := range objects.ListForEachEntry(head, "struct task_struct", "tasks") {
					if err != nil {
						b.Fatal(err)
					}
					pid, _ := task.Member("pid")
					pid.Int()
					c, _ := task.Member("comm")
					c.CString()
				}
			}
		})
	}
}
