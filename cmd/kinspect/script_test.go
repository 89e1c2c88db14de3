package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// sampleRun gives a sample's output: run over a dump, or as the live
// guest ran it (truth/live).
type sampleRun func(t *testing.T, name string, args ...string) []byte

// sampleDumpRun runs samples/NAME.js --json ARGS over a dump.
func sampleDumpRun(dump string) sampleRun {
	return func(t *testing.T, name string, args ...string) []byte {
		t.Helper()
		var out, errb bytes.Buffer
		argv := append([]string{"-c", dump, "script", filepath.Join("..", "..", "samples", name+".js"), "--json"}, args...)
		if code := run(argv, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errb.String())
		}
		return out.Bytes()
	}
}

// sampleLiveRun finds "script /samples/NAME.js --json ARGS" among the live
// commands the guest ran (lab/guest/live-commands) and returns its output.
func sampleLiveRun(s *labdata.Scenario) sampleRun {
	return func(t *testing.T, name string, args ...string) []byte {
		t.Helper()
		want := sampleLiveCmd(name, args...)
		base, ok := sampleLiveBase(s, want)
		if !ok {
			t.Skipf("the live guest did not run %q (rebuild %s with lab/guest/live-commands)", want, s.Scenario)
		}
		rc, _ := os.ReadFile(base + ".rc")
		out, _ := os.ReadFile(base + ".out")
		if strings.TrimSpace(string(rc)) != "0" {
			e, _ := os.ReadFile(base + ".err")
			t.Fatalf("live %q: exit %s: %s", want, rc, e)
		}
		return out
	}
}

// sampleLiveCmd is the live command line that runs sample NAME.
func sampleLiveCmd(name string, args ...string) string {
	return strings.Join(append([]string{"script", "/samples/" + name + ".js", "--json"}, args...), " ")
}

// sampleLiveBase finds the live command line want among those the guest
// ran: truth/live/N without its suffix.
func sampleLiveBase(s *labdata.Scenario, want string) (string, bool) {
	cmds, _ := filepath.Glob(s.Path("truth/live/*.cmd"))
	for _, c := range cmds {
		b, err := os.ReadFile(c)
		if err == nil && strings.TrimSpace(string(b)) == want {
			return strings.TrimSuffix(c, ".cmd"), true
		}
	}
	return "", false
}

// sampleLiveThreads reads the guest's thread count (the nr_threads of
// /proc/loadavg) just before and just after it ran the live sample NAME:
// the range a live count of tasks is checked against, since tasks come and
// go between the truth capture and the run.
func sampleLiveThreads(s *labdata.Scenario, name string) (lo, hi int, ok bool) {
	base, ok := sampleLiveBase(s, sampleLiveCmd(name))
	if !ok {
		return 0, 0, false
	}
	la, err := os.ReadFile(base + ".loadavg")
	if err != nil {
		return 0, 0, false
	}
	var n []int
	for _, l := range strings.Split(strings.TrimSpace(string(la)), "\n") {
		// "0.00 0.01 0.00 1/88 1252": running/threads.
		f := strings.Fields(l)
		if len(f) < 4 {
			return 0, 0, false
		}
		_, tot, _ := strings.Cut(f[3], "/")
		v, err := strconv.Atoi(tot)
		if err != nil {
			return 0, 0, false
		}
		n = append(n, v)
	}
	if len(n) != 2 {
		return 0, 0, false
	}
	return min(n[0], n[1]), max(n[0], n[1]), true
}

// runSample decodes a sample's JSON output into v.
func runSample(t *testing.T, r sampleRun, name string, v any, args ...string) {
	t.Helper()
	out := r(t, name, args...)
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("%s: %v in %q", name, err, out)
	}
}

