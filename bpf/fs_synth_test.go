package bpf

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// fsKernel lays out program 5, map 9, link 10 (a perf_event link with
// a BPF cookie) and a mount namespace: ext4 at /, a bpffs at
// /sys/fs/bpf holding
//
//	prog1 (the program), link1 (the link), neg (a negative dentry),
//	readme (not a BPF object), maps/m1 (the map), maps/inner (a
//	directory on which a second bpffs is mounted, holding deep, the map)
//
// created in the order maps, prog1, link1, neg, readme (so readdir,
// newest first, lists readme, neg, link1, prog1, maps).
type fsObjs struct {
	prog, m, link      sk.Obj
	root, bpffs, inner sk.Obj // mounts
	dprog, dmaps, dm1  sk.Obj
	iprog              sk.Obj // prog1's inode
}

func fsKernel(t *testing.T) (*bpfKernel, fsObjs) {
	k := newBPF(t)
	var o fsObjs
	o.prog, _ = k.prog(5, 1, "p", nil)
	_, o.m = k.mapIn("bpf_htab", 0, 9, MapTypeHash, 4, 4, 1, "m")
	ev := k.New("perf_event").Set("bpf_cookie", 0xc00c1e)
	pl := k.New("bpf_perf_link").Set("perf_file", k.New("file").Set("private_data", ev.Addr).Addr)
	o.link = pl.Member("link").Set("id", 10).Set("type", LinkTypePerfEvent).Set("prog", o.prog.Addr)

	var zero sk.Obj
	droot, _ := k.Dentry(zero, "/", sk.SIFDIR|0o755)
	dsys, _ := k.Dentry(droot, "sys", sk.SIFDIR|0o555)
	dfs, _ := k.Dentry(dsys, "fs", sk.SIFDIR|0o755)
	dbpf, _ := k.Dentry(dfs, "bpf", sk.SIFDIR|0o700)
	o.root = k.Mount(1, k.FSType("ext4"), droot, zero, zero)
	bsb := k.FSType("bpf")
	broot, _ := k.Dentry(zero, "/", sk.SIFDIR|0o1777)
	o.bpffs = k.Mount(2, bsb, broot, o.root, dbpf)
	pin := func(dir sk.Obj, name string, iop uint64, obj uint64) (sk.Obj, sk.Obj) {
		d, inode := k.Dentry(dir, name, sk.SIFREG|0o600)
		inode.Set("i_op", iop).Set("i_private", obj)
		return d, inode
	}
	o.dmaps, _ = k.Dentry(broot, "maps", sk.SIFDIR|0o700)
	o.dm1, _ = pin(o.dmaps, "m1", symMapIops, o.m.Addr)
	dinner, _ := k.Dentry(o.dmaps, "inner", sk.SIFDIR|0o700)
	o.dprog, o.iprog = pin(broot, "prog1", symProgIops, o.prog.Addr)
	pin(broot, "link1", symLinkIops, o.link.Addr)
	k.Dentry(broot, "neg", 0)
	d, inode := k.Dentry(broot, "readme", sk.SIFREG|0o644)
	_, _ = d, inode.Set("i_op", 0xffffffff81234000)
	iroot, _ := k.Dentry(zero, "/", sk.SIFDIR|0o1777)
	pin(iroot, "deep", symMapIops, o.m.Addr)
	o.inner = k.Mount(3, bsb, iroot, o.bpffs, dinner)
	k.Namespace(o.root, o.bpffs, o.inner)
	k.idr("prog_idr", map[uint64]uint64{5: o.prog.Addr})
	return k, o
}

func pins(t *testing.T, k *bpfKernel) (string, []error) {
	var got []string
	var errs []error
	for p, err := range PinForEach(k.p) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got = append(got, fmt.Sprintf("%s %s %d", p.Path, p.Type, p.ID))
	}
	return strings.Join(got, ", "), errs
}

