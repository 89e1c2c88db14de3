package linux_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// truthSlabinfo reads truth/proc/slabinfo.txt: name → the numbers of
// its line (active_objs, num_objs, objsize, objperslab, pagesperslab,
// then the slabdata's active_slabs, num_slabs).
func truthSlabinfo(t *testing.T, path string) (map[string][7]uint64, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][7]uint64{}
	var order []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 16 || strings.HasPrefix(l, "#") {
			continue
		}
		var v [7]uint64
		for i, idx := range []int{1, 2, 3, 4, 5, 13, 14} {
			v[i], _ = strconv.ParseUint(f[idx], 10, 64)
		}
		out[f[0]] = v
		order = append(order, f[0])
	}
	return out, order
}

// slabMovers are the caches whose counts the guest changes between
// reading /proc/slabinfo and the dump: the capture goes on to read
// /proc/PID/{status,fd,maps} of every process (proc inodes, dentries,
// their LSM blobs, open files), runs ps and the snapshot (tasks and
// their stacks, VMAs, taskstats at exit), and the workload's sockets
// stay busy; the truth files it writes grow the page cache and its
// xarray nodes; kmalloc caches serve all of these.
var slabMovers = map[string]bool{"proc_inode_cache": true, "dentry": true, "lsm_inode_cache": true, "filp": true,
	"task_struct": true, "vmap_area": true, "maple_node": true, "taskstats": true, "TCP": true, "sock_inode_cache": true,
	"kmalloc-64": true, "kmalloc-32": true, "kmalloc-192": true, "anon_vma_chain": true, "anon_vma": true, "vm_area_struct": true,
	"pid": true, "radix_tree_node": true, "buffer_head": true, "netfs_request": true, "netfs_subrequest": true, "signal_cache": true, "sighand_cache": true, "files_cache": true, "mm_struct": true, "cred_jar": true}

// anonCounters are the meminfo lines that count anonymous memory: they
// move with the workload's RssAnon between the truth and the dump (its
// Go runtime gave freed heap back, or took more, before it was told to
// keep still).
var anonCounters = map[string]bool{"AnonPages": true, "Active(anon)": true, "Inactive(anon)": true, "Active": true, "Inactive": true}

// workloadPID is the lab workload's process (its spinner's thread
// group), from truth/workload.json.
func workloadPID(t *testing.T, sc *labdata.Scenario) int {
	var w struct {
		Spinner struct {
			PID int `json:"pid"`
		} `json:"spinner"`
	}
	labdata.ReadJSON(t, sc.Path("truth/workload.json"), &w)
	return w.Spinner.PID
}

// workloadAnonMoved is how far (kB) the workload's RssAnon moved from
// the moment /proc/meminfo was read (its /proc/PID/status read right
// after, truth/proc/meminfo_workload.status) to the dump.
func workloadAnonMoved(t *testing.T, sc *labdata.Scenario, p *objects.Program) uint64 {
	t.Helper()
	pid := workloadPID(t, sc)
	var truth uint64
	found := false
	for _, l := range strings.Split(string(labdata.TruthFile(t, sc, "proc/meminfo_workload.status")), "\n") {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			_, err := fmt.Sscan(v, &truth)
			found = err == nil
		}
	}
	if !found {
		t.Fatalf("%s: no RssAnon in truth/proc/meminfo_workload.status", sc.Scenario)
	}
	task, err := linux.FindTask(p, pid)
	if err != nil {
		t.Fatalf("the workload (pid %d): %v", pid, err)
	}
	// Only the rss counters are needed: a VMA on a page a misfiltered
	// dump lacks does not matter here (ReadTaskVM has read the counters
	// once it has the mm).
	vm, err := linux.ReadTaskVM(task)
	if vm == nil || vm.MM == 0 {
		t.Fatalf("the workload (pid %d): %v", pid, err)
	}
	return max(vm.RSSAnon, truth) - min(vm.RSSAnon, truth)
}

