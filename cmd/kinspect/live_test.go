package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
)

// liveRun is one command the lab ran as "kinspect --live CMD" inside the
// guest (lab/guest/live-commands): truth/live/N.{cmd,out,err,rc}.
type liveRun struct {
	n        int
	cmd      string
	out, err []byte
	rc       int
}

func liveRuns(t *testing.T, s *labdata.Scenario) map[string]liveRun {
	t.Helper()
	paths, _ := filepath.Glob(s.Path("truth/live/*.cmd"))
	out := map[string]liveRun{}
	for _, p := range paths {
		base := strings.TrimSuffix(p, ".cmd")
		n, _ := strconv.Atoi(filepath.Base(base))
		cmd, _ := os.ReadFile(p)
		r := liveRun{n: n, cmd: strings.TrimSpace(string(cmd))}
		r.out, _ = os.ReadFile(base + ".out")
		r.err, _ = os.ReadFile(base + ".err")
		rc, _ := os.ReadFile(base + ".rc")
		r.rc, _ = strconv.Atoi(strings.TrimSpace(string(rc)))
		out[r.cmd] = r
	}
	return out
}

// TestLive compares what kinspect --live printed inside the basic-live
// guest (through /proc/kcore and /proc/kallsyms) with that guest's truth,
// as the dump tests do. The live commands ran before the truth's dmesg
// and ps snapshot were taken.
func TestLive(t *testing.T) {
	s := labdata.Require(t, "basic-live")
	runs := liveRuns(t, s)
	need := func(t *testing.T, cmd string) liveRun {
		t.Helper()
		r, ok := runs[cmd]
		if !ok {
			t.Skipf("the lab did not run %q: rebuild basic-live (go run ./lab basic-live)", cmd)
		}
		if r.rc != 0 {
			t.Fatalf("kinspect --live %s: exit %d: %s%s", cmd, r.rc, r.out, r.err)
		}
		return r
	}
	t.Run("ps", func(t *testing.T) {
		r := need(t, "--json ps")
		var got []linux.PSRow
		if err := json.Unmarshal(r.out, &got); err != nil {
			t.Fatalf("%v: %s", err, r.out)
		}
		truth, _ := readTruthPs(t, s)
		// kinspect itself was running: tasks whose IDs are above its PID
		// were made after it (missing from its list) or gone before the
		// snapshot (missing from the truth). The spinner is held asleep
		// while the live commands run, and runs by the snapshot.
		self := -1
		for _, g := range got {
			if g.Name == "kinspect" && g.Running {
				self = g.PID
			}
		}
		if self < 0 {
			t.Fatalf("kinspect is not running in its own ps")
		}
		var before []truthPs
		for _, tr := range truth {
			if tr.PID < self && tr.TID < self {
				before = append(before, tr)
			}
		}
		d := comparePs(got, before, self, nil)
		// A kworker the live run saw may be gone by the snapshot, minutes
		// later under emulation: worker pools destroy workers idle for
		// IDLE_WORKER_TIMEOUT (300 s). Any other extra task is an error.
		var extra, idle []string
		for _, x := range d.extra {
			n, _ := strconv.Atoi(x[:strings.IndexByte(x, '(')])
			switch {
			case n >= self:
			case strings.Contains(x, "(kworker/"):
				idle = append(idle, x)
			default:
				extra = append(extra, x)
			}
		}
		t.Logf("%d truth tasks older than kinspect (pid %d): %d match pid, tid, ppid, name; kworkers that changed workqueue: %v; kworkers gone by the snapshot: %v; states differ: %v",
			len(before), self, d.matched, d.descs, idle, d.states)
		if len(d.missing)+len(extra)+len(d.wrong) > 0 {
			t.Errorf("missing %v, extra %v, wrong %v", d.missing, extra, d.wrong)
		}
		if len(d.states) > 5 {
			t.Errorf("%d states differ: %v", len(d.states), d.states)
		}
	})
	t.Run("dmesg", func(t *testing.T) {
		r := need(t, "dmesg")
		b, err := os.ReadFile(s.Path("truth/dmesg.txt"))
		if err != nil {
			t.Fatal(err)
		}
		got, truth := lines(r.out), lines(b)
		// The truth was read later: it has the live lines, then more.
		dmesgPrefix(t, truth, got)
		t.Logf("all %d live lines are the truth's first (the truth has %d)", len(got), len(truth))
	})
	t.Run("sym", func(t *testing.T) {
		kall, err := os.ReadFile(s.Path("truth/kallsyms.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"init_task", "p9_client_rpc"} {
			r := need(t, "--json sym "+name)
			var got []symResult
			if err := json.Unmarshal(r.out, &got); err != nil {
				t.Fatalf("%v: %s", err, r.out)
			}
			var want []string
			for _, l := range strings.Split(string(kall), "\n") {
				if fs := strings.Fields(l); len(fs) >= 3 && fs[2] == name {
					want = append(want, strings.Join(fs, " "))
				}
			}
			var have []string
			for _, g := range got {
				l := fmt.Sprintf("%016x", uint64(g.Address)) + " " + g.Type + " " + g.Name
				if g.Module != "" {
					l += " [" + g.Module + "]"
				}
				have = append(have, l)
			}
			sort.Strings(want)
			sort.Strings(have)
			if strings.Join(have, "|") != strings.Join(want, "|") || len(want) == 0 {
				t.Errorf("sym %s: %v, truth %v", name, have, want)
			}
		}
	})
}