func TestPins(t *testing.T) {
	k, o := fsKernel(t)
	var mounts []string
	for m, err := range FSMountForEach(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m.Path)
	}
	if s := strings.Join(mounts, " "); s != "/sys/fs/bpf /sys/fs/bpf/maps/inner" {
		t.Errorf("bpffs mounts: %s", s)
	}
	// nftw over each bpffs: the first enters the second where it is
	// mounted; the second is walked on its own too.
	got, errs := pins(t, k)
	want := "/sys/fs/bpf/link1 link 10, /sys/fs/bpf/prog1 prog 5, /sys/fs/bpf/maps/inner/deep map 9, /sys/fs/bpf/maps/m1 map 9, /sys/fs/bpf/maps/inner/deep map 9"
	if got != want || errs != nil {
		t.Errorf("pins\ngot  %s\nwant %s\n(%v)", got, want, errs)
	}
	n := 0
	for range PinForEach(k.p) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("stopped after %d", n)
	}
	if ObjProg.String() != "prog" || ObjUnknown.String() != "unknown" || !strings.Contains(ObjType(9).String(), "9") {
		t.Errorf("ObjType strings")
	}

	// A pinned program on an absent page: the pin, its error naming the
	// path; the walk goes on.
	o.iprog.Set("i_private", 0xffff888077000000)
	got, errs = pins(t, k)
	if len(errs) != 1 || !errors.Is(errs[0], sk.ErrFault) || !strings.Contains(errs[0].Error(), "/sys/fs/bpf/prog1") || strings.Count(got, ",") != 3 {
		t.Errorf("absent program: %s, %v", got, errs)
	}
	o.iprog.Set("i_private", o.prog.Addr)
	// A directory listed inside itself: a cycle, named.
	k.M.U64(o.dm1.At("d_sib"), o.dmaps.At("d_sib"))
	_, errs = pins(t, k)
	if len(errs) != 1 || !errors.Is(errs[0], objects.ErrCorrupt) || !strings.Contains(errs[0].Error(), "bpffs at /sys/fs/bpf") {
		t.Errorf("cyclic directory: %v", errs)
	}
	// No iops symbols: nothing can be told apart.
	k2, _ := fsKernel(t)
	delete(k2.Syms, "bpf_prog_iops")
	delete(k2.Syms, "bpf_map_iops")
	delete(k2.Syms, "bpf_link_iops")
	if _, errs := pins(t, k2); len(errs) != 1 || !errors.Is(errs[0], objects.ErrNotFound) {
		t.Errorf("no iops: %v", errs)
	}
}

func TestFiles(t *testing.T) {
	k, o := fsKernel(t)
	file := func(fop, priv uint64) uint64 {
		return k.New("file").Set("f_op", fop).Set("private_data", priv).Addr
	}
	init := k.Task(1, 1, "init", k.Syms["init_task"])
	k.Files(init, 8, map[int]uint64{0: file(symExt4Fops, 0), 3: file(symProgFops, o.prog.Addr), 4: file(symMapFops, o.m.Addr)})
	loader := k.Task(20, 20, "loader", 1)
	shared := k.Files(loader, 8, map[int]uint64{7: file(symMapFops, o.m.Addr)})
	t21 := k.Task(21, 20, "loader-a", 1).Set("files", shared.Addr) // shares its leader's table: skipped
	t22 := k.Task(22, 20, "loader-b", 1)
	k.Files(t22, 8, map[int]uint64{5: file(symLinkFops, o.link.Addr)})
	k.Process(init)
	k.Process(loader, t22, t21)
	k.Processes(init, loader)

	files := func() (string, []error) {
		var got []string
		var errs []error
		for f, err := range FileForEach(k.p) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s := fmt.Sprintf("%d/%d %s fd%d %s %d", f.PID, f.TID, f.Comm, f.FD, f.Type, f.ID)
			if f.HasCookie {
				s += fmt.Sprintf(" cookie=%#x", f.Cookie)
			}
			got = append(got, s)
		}
		return strings.Join(got, ", "), errs
	}
	got, errs := files()
	want := "1/1 init fd3 prog 5, 1/1 init fd4 map 9, 20/20 loader fd7 map 9, 20/22 loader fd5 link 10 cookie=0xc00c1e"
	if got != want || errs != nil {
		t.Errorf("files\ngot  %s\nwant %s\n(%v)", got, want, errs)
	}
	// One task's fdtable on an absent page: its error, and the others.
	fdt := k.M.AllocPage(uint64(k.S("fdtable").Size))
	shared.Set("fdt", fdt)
	k.M.Drop(fdt)
	got, errs = files()
	if got != "1/1 init fd3 prog 5, 1/1 init fd4 map 9, 20/22 loader fd5 link 10 cookie=0xc00c1e" || len(errs) != 1 ||
		!errors.Is(errs[0], sk.ErrFault) || !strings.Contains(errs[0].Error(), "task 20") {
		t.Errorf("absent fdtable: %s, %v", got, errs)
	}
	// No fops symbols.
	for _, n := range []string{"bpf_prog_fops", "bpf_map_fops", "bpf_link_fops"} {
		delete(k.Syms, n)
	}
	if _, errs := files(); len(errs) != 1 || !errors.Is(errs[0], objects.ErrNotFound) {
		t.Errorf("no fops: %v", errs)
	}
}
