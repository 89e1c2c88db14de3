package linux_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// labErr fails the test on err, or skips it where makedumpfile
// dropped a page the kernel was using (a misfiltered dump of 6.10+:
// labdata.Scenario.Misfiltered says why).
func labErr(t *testing.T, name, what string, err error) {
	t.Helper()
	sc := labkernel.Scenario(name)
	f, _ := sc.Format(strings.SplitN(name, "/", 2)[1])
	if why := sc.Misfiltered(f); why != "" && errors.Is(err, vmcore.ErrPageExcluded) {
		t.Skipf("%s: %v: %s", what, err, why)
	}
	t.Errorf("%s: %v", what, err)
}

// truthPIDs lists the PIDs of the user processes whose /proc/PID files
// the lab captured (truth/proc/PID.SUFFIX).
func truthPIDs(t *testing.T, dir, suffix string) []int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "truth/proc/*."+suffix))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range files {
		if n, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), "."+suffix)); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	if len(out) == 0 {
		t.Fatalf("no truth/proc/*.%s in %s", suffix, dir)
	}
	return out
}

// TestLabMounts: the mounts of init's namespace are /proc/mounts:
// device, path, type and options (the filesystem's own options where
// kinspect emulates its show_options, else the generic ones).
func TestLabMounts(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(labkernel.Scenario(name).Path("truth/proc/mounts.txt"))
			if err != nil {
				t.Fatal(err)
			}
			truth := strings.Split(strings.TrimSpace(string(b)), "\n")
			ns, err := linux.InitMntNS(p)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := linux.Mounts(ns)
			if err != nil {
				labErr(t, name, "mounts", err)
				return
			}
			if len(ms) != len(truth) {
				// On a misfiltered dump the tree's nodes may be on pages
				// makedumpfile dropped: the walk must say so.
				sc := labkernel.Scenario(name)
				f, _ := sc.Format(strings.SplitN(name, "/", 2)[1])
				for _, d := range p.Damaged() {
					if why := sc.Misfiltered(f); why != "" && strings.HasPrefix(d.Walk, "mounts of namespace") && errors.Is(d.Err, vmcore.ErrPageExcluded) {
						t.Skipf("%d mounts, truth %d: %s: %v: %s", len(ms), len(truth), d.Walk, d.Err, why)
					}
				}
				t.Errorf("%d mounts, truth %d; damage: %v", len(ms), len(truth), p.Damaged())
			}
			exact, generic := 0, 0
			for i, tl := range truth {
				if i >= len(ms) {
					break
				}
				m := ms[i]
				if m.Error != "" {
					sc := labkernel.Scenario(name)
					if f, _ := sc.Format(strings.SplitN(name, "/", 2)[1]); sc.Misfiltered(f) != "" && strings.Contains(m.Error, "excluded") {
						t.Logf("mount %d (%#x) on a misfiltered page: %s", i, uint64(m.Mount), m.Error)
						continue
					}
					t.Errorf("mount %d (%#x): %s", i, uint64(m.Mount), m.Error)
					continue
				}
				got := fmt.Sprintf("%s %s %s %s 0 0", m.Device, m.Path, m.Type, m.Options)
				if got == tl {
					exact++
					continue
				}
				f := strings.Fields(tl)
				if !m.OwnOptions && len(f) == 6 && f[0] == m.Device && f[1] == m.Path && f[2] == m.Type && strings.HasPrefix(f[3]+",", m.Options+",") {
					generic++
					t.Logf("%s: %s's own options not emulated: truth %q, read %q", m.Path, m.Type, f[3], m.Options)
					continue
				}
				t.Errorf("mount %d:\n got  %q\n want %q", i, got, tl)
			}
			t.Logf("%d mounts: %d equal to /proc/mounts, %d equal but for the filesystem's own options", len(truth), exact, generic)
		})
	}
}

