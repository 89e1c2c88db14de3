package bpfrun_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/vmcore"
)

// The truth of test runs: the lab runs programs in the guest with
// BPF_PROG_TEST_RUN and records, per program, truth/testrun/NAME.json
// (lab/workload/testrun.go writes it; "note", optional, says which
// branch no input reaches and why, or what a run's output left):
//
//	{"prog_id": 295, "prog_name": "ki_xdp", "prog_type": "xdp", "note": "...",
//	 "runs": [{"data_in": "HEX", "ctx_in": "HEX", "repeat": 1,
//	           "cpu": 0, "pid": 123,
//	           "retval": 2, "data_out": "HEX", "ctx_out": "HEX",
//	           "map_changes": [{"map_id": 45, "key": "HEX",
//	                            "before": "HEX" | null, "after": "HEX" | null}]}]}
//
// each run from the same map state, which the lab restores after each
// run and before the dump (so the dump's maps are every run's "before").
//
// Runs that cannot be undone (an LRU's eviction depends on its lists,
// which every operation moves) are "chained": true, each from the state
// the run before left, on a program whose maps the dump no longer holds
// as they were; "replay_prog_id" names its twin (the same object loaded
// again, never run), whose maps hold the first run's "before", and
// "replay_maps" maps each map ID of the runs to its twin's:
//
//	{"prog_id": 301, "prog_name": "ki_tr_lruev_k", "chained": true,
//	 "replay_prog_id": 302, "replay_maps": {"60": 62, "61": 63}, "runs": [...]}
//
// The replay then runs the twin, the runs in one session, and compares
// each run's own changes.
// cpu is the CPU the run ran on (the kernel's test run runs on the
// caller's: pin the runner), pid the runner's thread (the current task of
// bpf_get_current_*); both optional (0: CPU 0, the idle task).
// A per-CPU map's value is every possible CPU's value, each padded to 8
// bytes, as BPF_MAP_LOOKUP_ELEM returns it; ctx_in, ctx_out and data_out
// are absent (or "") when the run had none. replayTruth replays every
// run on the dump and requires the same retval, data_out, ctx_out and
// the same set of changed map entries.

type truthFile struct {
	ProgID   uint32     `json:"prog_id"`
	ProgName string     `json:"prog_name"`
	ProgType string     `json:"prog_type"`
	Runs     []truthRun `json:"runs"`

	ReplayProgID uint32            `json:"replay_prog_id"`
	ReplayMaps   map[string]uint32 `json:"replay_maps"`
	Chained      bool              `json:"chained"`
}

type truthRun struct {
	DataIn     string        `json:"data_in"`
	CtxIn      string        `json:"ctx_in"`
	Repeat     int           `json:"repeat"`
	CPU        int           `json:"cpu"`
	PID        int           `json:"pid"`
	Retval     uint32        `json:"retval"`
	DataOut    *string       `json:"data_out"`
	CtxOut     *string       `json:"ctx_out"`
	MapChanges []truthChange `json:"map_changes"`
}

type truthChange struct {
	MapID  uint32  `json:"map_id"`
	Key    string  `json:"key"`
	Before *string `json:"before"`
	After  *string `json:"after"`
}

func (c truthChange) String() string {
	h := func(s *string) string {
		if s == nil {
			return "null"
		}
		return strings.ToLower(*s)
	}
	return fmt.Sprintf("map %d key %s: %s -> %s", c.MapID, strings.ToLower(c.Key), h(c.Before), h(c.After))
}

