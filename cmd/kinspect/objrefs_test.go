package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labdata"
)

// reporter is what the lab checks report through: a *testing.T, or a
// recorder where a failure only skips.
type reporter interface {
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// recorder keeps the first failure.
type recorder struct{ first string }

func (r *recorder) Errorf(format string, args ...any) {
	if r.first == "" {
		r.first = fmt.Sprintf(format, args...)
	}
}
func (r *recorder) Logf(string, ...any) {}

// labFormatsWithTruth runs check on every format of every built
// scenario that has the truth file rel (older builds lack the -f and
// fdinfo truth, and skip). Where filtering dropped pages the kernel was
// using (labdata Misfiltered), a failure only skips.
func labFormatsWithTruth(t *testing.T, rel string, check func(t reporter, s *labdata.Scenario, dump string)) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		for _, fm := range s.Formats {
			t.Run(s.Scenario+"/"+fm.Name, func(t *testing.T) {
				if _, err := os.Stat(s.Path(rel)); err != nil {
					t.Skipf("no %s in this build of %s", rel, s.Scenario)
				}
				if why := s.Misfiltered(fm); why != "" {
					var r recorder
					check(&r, s, s.Path(fm.Path))
					if r.first != "" {
						t.Skipf("%s (%s)", why, r.first)
					}
					return
				}
				check(t, s, s.Path(fm.Path))
			})
		}
	}
}

// tryRun runs kinspect, reporting a failure or a warning.
func tryRun(t reporter, args ...string) ([]byte, bool) {
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Errorf("kinspect %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		return nil, false
	}
	if errb.Len() > 0 {
		t.Errorf("kinspect %s: %s", strings.Join(args, " "), errb.String())
		return out.Bytes(), false
	}
	return out.Bytes(), true
}

// tryRunFiltered is tryRun where the dump left out zero pages
// (makedumpfile's dump level bit 1): a read of such a page (an fd array's
// unused half is all NULL) is reported on stderr and is no failure.
func tryRunFiltered(t reporter, s *labdata.Scenario, dump string, args ...string) ([]byte, bool) {
	zero := false
	for _, fm := range s.Formats {
		if s.Path(fm.Path) == dump && fm.Producer == "makedumpfile" && fm.DumpLevel&1 != 0 {
			zero = true
		}
	}
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Errorf("kinspect %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		return nil, false
	}
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if l == "" {
			continue
		}
		if zero && strings.HasSuffix(l, "page excluded from the dump") {
			t.Logf("kinspect %s: %s", strings.Join(args, " "), l)
			continue
		}
		t.Errorf("kinspect %s: %s", strings.Join(args, " "), l)
		return out.Bytes(), false
	}
	return out.Bytes(), true
}

// TestShowPinnedTruth: "prog|map|link show -f", text and JSON, against
// bpftool's (truth/bpftool/NOUN_f.{txt,json}) on every dump, byte for
// byte. Where the outputs differ outside the pinned paths (link show,
// where kinspect prints attach details the lab's bpftool does not, and
// any difference the plain show tests report), each object's pinned
// paths must still be bpftool's, in its order.
func TestShowPinnedTruth(t *testing.T) {
	labFormatsWithTruth(t, "truth/bpftool/prog_f.json", func(t reporter, s *labdata.Scenario, dump string) {
		// bpftool cannot list the hidden program and link (labdata.Hidden).
		h, err := s.ReadHidden()
		if err != nil {
			t.Errorf("%v", err)
			return
		}
		for _, noun := range []string{"prog", "map", "link"} {
			hidden := map[string]map[uint32]string{"prog": h.Progs, "link": h.Links}[noun]
			for _, js := range []bool{true, false} {
				args := []string{"-c", dump, noun, "show", "-f"}
				truth := "truth/bpftool/" + noun + "_f.txt"
				if js {
					args = []string{"-c", dump, "--json", noun, "show", "--bpffs"}
					truth = "truth/bpftool/" + noun + "_f.json"
				}
				want, err := os.ReadFile(s.Path(truth))
				if err != nil {
					t.Errorf("%v", err)
					return
				}
				got, good := tryRun(t, args...)
				if !good {
					continue
				}
				if js {
					got = labdata.DropJSON(got, hidden)
				} else {
					got = labdata.DropText(got, hidden)
				}
				what := strings.Join(args[2:], " ")
				if bytes.Equal(got, want) {
					t.Logf("%s: equal to bpftool's", what)
					continue
				}
				t.Logf("%s differs from bpftool's outside the pinned paths:\n%s", what, firstDiff(string(got), string(want)))
				var g, w any
				if js {
					g, w = jsonPinned(t, got), jsonPinned(t, want)
				} else {
					g, w = plainPinned(got), plainPinned(want)
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: pinned paths %v, bpftool %v", what, g, w)
				}
			}
		}
	})
}