func sampleTruth(t *testing.T, s *labdata.Scenario, rel string, v any) bool {
	t.Helper()
	b, err := os.ReadFile(s.Path(filepath.Join("truth", rel)))
	if err != nil {
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return true
}

func sampleLines(t *testing.T, s *labdata.Scenario, rel string) []string {
	t.Helper()
	b, err := os.ReadFile(s.Path(filepath.Join("truth", rel)))
	if err != nil {
		t.Fatalf("truth: %v", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// sampleDumps are the dumps each scenario's samples run on: unfiltered
// ones (makedumpfile -d 31 leaves out pages the samples read).
func sampleDumps(s *labdata.Scenario) []string {
	names := []string{"kdump-zlib"}
	if s.Scenario == "basic" {
		names = append(names, "elf")
	}
	var out []string
	for _, n := range names {
		if f, ok := s.Format(n); ok {
			out = append(out, s.Path(f.Path))
		}
	}
	return out
}

type sampleWorkload struct {
	Spinner struct {
		ProgID int `json:"prog_id"`
		PID    int `json:"pid"`
		CPU    int `json:"cpu"`
	} `json:"spinner"`
}

func TestSamples(t *testing.T) {
	for _, s := range append(labdata.Built(t), labdata.BuiltLive(t)...) {
		if s.Live {
			t.Run(s.Scenario, func(t *testing.T) { testSamples(t, s, sampleLiveRun(s), true) })
			continue
		}
		for _, dump := range sampleDumps(s) {
			t.Run(s.Scenario+"/"+filepath.Base(dump), func(t *testing.T) {
				t.Parallel()
				testSamples(t, s, sampleDumpRun(dump), false)
			})
		}
	}
}

func testSamples(t *testing.T, s *labdata.Scenario, dump sampleRun, live bool) {
	var wl sampleWorkload
	sampleTruth(t, s, "workload.json", &wl)
	var ps []truthPs
	sampleTruth(t, s, "ps.json", &ps)
	// The programs hidden from bpftool are in the kernel, and the samples
	// find them (labdata.Hidden).
	hidden := s.Hidden(t).Progs

	t.Run("bpf_progs", func(t *testing.T) {
		type prog struct {
			ID     int    `json:"id"`
			Type   string `json:"type"`
			Name   string `json:"name"`
			Tag    string `json:"tag"`
			MapIDs []int  `json:"map_ids"`
			Attach []string
		}
		var got, want []prog
		runSample(t, dump, "bpf_progs", &got)
		sampleTruth(t, s, "bpftool/prog.json", &want)
		if len(got) != len(want)+len(hidden) {
			t.Errorf("%d programs, truth has %d and %d hidden from bpftool", len(got), len(want), len(hidden))
		}
		byID := map[int]prog{}
		for _, p := range got {
			byID[p.ID] = p
		}
		for id, name := range hidden {
			if g, ok := byID[int(id)]; !ok || g.Name != name {
				t.Errorf("hidden program %d (%s): got %+v", id, name, g)
			}
		}
		for _, w := range want {
			g, ok := byID[w.ID]
			if !ok {
				t.Errorf("program %d (%s) missing", w.ID, w.Name)
				continue
			}
			if g.Type != w.Type || g.Name != w.Name || g.Tag != w.Tag || !slices.Equal(g.MapIDs, w.MapIDs) && len(w.MapIDs) > 0 {
				t.Errorf("program %d: got %+v, truth %+v", w.ID, g, w)
			}
		}
	})
	t.Run("bpf_maps_memory", func(t *testing.T) {
		type m struct {
			ID      int    `json:"id"`
			Name    string `json:"name"`
			Memlock int64  `json:"bytes_memlock"`
		}
		var got, want []m
		runSample(t, dump, "bpf_maps_memory", &got)
		sampleTruth(t, s, "bpftool/map.json", &want)
		if len(got) != len(want) {
			t.Errorf("%d maps, truth has %d", len(got), len(want))
		}
		byID := map[int]m{}
		for _, x := range want {
			byID[x.ID] = x
		}
		for i, g := range got {
			if w, ok := byID[g.ID]; !ok || w.Memlock != g.Memlock || w.Name != g.Name {
				t.Errorf("map %d: got %+v, truth %+v", g.ID, g, w)
			}
			if i > 0 && got[i-1].Memlock < g.Memlock {
				t.Errorf("not sorted by memory at %d", i)
			}
		}
	})
	t.Run("bpf_on_cpu", func(t *testing.T) {
		if live {
			t.Skip("a live kernel has no saved CPU registers")
		}
		var got []struct {
			CPU   int `json:"cpu"`
			Progs []struct {
				ID int `json:"id"`
			} `json:"progs"`
		}
		runSample(t, dump, "bpf_on_cpu", &got)
		found := false
		for _, c := range got {
			if c.CPU == wl.Spinner.CPU {
				for _, p := range c.Progs {
					found = found || p.ID == wl.Spinner.ProgID
				}
			}
		}
		if !found {
			t.Errorf("CPU %d does not show program %d: %+v", wl.Spinner.CPU, wl.Spinner.ProgID, got)
		}
	})
	t.Run("dstate", func(t *testing.T) {
		var got []struct {
			TID   int      `json:"tid"`
			Comm  string   `json:"comm"`
			Stack []string `json:"stack"`
		}
		runSample(t, dump, "dstate", &got)
		var stacks map[string][]string
		sampleTruth(t, s, "stacks.json", &stacks)
		var want []int
		for _, p := range ps {
			// A kworker in D at the truth (flushing the capture's 9p
			// writes) may have finished by the dump: only the others
			// must still be in D.
			if p.State == "D" && !strings.HasPrefix(p.Comm, "kworker/") {
				want = append(want, p.TID)
			}
		}
		var tids []int
		for _, g := range got {
			w := stacks[strconv.Itoa(g.TID)]
			if strings.HasPrefix(g.Comm, "kworker/") {
				continue // see above
			}
			tids = append(tids, g.TID)
			if len(w) == 0 || len(g.Stack) < len(w) || !slices.Equal(g.Stack[len(g.Stack)-len(w):], w) {
				t.Errorf("task %d stack %q, truth ends %q", g.TID, g.Stack, w)
			}
		}
		slices.Sort(want)
		slices.Sort(tids)
		if !slices.Equal(tids, want) {
			t.Errorf("D tasks %v, truth %v", tids, want)
		}
	})
	t.Run("ps_rss", func(t *testing.T) {
		var got []struct {
			PID   int    `json:"pid"`
			Comm  string `json:"comm"`
			RSSKB int64  `json:"rss_kb"`
		}
		runSample(t, dump, "ps_rss", &got)
		comm := map[int]string{}
		for _, p := range ps {
			if p.PID == p.TID {
				comm[p.PID] = p.Comm
			}
		}
		checked := 0
		for i, g := range got {
			if c, ok := comm[g.PID]; (!ok || c != g.Comm) && !(live && !ok && g.Comm == "kinspect") {
				// Live, the kinspect running the sample lists itself.
				t.Errorf("process %d %q: truth has %q", g.PID, g.Comm, c)
			}
			if i > 0 && got[i-1].RSSKB < g.RSSKB {
				t.Errorf("not sorted at %d", i)
			}
			// Two processes keep running after their status is read, so
			// their RSS moves before the dump: PID 1, the shell that
			// captures the truth, and the workload, whose spinner starts
			// after it.
			if kb, ok := sampleStatusField(s, g.PID, "VmRSS"); ok && g.PID != 1 && g.PID != wl.Spinner.PID {
				checked++
				if kb != g.RSSKB {
					t.Errorf("process %d %s: RSS %d kB, /proc status %d kB", g.PID, g.Comm, g.RSSKB, kb)
				}
			}
		}
		if len(got) == 0 || got[0].RSSKB == 0 {
			t.Errorf("no process with memory: %+v", got)
		}
		t.Logf("%d processes, %d checked against PID.status", len(got), checked)
	})
	t.Run("open_files", func(t *testing.T) {
		var got []struct {
			FD   int    `json:"fd"`
			Path string `json:"path"`
		}
		pid := wl.Spinner.PID
		runSample(t, dump, "open_files", &got, "workload")
		gotMap := map[int]string{}
		for _, g := range got {
			gotMap[g.FD] = g.Path
		}
		if want, ok := sampleFDTruth(s, pid); ok {
			for fd, p := range want {
				if gotMap[fd] != p {
					t.Errorf("fd %d: %q, truth %q", fd, gotMap[fd], p)
				}
			}
			if len(want) != len(got) {
				t.Errorf("%d files, truth %d", len(got), len(want))
			}
			return
		}
		// Without the ls -l truth: what the workload is known to hold.
		kinds := map[string]int{}
		for _, g := range got {
			kinds[strings.SplitN(g.Path, "[", 2)[0]]++
		}
		for _, k := range []string{"anon_inode:bpf-prog", "anon_inode:bpf-map", "socket:"} {
			if kinds[k] == 0 {
				t.Errorf("no %s among %v", k, got)
			}
		}
		if gotMap[0] != "/dev/null" {
			t.Errorf("fd 0 is %q, want /dev/null", gotMap[0])
		}
	})
	t.Run("mounts", func(t *testing.T) {
		var got []struct{ Devname, Mountpoint, Fstype string }
		runSample(t, dump, "mounts", &got)
		var gl, wl []string
		for _, g := range got {
			gl = append(gl, g.Devname+" "+g.Mountpoint+" "+g.Fstype)
		}
		for _, l := range sampleLines(t, s, "proc/mounts.txt") {
			f := strings.Fields(l)
			wl = append(wl, strings.Join(f[:3], " "))
		}
		if !slices.Equal(gl, wl) {
			t.Errorf("mounts\n%s\ntruth\n%s", strings.Join(gl, "\n"), strings.Join(wl, "\n"))
		}
	})
	t.Run("netdev_xdp", func(t *testing.T) {
		type xdp struct {
			Devname string `json:"devname"`
			Ifindex int    `json:"ifindex"`
			Mode    string `json:"mode"`
			ID      int    `json:"id"`
		}
		var got struct {
			Devices []struct {
				Devname string `json:"devname"`
			} `json:"devices"`
			XDP []xdp `json:"xdp"`
		}
		runSample(t, dump, "netdev_xdp", &got)
		var net []struct {
			XDP []xdp `json:"xdp"`
		}
		sampleTruth(t, s, "bpftool/net.json", &net)
		if len(net) != 1 || !slices.Equal(got.XDP, net[0].XDP) {
			t.Errorf("xdp %+v, bpftool net %+v", got.XDP, net)
		}
		var names, want []string
		for _, d := range got.Devices {
			names = append(names, d.Devname)
		}
		for _, l := range sampleLines(t, s, "proc/net_dev.txt")[2:] {
			want = append(want, strings.TrimSpace(strings.SplitN(l, ":", 2)[0]))
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("devices %v, /proc/net/dev %v", names, want)
		}
	})
	t.Run("slab", func(t *testing.T) {
		type cache struct {
			Name         string `json:"name"`
			NumObjs      int    `json:"num_objs"`
			Objsize      int    `json:"objsize"`
			Objperslab   int    `json:"objperslab"`
			Pagesperslab int    `json:"pagesperslab"`
		}
		var got struct {
			MemTotalKB int     `json:"mem_total_kb"`
			Caches     []cache `json:"caches"`
		}
		runSample(t, dump, "slab", &got)
		if kb, ok := sampleMeminfo(t, s, "MemTotal"); !ok || kb != int64(got.MemTotalKB) {
			t.Errorf("MemTotal %d kB, /proc/meminfo %d kB", got.MemTotalKB, kb)
		}
		want := map[string]cache{}
		for _, l := range sampleLines(t, s, "proc/slabinfo.txt")[2:] {
			f := strings.Fields(l)
			n := func(i int) int { x, _ := strconv.Atoi(f[i]); return x }
			want[f[0]] = cache{Name: f[0], NumObjs: n(2), Objsize: n(3), Objperslab: n(4), Pagesperslab: n(5)}
		}
		close := 0
		for _, g := range got.Caches {
			w, ok := want[g.Name]
			if !ok {
				t.Errorf("cache %s is not in /proc/slabinfo", g.Name)
				continue
			}
			delete(want, g.Name)
			if g.Objsize != w.Objsize || g.Objperslab != w.Objperslab || g.Pagesperslab != w.Pagesperslab {
				t.Errorf("cache %s: %+v, slabinfo %+v", g.Name, g, w)
			}
			if g.NumObjs == w.NumObjs {
				close++
			}
		}
		for n := range want {
			t.Errorf("cache %s of /proc/slabinfo missing", n)
		}
		// Object counts move between the truth and the dump.
		if close < len(got.Caches)*3/4 {
			t.Errorf("only %d of %d caches have slabinfo's object count", close, len(got.Caches))
		}
	})
	t.Run("modules_taint", func(t *testing.T) {
		var got struct {
			Tainted uint64 `json:"tainted"`
			Modules []struct {
				Name     string `json:"name"`
				Size     int    `json:"size"`
				Refcount int    `json:"refcount"`
				State    string `json:"state"`
				Taints   string `json:"taints"`
			} `json:"modules"`
		}
		runSample(t, dump, "modules_taint", &got)
		tl := sampleLines(t, s, "proc/tainted.txt")
		if w, _ := strconv.ParseUint(strings.TrimSpace(tl[0]), 10, 64); w != got.Tainted {
			t.Errorf("tainted %d, truth %d", got.Tainted, w)
		}
		var gl, wl []string
		for _, m := range got.Modules {
			s := fmt.Sprintf("%s %d %d %s", m.Name, m.Size, m.Refcount, m.State)
			if m.Taints != "" {
				s += " (" + m.Taints + ")"
			}
			gl = append(gl, s)
		}
		taint := regexp.MustCompile(`\(([A-Z]+)\)`)
		for _, l := range sampleLines(t, s, "modules.txt") {
			f := strings.Fields(l)
			s := fmt.Sprintf("%s %s %s %s", f[0], f[1], f[2], strings.ToLower(f[4]))
			if m := taint.FindStringSubmatch(l); m != nil {
				s += " (" + m[1] + ")"
			}
			wl = append(wl, s)
		}
		if !slices.Equal(gl, wl) {
			t.Errorf("modules\n%s\ntruth\n%s", strings.Join(gl, "\n"), strings.Join(wl, "\n"))
		}
	})
	t.Run("overview", func(t *testing.T) {
		var got struct {
			Tasks, Frames, UnwindErrors, Progs, Maps int
		}
		var raw map[string]int
		out := bytes.NewBuffer(dump(t, "overview"))
		_ = json.Unmarshal(out.Bytes(), &got)
		var r struct {
			UnwindErrors int `json:"unwind_errors"`
		}
		_ = json.Unmarshal(out.Bytes(), &r)
		_ = raw
		var progs, maps []json.RawMessage
		sampleTruth(t, s, "bpftool/prog.json", &progs)
		sampleTruth(t, s, "bpftool/map.json", &maps)
		// Tasks come and go between the truth and the dump. Live, the
		// guest's own thread count around the run is the truth; the
		// sample also counts the idle tasks (swapper/N, which nr_threads
		// leaves out) and the kinspect that runs it with its Go
		// runtime's threads.
		lo, hi, slack := len(ps), len(ps), 5
		if live {
			if l, h, ok := sampleLiveThreads(s, "overview"); ok {
				lo, hi = l, h
			}
			slack = 16
		}
		if got.Progs != len(progs)+len(hidden) || got.Maps != len(maps) || got.Tasks < lo-5 || got.Tasks > hi+slack {
			t.Errorf("overview %s; truth: %d..%d tasks, %d programs (and %d hidden from bpftool), %d maps", out.String(), lo, hi, len(progs), len(hidden), len(maps))
		}
		if r.UnwindErrors > got.Tasks/20 {
			t.Errorf("%d of %d tasks did not unwind", r.UnwindErrors, got.Tasks)
		}
	})
}

// statusField reads a "kB" field of truth/proc/PID.status.
func sampleStatusField(s *labdata.Scenario, pid int, name string) (int64, bool) {
	return sampleKBField(s.Path(filepath.Join("truth", "proc", strconv.Itoa(pid)+".status")), name)
}

func sampleMeminfo(t *testing.T, s *labdata.Scenario, name string) (int64, bool) {
	return sampleKBField(s.Path(filepath.Join("truth", "proc", "meminfo.txt")), name)
}

func sampleKBField(path, name string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == name {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// fdTruth reads truth/proc/PID.fd (ls -l /proc/PID/fd): fd -> target.
func sampleFDTruth(s *labdata.Scenario, pid int) (map[int]string, bool) {
	b, err := os.ReadFile(s.Path(filepath.Join("truth", "proc", strconv.Itoa(pid)+".fd")))
	if err != nil {
		return nil, false
	}
	out := map[int]string{}
	for _, l := range strings.Split(string(b), "\n") {
		name, target, ok := strings.Cut(l, " -> ")
		if !ok {
			continue
		}
		f := strings.Fields(name)
		if fd, err := strconv.Atoi(f[len(f)-1]); err == nil {
			out[fd] = target
		}
	}
	return out, true
}