// TestLabFiles: each process's open files are ls -l /proc/PID/fd:
// the fds, where each links to and the link's permissions.
func TestLabFiles(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			total, match := 0, 0
			for _, pid := range truthPIDs(t, sc.Dir, "fd") {
				b, err := os.ReadFile(sc.Path(fmt.Sprintf("truth/proc/%d.fd", pid)))
				if err != nil {
					t.Fatal(err)
				}
				truth := map[int]string{}
				for _, l := range strings.Split(string(b), "\n") {
					f := strings.Fields(l)
					if len(f) < 11 || f[len(f)-2] != "->" {
						continue
					}
					fd, _ := strconv.Atoi(f[len(f)-3])
					truth[fd] = f[0][1:4] + " " + f[len(f)-1]
				}
				task, err := linux.FindTask(p, pid)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				files, err := linux.TaskFiles(task)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				if pid == 1 {
					// PID 1 is the shell that captured the truth: ash
					// ran "ls -l /proc/1/fd > 1.fd 2>/dev/null" with
					// the redirections applied to itself, its own fds
					// 1 and 2 saved at 11 and 12 meanwhile.
					truth[1], truth[2] = truth[11], truth[12]
					delete(truth, 11)
					delete(truth, 12)
				}
				got := map[int]string{}
				unreadable := map[int]bool{}
				for _, f := range files {
					perm := map[string]string{"r": "r-x", "w": "-wx", "rw": "rwx"}[f.Mode]
					got[f.FD] = perm + " " + f.Path
					if f.Err != "" {
						// An error on a dump that may not have it fails here;
						// on a misfiltered one the fd is not compared.
						err := errors.New(f.Err)
						if strings.Contains(f.Err, vmcore.ErrPageExcluded.Error()) {
							err = fmt.Errorf("%s: %w", f.Err, vmcore.ErrPageExcluded)
						}
						labErr(t, name, fmt.Sprintf("pid %d fd %d", pid, f.FD), err)
						unreadable[f.FD] = true
					}
				}
				for fd, w := range truth {
					total++
					if unreadable[fd] {
						continue
					}
					if got[fd] == w {
						match++
						continue
					}
					t.Errorf("pid %d fd %d: got %q, truth %q", pid, fd, got[fd], w)
				}
				for fd, g := range got {
					if _, ok := truth[fd]; !ok {
						t.Errorf("pid %d fd %d: extra %q", pid, fd, g)
					}
				}
			}
			t.Logf("%d of %d fds match", match, total)
		})
	}
}

// TestLabVMAs: each process's VMAs are /proc/PID/maps, line for line.
func TestLabVMAs(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			f, _ := sc.Format(strings.SplitN(name, "/", 2)[1])
			misfiltered := sc.Misfiltered(f)
			lines, match, procs, lost := 0, 0, 0, 0
			for _, pid := range truthPIDs(t, sc.Dir, "maps") {
				b, err := os.ReadFile(sc.Path(fmt.Sprintf("truth/proc/%d.maps", pid)))
				if err != nil {
					t.Fatal(err)
				}
				truth := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				task, err := linux.FindTask(p, pid)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				vmas, err := linux.TaskVMAs(task)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				var got []string
				unread := map[int]bool{} // lines whose file is on a misfiltered page
				for i, v := range vmas {
					got = append(got, v.MapsLine())
					if v.Err != "" {
						if misfiltered != "" && strings.Contains(v.Err, vmcore.ErrPageExcluded.Error()) {
							unread[i] = true
							continue
						}
						t.Errorf("pid %d vma %#x: %s", pid, uint64(v.Start), v.Err)
					}
				}
				procs++
				lines += len(truth)
				ok := true
				for i, l := range truth {
					if i < len(got) && got[i] == l {
						match++
						continue
					}
					if unread[i] && strings.HasPrefix(l, strings.Fields(got[i])[0]+" ") {
						lost++ // the range is right; the file is unreadable
						continue
					}
					ok = false
				}
				if !ok || len(got) != len(truth) {
					t.Errorf("pid %d: maps differ:\n%s", pid, diffLines(got, truth))
				}
			}
			t.Logf("%d processes, %d of %d maps lines equal", procs, match, lines)
			if lost > 0 {
				t.Logf("%d lines lack their file: its inode is on a page %s", lost, misfiltered)
			}
		})
	}
}

// diffLines shows the lines of got and want that differ.
func diffLines(got, want []string) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "  got  %q\n  want %q\n", g, w)
		}
	}
	return b.String()
}