// TestLabSlabInfo: the slab caches are /proc/slabinfo's, in its order,
// with its object size, objects per slab and pages per slab exactly;
// the counts of objects and slabs moved between the truth and the dump
// (the guest ran on: the snapshot, the spinner), so they must match in
// most caches and stay close in the rest.
func TestLabSlabInfo(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			labkernel.SkipVolatileTruth(t, name)
			truth, order := truthSlabinfo(t, labkernel.Scenario(name).Path("truth/proc/slabinfo.txt"))
			infos, err := linux.SlabInfos(p)
			if err != nil {
				labErr(t, name, "slab caches", err)
				return
			}
			var names []string
			exact, moved, unreadable := 0, 0, 0
			var diffs []string
			for _, si := range infos {
				if si.Error != "" {
					// A cache on a page makedumpfile misfiltered is a
					// row with its error; the walk goes on.
					sc := labkernel.Scenario(name)
					if f, _ := sc.Format(strings.SplitN(name, "/", 2)[1]); sc.Misfiltered(f) != "" && strings.Contains(si.Error, "excluded") {
						unreadable++
						if si.Name != "" {
							names = append(names, si.Name)
						}
						continue
					}
					t.Errorf("cache %#x (%s): %s", uint64(si.Cache), si.Name, si.Error)
					continue
				}
				names = append(names, si.Name)
				w, ok := truth[si.Name]
				if !ok {
					t.Errorf("cache %s not in /proc/slabinfo", si.Name)
					continue
				}
				if si.ObjSize != w[2] || si.ObjPerSlab != w[3] || si.PagesPerSlab != w[4] {
					t.Errorf("%s: objsize %d objperslab %d pagesperslab %d, truth %d %d %d", si.Name, si.ObjSize, si.ObjPerSlab, si.PagesPerSlab, w[2], w[3], w[4])
				}
				got := [4]uint64{si.ActiveObjs, si.NumObjs, si.ActiveSlabs, si.NumSlabs}
				want := [4]uint64{w[0], w[1], w[5], w[6]}
				if got == want {
					exact++
					continue
				}
				moved++
				diffs = append(diffs, fmt.Sprintf("%s %v/%v", si.Name, got, want))
				// What the capture and the kernel do after reading
				// slabinfo moves a cache by a few slabs (or a fifth);
				// the caches the capture itself uses, by any amount.
				near := func(g, w, slack uint64) bool { return max(g, w)-min(g, w) <= max(slack, w/5) }
				small := near(got[0], want[0], 2*si.ObjPerSlab) && near(got[1], want[1], 2*si.ObjPerSlab) &&
					near(got[2], want[2], 2) && near(got[3], want[3], 2)
				if !small && !slabMovers[si.Name] && !strings.HasPrefix(si.Name, "kmalloc-") {
					t.Errorf("%s: counts %v, truth %v (not a cache the capture uses after reading slabinfo)", si.Name, got, want)
				}
			}
			if moved > len(infos)/4 {
				t.Errorf("%d of %d caches moved between the truth and the dump: %v", moved, len(infos), diffs)
			}
			named := map[string]bool{}
			for _, n := range names {
				named[n] = true
			}
			order = slices.DeleteFunc(order, func(n string) bool { return unreadable > 0 && !named[n] })
			if strings.Join(names, " ") != strings.Join(order, " ") || len(infos) != len(truth) {
				t.Errorf("caches in another order or number: %d, truth %d", len(infos), len(truth))
			}
			t.Logf("%d caches (%d on misfiltered pages): %d with every count equal, %d moved (active_objs num_objs active_slabs num_slabs, got/truth): %v", len(infos), unreadable, exact, moved, diffs)
		})
	}
}

