package linux_test

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// TestLabForEachTask: every task of ps.json is found with its pid, ppid,
// name (as /proc shows it) and state; no task is extra but the snapshot
// process's. A task's state may differ only where the dump says it ran
// since the snapshot (labdata.PSTask.RanSince).
func TestLabForEachTask(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			ps, excluded := labdata.ReadPS(t, sc)
			got := map[int]linux.Task{}
			switches := map[int]uint64{}
			names := map[int]string{}
			for task, err := range linux.ForEachTask(p) {
				if err != nil {
					t.Fatal(err)
				}
				tk, err := linux.NewTask(task)
				if err != nil {
					t.Fatal(err)
				}
				if _, dup := got[tk.TID]; dup {
					t.Errorf("tid %d twice", tk.TID)
				}
				got[tk.TID] = *tk
				vol, invol, err := linux.ContextSwitches(task)
				if err != nil {
					t.Error(err)
				}
				switches[tk.TID] = vol + invol
				if names[tk.TID], err = linux.TaskName(task); err != nil {
					t.Errorf("name of %d: %v", tk.TID, err)
				}
			}
			onCPU := onCPUs(t, p, sc.CPUs)
			var missing, wrong, states, ran, cpus, descs, exited []string
			match := 0
			for _, tr := range ps {
				g, ok := got[tr.TID]
				switch {
				case !ok && labdata.ExitedAfterTruth(tr.PPID, tr.Comm):
					exited = append(exited, fmt.Sprintf("%d(%s)", tr.TID, tr.Comm))
					continue
				case !ok:
					missing = append(missing, fmt.Sprintf("%d(%s)", tr.TID, tr.Comm))
					continue
				}
				delete(got, tr.TID)
				if g.PID == tr.PID && g.PPID == tr.PPID && names[tr.TID] != tr.Comm && sameWorker(names[tr.TID], tr.Comm) {
					// A kworker that ran other work between the snapshot
					// and the dump: its desc changed.
					descs = append(descs, fmt.Sprintf("%d %s→%s", tr.TID, tr.Comm, names[tr.TID]))
				} else if g.PID != tr.PID || g.PPID != tr.PPID || names[tr.TID] != tr.Comm {
					wrong = append(wrong, fmt.Sprintf("%d: got pid %d ppid %d %q, truth pid %d ppid %d %q", tr.TID, g.PID, g.PPID, names[tr.TID], tr.PID, tr.PPID, tr.Comm))
					continue
				}
				if st := string(g.State.Letter()); st != tr.State {
					if why := tr.RanSince(st, onCPU[g.Addr], switches[tr.TID]); why != "" {
						ran = append(ran, fmt.Sprintf("%d(%s) %s, truth %s: %s", tr.TID, tr.Comm, st, tr.State, why))
					} else {
						states = append(states, fmt.Sprintf("%d(%s) %s, truth %s, switches %d, truth %d", tr.TID, tr.Comm, st, tr.State, switches[tr.TID], *tr.Switches))
					}
				}
				if g.CPU != tr.CPU {
					cpus = append(cpus, fmt.Sprintf("%d %d/%d", tr.TID, g.CPU, tr.CPU))
				}
				match++
			}
			comm := map[int]string{}
			for _, tr := range ps {
				comm[tr.TID] = tr.Comm
			}
			maxTID := 0
			for _, tr := range ps {
				maxTID = max(maxTID, tr.TID)
			}
			var extra, newThreads []string
			for tid, g := range got {
				switch {
				case g.PID == excluded:
				case labdata.StartedAfterTruth(tid, g.PPID, names[tid], maxTID, func(pid int) bool { return comm[pid] != "" }):
					newThreads = append(newThreads, fmt.Sprintf("%d(%s)", tid, names[tid]))
				case g.PID != tid && comm[g.PID] != "" && comm[g.PID] == g.Comm:
					// A thread a truth process started after the truth
					// (the workload's Go runtime does, as goroutines
					// block).
					newThreads = append(newThreads, fmt.Sprintf("%d(%s)", tid, g.Comm))
				default:
					extra = append(extra, fmt.Sprintf("%d(%s)", tid, g.Comm))
				}
			}
			sort.Strings(extra)
			t.Logf("%d truth tasks: %d match pid, tid, ppid and name (of which kworkers whose last workqueue changed: %v); states differ where the task ran since: %v; CPUs differ (got/truth): %v; threads started since: %v; kworkers exited since: %v", len(ps), match, descs, ran, cpus, newThreads, exited)
			if len(missing) > 0 || len(extra) > 0 || len(wrong) > 0 {
				t.Errorf("missing %v; extra %v; wrong %v", missing, extra, wrong)
			}
			if len(states) > 0 {
				t.Errorf("states differ of tasks that did not run since the snapshot: %v", states)
			}
		})
	}
}