// jsonPinned returns each object's id and "pinned" array (nil without
// the key).
func jsonPinned(t reporter, out []byte) []string {
	var objs []map[string]any
	if err := json.Unmarshal(out, &objs); err != nil {
		t.Errorf("not a JSON array of objects: %v", err)
		return nil
	}
	var r []string
	for _, o := range objs {
		p, _ := json.Marshal(o["pinned"])
		r = append(r, fmt.Sprintf("%v: %s", o["id"], p))
	}
	return r
}

// plainPinned returns each object's first line and its pinned lines.
func plainPinned(out []byte) []string {
	var r []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "\tpinned ") {
			r = append(r, l)
		}
	}
	return r
}

// fdinfoRefs derives from truth/bpftool/fdinfo.txt ("PID COMM FD KIND
// ID" per BPF fd of every process, from /proc) what bpftool's pid_iter
// would report: per "KIND ID", the processes holding it, each once, in
// the order of pids then fds.
func fdinfoRefs(t reporter, s *labdata.Scenario) (refs map[string][]bpf.Holder, pids map[int]string) {
	b, err := os.ReadFile(s.Path("truth/bpftool/fdinfo.txt"))
	if err != nil {
		t.Errorf("%v", err)
		return nil, nil
	}
	type line struct {
		pid, fd  int
		comm, id string
	}
	var ls []line
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Errorf("fdinfo.txt: %q", l)
			return nil, nil
		}
		pid, _ := strconv.Atoi(f[0])
		fd, _ := strconv.Atoi(f[2])
		ls = append(ls, line{pid, fd, f[1], f[3] + " " + f[4]})
	}
	slices.SortStableFunc(ls, func(a, b line) int {
		if a.pid != b.pid {
			return a.pid - b.pid
		}
		return a.fd - b.fd
	})
	refs = map[string][]bpf.Holder{}
	pids = map[int]string{}
	for _, l := range ls {
		pids[l.pid] = l.comm
		if !slices.ContainsFunc(refs[l.id], func(r bpf.Holder) bool { return r.PID == l.pid }) {
			refs[l.id] = append(refs[l.id], bpf.Holder{PID: l.pid, Comm: l.comm})
		}
	}
	return refs, pids
}

// TestShowPidsTruth: "prog|map|link show --pids" lists, for each object,
// the processes fdinfo.txt says hold it, in bpftool's order. fdinfo.txt
// is read a little before the dump is taken: a process present in only
// one of them is left out of the comparison, but the workload, whose
// fds stay open, must be in both.
func TestShowPidsTruth(t *testing.T) {
	labFormatsWithTruth(t, "truth/bpftool/fdinfo.txt", func(t reporter, s *labdata.Scenario, dump string) {
		want, truthPids := fdinfoRefs(t, s)
		if want == nil {
			return
		}
		got := map[string][]bpf.Holder{}
		gotPids := map[int]bool{}
		for _, noun := range []string{"prog", "map", "link"} {
			out, good := tryRunFiltered(t, s, dump, "-c", dump, "--json", noun, "show", "--pids")
			if !good {
				return
			}
			var objs []struct {
				ID     uint32
				Type   any
				Cookie *uint64 `json:"bpf_cookie"`
				Pids   []struct {
					PID  int
					Comm string
				}
			}
			if err := json.Unmarshal(out, &objs); err != nil {
				t.Errorf("%s show --pids: %v", noun, err)
				return
			}
			for _, o := range objs {
				key := noun + " " + strconv.Itoa(int(o.ID))
				for _, p := range o.Pids {
					got[key] = append(got[key], bpf.Holder{PID: p.PID, Comm: p.Comm})
					gotPids[p.PID] = true
				}
				// pid_iter reports a perf_event link's cookie with its holders.
				if (o.Cookie != nil) != (noun == "link" && o.Type == "perf_event" && len(o.Pids) > 0) {
					t.Errorf("%s (%s): bpf_cookie %v with %d holders", key, o.Type, o.Cookie, len(o.Pids))
				}
			}
		}
		workload := false
		for p, comm := range truthPids {
			if comm == "workload" {
				workload = true
				if !gotPids[p] {
					t.Errorf("the workload (pid %d) holds no BPF object in the dump", p)
				}
			}
		}
		if !workload {
			t.Errorf("fdinfo.txt: no fd of the workload")
		}
		both := func(rs []bpf.Holder) []bpf.Holder {
			return slices.DeleteFunc(slices.Clone(rs), func(r bpf.Holder) bool { return truthPids[r.PID] == "" || !gotPids[r.PID] })
		}
		keys := map[string]bool{}
		for k := range want {
			keys[k] = true
		}
		for k := range got {
			keys[k] = true
		}
		for k := range keys {
			if g, w := both(got[k]), both(want[k]); !slices.Equal(g, w) {
				t.Errorf("%s: pids %v, fdinfo %v", k, g, w)
			}
		}
		for p := range truthPids {
			if !gotPids[p] {
				t.Logf("pid %d holds BPF fds in fdinfo.txt only", p)
			}
		}
		for p := range gotPids {
			if truthPids[p] == "" {
				t.Logf("pid %d holds BPF fds in the dump only", p)
			}
		}
	})
}