// TestLabSlabObjects: every task_struct is an allocated object of the
// task_struct cache, found both ways: slab_object_info of its address,
// and the whole-memory walk of the cache's allocated objects.
func TestLabSlabObjects(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			labkernel.SkipVolatileTruth(t, name)
			tasks := map[uint64]bool{}
			for task, err := range linux.ForEachTask(p) {
				if err != nil {
					labErr(t, name, "tasks", err)
					return
				}
				tasks[task.Addr()] = true
				so, ok, err := linux.SlabObjectInfo(p, task.Addr()+100)
				if err != nil {
					labErr(t, name, fmt.Sprintf("task %#x", task.Addr()), err)
					return
				}
				if !ok {
					t.Fatalf("task %#x: in no slab", task.Addr())
				}
				if so.CacheName != "task_struct" || uint64(so.Object) != task.Addr() || so.Offset != 100 || so.State != "allocated" {
					t.Errorf("task %#x: %+v", task.Addr(), so)
				}
			}
			c, err := linux.FindSlabCache(p, "task_struct")
			if err != nil {
				t.Fatal(err)
			}
			si, err := linux.SlabCacheInfo(c)
			if err != nil {
				t.Fatal(err)
			}
			alloc := map[uint64]bool{}
			for o, err := range linux.SlabCacheForEachAllocatedObject(c, "struct task_struct") {
				if err != nil {
					labErr(t, name, "allocated task_structs", err)
					return
				}
				alloc[o.Addr()] = true
			}
			// The idle tasks of the CPUs past 0 are allocated too (CPU
			// 0's is init_task, in the kernel's data).
			cpus, err := p.PossibleCPUs()
			if err != nil {
				t.Fatal(err)
			}
			for _, cpu := range cpus[1:] {
				idle, err := linux.IdleTask(p, cpu)
				if err != nil {
					t.Fatal(err)
				}
				tasks[idle.Addr()] = true
			}
			for a := range tasks {
				if !alloc[a] {
					t.Errorf("task %#x not among the allocated objects", a)
				}
			}
			for a := range alloc {
				if !tasks[a] {
					t.Errorf("allocated task_struct %#x is no task's", a)
				}
			}
			// slabinfo counts the per-CPU slabs' free objects as active.
			t.Logf("%d tasks and idle tasks = %d allocated task_structs; slabinfo: %d active of %d", len(tasks), len(alloc), si.ActiveObjs, si.NumObjs)
		})
	}
}

// meminfoMovers are the /proc/meminfo lines that move between the
// truth and the dump: the capture and the snapshot go on running
// (processes, their page tables, stacks, files, slabs) after meminfo
// was read. The rest must be equal.
var meminfoMovers = map[string]bool{"MemFree": true, "MemAvailable": true, "Cached": true, "Active": true, "Inactive": true,
	"Active(anon)": true, "Inactive(anon)": true, "Active(file)": true, "Inactive(file)": true, "AnonPages": true, "Mapped": true,
	"Shmem": true, "KReclaimable": true, "Slab": true, "SReclaimable": true, "SUnreclaim": true, "KernelStack": true,
	"PageTables": true, "Committed_AS": true, "VmallocUsed": true, "Percpu": true, "Dirty": true, "Writeback": true}

// TestLabMeminfo: every line of /proc/meminfo is computed; the lines
// that do not move are equal, and those that move are within 10% (or
// 4 MiB) of the truth.
func TestLabMeminfo(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			labkernel.SkipVolatileTruth(t, name)
			b, err := os.ReadFile(labkernel.Scenario(name).Path("truth/proc/meminfo.txt"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := linux.ReadMeminfo(p)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]linux.MeminfoLine{}
			for _, l := range m.Lines {
				got[l.Name] = l
			}
			// Anonymous memory moves with the workload's RssAnon, and by
			// what the process that read meminfo (cat) held: 1 MiB.
			slack := workloadAnonMoved(t, labkernel.Scenario(name), p) + 1024
			var moved []string
			equal, total := 0, 0
			for _, tl := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				total++
				name, rest, _ := strings.Cut(tl, ":")
				want, _ := strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
				g, ok := got[name]
				if !ok {
					t.Errorf("%s: not computed", name)
					continue
				}
				if g.String() == tl {
					equal++
					continue
				}
				d := max(g.Value, want) - min(g.Value, want)
				if anonCounters[name] && d <= slack {
					moved = append(moved, fmt.Sprintf("%s %d/%d (the workload)", name, g.Value, want))
					continue
				}
				if meminfoMovers[name] && (d <= 4096 || d*10 <= want) {
					moved = append(moved, fmt.Sprintf("%s %d/%d", name, g.Value, want))
					continue
				}
				t.Errorf("got  %q\nwant %q", g.String(), tl)
			}
			if len(m.Missing) > 0 {
				t.Errorf("missing: %v", m.Missing)
			}
			t.Logf("%d lines: %d equal, moved (got/truth kB): %v", total, equal, moved)
		})
	}
}