// onCPUs is the task_struct address of each CPU's current task.
func onCPUs(t *testing.T, p *objects.Program, cpus int) map[uint64]bool {
	t.Helper()
	out := map[uint64]bool{}
	for c := range cpus {
		cur, err := linux.CurrentTask(p, c)
		if err != nil {
			t.Errorf("CPU %d: %v", c, err)
			continue
		}
		out[cur.Addr()] = true
	}
	return out
}

// sameWorker says a and b name the same kworker, whatever their desc.
func sameWorker(a, b string) bool {
	id := func(s string) string {
		if !strings.HasPrefix(s, "kworker/") {
			return s
		}
		if i := strings.IndexAny(s[len("kworker/"):], "+-"); i >= 0 && !strings.HasPrefix(s, "kworker/R-") {
			return s[:len("kworker/")+i]
		}
		return s
	}
	return strings.HasPrefix(a, "kworker/") && id(a) == id(b)
}

// TestLabCurrentTask: the spinner runs on CPU 1 in every dump.
func TestLabCurrentTask(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		t.Run(name, func(t *testing.T) {
			cur, err := linux.CurrentTask(p, 1)
			if err != nil {
				t.Fatal(err)
			}
			tk, err := linux.NewTask(cur)
			if err != nil {
				t.Fatal(err)
			}
			if tk.Comm != "ki_spinner" || tk.CPU != 1 || tk.State != linux.TaskRunning {
				t.Errorf("CPU 1 runs %+v, want ki_spinner, running on CPU 1", tk)
			}
			idle, err := linux.IdleTask(p, 1)
			if err != nil {
				t.Fatal(err)
			}
			it, err := linux.NewTask(idle)
			if err != nil || it.Comm != "swapper/1" || it.TID != 0 {
				t.Errorf("idle task of CPU 1: %+v, %v", it, err)
			}
		})
	}
}

// TestLabModuleKallsyms: the module symbols read from each dump are the
// guest's /proc/kallsyms module lines: address, type letter, name.
func TestLabModuleKallsyms(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			truth := labdata.KallsymsLines(t, sc.Path("truth/kallsyms.txt"), false)
			tab := kallsyms.FromMemory(nil, kallsyms.Locations{})
			if err := linux.AddModuleSymbols(p, tab); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for s := range tab.All() {
				if s.Module != "" {
					got[fmt.Sprintf("%016x %c %s [%s]", s.Addr, s.Type, s.Name, s.Module)] = true
				}
			}
			labdata.CompareSets(t, "module symbols", got, truth)
		})
	}
}