// TestLabStatus: each process's size, resident memory and signals are
// what its /proc/PID/status said: VmSize, VmRSS, RssAnon, RssFile,
// RssShmem (ReadTaskVM), Threads, SigPnd, ShdPnd, SigBlk, SigIgn, SigCgt
// (ReadTaskSignals).
func TestLabStatus(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			labkernel.SkipVolatileTruth(t, name)
			sc := labkernel.Scenario(name)
			fields, match := 0, 0
			// The workload (a Go program whose spinner and sleepers run
			// on) may touch more memory between the truth and the dump.
			workload := workloadPID(t, sc)
			for _, pid := range truthPIDs(t, sc.Dir, "status") {
				b, err := os.ReadFile(sc.Path(fmt.Sprintf("truth/proc/%d.status", pid)))
				if err != nil {
					t.Fatal(err)
				}
				truth := map[string]string{}
				for _, l := range strings.Split(string(b), "\n") {
					k, v, ok := strings.Cut(l, ":")
					if ok {
						truth[k] = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
					}
				}
				task, err := linux.FindTask(p, pid)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				vm, err := linux.ReadTaskVM(task)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				sig, err := linux.ReadTaskSignals(task)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				got := map[string]string{
					"VmSize": fmt.Sprint(vm.TotalVM), "VmRSS": fmt.Sprint(vm.RSS), "RssAnon": fmt.Sprint(vm.RSSAnon),
					"RssFile": fmt.Sprint(vm.RSSFile), "RssShmem": fmt.Sprint(vm.RSSShmem), "Threads": fmt.Sprint(sig.NrThreads),
					"SigPnd": sig.Pending.String(), "ShdPnd": sig.SharedPending.String(), "SigBlk": sig.Blocked.String(),
					"SigIgn": sig.Ignored.String(), "SigCgt": sig.Caught.String(),
				}
				for k, g := range got {
					fields++
					if truth[k] == g {
						match++
						continue
					}
					// A Go program (the workload) starts threads whenever
					// goroutines block: between the truth and the dump its
					// count may grow. It must then be the threads the dump
					// holds.
					// Its resident anonymous memory moves: Go's runtime
					// gives freed heap back to the system in the
					// background (and takes more). The file-backed and
					// shared parts stay exact.
					if (k == "VmRSS" || k == "RssAnon") && pid == workload {
						t.Logf("pid %d (the workload) %s: %s kB, truth %s kB", pid, k, g, truth[k])
						match++
						continue
					}
					// The lab's init, a shell, goes on running the capture
					// after its status was read: its heap may take a page
					// or a few, never give them back.
					if (k == "VmRSS" || k == "RssAnon") && pid == 1 && grewBy(g, truth[k], 16) {
						t.Logf("pid 1 (the lab's init) %s: %s kB, truth %s kB", k, g, truth[k])
						match++
						continue
					}
					if k == "Threads" {
						n := 0
						for _, err := range linux.ForEachThread(task) {
							if err == nil {
								n++
							}
						}
						if fmt.Sprint(n) == g {
							t.Logf("pid %d Threads: %s, truth %s; the dump has %d threads", pid, g, truth[k], n)
							match++
							continue
						}
					}
					t.Errorf("pid %d %s: %s, truth %s", pid, k, g, truth[k])
				}
			}
			t.Logf("%d of %d status fields equal", match, fields)
		})
	}
}

// TestLabCmdline: the kernel's command line is /proc/cmdline's. Every
// user process's arguments and environment read from its memory (the
// lab captures no /proc/PID/cmdline or environ to compare with: ps.json
// and status have comm only, which the workload's processes renamed), so
// this checks they read whole, and that argv[0] names the executable
// mapped first in the process.
func TestLabCmdline(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			b, err := os.ReadFile(sc.Path("truth/proc/cmdline.txt"))
			if err != nil {
				t.Fatal(err)
			}
			cl, err := linux.KernelCmdline(p)
			if err != nil || cl != strings.TrimSpace(string(b)) {
				t.Errorf("kernel command line %q, %v; truth %q", cl, err, strings.TrimSpace(string(b)))
			}
			procs, named, renamed, envs := 0, 0, 0, 0
			for task, err := range linux.ForEachProcess(p) {
				if err != nil {
					t.Fatal(err)
				}
				a, err := linux.ReadProcArgs(task)
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				tk, _ := linux.NewTask(task)
				if tk.IsKThread() {
					if len(a.Args) > 0 {
						t.Errorf("kernel thread %d has args %q", a.PID, a.Args)
					}
					continue
				}
				procs++
				if a.ArgsErr != "" || len(a.Args) == 0 {
					t.Errorf("pid %d (%s): args %q: %s", a.PID, a.Comm, a.Args, a.ArgsErr)
					continue
				}
				if a.EnvErr != "" || len(a.Env) == 0 {
					t.Errorf("pid %d (%s): environment %q: %s", a.PID, a.Comm, a.Env, a.EnvErr)
				} else {
					envs++
				}
				vmas, err := linux.TaskVMAs(task)
				if err != nil || len(vmas) == 0 {
					t.Fatalf("pid %d: %v", a.PID, err)
				}
				base := func(s string) string { return s[strings.LastIndex(s, "/")+1:] }
				if base(a.Args[0]) == base(vmas[0].Name) || base(vmas[0].Name) == "busybox" {
					// A busybox applet (kd-lockup's trigger's sleep) runs
					// /bin/busybox under its own name.
					named++
				} else {
					renamed++
					t.Errorf("pid %d (%s): argv[0] %q runs %s", a.PID, a.Comm, a.Args[0], vmas[0].Name)
				}
			}
			t.Logf("kernel command line equal; %d processes' arguments and %d environments read; argv[0] names the executable in %d, not in %d", procs, envs, named, renamed)
		})
	}
}

