package linux

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// mountTree lays out a namespace: ext4 at / (mount id 1), proc at /proc
// (3), a bpffs at /sys/fs/bpf (5) holding pins/prog1; / also holds a
// negative dentry "neg".
type mountTree struct {
	root, proc, bpf sk.Obj // mounts
	droot, dsys     sk.Obj
	dprog, dneg     sk.Obj
}

func (k *kernel) mountTree() mountTree {
	var t mountTree
	var zero sk.Obj
	t.droot, _ = k.Dentry(zero, "/", sk.SIFDIR|0o755)
	t.dsys, _ = k.Dentry(t.droot, "sys", sk.SIFDIR|0o555)
	dfs, _ := k.Dentry(t.dsys, "fs", sk.SIFDIR|0o755)
	dbpf, _ := k.Dentry(dfs, "bpf", sk.SIFDIR|0o700)
	dproc, _ := k.Dentry(t.droot, "proc", sk.SIFDIR|0o555)
	t.dneg, _ = k.Dentry(t.droot, "neg", 0)
	t.root = k.Mount(1, k.FSType("ext4"), t.droot, zero, zero)
	proot, _ := k.Dentry(zero, "/", sk.SIFDIR|0o555)
	t.proc = k.Mount(3, k.FSType("proc"), proot, t.root, dproc)
	broot, _ := k.Dentry(zero, "/", sk.SIFDIR|0o1777)
	pins, _ := k.Dentry(broot, "pins", sk.SIFDIR|0o700)
	t.dprog, _ = k.Dentry(pins, "prog1", sk.SIFREG|0o600)
	t.bpf = k.Mount(5, k.FSType("bpf"), broot, t.root, dbpf)
	k.Namespace(t.root, t.proc, t.bpf)
	return t
}

func TestMounts(t *testing.T) {
	for _, l := range []sk.LinuxLayout{{}, {MountList: true, Subdirs: true}} {
		t.Run(fmt.Sprintf("list %v", l.MountList), func(t *testing.T) {
			k := newKernel(t, l)
			tree := k.mountTree()
			ns, err := InitMntNS(k.p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for m, err := range ForEachMount(ns) {
				if err != nil {
					t.Fatal(err)
				}
				fs, err := MountFSType(m)
				if err != nil {
					t.Fatal(err)
				}
				path, err := MountPath(m)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fs+" "+path)
			}
			if s := strings.Join(got, ", "); s != "ext4 /, proc /proc, bpf /sys/fs/bpf" {
				t.Errorf("mounts: %s", s)
			}
			p, err := DPath(k.value(t, "mount", tree.bpf.Addr), k.value(t, "dentry", tree.dprog.Addr))
			if err != nil || p != "/sys/fs/bpf/pins/prog1" {
				t.Errorf("d_path = %q, %v", p, err)
			}
			// The children of /, newest first, with what simple_positive says.
			var kids []string
			for d, err := range ForEachDentryChild(k.value(t, "dentry", tree.droot.Addr)) {
				if err != nil {
					t.Fatal(err)
				}
				name, err := DentryName(d)
				if err != nil {
					t.Fatal(err)
				}
				pos, err := SimplePositive(d)
				if err != nil {
					t.Fatal(err)
				}
				kids = append(kids, fmt.Sprintf("%s:%v", name, pos))
			}
			if s := strings.Join(kids, " "); s != "neg:false proc:true sys:true" {
				t.Errorf("children of /: %s", s)
			}
			if !IsDir(sk.SIFDIR|0o755) || IsDir(sk.SIFREG|0o755) || IsDir(0o120777) {
				t.Errorf("IsDir")
			}
		})
	}
}

func TestMountDamage(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	if _, err := InitMntNS(k.p); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("init_task without nsproxy: %v", err)
	}
	tree := k.mountTree()
	mnt := k.value(t, "mount", tree.bpf.Addr)
	// Two dentries each other's parent: bounded, named.
	a, _ := k.Dentry(tree.dsys, "a", sk.SIFDIR)
	b, _ := k.Dentry(a, "b", sk.SIFDIR)
	a.Set("d_parent", b.Addr)
	if _, err := DPath(mnt, k.value(t, "dentry", b.Addr)); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", b.Addr)) {
		t.Errorf("a cycle of parents: %v", err)
	}
	// A name longer than NAME_MAX.
	b.Set("d_parent", tree.dsys.Addr).Set("d_name.len", 4096)
	if _, err := DPath(mnt, k.value(t, "dentry", b.Addr)); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("dentry %#x", b.Addr)) {
		t.Errorf("a name of 4096 bytes: %v", err)
	}
	if _, err := DPath(k.p.Pointer(k.S("mount"), 0), k.value(t, "dentry", b.Addr)); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("NULL mount: %v", err)
	}
	// A child list whose second node points back at the first.
	c1, _ := k.Dentry(tree.dprog, "c1", sk.SIFREG)
	c2, _ := k.Dentry(tree.dprog, "c2", sk.SIFREG)
	k.M.U64(c1.At("d_sib"), c2.At("d_sib"))
	var werr error
	for _, err := range ForEachDentryChild(k.value(t, "dentry", tree.dprog.Addr)) {
		werr = err
	}
	if !errors.Is(werr, objects.ErrCorrupt) || !strings.Contains(werr.Error(), fmt.Sprintf("%#x", c2.At("d_sib"))) {
		t.Errorf("cyclic children: %v", werr)
	}
	// The mount tree: a node that is its own left child.
	k.M.U64(tree.proc.At("mnt_node.rb_left"), tree.proc.At("mnt_node"))
	ns, _ := InitMntNS(k.p)
	werr = nil
	after := 0 // mounts yielded past the damage: the walk goes on
	for m, err := range ForEachMount(ns) {
		switch {
		case err != nil && werr == nil:
			werr = err
		case err == nil && werr != nil && m.Addr() != 0:
			after++
		}
	}
	if !errors.Is(werr, objects.ErrCorrupt) || !objects.IsDamage(werr) || !strings.Contains(werr.Error(), fmt.Sprintf("%#x", tree.proc.At("mnt_node"))) {
		t.Errorf("cyclic mount tree: %v", werr)
	}
	if after == 0 {
		t.Errorf("cyclic mount tree: no mount yielded past the damage")
	}
}