// TestLabModules: the module list is /proc/modules: name, size, base,
// refcount.
func TestLabModules(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(labkernel.Scenario(name).Path("truth/modules.txt"))
			if err != nil {
				t.Fatal(err)
			}
			// In a kdump scenario crashed through the lab's kicrash
			// module, the write to its debugfs trigger was still in the
			// module (its open file holds a reference): one more than
			// the truth, taken before.
			sc := labkernel.Scenario(name)
			crashMod := ""
			if c := sc.Crash; c != nil && c.Trigger != "sysrq" && c.Trigger != "lockup" {
				crashMod = "kicrash"
			}
			want := strings.TrimSpace(string(b))
			truth := map[string]string{}
			var wantLines []string
			for _, l := range strings.Split(want, "\n") {
				fs := strings.Fields(l)
				ref := fs[2]
				if fs[0] == crashMod {
					n, _ := strconv.Atoi(ref)
					ref = strconv.Itoa(n + 1)
					fs[2] = ref
					l = strings.Join(fs, " ")
				}
				wantLines = append(wantLines, l)
				truth[fs[0]] = fmt.Sprintf("%s %s %s", fs[1], ref, fs[5]) // size, refcount, address
			}
			want = strings.Join(wantLines, "\n")
			got := map[string]string{}
			for mod, err := range linux.ForEachModule(p) {
				if err != nil {
					t.Fatal(err)
				}
				m, err := linux.NewModule(mod)
				if err != nil {
					t.Fatal(err)
				}
				got[m.Name] = fmt.Sprintf("%d %d %#x", m.Size, m.Refcount, m.Base)
				if m.State != "MODULE_STATE_LIVE" {
					t.Errorf("%s: state %s", m.Name, m.State)
				}
			}
			for n, w := range truth {
				if got[n] != w {
					t.Errorf("module %s: %q, truth %q", n, got[n], w)
				}
			}
			if len(got) != len(truth) {
				t.Errorf("%d modules, truth %d", len(got), len(truth))
			}
			t.Logf("%d modules match /proc/modules (size, refcount, address)", len(truth))
			// And line for line, as ProcModules prints them.
			mods, err := linux.ProcModules(p)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, m := range mods {
				lines = append(lines, m.Line())
			}
			if got := strings.Join(lines, "\n"); got != want {
				t.Errorf("/proc/modules:\n%s", diffLines(lines, strings.Split(want, "\n")))
			}
		})
	}
}

// TestLabPrintk: the records read from each dump print as the guest's
// dmesg printed them: every truth line, in order, from the first; the
// dump, taken later, may have more lines at the end.
func TestLabPrintk(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(labkernel.Scenario(name).Path("truth/dmesg.txt"))
			if err != nil {
				t.Fatal(err)
			}
			truth := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			ring, err := linux.ReadPrintkRing(p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range ring.Records {
				got = append(got, r.DmesgLines()...)
			}
			checkDmesg(t, got, truth)
			if ring.Skipped > 0 {
				t.Errorf("%d descriptors skipped", ring.Skipped)
			}
			for i := 1; i < len(ring.Records); i++ {
				if ring.Records[i].Seq != ring.Records[i-1].Seq+1 {
					t.Errorf("seq %d follows %d", ring.Records[i].Seq, ring.Records[i-1].Seq)
				}
			}
			t.Logf("%d records, %d lines (truth %d), seq %d-%d", len(ring.Records), len(got), len(truth), ring.Records[0].Seq, ring.Records[len(ring.Records)-1].Seq)
		})
	}
}