// TestLabCmdlineFiltered: makedumpfile -d 31 leaves the processes' pages
// out; their arguments cannot be read, and the error says the page was
// excluded from the dump.
func TestLabCmdlineFiltered(t *testing.T) {
	for name, p := range labkernel.Programs(t, "kdump-zlib-d31") {
		t.Run(name, func(t *testing.T) {
			excluded := 0
			for task, err := range linux.ForEachProcess(p) {
				if err != nil {
					labkernel.FatalUnlessDropped(t, name, err)
				}
				a, _ := linux.ReadProcArgs(task)
				if a == nil || a.ArgsErr == "" {
					continue
				}
				if !strings.Contains(a.ArgsErr, "excluded") {
					t.Errorf("pid %d: %s", a.PID, a.ArgsErr)
				}
				excluded++
			}
			if excluded == 0 {
				t.Errorf("every process's arguments read from a -d 31 dump")
			}
			t.Logf("%d processes' arguments left out of the dump, each error saying so", excluded)
		})
	}
}

// grewBy says whether kB value got is truth's or up to max kB more.
func grewBy(got, truth string, max int) bool {
	g, err1 := strconv.Atoi(got)
	w, err2 := strconv.Atoi(truth)
	return err1 == nil && err2 == nil && g >= w && g-w <= max
}

// TestLabPathLookup: path lookup through the dentry cache (drgn's
// path_lookup) on the guest's own paths. Each mount point of
// /proc/mounts leads to what is mounted there last: a mount whose path
// is that path, at its root dentry. Each file the guest's processes hold
// open by a path (ls -l /proc/PID/fd, a link to "/...") leads to the
// inode of that open file, as the files walker reads it from the fd
// table; a file's page cache holds at most its size in pages.
func TestLabPathLookup(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			b, err := os.ReadFile(sc.Path("truth/proc/mounts.txt"))
			if err != nil {
				t.Fatal(err)
			}
			mounts := 0
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				path := strings.Fields(l)[1]
				pi := linux.ReadPathInfo(p, path)
				if pi.Error != "" {
					t.Errorf("%s: %s", path, pi.Error)
					continue
				}
				m, err := p.ObjectOf("struct mount", uint64(pi.Mount))
				if err != nil {
					t.Fatal(err)
				}
				mp, err := linux.MountPath(m)
				root, rerr := m.MemberUint("mnt.mnt_root")
				if err != nil || rerr != nil || mp != path || root != uint64(pi.Dentry) {
					t.Errorf("%s: mount %#x at %q (%v), its root %#x (%v), dentry %#x", path, uint64(pi.Mount), mp, err, root, rerr, uint64(pi.Dentry))
				}
				mounts++
			}
			files := 0
			for _, pid := range truthPIDs(t, sc.Dir, "fd") {
				task, err := linux.FindTask(p, pid)
				if err != nil {
					continue // exited since the truth
				}
				open, err := linux.TaskFiles(task)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				for _, f := range open {
					if f.Err != "" || !strings.HasPrefix(f.Path, "/") || strings.HasSuffix(f.Path, " (deleted)") {
						continue
					}
					pi := linux.ReadPathInfo(p, f.Path)
					if pi.Error == "" && pi.Inode != f.Inode && overmounted(t, p, f, pi) {
						// Opened before a mount hid it (PID 1's
						// /dev/console, on rootfs under devtmpfs):
						// the path now leads to what hides it.
						t.Logf("pid %d fd %d %s: on a mount since hidden", pid, f.FD, f.Path)
						continue
					}
					if pi.Error != "" || pi.Inode != f.Inode {
						t.Errorf("pid %d fd %d %s: inode %#x (%s), the fd's %#x", pid, f.FD, f.Path, uint64(pi.Inode), pi.Error, uint64(f.Inode))
					}
					if pi.Type == "REG" && pi.Pages > uint64(pi.Size+4095)/4096 {
						t.Errorf("%s: %d pages cached, size %d", f.Path, pi.Pages, pi.Size)
					}
					files++
				}
			}
			if mounts == 0 || files == 0 {
				t.Errorf("%d mount points, %d open files looked up", mounts, files)
			}
			t.Logf("%d mount points and %d open files looked up", mounts, files)
		})
	}
}