// TestShowPinnedSelect: "NOUN show pinned PATH" selects the object the
// workload pinned there, and refuses a path of another kind as bpftool
// does.
func TestShowPinnedSelect(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			var wl struct {
				Pins []struct {
					Path, Kind string
					ID         uint32
				}
			}
			labdata.ReadJSON(t, s.Path("truth/workload.json"), &wl)
			if len(wl.Pins) == 0 {
				t.Skip("the workload pinned nothing")
			}
			dump := s.Path("dumps/elf")
			for _, p := range wl.Pins {
				var o struct{ ID uint32 }
				json.Unmarshal(runOK(t, "-c", dump, "--json", p.Kind, "show", "pinned", p.Path), &o)
				if o.ID != p.ID {
					t.Errorf("%s show pinned %s: id %d, workload %d", p.Kind, p.Path, o.ID, p.ID)
				}
				other := map[string]string{"prog": "map", "map": "link", "link": "prog"}[p.Kind]
				var out, errb bytes.Buffer
				if code := run([]string{"-c", dump, other, "show", "pinned", p.Path}, &out, &errb); code == 0 ||
					!strings.Contains(errb.String(), "incorrect object type: "+p.Kind) {
					t.Errorf("%s show pinned %s (a %s): exit %d, %q", other, p.Path, p.Kind, code, errb.String())
				}
			}
			var out, errb bytes.Buffer
			if code := run([]string{"-c", dump, "map", "show", "pinned", "/sys/fs/bpf/no-such-pin"}, &out, &errb); code == 0 {
				t.Errorf("map show pinned of a missing path: exit 0")
			}
		})
	}
}

// TestScriptPinsFds: kernel.bpf.pins() and kernel.bpf.fds() in JS give
// what "show -f" and "show --pids" print: the same pinned paths of each
// object, and the same holders once each process is kept once.
func TestScriptPinsFds(t *testing.T) {
	s := labdata.Require(t, "basic")
	dump := s.Path("dumps/elf")
	js := filepath.Join(t.TempDir(), "pins.js")
	os.WriteFile(js, []byte(`print(kinspect.json({
	pins: [...kernel.bpf.pins()].map(p => ({path: p.path, kind: p.kind, id: p.id})),
	fds: [...kernel.bpf.fds()].map(f => ({pid: f.pid, comm: f.comm, kind: f.kind, id: f.id})),
}));`), 0o644)
	var out struct {
		Pins []struct {
			Path, Kind string
			ID         uint32
		}
		Fds []struct {
			PID        int
			Comm, Kind string
			ID         uint32
		}
	}
	if err := json.Unmarshal(runOK(t, "-c", dump, "script", js), &out); err != nil {
		t.Fatal(err)
	}
	for _, noun := range []string{"prog", "map", "link"} {
		var objs []struct {
			ID     uint32
			Pinned []string
			Pids   []bpf.Holder
		}
		json.Unmarshal(runOK(t, "-c", dump, "--json", noun, "show", "-f", "--pids"), &objs)
		for _, o := range objs {
			var pins []string
			for _, p := range out.Pins {
				if p.Kind == noun && p.ID == o.ID {
					pins = append(pins, p.Path)
				}
			}
			var refs []bpf.Holder
			for _, f := range out.Fds {
				if f.Kind == noun && f.ID == o.ID && !slices.ContainsFunc(refs, func(r bpf.Holder) bool { return r.PID == f.PID }) {
					refs = append(refs, bpf.Holder{PID: f.PID, Comm: f.Comm})
				}
			}
			slices.Sort(pins)
			slices.Sort(o.Pinned)
			if !slices.Equal(pins, o.Pinned) || !slices.Equal(refs, o.Pids) {
				t.Errorf("%s %d: JS pins %v holders %v; show %v %v", noun, o.ID, pins, refs, o.Pinned, o.Pids)
			}
		}
	}
	if len(out.Pins) == 0 || len(out.Fds) == 0 {
		t.Errorf("JS: %d pins, %d fds", len(out.Pins), len(out.Fds))
	}
}