func checkDmesg(t *testing.T, got, truth []string) {
	t.Helper()
	// The truth may start later if the ring wrapped before dmesg ran;
	// find its first line.
	start := -1
	for i, l := range got {
		if l == truth[0] {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("truth's first line %q not found", truth[0])
	}
	got = got[start:]
	for i, l := range truth {
		if i >= len(got) {
			t.Fatalf("dump ends at truth line %d of %d", i+1, len(truth))
		}
		if got[i] != l {
			t.Fatalf("line %d:\n got  %q\n want %q", i+1, got[i], l)
		}
	}
}

// TestLabExplainExcluded: for the pages makedumpfile -d 31 left out of a
// dump, what their struct page says (ReadPageUse, read in the filtered
// dump) puts them under a bit of the level, or the page is all zeros in
// the scenario's complete ELF dump of the same memory (bit 1). On 6.10+
// kernels makedumpfile 1.7.2 takes slab pages for free ones (labdata's
// Misfiltered): there every page that fits no bit must be slab.
func TestLabExplainExcluded(t *testing.T) {
	for _, s := range labdata.Built(t) {
		full, ok := s.Format("elf")
		if !ok {
			continue
		}
		fm, ok := s.Format("kdump-zlib-d31")
		if !ok {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			k := labkernel.Open(t, s, fm.Name)
			e := labkernel.Open(t, s, full.Name)
			n, _ := k.Dump().MemorySize()
			page := make([]byte, 4096)
			kinds := map[string]int{}
			bad := 0
			for pfn := uint64(0); pfn < n/4096; pfn += 3 {
				if _, err := k.Dump().ReadPhys(page, pfn*4096); err == nil || !errors.Is(err, vmcore.ErrPageExcluded) {
					continue
				}
				u, err := linux.ReadPageUse(k.Program(), pfn)
				if err != nil {
					t.Fatalf("pfn %#x: %v", pfn, err)
				}
				if u.Bit != 0 {
					kinds[u.Kind]++
					continue
				}
				if _, err := e.Dump().ReadPhys(page, pfn*4096); err == nil && allZero(page) {
					kinds["zero ("+u.Kind+")"]++
					continue
				}
				kinds["misfiltered "+u.Kind]++
				if s.Misfiltered(fm) == "" || u.Kind != "slab" {
					if bad++; bad < 10 {
						t.Errorf("pfn %#x left out, but its struct page says %s and it is not zero", pfn, u.Kind)
					}
				}
			}
			t.Logf("excluded pages (every 3rd pfn) by what their struct page says: %v", kinds)
		})
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestLabCaptureModules: a LiME capture lists the modules of the truth's
// /proc/modules, line for line, and one more, exactly the capture's own:
// lime, still in its init function (the capture runs there): state
// MODULE_STATE_COMING, "Loading" with "+" in its taints, one reference
// (load_module holds one during init), unsigned and out of tree (OE).
// Its kallsyms are there too: every line of the truth's module kallsyms,
// and lime's. An AVML capture (avml is a process, not a module) lists
// exactly the truth's modules and module kallsyms.
func TestLabCaptureModules(t *testing.T) {
	n := 0
	for _, s := range labdata.Built(t) {
		for _, f := range s.Captures {
			n++
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				avml := s.LiME(t).AVML()
				p := labkernel.Open(t, s, f.Name).Program()
				b, err := os.ReadFile(s.Path("truth/modules.txt"))
				if err != nil {
					t.Fatal(err)
				}
				want := strings.Split(strings.TrimSpace(string(b)), "\n")
				mods, err := linux.ProcModules(p)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				var lime *linux.ModuleInfo
				for i, m := range mods {
					if m.Name == labdata.LiMEModule {
						lime = &mods[i]
						continue
					}
					got = append(got, m.Line())
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("/proc/modules but lime:\n%s", diffLines(got, want))
				}
				if avml {
					if lime != nil {
						t.Errorf("an AVML capture with a module %s: %+v", labdata.LiMEModule, lime)
					}
				} else if lime == nil {
					t.Fatalf("no module %s", labdata.LiMEModule)
				}
				if !avml {
					t.Logf("%d modules of the truth, and %s", len(want), lime.Line())
					if lime.State != "MODULE_STATE_COMING" || lime.Status != "Loading" || lime.Refcount != 1 || lime.Taints != "(OE+)" {
						t.Errorf("%s: %+v", lime.Name, lime)
					}
					if len(mods) != len(want)+1 {
						t.Errorf("%d modules, truth %d and lime", len(mods), len(want))
					}
				}

				tab := kallsyms.FromMemory(nil, kallsyms.Locations{})
				if err := linux.AddModuleSymbols(p, tab); err != nil {
					t.Fatal(err)
				}
				truth := labdata.KallsymsLines(t, s.Path("truth/kallsyms.txt"), false)
				read := map[string]bool{}
				limeSyms := 0
				for sym := range tab.All() {
					switch sym.Module {
					case "":
					case labdata.LiMEModule:
						limeSyms++
					default:
						read[fmt.Sprintf("%016x %c %s [%s]", sym.Addr, sym.Type, sym.Name, sym.Module)] = true
					}
				}
				labdata.CompareSets(t, "module kallsyms but lime's", read, truth)
				if (limeSyms == 0) != avml {
					t.Errorf("%d kallsyms of %s (AVML capture: %v)", limeSyms, labdata.LiMEModule, avml)
				}
			})
		}
	}
	if n == 0 {
		t.Skip("no scenario with a capture built")
	}
}
