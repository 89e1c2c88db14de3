package objects

import (
	"bufio"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/vmcore"
)

// truthSyms is a Symbolizer over the guest's /proc/kallsyms, standing in
// for the kallsyms package in tests.
type truthSyms map[string]uint64

func (s truthSyms) Lookup(name string) (uint64, error) {
	if a, ok := s[name]; ok {
		return a, nil
	}
	return 0, &notFound{name}
}

type notFound struct{ name string }

func (e *notFound) Error() string { return "no symbol named " + e.name }
func (e *notFound) Unwrap() error { return ErrNotFound }

func loadTruthSyms(t testing.TB, path string) truthSyms {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := truthSyms{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			continue
		}
		if _, dup := s[fs[2]]; !dup {
			s[fs[2]] = a
		}
	}
	return s
}

// labPrograms opens, for each built scenario with dumps, the dumps named
// (all when formats is empty) as Programs.
func labPrograms(t *testing.T, formats ...string) map[string]*Program {
	t.Helper()
	return labProgramsTB(t, formats...)
}

func labProgramsTB(t testing.TB, formats ...string) map[string]*Program {
	t.Helper()
	out := map[string]*Program{}
	for _, sc := range labdata.Built(t) {
		if sc.Live {
			continue
		}
		syms := loadTruthSyms(t, sc.Path("truth/kallsyms.txt"))
		var spec *btfload.Spec
		for _, f := range sc.Formats {
			if len(formats) > 0 && !contains(formats, f.Name) {
				continue
			}
			d, err := vmcore.Open(sc.Path(f.Path))
			if err != nil {
				t.Fatalf("%s/%s: %v", sc.Scenario, f.Name, err)
			}
			t.Cleanup(func() { d.Close() })
			k, err := d.Kernel()
			if err != nil {
				t.Fatalf("%s/%s: %v", sc.Scenario, f.Name, err)
			}
			if spec == nil {
				if spec, err = btfload.FromMemory(k, syms); err != nil {
					t.Fatalf("%s/%s: %v", sc.Scenario, f.Name, err)
				}
			}
			out[sc.Scenario+"/"+f.Name] = NewProgram(k, spec, syms)
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func scenarioOf(name string) *labdata.Scenario {
	s, _ := labdata.Load(strings.SplitN(name, "/", 2)[0])
	return s
}

var labFormats = []string{"elf", "kdump-zlib", "kdump-lzo-d31.flat", "kdump-zstd"}

func TestLabInitTask(t *testing.T) {
	for name, p := range labPrograms(t, labFormats...) {
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
			if want := scenarioOf(name).Release; r != want {
				t.Errorf("release %q, want %q", r, want)
			}
		})
	}
}

// TestLabTasks walks init_task.tasks and compares the thread-group
// leaders with the truth's ps.json (pid == tid).
// fatalUnlessDropped ends a test on err: a skip when makedumpfile dropped
// the page from a filtered dump of a kernel it does not know (1.7.2 frees
// live slab pages of 6.10+ at -d 31, see lab/README.md), a failure
// otherwise.
func fatalUnlessDropped(t *testing.T, name string, err error) {
	t.Helper()
	sc := scenarioOf(name)
	f, _ := sc.Format(strings.SplitN(name, "/", 2)[1])
	if why := sc.Misfiltered(f); why != "" && errors.Is(err, vmcore.ErrPageExcluded) {
		t.Skipf("%v: %s", err, why)
	}
	t.Fatal(err)
}

func TestLabTasks(t *testing.T) {
	for name, p := range labPrograms(t, labFormats...) {
		t.Run(name, func(t *testing.T) {
			var ps []struct {
				PID  int    `json:"pid"`
				TID  int    `json:"tid"`
				Comm string `json:"comm"`
			}
			labdata.ReadJSON(t, scenarioOf(name).Path("truth/ps.json"), &ps)
			truth := map[int]string{}
			for _, e := range ps {
				if e.PID == e.TID {
					truth[e.PID] = e.Comm
				}
			}
			head, err := p.Eval("init_task.tasks")
			if err != nil {
				t.Fatal(err)
			}
			got := map[int]string{}
			for task, err := range ListForEachEntry(head, "struct task_struct", "tasks") {
				if err != nil {
					fatalUnlessDropped(t, name, err)
				}
				pid, err := task.Member("pid")
				if err != nil {
					fatalUnlessDropped(t, name, err)
				}
				n, _ := pid.Int()
				c, _ := task.Member("comm")
				s, _ := c.CString()
				got[int(n)] = s
			}
			matched := 0
			var missing []string
			for pid, comm := range truth {
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
			t.Logf("%d tasks walked, %d truth leaders, %d match; differing: %v", len(got), len(truth), matched, missing)
			if matched < len(truth) {
				t.Errorf("only %d of %d truth leaders found: %v", matched, len(truth), missing)
			}
		})
	}
}

func TestLabBPF(t *testing.T) {
	for name, p := range labPrograms(t, labFormats...) {
		t.Run(name, func(t *testing.T) {
			sc := scenarioOf(name)
			for _, kind := range []struct{ idr, typ, name, file string }{
				{"prog_idr", "struct bpf_prog", "aux->name", "truth/bpftool/prog.json"},
				{"map_idr", "struct bpf_map", "name", "truth/bpftool/map.json"},
			} {
				var truth []struct {
					ID   uint64 `json:"id"`
					Name string `json:"name"`
				}
				labdata.ReadJSON(t, sc.Path(kind.file), &truth)
				idr, err := p.Variable(kind.idr)
				if err != nil {
					fatalUnlessDropped(t, name, err)
				}
				got := map[uint64]string{}
				for e, err := range IDRForEachEntry(idr, kind.typ) {
					if err != nil {
						fatalUnlessDropped(t, name, err)
					}
					n, err := e.Value.Path(kind.name)
					if err != nil {
						fatalUnlessDropped(t, name, err)
					}
					s, err := n.CString()
					if err != nil {
						fatalUnlessDropped(t, name, err)
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
	for name, p := range labPrograms(t, "elf") {
		t.Run(name, func(t *testing.T) {
			n, err := p.NrCPUIDs()
			if err != nil {
				t.Fatal(err)
			}
			if want := scenarioOf(name).CPUs; n != want {
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

func TestLabModulesBTF(t *testing.T) {
	for _, sc := range labdata.Built(t) {
		if sc.Live {
			continue
		}
		f, ok := sc.Format("elf")
		if !ok {
			continue
		}
		d, err := vmcore.Open(sc.Path(f.Path))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		k, _ := d.Kernel()
		syms := loadTruthSyms(t, sc.Path("truth/kallsyms.txt"))
		spec, err := btfload.FromMemory(k, syms)
		if err != nil {
			t.Fatal(err)
		}
		mods, problems, err := btfload.LoadModules(k, syms, spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems {
			t.Errorf("%s: module %s: %v", sc.Scenario, pr.Module, pr.Err)
		}
		b, _ := os.ReadFile(sc.Path("truth/modules.txt"))
		var names []string
		for _, m := range mods {
			names = append(names, m.Name)
			if !strings.Contains(string(b), m.Name+" ") {
				t.Errorf("module %s is not in modules.txt", m.Name)
			}
		}
		t.Logf("%s: module BTF of %v", sc.Scenario, names)
		if len(mods) == 0 {
			t.Errorf("%s: no module BTF", sc.Scenario)
		}
	}
}
