package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
)

func TestPrintPs(t *testing.T) {
	var out bytes.Buffer
	printPs(&out, []linux.PSRow{
		{PID: 0, TID: 0, CPU: 0, Task: 0xffffffff82614940, State: "R", Name: "swapper/0", KThread: true, Running: true},
		{PID: 1, TID: 1, CPU: 1, Task: 0xffff888100268000, State: "S", Name: "init"},
		{PID: 120, TID: 123, PPID: 1, CPU: 1, Task: 0xffff888100a00000, State: "R", Name: "ki_spinner", Running: true},
	})
	want := `       PID    PPID  CPU             TASK  ST  COMM
>        0       0    0 ffffffff82614940   R  [swapper/0]
         1       0    1 ffff888100268000   S  init
>      123       1    1 ffff888100a00000   R  ki_spinner
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestPsUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ps", "help"}, 0, "Usage: kinspect"},
		{[]string{"ps", "--bogus"}, 2, "not a PID or an option"},
		{[]string{"ps"}, 2, "give -c DUMP or --live"},
		{[]string{"--json", "ps"}, 2, `{"error":`},
		{[]string{"dmesg", "help"}, 0, "Usage: kinspect"},
		{[]string{"dmesg", "x"}, 2, "unexpected"},
	} {
		var out bytes.Buffer
		if code := run(tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q; want %d, %q", tt.args, code, out.String(), tt.code, tt.want)
		}
	}
}

// truthPs is an entry of truth/ps.json.
type truthPs = labdata.PSTask

// readTruthPs reads truth/ps.json and the snapshot's own PID.
func readTruthPs(t *testing.T, s *labdata.Scenario) ([]truthPs, int) {
	t.Helper()
	return labdata.ReadPS(t, s)
}

// dumpSwitches reads the context switches of every task of a dump (TID
// to nvcsw+nivcsw), which say whether a task ran since the snapshot
// (labdata.PSTask.RanSince). Tasks a damaged walk loses are left out.
func dumpSwitches(t *testing.T, path string) map[int]uint64 {
	t.Helper()
	k, err := openKernel(&env{globals: globals{dump: path, cache: defaultPageCacheMiB}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	out := map[int]uint64{}
	for task, err := range linux.ForEachTask(k.Program()) {
		if err != nil {
			continue
		}
		tk, err := linux.NewTask(task)
		if err != nil {
			continue
		}
		vol, invol, err := linux.ContextSwitches(task)
		if err != nil {
			t.Error(err)
		}
		out[tk.TID] = vol + invol
	}
	return out
}

// psDiff compares ps --json with the truth: every truth task by tid with
// its pid, ppid, name (/proc's comm) and state. It returns what differs:
// tasks missing from got, tasks in got but not in the truth (other than
// the idle tasks and the excluded snapshot process), kworkers whose
// current workqueue changed, and state differences: with the dump's
// context switches (dumpSwitches), those of tasks that ran since the
// snapshot are told apart (ran) from those of tasks that did not
// (states, which should be none).
type psDiff struct {
	matched                      int
	missing, extra, wrong, descs []string
	states, ran                  []string
	newThreads                   []string // threads of truth processes started after the truth
	exited                       []string // idle kworkers destroyed after the truth
}

func comparePs(got []linux.PSRow, truth []truthPs, excluded int, switches map[int]uint64) psDiff {
	var d psDiff
	byTID := map[int]linux.PSRow{}
	for _, g := range got {
		if g.TID != 0 {
			byTID[g.TID] = g
		}
	}
	for _, tr := range truth {
		g, ok := byTID[tr.TID]
		switch {
		case !ok && labdata.ExitedAfterTruth(tr.PPID, tr.Comm):
			d.exited = append(d.exited, fmt.Sprintf("%d(%s)", tr.TID, tr.Comm))
			continue
		case !ok:
			d.missing = append(d.missing, fmt.Sprintf("%d(%s)", tr.TID, tr.Comm))
			continue
		}
		delete(byTID, tr.TID)
		switch {
		case g.Name == "kworker/dying" && labdata.ExitedAfterTruth(tr.PPID, tr.Comm):
			// Exiting: a worker the pool destroys is renamed so
			// (workqueue.c, set_worker_dying) before it exits; a
			// capture copying memory while it runs catches that.
			d.exited = append(d.exited, fmt.Sprintf("%d(%s)", tr.TID, tr.Comm))
			continue
		case g.PID != tr.PID || g.PPID != tr.PPID:
			d.wrong = append(d.wrong, fmt.Sprintf("%d: pid %d ppid %d, truth %d %d", tr.TID, g.PID, g.PPID, tr.PID, tr.PPID))
			continue
		case g.Name != tr.Comm && workerID(g.Name) == workerID(tr.Comm):
			d.descs = append(d.descs, fmt.Sprintf("%d %s→%s", tr.TID, tr.Comm, g.Name))
		case g.Name != tr.Comm:
			d.wrong = append(d.wrong, fmt.Sprintf("%d: %q, truth %q", tr.TID, g.Name, tr.Comm))
			continue
		}
		if g.State != tr.State {
			sw, ok := switches[tr.TID]
			if why := tr.RanSince(g.State, g.Running, sw); ok && why != "" {
				d.ran = append(d.ran, fmt.Sprintf("%d(%s) %s, truth %s: %s", tr.TID, tr.Comm, g.State, tr.State, why))
			} else {
				d.states = append(d.states, fmt.Sprintf("%d(%s) %s, truth %s", tr.TID, tr.Comm, g.State, tr.State))
			}
		}
		d.matched++
	}
	comm := map[int]string{}
	maxTID := 0
	for _, tr := range truth {
		comm[tr.TID] = tr.Comm
		maxTID = max(maxTID, tr.TID)
	}
	for tid, g := range byTID {
		switch {
		case g.PID == excluded:
		case labdata.StartedAfterTruth(tid, g.PPID, g.Name, maxTID, func(pid int) bool { return comm[pid] != "" }):
			d.newThreads = append(d.newThreads, fmt.Sprintf("%d(%s)", tid, g.Name))
		case g.PID != tid && comm[g.PID] != "" && comm[g.PID] == g.Name:
			// A thread a truth process started after the truth (the
			// workload's Go runtime does, as goroutines block).
			d.newThreads = append(d.newThreads, fmt.Sprintf("%d(%s)", tid, g.Name))
		default:
			d.extra = append(d.extra, fmt.Sprintf("%d(%s)", tid, g.Name))
		}
	}
	sort.Strings(d.extra)
	return d
}

// workerID is a kworker's name without its workqueue: the part a worker
// keeps when it serves another workqueue.
func workerID(s string) string {
	if !strings.HasPrefix(s, "kworker/") || strings.HasPrefix(s, "kworker/R-") {
		return s
	}
	if i := strings.IndexAny(s[len("kworker/"):], "+-"); i >= 0 {
		return s[:len("kworker/")+i]
	}
	return s
}

func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("%v: exit %d: %s%s", args, code, out.String(), errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out.String())
	}
}

// TestPsLab: ps on every scenario's dumps lists the truth's tasks.
func TestPsLab(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		truth, excluded := readTruthPs(t, s)
		formats := []string{"kdump-zlib", "elf"}
		if s.NoVMCOREINFO {
			// No makedumpfile formats: QEMU's kdump too.
			formats = append(formats, "qemu-kdump-zlib.flat")
		}
		for _, f := range formats {
			fm, ok := s.Format(f)
			if !ok {
				continue
			}
			t.Run(s.Scenario+"/"+f, func(t *testing.T) {
				var got []linux.PSRow
				runJSON(t, &got, "--json", "-c", s.Path(fm.Path), "ps")
				d := comparePs(got, truth, excluded, dumpSwitches(t, s.Path(fm.Path)))
				t.Logf("%d truth tasks, %d listed: %d match pid, tid, ppid, name; kworkers that changed workqueue: %v; states differ where the task ran since: %v; threads started since: %v; kworkers exited since: %v",
					len(truth), len(got), d.matched, d.descs, d.ran, d.newThreads, d.exited)
				if len(d.missing)+len(d.extra)+len(d.wrong) > 0 {
					t.Errorf("missing %v, extra %v, wrong %v", d.missing, d.extra, d.wrong)
				}
				// Only a task that ran since the snapshot may show
				// another state.
				if len(d.states) > 0 {
					t.Errorf("states differ of tasks that did not run since the snapshot: %v", d.states)
				}
				running := map[int]string{}
				idle := 0
				for _, g := range got {
					if g.Running {
						running[g.CPU] = g.Name
					}
					if g.TID == 0 {
						idle++
					}
				}
				if idle != s.CPUs || running[1] != "ki_spinner" || len(running) != s.CPUs {
					t.Errorf("%d idle tasks, running %v; want %d, ki_spinner on CPU 1", idle, running, s.CPUs)
				}
			})
		}
	}
}

// TestPsPIDLab: ps PID lists the process's threads.
func TestPsPIDLab(t *testing.T) {
	s := labdata.Require(t, "basic")
	truth, _ := readTruthPs(t, s)
	var spinner truthPs
	for _, tr := range truth {
		if tr.Comm == "ki_spinner" {
			spinner = tr
		}
	}
	want := 0
	for _, tr := range truth {
		if tr.PID == spinner.PID {
			want++
		}
	}
	var got []linux.PSRow
	runJSON(t, &got, "--json", "-c", s.Path("dumps/kdump-zlib"), "ps", fmt.Sprint(spinner.PID))
	if len(got) != want {
		t.Errorf("ps %d: %d tasks, truth %d", spinner.PID, len(got), want)
	}
	var out bytes.Buffer
	if code := run([]string{"-c", s.Path("dumps/kdump-zlib"), "ps", "999999"}, &out, &out); code != 1 || !strings.Contains(out.String(), "no task with PID 999999") {
		t.Errorf("ps 999999: exit %d, %s", code, out.String())
	}
}

// BenchmarkPsScale lists the scale scenario's 2,000+ tasks (the kernel
// opened once): go test ./cmd/kinspect -run - -bench PsScale -benchmem.
func BenchmarkPsScale(b *testing.B) {
	s := labdata.Require(b, "scale")
	for _, f := range []string{"elf", "kdump-zlib"} {
		b.Run(f, func(b *testing.B) {
			k, err := openKernel(&env{globals: globals{dump: s.Path("dumps/" + f), cache: defaultPageCacheMiB}}, "")
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			n := 0
			for b.Loop() {
				tasks, _, err := linux.PSRows(k.Program())
				if err != nil {
					b.Fatal(err)
				}
				n = len(tasks)
			}
			b.ReportMetric(float64(n), "tasks")
		})
	}
}