// checkTruth replays every run of dir's truth files on k and returns
// the differences from the kernel's; found is false when dir does not
// exist.
func checkTruth(t *testing.T, k *kinspect.Kernel, dir string) (found bool, problems []string) {
	if _, err := os.Stat(dir); err != nil {
		return false, nil
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		return true, []string{dir + ": no truth files"}
	}
	r := bpfrun.FromKernel(k)
	for _, f := range files {
		var tf truthFile
		labdata.ReadJSON(t, f, &tf)
		bad := func(format string, args ...any) {
			problems = append(problems, filepath.Base(f)+": "+fmt.Sprintf(format, args...))
		}
		p, err := r.Prog(bpf.Selector{Kind: bpf.SelectID, ID: tf.ProgID})
		if err != nil {
			bad("%v", err)
			continue
		}
		if p.Name != tf.ProgName {
			bad("prog %d is %s in the dump, %s in the truth", tf.ProgID, p.Name, tf.ProgName)
			continue
		}
		if tf.ReplayProgID != 0 {
			if p, err = r.Prog(bpf.Selector{Kind: bpf.SelectID, ID: tf.ReplayProgID}); err != nil {
				bad("replay_prog_id %d: %v", tf.ReplayProgID, err)
				continue
			}
		}
		// The chained runs' session, and the map entries as the runs
		// before left them (key: change's map and key).
		var chain *bpfrun.Session
		left := map[string]truthChange{}
		for i, run := range tf.Runs {
			unhex := func(what, s string) []byte {
				b, err := hex.DecodeString(s)
				if err != nil {
					bad("run %d: %s: %v", i, what, err)
				}
				return b
			}
			ro := bpfrun.RunOptions{DataIn: unhex("data_in", run.DataIn), Repeat: run.Repeat}
			if run.CtxIn != "" {
				ro.CtxIn = unhex("ctx_in", run.CtxIn)
			}
			var res *bpfrun.Result
			if tf.Chained {
				if chain == nil {
					if chain, err = r.NewSession(bpfrun.Options{CPU: run.CPU, PID: run.PID}); err != nil {
						bad("run %d: %v", i, err)
						break
					}
				}
				res, err = chain.Run(p, ro)
			} else {
				res, err = r.Run(p, ro, bpfrun.Options{CPU: run.CPU, PID: run.PID})
			}
			if err != nil {
				bad("run %d: %v", i, err)
				continue
			}
			if res.Retval != run.Retval {
				bad("run %d: retval %d, the kernel's %d", i, res.Retval, run.Retval)
			}
			if run.DataOut != nil && *run.DataOut != "" && !bytes.Equal(res.DataOut, unhex("data_out", *run.DataOut)) {
				bad("run %d: data_out\n%x\nthe kernel's\n%s", i, res.DataOut, *run.DataOut)
			}
			if run.CtxOut != nil && *run.CtxOut != "" && !bytes.Equal(res.CtxOut, unhex("ctx_out", *run.CtxOut)) {
				bad("run %d: ctx_out\n%x\nthe kernel's\n%s", i, res.CtxOut, *run.CtxOut)
			}
			var got, want []string
			var changes []truthChange
			for _, c := range res.MapChanges {
				tc := truthChange{MapID: c.MapID, Key: hex.EncodeToString(c.Key)}
				if c.Before != nil {
					s := hex.EncodeToString(*c.Before)
					tc.Before = &s
				}
				if c.After != nil {
					s := hex.EncodeToString(*c.After)
					tc.After = &s
				}
				changes = append(changes, tc)
			}
			if tf.Chained {
				changes = runChanges(changes, left)
			}
			for _, c := range changes {
				got = append(got, c.String())
			}
			for _, c := range run.MapChanges {
				if id, ok := tf.ReplayMaps[fmt.Sprint(c.MapID)]; ok {
					c.MapID = id
				}
				want = append(want, c.String())
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				bad("run %d: map changes\n%s\nthe kernel's\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	return true, problems
}

// runChanges turns a chained session's changes since the dump (cum) into
// the last run's own: the entries whose value differs from what the runs
// before left (left, updated here).
func runChanges(cum []truthChange, left map[string]truthChange) []truthChange {
	str := func(s *string) string {
		if s == nil {
			return "null"
		}
		return *s
	}
	var out []truthChange
	seen := map[string]bool{}
	for _, c := range cum {
		k := fmt.Sprint(c.MapID, "/", c.Key)
		seen[k] = true
		before := c.Before // the dump's value: no run before changed it
		if prev, ok := left[k]; ok {
			before = prev.After
		}
		if str(before) != str(c.After) {
			out = append(out, truthChange{MapID: c.MapID, Key: c.Key, Before: before, After: c.After})
		}
		left[k] = c
	}
	// An entry a run before changed that is back to the dump's value is
	// not among the changes since the dump: this run changed it back.
	for k, prev := range left {
		if !seen[k] {
			if str(prev.After) != str(prev.Before) {
				out = append(out, truthChange{MapID: prev.MapID, Key: prev.Key, Before: prev.After, After: prev.Before})
			}
			delete(left, k)
		}
	}
	return out
}

// TestLabTruth replays the kernel's own test runs, where the lab
// recorded them, on every dump format of the scenario.
func TestLabTruth(t *testing.T) {
	ran := false
	for _, sc := range dumpScenarios(t) {
		dir := sc.Path("truth/testrun")
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		t.Run(sc.Scenario+"/covered", func(t *testing.T) { checkCovered(t, sc, dir) })
		for _, f := range sc.Formats {
			t.Run(sc.Scenario+"/"+f.Name, func(t *testing.T) {
				_, problems := checkTruth(t, labkernel.Open(t, sc, f.Name), dir)
				why := sc.Misfiltered(f)
				missing := 0
				for _, p := range problems {
					// A misfiltered dump lacks slab pages: a map or
					// program on one cannot be replayed, but a run
					// that was must still equal the kernel's.
					if why != "" && (strings.Contains(p, vmcore.ErrPageExcluded.Error()) || strings.Contains(p, "not found")) {
						missing++
						continue
					}
					t.Error(p)
				}
				if missing > 0 {
					t.Logf("%d runs or programs not replayed: %s", missing, why)
				}
			})
		}
		ran = true
	}
	if !ran {
		t.Skip("no scenario has truth/testrun/: built before the lab recorded BPF_PROG_TEST_RUN runs (rebuild it)")
	}
}

// testRunnable are the program types (enum bpf_prog_type) of the
// workload that BPF_PROG_TEST_RUN runs: socket_filter, sched_cls, xdp,
// cgroup_skb, raw_tracepoint.
var testRunnable = map[uint32]bool{1: true, 3: true, 6: true, 8: true, 17: true}

// checkCovered checks that the lab test-ran every test-runnable program
// of the workload but ki_lockup (whose run never ends), the scale
// scenario's ki_sNNNN (copies of one program) and the programs on the
// lab's network devices (ki_net_xdp, ki_net_tc: one-line programs that
// packets run, and a test run would only add to their counts), with no
// run failing.
func checkCovered(t *testing.T, sc *labdata.Scenario, dir string) {
	w := readWorkload(t, sc)
	// A chained run's twin is replayed, never run: its runs are its twin's.
	twins := map[uint32]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		var tf truthFile
		labdata.ReadJSON(t, f, &tf)
		if tf.ReplayProgID != 0 {
			twins[tf.ReplayProgID] = true
		}
	}
	for _, n := range w.Notes {
		if strings.HasPrefix(n, "test runs of ") {
			t.Errorf("workload: %s", n)
		}
	}
	small := regexp.MustCompile(`^ki_s[0-9]{4}$`)
	for _, p := range w.Progs {
		if !testRunnable[p.TypeNum] || twins[p.ID] || p.Name == "ki_lockup" || p.Name == "ki_net_xdp" || p.Name == "ki_net_tc" || small.MatchString(p.Name) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, p.Name+".json")); err != nil {
			t.Errorf("program %s (type %d): no truth of test runs: %v", p.Name, p.TypeNum, err)
		}
	}
}

// TestTruthFormat runs checkTruth on truth written here in the format,
// with values from the programs' sources (ki_tail_entry returns ki_tail_tgt's
// 42 and counts in ki_counters[6]), and checks that it catches a wrong
// one.
func TestTruthFormat(t *testing.T) {
	s := labdata.Require(t, "basic")
	k := labkernel.Open(t, s, "elf")
	w := readWorkload(t, s)
	p, err := bpfrun.FromKernel(k).Prog(bpf.Selector{Kind: bpf.SelectName, Name: "ki_tail_entry"})
	if err != nil {
		t.Fatal(err)
	}
	// ki_counters[6] in the dump: the value before.
	m, err := bpf.MapByID(k.Program(), w.mapID(t, "ki_counters"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.Lookup([]byte{6, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	before := hex.EncodeToString(e.Value)
	after := append([]byte(nil), e.Value...)
	after[0] += 2
	afterHex := hex.EncodeToString(after)
	pkt := hex.EncodeToString(ipv4(40, [4]byte{}))
	out := strings.Repeat("00", 14) + pkt[28:]
	tf := truthFile{ProgID: p.ID, ProgName: p.Name, ProgType: "socket_filter", Runs: []truthRun{
		{DataIn: pkt, Repeat: 2, Retval: 42, DataOut: &out,
			MapChanges: []truthChange{{MapID: m.ID, Key: "06000000", Before: &before, After: &afterHex}}},
	}}
	dir := t.TempDir()
	write := func(tf truthFile) {
		b, _ := json.Marshal(tf)
		if err := os.WriteFile(filepath.Join(dir, "ki_tail_entry.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(tf)
	if found, problems := checkTruth(t, k, dir); !found || len(problems) > 0 {
		t.Fatalf("found %v, problems %q", found, problems)
	}
	// A wrong retval and a wrong map change are caught.
	tf.Runs[0].Retval = 41
	tf.Runs[0].MapChanges[0].After = &before
	write(tf)
	_, problems := checkTruth(t, k, dir)
	if len(problems) != 2 || !strings.Contains(problems[0], "retval 42, the kernel's 41") || !strings.Contains(problems[1], "map changes") {
		t.Errorf("problems %q", problems)
	}
	if found, _ := checkTruth(t, k, filepath.Join(dir, "none")); found {
		t.Error("a missing directory was found")
	}
}

// TestRunChanges checks how a chained session's changes since the dump
// become each run's own: an entry made, changed again, deleted, and one
// changed back to the dump's value.
func TestRunChanges(t *testing.T) {
	s := func(v string) *string { return &v }
	c := func(key string, before, after *string) truthChange {
		return truthChange{MapID: 7, Key: key, Before: before, After: after}
	}
	str := func(cs []truthChange) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.String())
		}
		sort.Strings(out)
		return strings.Join(out, "; ")
	}
	left := map[string]truthChange{}
	steps := []struct{ cum, want []truthChange }{
		// run 1 makes key 01 and changes 02 (which the dump has as aa).
		{[]truthChange{c("01", nil, s("10")), c("02", s("aa"), s("bb"))},
			[]truthChange{c("01", nil, s("10")), c("02", s("aa"), s("bb"))}},
		// run 2 changes 01 again and puts 02 back as the dump had it.
		{[]truthChange{c("01", nil, s("11"))},
			[]truthChange{c("01", s("10"), s("11")), c("02", s("bb"), s("aa"))}},
		// run 3 deletes 01 and changes nothing else.
		{nil, []truthChange{c("01", s("11"), nil)}},
		// run 4 changes nothing.
		{nil, nil},
	}
	for i, st := range steps {
		if got, want := str(runChanges(st.cum, left)), str(st.want); got != want {
			t.Errorf("run %d: %s, want %s", i+1, got, want)
		}
	}
}