func TestForEachFile(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	task := k.Task(10, 10, "app", 0)
	var files [4]sk.Obj
	for i := range files {
		files[i] = k.New("file").Set("f_mode", uint64(i))
	}
	// 600 slots: past one read of 512 pointers.
	k.Files(task, 600, map[int]uint64{0: files[0].Addr, 1: files[1].Addr, 5: files[2].Addr, 550: files[3].Addr})
	var got []string
	for f, err := range ForEachFile(k.value(t, "task_struct", task.Addr)) {
		if err != nil {
			t.Fatal(err)
		}
		mode, _ := f.File.MemberUint("f_mode")
		got = append(got, fmt.Sprintf("%d:%d", f.FD, mode))
	}
	if s := strings.Join(got, " "); s != "0:0 1:1 5:2 550:3" {
		t.Errorf("files: %s", s)
	}
	// Stopping early.
	n := 0
	for range ForEachFile(k.value(t, "task_struct", task.Addr)) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("stopped after %d", n)
	}
	// No files table: no files.
	idle := k.Task(0, 0, "swapper/0", 0)
	for f, err := range ForEachFile(k.value(t, "task_struct", idle.Addr)) {
		t.Errorf("idle task has fd %d, %v", f.FD, err)
	}
	// An implausible max_fds, then an fd array on an absent page.
	filesAddr, _ := k.p.ReadU64(k.Obj("task_struct", task.Addr).At("files"))
	fdt, _ := k.p.ReadU64(k.Obj("files_struct", filesAddr).At("fdt"))
	k.Obj("fdtable", fdt).Set("max_fds", 1<<30)
	if _, err := sk.WalkErr(ForEachFile(k.value(t, "task_struct", task.Addr))); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", fdt)) {
		t.Errorf("max_fds 1<<30: %v", err)
	}
	arr := k.M.AllocPage(8 * 600)
	k.Obj("fdtable", fdt).Set("max_fds", 600).Set("fd", arr)
	k.M.Drop(arr)
	if _, err := sk.WalkErr(ForEachFile(k.value(t, "task_struct", task.Addr))); !errors.Is(err, sk.ErrFault) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", fdt)) {
		t.Errorf("absent fd array: %v", err)
	}
	if _, err := sk.WalkErr(ForEachFile(k.p.Pointer(k.S("task_struct"), 0))); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("NULL task: %v", err)
	}
}

// TestRealMinusBoot: offs_real - offs_boot of the timekeeper, in
// tk_core (struct tk_data, 6.13+) or shadow_timekeeper.
func TestRealMinusBoot(t *testing.T) {
	const real, boot = 1700000000_000000000, 5_000000000
	for _, l := range []sk.LinuxLayout{{}, {ShadowTK: true}} {
		t.Run(fmt.Sprintf("shadow %v", l.ShadowTK), func(t *testing.T) {
			// RealMinusBoot is computed once per Program: a kernel without
			// the symbol first, then one with it.
			if _, err := RealMinusBoot(newKernel(t, l).p); !errors.Is(err, objects.ErrNotFound) {
				t.Errorf("no timekeeper symbol: %v", err)
			}
			k := newKernel(t, l)
			var tk sk.Obj
			if l.ShadowTK {
				tk = k.Obj("timekeeper", k.M.Global(k.Syms, "shadow_timekeeper", uint64(k.S("timekeeper").Size)))
				// tk_core's copy, which has no BTF before 6.13, differs:
				// it must not be read.
			} else {
				tk = k.Obj("tk_data", k.M.Global(k.Syms, "tk_core", uint64(k.S("tk_data").Size))).Member("timekeeper")
			}
			tk.Set("offs_real", real).Set("offs_boot", boot)
			if d, err := RealMinusBoot(k.p); err != nil || d != real-boot {
				t.Errorf("RealMinusBoot = %d, %v; want %d", d, err, int64(real-boot))
			}
		})
	}
}
