package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
)

// TestLiveCommands: crash's and drgn's everyday commands run live in each
// built live guest (basic-live: 6.1; k612-live: 6.12;
// lab/guest/live-commands, through /proc/kcore) against the /proc files
// that guest wrote just before: slabinfo, meminfo, vmallocinfo, mounts,
// modules, tainted, devices, interrupts, uptime, timer_list, net/*,
// ip link, the workload's fd and maps, bpftool cgroup tree; the per-CPU
// numbers x86 stores by design; btf funcs as on the same kernel's dump
// (TestLabBTFFuncs holds that to the guest's BTF).
func TestLiveCommands(t *testing.T) {
	lives := labdata.BuiltLive(t)
	if len(lives) == 0 {
		t.Skip("no live scenario built (go run ./lab basic-live)")
	}
	for _, s := range lives {
		t.Run(s.Scenario, func(t *testing.T) { liveCommands(t, s) })
	}
}

func liveCommands(t *testing.T, s *labdata.Scenario) {
	runs := liveRuns(t, s)
	get := func(t *testing.T, cmd string, v any) {
		t.Helper()
		r, ok := runs[cmd]
		if !ok {
			t.Skipf("the lab did not run %q: rebuild basic-live (go run ./lab basic-live)", cmd)
		}
		if r.rc != 0 {
			t.Fatalf("kinspect --live %s: exit %d: %s%s", cmd, r.rc, r.out, r.err)
		}
		if err := json.Unmarshal(r.out, v); err != nil {
			t.Fatalf("kinspect --live %s: %v: %.300s", cmd, err, r.out)
		}
	}
	truth := func(rel string) []string { return sampleLines(t, s, rel) }

	t.Run("kmem -s", func(t *testing.T) {
		var got []linux.SlabInfo
		get(t, "--json kmem -s", &got)
		byName := map[string]linux.SlabInfo{}
		for _, g := range got {
			byName[g.Name] = g
		}
		same, n := 0, 0
		for _, l := range truth("proc/slabinfo.txt")[2:] {
			f := strings.Fields(l)
			num := func(i int) uint64 { x, _ := strconv.ParseUint(f[i], 10, 64); return x }
			n++
			g, ok := byName[f[0]]
			if !ok {
				t.Errorf("cache %s of /proc/slabinfo missing", f[0])
				continue
			}
			if g.ObjSize != num(3) || g.ObjPerSlab != num(4) || g.PagesPerSlab != num(5) {
				t.Errorf("cache %s: objsize %d, per slab %d, pages %d; slabinfo %s", f[0], g.ObjSize, g.ObjPerSlab, g.PagesPerSlab, l)
			}
			if g.NumObjs == num(2) {
				same++
			}
		}
		// Object counts move between the truth and the live run.
		if same < n*3/4 {
			t.Errorf("only %d of %d caches have slabinfo's object count", same, n)
		}
		t.Logf("%d caches, %d with slabinfo's object count", n, same)
	})
	t.Run("kmem -i", func(t *testing.T) {
		var got struct {
			Lines []struct {
				Name  string `json:"name"`
				Value int64  `json:"value"`
			} `json:"lines"`
		}
		get(t, "--json kmem -i", &got)
		var names []string
		for _, g := range got.Lines {
			names = append(names, g.Name)
			if g.Name == "MemTotal" {
				if kb, ok := sampleMeminfo(t, s, "MemTotal"); !ok || kb != g.Value {
					t.Errorf("MemTotal %d kB, /proc/meminfo %d kB", g.Value, kb)
				}
			}
		}
		var want []string
		for _, l := range truth("proc/meminfo.txt") {
			want = append(want, strings.TrimSuffix(strings.Fields(l)[0], ":"))
		}
		if !slices.Equal(names, want) {
			t.Errorf("lines %v, /proc/meminfo's %v", names, want)
		}
	})
	t.Run("kmem -v", func(t *testing.T) {
		var got []linux.VmapArea
		get(t, "--json kmem -v", &got)
		// /proc/vmallocinfo hashes its addresses: areas are matched by
		// size, caller and kind.
		have := map[string]int{}
		for _, a := range got {
			have[fmt.Sprintf("%d %s", a.Size, a.CallerSymbol)]++
		}
		// Lazily freed areas ("unpurged vm_area", on purge_vmap_area_list)
		// are not vmap areas kinspect lists.
		lines := slices.DeleteFunc(truth("proc/vmallocinfo.txt"), func(l string) bool { return strings.Contains(l, " unpurged ") })
		matched := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			k := f[1] + " " + f[2]
			if have[k] > 0 {
				have[k]--
				matched++
			}
		}
		if matched < len(lines)*9/10 { // processes come and go: their vmalloc'd stacks too
			t.Errorf("%d of %d vmallocinfo areas matched by size and caller", matched, len(lines))
		}
		t.Logf("%d of %d vmallocinfo areas matched; %d areas read", matched, len(lines), len(got))
	})
	t.Run("mount", func(t *testing.T) {
		var got []linux.MountInfo
		get(t, "--json mount", &got)
		want := truth("proc/mounts.txt")
		if len(got) != len(want) {
			t.Fatalf("%d mounts, /proc/mounts %d", len(got), len(want))
		}
		for i, m := range got {
			line := fmt.Sprintf("%s %s %s %s 0 0", m.Device, m.Path, m.Type, m.Options)
			f := strings.Fields(want[i])
			// Options a filesystem prints itself are not emulated (TestLabMounts).
			if line != want[i] && (m.OwnOptions || len(f) != 6 || f[0] != m.Device || f[1] != m.Path || f[2] != m.Type || !strings.HasPrefix(f[3]+",", m.Options+",")) {
				t.Errorf("mount %d: %q, /proc/mounts %q", i, line, want[i])
			}
		}
	})
	t.Run("mod", func(t *testing.T) {
		var got []linux.ModuleInfo
		get(t, "--json mod", &got)
		var lines []string
		for _, m := range got {
			lines = append(lines, m.Line())
		}
		if want := truth("modules.txt"); !slices.Equal(lines, want) {
			t.Errorf("mod:\n%s\n/proc/modules:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("mod -t", func(t *testing.T) {
		var got linux.Taint
		get(t, "--json mod -t", &got)
		if want, _ := strconv.ParseUint(truth("proc/tainted.txt")[0], 10, 64); got.Mask != want {
			t.Errorf("taint %d, /proc/sys/kernel/tainted %d", got.Mask, want)
		}
		if len(got.Flags) != popcount(got.Mask) {
			t.Errorf("%d flags for mask %#x", len(got.Flags), got.Mask)
		}
	})
	t.Run("dev", func(t *testing.T) {
		var got []linux.Device
		get(t, "--json dev", &got)
		var lines []string
		for _, d := range got {
			lines = append(lines, fmt.Sprintf("%s %d %s", d.Kind, d.Major, d.Name))
		}
		var want []string
		kind := ""
		for _, l := range truth("proc/devices.txt") {
			switch {
			case l == "Character devices:":
				kind = "char"
			case l == "Block devices:":
				kind = "block"
			case strings.TrimSpace(l) != "":
				f := strings.Fields(l)
				want = append(want, kind+" "+f[0]+" "+strings.Join(f[1:], " "))
			}
		}
		if !slices.Equal(lines, want) {
			t.Errorf("dev:\n%s\n/proc/devices:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("irq", func(t *testing.T) {
		var got linux.Interrupts
		get(t, "--json irq", &got)
		lines := map[string]linux.IRQLine{}
		for _, l := range got.Lines {
			lines[l.Name] = l
		}
		tl := truth("proc/interrupts.txt")
		ncpu := len(strings.Fields(tl[0]))
		checked := 0
		for _, l := range tl[1:] {
			f := strings.Fields(l)
			name := strings.TrimSuffix(f[0], ":")
			if _, err := strconv.Atoi(name); err != nil {
				continue // NMI, LOC...: per-CPU counters, not IRQ descriptors
			}
			g, ok := lines[name]
			if !ok {
				t.Errorf("IRQ %s of /proc/interrupts missing", name)
				continue
			}
			checked++
			for c := 0; c < ncpu && c < len(g.Counts); c++ {
				// Counts only grow.
				if w, _ := strconv.ParseUint(f[1+c], 10, 64); g.Counts[c] < w {
					t.Errorf("IRQ %s CPU %d: %d, /proc/interrupts %d", name, c, g.Counts[c], w)
				}
			}
			if acts := strings.Join(g.Actions, ", "); !strings.HasSuffix(l, acts) {
				t.Errorf("IRQ %s: actions %q, /proc/interrupts %q", name, acts, l)
			}
		}
		if checked == 0 {
			t.Errorf("no IRQ checked")
		}
	})
	t.Run("runq", func(t *testing.T) {
		var got []linux.RunQueue
		get(t, "--json runq", &got)
		if len(got) != s.CPUs {
			t.Fatalf("%d runqueues, %d CPUs", len(got), s.CPUs)
		}
		var cur []string
		for _, rq := range got {
			cur = append(cur, rq.Current.Comm)
		}
		// kinspect reads the runqueues while it runs.
		if !slices.Contains(cur, "kinspect") {
			t.Errorf("current tasks %v: kinspect, which read them, is not one", cur)
		}
	})
	t.Run("uptime", func(t *testing.T) {
		var got linux.Uptime
		get(t, "--json uptime", &got)
		f := strings.Fields(truth("proc/uptime.txt")[0])
		was, _ := strconv.ParseFloat(f[0], 64)
		// The live commands run minutes after the truth (TCG).
		if up := float64(got.UptimeNS) / 1e9; up < was || up > was+1800 {
			t.Errorf("uptime %.2f s, /proc/uptime %.2f s just before", up, was)
		}
	})
	t.Run("timer", func(t *testing.T) {
		var got linux.Timers
		get(t, "--json timer", &got)
		if len(got.CPUs) != s.CPUs {
			t.Fatalf("%d CPUs, want %d", len(got.CPUs), s.CPUs)
		}
		// The per-CPU periodic hrtimers (the tick: tick_sched_timer,
		// tick_nohz_handler since 6.10; the watchdog): once per CPU in
		// /proc/timer_list, once per CPU read.
		fn := regexp.MustCompile(`^ #\d+: <[0-9a-f]+>, (\w+), S:`)
		want := map[string]int{}
		for _, l := range truth("proc/timer_list.txt") {
			if m := fn.FindStringSubmatch(l); m != nil {
				want[m[1]]++
			}
		}
		have := map[string]int{}
		for _, c := range got.CPUs {
			for _, b := range c.ClockBases {
				for _, tm := range b.Timers {
					have[tm.Function]++
				}
			}
		}
		perCPU := 0
		for f, n := range want {
			// Others once per CPU now may not be so a moment later
			// (6.12's deadline server timer, dl_task_timer).
			if n != s.CPUs || !slices.Contains([]string{"tick_sched_timer", "tick_nohz_handler", "watchdog_timer_fn"}, f) {
				continue
			}
			perCPU++
			if have[f] != n {
				t.Errorf("%s: %d timers read, %d in /proc/timer_list", f, have[f], n)
			}
		}
		if perCPU == 0 {
			t.Errorf("no per-CPU hrtimer in /proc/timer_list: %v", want)
		}
	})
	t.Run("net", func(t *testing.T) {
		var got linux.Net
		get(t, "--json net", &got)
		if got.Devices == nil {
			t.Skip("a live run of a kinspect without net devices: rebuild basic-live")
		}
		have := map[string]bool{}
		for _, sk := range got.Sockets {
			have[fmt.Sprintf("%s %d", sk.Proto, sk.Inode)] = true
		}
		n := 0
		for _, proto := range []string{"tcp", "udp", "unix"} {
			lines := truth("proc/net_" + proto + ".txt")
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				col := 9 // tcp, udp: inode
				if proto == "unix" {
					col = 6
				}
				if len(f) <= col {
					continue
				}
				n++
				if k := proto + " " + f[col]; !have[k] {
					t.Errorf("%s socket inode %s of /proc/net/%s missing", proto, f[col], proto)
				}
			}
		}
		t.Logf("%d sockets of /proc/net/{tcp,udp,unix} found", n)
		// The devices, as TestLabNetDevices compares them: net --link -d
		// with ip -d link show.
		undecoded := map[string]bool{}
		for _, d := range got.Devices {
			for _, in := range d.Incomplete {
				if strings.HasPrefix(in, "kind data:") {
					undecoded[d.Kind] = true
				} else if strings.HasPrefix(in, "slave data:") {
					undecoded[d.SlaveKind+"_slave"] = true
				}
			}
		}
		r, ok := runs["net --link -d"]
		if !ok {
			t.Skip("the lab did not run net --link -d: rebuild basic-live")
		}
		if r.rc != 0 {
			t.Fatalf("net --link -d: exit %d: %s", r.rc, r.err)
		}
		var links []string
		for _, l := range strings.Split(strings.TrimRight(string(r.out), "\n"), "\n") {
			links = append(links, strings.TrimRight(l, " "))
		}
		links = labdata.MaskIPLinkTimers(links)
		if want := labdata.IPLinkTruth(t, s, "ip_d_link.txt", undecoded); !slices.Equal(links, want) {
			t.Errorf("net --link -d:\n%s\nip -d link show:\n%s", strings.Join(links, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("foreach files", func(t *testing.T) {
		var got []linux.TaskFilesInfo
		get(t, "--json foreach workload files", &got)
		checked := 0
		for _, g := range got {
			want, ok := sampleFDTruth(s, g.PID)
			if !ok {
				continue // started since the truth
			}
			checked++
			for _, f := range g.Files {
				if want[f.FD] != f.Path {
					t.Errorf("%d: fd %d: %q, ls -l /proc/PID/fd %q", g.PID, f.FD, f.Path, want[f.FD])
				}
			}
			if len(g.Files) != len(want) {
				t.Errorf("%d: %d files, ls -l %d", g.PID, len(g.Files), len(want))
			}
		}
		if checked == 0 {
			t.Errorf("no workload process of %d has a truth/proc/PID.fd", len(got))
		}
	})
	t.Run("foreach vm", func(t *testing.T) {
		var got []linux.TaskVM
		get(t, "--json foreach workload vm", &got)
		if len(got) == 0 {
			t.Fatalf("no workload process")
		}
		// The workload itself: the spinner's process (truth/workload.json).
		var wl struct {
			Spinner struct {
				PID int `json:"pid"`
			} `json:"spinner"`
		}
		labdata.ReadJSON(t, s.Path("truth/workload.json"), &wl)
		i := slices.IndexFunc(got, func(v linux.TaskVM) bool { return v.PID == wl.Spinner.PID })
		if i < 0 {
			t.Fatalf("no process %d among %d", wl.Spinner.PID, len(got))
		}
		var lines []string
		for _, v := range got[i].VMAs {
			l := fmt.Sprintf("%08x-%08x %s %08x %s %d", uint64(v.Start), uint64(v.End), v.Perms, v.Offset, v.Dev, v.Inode)
			if v.Name != "" {
				l += " " + v.Name
			}
			lines = append(lines, l)
		}
		var want []string
		for _, l := range truth(fmt.Sprintf("proc/%d.maps", got[i].PID)) {
			want = append(want, strings.Join(strings.Fields(l), " "))
		}
		if !slices.Equal(lines, want) {
			t.Errorf("vm:\n%s\n/proc/PID/maps:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("print per-CPU", func(t *testing.T) {
		var got []printRow
		// 6.2+ keeps the number in pcpu_hot (TestLabPerCPU).
		cmd, member := "--json print cpu_number:a this_cpu_off:a", ""
		if !strings.HasPrefix(s.KernelVersion, "6.1.") {
			cmd, member = "--json print pcpu_hot:a this_cpu_off:a", "cpu_number"
		}
		get(t, cmd, &got)
		if len(got) != 2*s.CPUs {
			t.Fatalf("%d rows for %d CPUs", len(got), s.CPUs)
		}
		for c := range s.CPUs {
			v := got[c].Value
			if member != "" {
				var m map[string]json.RawMessage
				json.Unmarshal(v, &m)
				v = m[member]
			}
			if string(v) != strconv.Itoa(c) || got[c].CPU == nil || *got[c].CPU != c {
				t.Errorf("per_cpu(cpu_number, %d): %+v", c, got[c])
			}
		}
	})
	t.Run("btf funcs", func(t *testing.T) {
		var got struct {
			Funcs []struct {
				Name      string `json:"name"`
				Traceable bool   `json:"traceable"`
			} `json:"funcs"`
		}
		get(t, "--json btf funcs --arg sk_buff*", &got)
		base := strings.TrimSuffix(s.Scenario, "-live")
		b, err := labdata.Load(base)
		if err != nil {
			t.Skipf("%s (the same kernel, dumped) is not built: %v", base, err)
		}
		var want struct {
			Funcs []struct {
				Name      string `json:"name"`
				Traceable bool   `json:"traceable"`
			} `json:"funcs"`
		}
		runJSON(t, &want, "--json", "-c", b.Path("dumps/elf"), "btf", "funcs", "--arg", "struct sk_buff *")
		if fmt.Sprint(got.Funcs) != fmt.Sprint(want.Funcs) || len(got.Funcs) == 0 {
			t.Errorf("live: %d functions, the dump of the same kernel %d", len(got.Funcs), len(want.Funcs))
		}
	})
	t.Run("path", func(t *testing.T) {
		var got []linux.PathInfo
		get(t, "--json path / /proc /dev/null /bin/workload /sys/fs/bpf", &got)
		// What /proc/mounts says is mounted there, and what ls -l says
		// the workload holds open.
		fstype := map[string]string{}
		for _, l := range truth("proc/mounts.txt") {
			f := strings.Fields(l)
			fstype[f[1]] = f[2]
		}
		want := map[string]string{"/": fstype["/"], "/proc": "proc", "/dev/null": fstype["/dev"], "/bin/workload": fstype["/"], "/sys/fs/bpf": "bpf"}
		for _, pi := range got {
			if pi.Error != "" || pi.FSType != want[pi.Path] {
				t.Errorf("%s: %s on %q, /proc/mounts %q", pi.Path, pi.Error, pi.FSType, want[pi.Path])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d paths looked up", len(got))
		}
	})
	t.Run("files -p", func(t *testing.T) {
		var got []linux.InodePages
		get(t, "--json files -p /bin/workload", &got)
		// The kernel's own count, and each page pointing back at the
		// file's mapping (TestLabInodePages).
		if len(got) != 1 || len(got[0].Pages) == 0 || uint64(len(got[0].Pages)) != got[0].NrPages {
			t.Fatalf("%+v", got)
		}
		for _, pg := range got[0].Pages {
			if pg.Mapping != got[0].Mapping {
				t.Errorf("page %#x: mapping %#x, the inode's %#x", uint64(pg.Page), uint64(pg.Mapping), uint64(got[0].Mapping))
			}
		}
	})
	t.Run("cgroup tree", func(t *testing.T) {
		var got, want any
		get(t, "--json cgroup tree", &got)
		labdata.ReadJSON(t, s.Path("truth/bpftool/cgroup.json"), &want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("cgroup tree %v, bpftool %v", got, want)
		}
	})
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