// overmounted says the open file f is on another mount than the one
// looking its path up reached.
func overmounted(t *testing.T, p *objects.Program, f linux.OpenFile, pi linux.PathInfo) bool {
	file, err := p.ObjectOf("struct file", uint64(f.File))
	if err != nil {
		t.Fatal(err)
	}
	vfs, err := file.MemberUint("f_path.mnt")
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.ObjectOf("struct mount", uint64(pi.Mount))
	if err != nil {
		t.Fatal(err)
	}
	mv, err := m.Member("mnt")
	if err != nil {
		t.Fatal(err)
	}
	at, _ := mv.Address()
	return vfs != at
}

// TestLabInodePages: the page cache of every regular file the guest's
// processes hold open or map (their executables and libraries), as
// crash's files -p walks it (i_mapping->i_pages),
// against the kernel's own bookkeeping: as many pages as its nrpages
// count (no large folio in the lab's page caches: each entry one page),
// each page pointing back at the mapping (page->mapping) at its own
// index, in file order and inside the file's size.
func TestLabInodePages(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			seen := map[objects.Hex]bool{}
			files, pages := 0, 0
			for _, pid := range truthPIDs(t, sc.Dir, "fd") {
				task, err := linux.FindTask(p, pid)
				if err != nil {
					continue // exited since the truth
				}
				open, err := linux.TaskFiles(task)
				if err != nil {
					labErr(t, name, fmt.Sprintf("pid %d", pid), err)
					continue
				}
				// The files its VMAs map, as open files.
				if vm, err := linux.ReadTaskVM(task); err == nil {
					for _, v := range vm.VMAs {
						if v.File == 0 {
							continue
						}
						fv, err := p.ObjectOf("struct file", uint64(v.File))
						if err != nil {
							t.Fatal(err)
						}
						if ino, err := fv.MemberUint("f_inode"); err == nil {
							open = append(open, linux.OpenFile{Inode: objects.Hex(ino), Type: "REG", Path: v.Name})
						}
					}
				}
				for _, f := range open {
					if f.Err != "" || f.Type != "REG" || seen[f.Inode] {
						continue
					}
					seen[f.Inode] = true
					inode, err := p.ObjectOf("struct inode", uint64(f.Inode))
					if err != nil {
						t.Fatal(err)
					}
					ip, err := linux.ReadInodePages(inode)
					if err != nil {
						t.Errorf("%s: %v", f.Path, err)
						continue
					}
					size, err := inode.MemberUint("i_size")
					if err != nil {
						t.Fatal(err)
					}
					if len(ip.Errors) > 0 || uint64(len(ip.Pages)) != ip.NrPages {
						t.Errorf("%s: %d pages in i_pages, nrpages %d, errors %v", f.Path, len(ip.Pages), ip.NrPages, ip.Errors)
					}
					for i, pg := range ip.Pages {
						if pg.Mapping != ip.Mapping || pg.Index >= (size+4095)/4096 || i > 0 && pg.Index <= ip.Pages[i-1].Index {
							t.Errorf("%s: page %#x: mapping %#x (the inode's %#x), index %d (size %d, previous %d)", f.Path, uint64(pg.Page), uint64(pg.Mapping), uint64(ip.Mapping), pg.Index, size, ip.Pages[max(i-1, 0)].Index)
							break
						}
					}
					files++
					pages += len(ip.Pages)
				}
			}
			if files == 0 {
				t.Errorf("no open regular file")
			}
			t.Logf("%d open regular files: %d pages in their page caches", files, pages)
		})
	}
}
