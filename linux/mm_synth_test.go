package linux

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// The synthetic memory layout: the direct map at synthkernel's
// AllocBase less 4 GiB (so that Alloc's memory is the direct map's), the
// struct pages at vmemmapBase.
const (
	pageOffsetBase = sk.AllocBase - 1<<32
	vmemmapBase    = 0xffffea0000000000
	synthMaxPFN    = 0x200000
)

// mmKernel is a synthetic kernel with the memory-management types the
// slab, VMA, page-table and signal walkers read, as 6.1 lays them out
// (the members they read, at C's layout): add builds more before the
// Program is made.
func mmKernel(t *testing.T, add func(k *sk.Kernel)) *kernel {
	t.Helper()
	k := &kernel{Kernel: sk.NewKernel(sk.LinuxLayout{})}
	b := k.B
	lh := b.ListHead()
	al := b.AtomicLong()
	ul := b.ULong
	// include/linux/page-flags.h, mm_types.h, mm/slab.h (6.1).
	b.Enum("pageflags", sk.EV("PG_locked", 0), sk.EV("PG_referenced", 1), sk.EV("PG_uptodate", 2), sk.EV("PG_lru", 5),
		sk.EV("PG_head", 6), sk.EV("PG_slab", 9), sk.EV("__NR_PAGEFLAGS", 22))
	b.Struct("page", sk.F("flags", ul), sk.F("compound_head", ul), sk.At(24, "mapping", b.VoidPtr), sk.At(32, "index", ul),
		sk.At(48, "page_type", b.U32), sk.At(52, "_refcount", b.Atomic()), sk.At(56, "memcg_data", ul))
	cache := b.Decl("kmem_cache")
	b.Struct("slab", sk.F("__page_flags", ul), sk.F("slab_list", lh), sk.F("slab_cache", sk.Ptr(cache)), sk.F("freelist", b.VoidPtr),
		sk.Bitfield("inuse", b.U32, 40*8, 16), sk.Bitfield("objects", b.U32, 40*8+16, 15), sk.Bitfield("frozen", b.U32, 40*8+31, 1),
		sk.At(56, "memcg_data", ul))
	b.Struct("kmem_cache_cpu", sk.F("freelist", sk.Ptr(b.VoidPtr)), sk.F("tid", ul), sk.F("slab", sk.Ptr(b.Decl("slab"))), sk.F("partial", sk.Ptr(b.Decl("slab"))))
	b.Struct("kmem_cache_node", sk.F("nr_partial", ul), sk.F("partial", lh), sk.F("nr_slabs", al), sk.F("total_objects", al), sk.F("full", lh))
	b.Struct("kmem_cache_order_objects", sk.F("x", b.U32))
	b.Struct("kmem_cache", sk.F("cpu_slab", sk.Ptr(b.Decl("kmem_cache_cpu"))), sk.F("flags", b.U32), sk.F("size", b.U32), sk.F("object_size", b.U32),
		sk.F("offset", b.U32), sk.F("oo", b.Decl("kmem_cache_order_objects")), sk.F("refcount", b.Int), sk.F("red_left_pad", b.U32),
		sk.F("name", sk.Ptr(b.Char)), sk.F("list", lh), sk.F("random", ul), sk.F("node", b.Array(sk.Ptr(b.Decl("kmem_cache_node")), 4)))
	// include/linux/mm_types.h: the address space.
	b.MapleTree()
	b.Enum("mm_counters", sk.EV("MM_FILEPAGES", 0), sk.EV("MM_ANONPAGES", 1), sk.EV("MM_SWAPENTS", 2), sk.EV("MM_SHMEMPAGES", 3))
	b.Struct("mm_rss_stat", sk.F("count", b.Array(al, 4)))
	b.Struct("mm_struct", sk.F("mm_mt", b.Decl("maple_tree")), sk.F("pgd", b.VoidPtr), sk.F("total_vm", ul), sk.F("start_brk", ul), sk.F("brk", ul),
		sk.F("start_stack", ul), sk.F("arg_start", ul), sk.F("arg_end", ul), sk.F("env_start", ul), sk.F("env_end", ul), sk.F("rss_stat", b.Decl("mm_rss_stat")))
	b.Struct("vm_operations_struct", sk.F("name", b.FuncPtr()))
	b.Struct("vm_special_mapping", sk.F("name", sk.Ptr(b.Char)))
	b.Struct("anon_vma_name", sk.F("kref", b.Atomic()), sk.F("name", b.Array(b.Char, 16)))
	b.Struct("vm_area_struct", sk.F("vm_start", ul), sk.F("vm_end", ul), sk.F("vm_mm", sk.Ptr(b.Decl("mm_struct"))), sk.F("vm_flags", ul),
		sk.F("anon_name", sk.Ptr(b.Decl("anon_vma_name"))), sk.F("vm_ops", sk.Ptr(b.Decl("vm_operations_struct"))), sk.F("vm_pgoff", ul),
		sk.F("vm_file", sk.Ptr(b.Decl("file"))), sk.F("vm_private_data", b.VoidPtr))
	// include/linux/fs.h, dcache.h: files with inodes and paths.
	b.Struct("super_block", sk.F("s_type", sk.Ptr(b.Decl("file_system_type"))), sk.F("s_dev", b.U32))
	b.Struct("inode", sk.F("i_mode", b.U16), sk.F("i_op", b.VoidPtr), sk.F("i_private", b.VoidPtr), sk.F("i_ino", ul), sk.F("i_sb", sk.Ptr(b.Decl("super_block"))))
	b.Struct("dentry_operations", sk.F("d_dname", b.FuncPtr()))
	b.Struct("path", sk.F("mnt", sk.Ptr(b.Decl("vfsmount"))), sk.F("dentry", sk.Ptr(b.Decl("dentry"))))
	b.Struct("file", sk.F("f_path", b.Decl("path")), sk.F("f_inode", sk.Ptr(b.Decl("inode"))), sk.F("f_op", b.VoidPtr), sk.F("f_flags", b.U32),
		sk.F("f_mode", b.U32), sk.F("f_pos", b.S64), sk.F("private_data", b.VoidPtr))
	if add != nil {
		add(k.Kernel)
	}
	// The dentry gains d_op (the Linux types lay dentry out first).
	appendMember(b.Decl("dentry"), "d_op", sk.Ptr(b.Decl("dentry_operations")))
	for _, v := range []struct {
		name string
		val  uint64
	}{{"page_offset_base", pageOffsetBase}, {"vmemmap_base", vmemmapBase}, {"vmalloc_base", 0xffffc90000000000}, {"max_pfn", synthMaxPFN}} {
		k.M.U64(k.M.Global(k.Syms, v.name, 8), v.val)
	}
	k.M.U32(k.M.Global(k.Syms, "nr_node_ids", 4), 1)
	k.M.List(k.M.Global(k.Syms, "slab_caches", 16))
	k.p = objects.NewProgram(k.M, k.B.Spec(t), k.Syms, objects.WithLimit(100000))
	return k
}

// appendMember adds a member at the end of a struct laid out before,
// 8-byte aligned.
func appendMember(s *btf.Struct, name string, t btf.Type) {
	off := (s.Size + 7) &^ 7
	n, _ := btf.Sizeof(t)
	s.Members = append(s.Members, btf.Member{Name: name, Type: t, Offset: btf.Bits(off * 8)})
	s.Size = (off + uint32(n) + 7) &^ 7
}

// pfnOf is the pfn of a direct-map address.
func pfnOf(a uint64) uint64 { return (a - pageOffsetBase) >> PageShift }

// synthSlab makes a slab of n objects of cache at the page holding
// first (4 KiB, order 0): its struct page marked PG_slab|PG_head, the
// slab's cache, inuse, objects and freelist (free objects linked by
// hardened free pointers at offset off).
func synthSlab(k *kernel, cache sk.Obj, page uint64, n, size, off, random uint64, free []uint64) sk.Obj {
	sl := k.Obj("slab", vmemmapBase+pfnOf(page)*64)
	sl.Set("__page_flags", 1<<9|1<<6).Set("slab_cache", cache.Addr).Set("objects", n).Set("inuse", n-uint64(len(free)))
	linkFreelist(k, free, off, random)
	if len(free) > 0 {
		sl.Set("freelist", free[0])
	}
	return sl
}

// linkFreelist writes each object's hardened free pointer to the next.
func linkFreelist(k *kernel, objs []uint64, off, random uint64) {
	for i, o := range objs {
		next := uint64(0)
		if i+1 < len(objs) {
			next = objs[i+1]
		}
		k.M.U64(o+off, next^random^bits.ReverseBytes64(o+off))
	}
}

// TestSlab: a cache of three slabs, one full, one on the node's partial
// list with 6 free objects, one the CPU's with 3 on its lockless
// freelist: slabinfo counts the partial's free objects only;
// slab_object_info tells allocated from free; the walk yields every
// allocated object.
func TestSlab(t *testing.T) {
	k := mmKernel(t, nil)
	const size, off, n, random = 256, 128, 16, 0x5a5a1234deadbeef
	cache := k.New("kmem_cache").Set("size", size).Set("object_size", 200).Set("offset", off).Set("oo", n).Set("refcount", 1).
		Set("name", k.Str("test_cache")).Set("random", random)
	k.M.List(k.Syms["slab_caches"], cache.At("list"))
	page := func() uint64 { return k.M.AllocPage(4096) }
	a, b, c := page(), page(), page()
	obj := func(pg uint64, i int) uint64 { return pg + uint64(i)*size }
	synthSlab(k, cache, a, n, size, off, random, nil)
	var bfree []uint64
	for _, i := range []int{3, 1, 15, 7, 8, 0} {
		bfree = append(bfree, obj(b, i))
	}
	sb := synthSlab(k, cache, b, n, size, off, random, bfree)
	synthSlab(k, cache, c, n, size, off, random, nil).Set("frozen", 1)
	cpuFree := []uint64{obj(c, 2), obj(c, 9), obj(c, 10)}
	linkFreelist(k, cpuFree, off, random)
	const cpuOff = 0x800
	cache.Set("cpu_slab", cpuOff)
	k.Obj("kmem_cache_cpu", sk.PerCPUAddr(0, cpuOff)).Set("slab", vmemmapBase+pfnOf(c)*64).Set("freelist", cpuFree[0])
	k.M.Write(sk.PerCPUAddr(1, cpuOff), make([]byte, 32))
	node := k.New("kmem_cache_node").Set("nr_partial", 1).Set("nr_slabs.counter", 3).Set("total_objects.counter", 3*n)
	k.M.List(node.At("partial"), sb.At("slab_list"))
	k.M.List(node.At("full"))
	cache.Set("node[0]", node.Addr)

	cv := k.value(t, "kmem_cache", cache.Addr)
	si, err := SlabCacheInfo(cv)
	if err != nil {
		t.Fatal(err)
	}
	if si.Name != "test_cache" || si.NumObjs != 48 || si.ActiveObjs != 42 || si.NumSlabs != 3 || si.ObjPerSlab != 16 || si.PagesPerSlab != 1 || si.ObjSize != 256 {
		t.Errorf("slabinfo %+v", si)
	}
	if got, err := FindSlabCache(k.p, "test_cache"); err != nil || got.Addr() != cache.Addr {
		t.Errorf("find_slab_cache: %v", err)
	}
	if _, err := FindSlabCache(k.p, "nosuch"); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("no such cache: %v", err)
	}
	for _, tc := range []struct {
		addr  uint64
		state string
	}{{obj(a, 4) + 10, "allocated"}, {obj(b, 7), "free"}, {obj(b, 2) + 255, "allocated"}, {obj(c, 9) + 1, "free"}, {obj(c, 11), "allocated"}} {
		so, ok, err := SlabObjectInfo(k.p, tc.addr)
		if err != nil || !ok {
			t.Fatalf("%#x: %v %v", tc.addr, ok, err)
		}
		if so.State != tc.state || uint64(so.Object) != tc.addr&^(size-1) || so.CacheName != "test_cache" {
			t.Errorf("%#x: %+v, want %s", tc.addr, so, tc.state)
		}
	}
	if _, ok, err := SlabObjectInfo(k.p, k.M.AllocPage(64)); ok || err != nil {
		t.Errorf("a page of no slab: %v %v", ok, err)
	}
	var alloc []uint64
	for o, err := range SlabCacheForEachAllocatedObject(cv, "struct page") {
		if err != nil {
			t.Fatal(err)
		}
		alloc = append(alloc, o.Addr())
	}
	if len(alloc) != 16+10+13 || alloc[0] != obj(a, 0) {
		t.Errorf("%d allocated objects, first %#x", len(alloc), alloc[0])
	}
	// A freelist cycle is named.
	linkFreelist(k, []uint64{obj(b, 3), obj(b, 1)}, off, random)
	k.M.U64(obj(b, 1)+off, obj(b, 3)^random^bits.ReverseBytes64(obj(b, 1)+off))
	if _, err := SlabCacheInfo(cv); err != nil {
		t.Errorf("slabinfo reads no freelist: %v", err)
	}
	so, _, _ := SlabObjectInfo(k.p, obj(b, 5))
	if so.State != "unknown" || !strings.Contains(so.FreelistErr, "twice") {
		t.Errorf("cycle: %+v", so)
	}
}

// TestVMAsAndPageTables: an address space of four VMAs in a maple tree
// (an executable's text, the heap, an anonymous mapping named by
// prctl, [vdso]), printed as /proc/PID/maps; its page tables map the
// executable's first page, whose bytes ReadUser reads; the counters are
// status's.
func TestVMAsAndPageTables(t *testing.T) {
	k := mmKernel(t, nil)
	k.Syms["special_mapping_name"] = 0xffffffff81234560
	mm := k.New("mm_struct").Set("start_brk", 0x600000).Set("brk", 0x621000).Set("start_stack", 0x7ffd0000f000).Set("total_vm", 100)
	mm.Set("rss_stat.count[0].counter", 3).Set("rss_stat.count[1].counter", 5).Set("rss_stat.count[3].counter", 2)
	fst := k.New("file_system_type").Set("name", k.Str("ext4"))
	sb := k.New("super_block").Set("s_type", fst.Addr).Set("s_dev", 8<<20|1)
	droot, _ := k.Dentry(sk.Obj{}, "/", sk.SIFDIR)
	dbin, _ := k.Dentry(droot, "bin", sk.SIFDIR)
	dexe, ino := k.Dentry(dbin, "busybox", sk.SIFREG)
	ino.Set("i_ino", 42).Set("i_sb", sb.Addr)
	root := k.Mount(1, sb, droot, sk.Obj{}, sk.Obj{})
	k.Namespace(root)
	file := k.New("file").Set("f_path.mnt", root.At("mnt")).Set("f_path.dentry", dexe.Addr).Set("f_inode", ino.Addr).Set("f_mode", 1)
	ops := k.New("vm_operations_struct").Set("name", k.Syms["special_mapping_name"])
	vdso := k.New("vm_special_mapping").Set("name", k.Str("[vdso]"))
	an := k.New("anon_vma_name").Str("name", "jit")
	vma := func(start, end, flags uint64) sk.Obj {
		return k.New("vm_area_struct").Set("vm_start", start).Set("vm_end", end).Set("vm_flags", flags).Set("vm_mm", mm.Addr)
	}
	v1 := vma(0x400000, 0x401000, VMRead|VMExec).Set("vm_file", file.Addr).Set("vm_pgoff", 1)
	v2 := vma(0x600000, 0x621000, VMRead|VMWrite)
	v3 := vma(0x7f0000000000, 0x7f0000002000, VMRead|VMWrite|VMMayShare).Set("anon_name", an.Addr)
	v4 := vma(0x7ffd00100000, 0x7ffd00102000, VMRead|VMExec).Set("vm_ops", ops.Addr).Set("vm_private_data", vdso.Addr)
	k.M.MapleTree(mm.At("mm_mt"), []sk.MapleRange{
		{First: 0x400000, Last: 0x400fff, Entry: v1.Addr}, {First: 0x600000, Last: 0x620fff, Entry: v2.Addr},
		{First: 0x7f0000000000, Last: 0x7f0000001fff, Entry: v3.Addr}, {First: 0x7ffd00100000, Last: 0x7ffd00101fff, Entry: v4.Addr},
	}, sk.MapleOpts{LeafSlots: 3})
	// Page tables: PGD → PUD → PMD → PTE → the executable's page.
	table := func() uint64 { return k.M.AllocPage(4096) }
	phys := func(a uint64) uint64 { return a - pageOffsetBase }
	pgd, pud, pmd, pte, data := table(), table(), table(), table(), table()
	const user = 0x400000
	k.M.U64(pgd+(user>>39&511)*8, phys(pud)|0x67)
	k.M.U64(pud+(user>>30&511)*8, phys(pmd)|0x67)
	k.M.U64(pmd+(user>>21&511)*8, phys(pte)|0x67)
	k.M.U64(pte+(user>>12&511)*8, phys(data)|0x25|1<<63)
	k.M.Write(data, []byte("\x7fELF"))
	mm.Set("pgd", pgd)
	mmv := k.value(t, "mm_struct", mm.Addr)
	var lines []string
	for v, err := range ForEachVMA(mmv) {
		if err != nil {
			t.Fatal(err)
		}
		vi, err := NewVMA(v, mmv)
		if err != nil || vi.Err != "" {
			t.Fatal(err, vi.Err)
		}
		lines = append(lines, vi.MapsLine())
	}
	want := []string{
		"00400000-00401000 r-xp 00001000 08:01 42                                 /bin/busybox",
		"00600000-00621000 rw-p 00000000 00:00 0                                  [heap]",
		"7f0000000000-7f0000002000 rw-s 00000000 00:00 0                          [anon:jit]",
		"7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("maps:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	tr, err := FollowPhys(k.p, pgd, user+0x10)
	if err != nil || uint64(tr.Phys) != phys(data)+0x10 || tr.PageSize != 4096 || !tr.User || tr.Writable || !tr.NX || len(tr.Levels) != 4 {
		t.Errorf("follow_phys: %+v %v", tr, err)
	}
	b := make([]byte, 4)
	if err := ReadUser(mmv, b, user); err != nil || string(b) != "\x7fELF" {
		t.Errorf("read user: %q %v", b, err)
	}
	if err := ReadUser(mmv, b, 0x600000); !errors.Is(err, ErrNotMapped) || !strings.Contains(err.Error(), "PMD") {
		t.Errorf("an address not mapped: %v", err)
	}
	for _, c := range []struct {
		item string
		want uint64
	}{{"MM_FILEPAGES", 3}, {"MM_ANONPAGES", 5}, {"MM_SHMEMPAGES", 2}} {
		if n, err := mmCounter(mmv, c.item); err != nil || n != c.want {
			t.Errorf("%s = %d %v", c.item, n, err)
		}
	}
	// A node of the tree lost: the walk says where.
	k.M.U64(mm.At("mm_mt")+8, 0xffff888100000000|3<<3|6)
	if _, err := TaskVMAsOf(mmv); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("VMAs of mm %#x", mm.Addr)) {
		t.Errorf("a corrupt tree: %v", err)
	}
}

// TaskVMAsOf lists the VMAs of an address space (for the test).
func TaskVMAsOf(mm objects.Value) ([]VMA, error) {
	var out []VMA
	for v, err := range ForEachVMA(mm) {
		if err != nil {
			return out, err
		}
		vi, err := NewVMA(v, mm)
		if err != nil {
			return out, err
		}
		out = append(out, vi)
	}
	return out, nil
}

// TestFilePathPseudo: a pipe is named by pipefs_dname, an unlinked file
// gets " (deleted)".
func TestFilePathPseudo(t *testing.T) {
	k := mmKernel(t, nil)
	k.Syms["pipefs_dname"] = 0xffffffff81111110
	fst := k.New("file_system_type").Set("name", k.Str("pipefs"))
	sb := k.New("super_block").Set("s_type", fst.Addr)
	proot, _ := k.Dentry(sk.Obj{}, "pipe:", sk.SIFDIR)
	pm := k.Mount(9, sb, proot, sk.Obj{}, sk.Obj{})
	dop := k.New("dentry_operations").Set("d_dname", k.Syms["pipefs_dname"])
	pd, pino := k.Dentry(sk.Obj{}, "", 0o010600)
	pd.Set("d_op", dop.Addr)
	pino.Set("i_ino", 10857)
	pf := k.New("file").Set("f_path.mnt", pm.At("mnt")).Set("f_path.dentry", pd.Addr).Set("f_inode", pino.Addr).Set("f_mode", 1)
	if s, err := FilePath(k.value(t, "file", pf.Addr)); err != nil || s != "pipe:[10857]" {
		t.Errorf("pipe: %q %v", s, err)
	}
	of, err := NewOpenFile(3, k.value(t, "file", pf.Addr))
	if err != nil || of.Type != "FIFO" || of.Mode != "r" || of.Path != "pipe:[10857]" {
		t.Errorf("open file %+v %v", of, err)
	}
	rfs := k.New("super_block").Set("s_type", k.New("file_system_type").Set("name", k.Str("tmpfs")).Addr)
	droot, _ := k.Dentry(sk.Obj{}, "/", sk.SIFDIR)
	gone, _ := k.Dentry(droot, "gone", sk.SIFREG)
	gone.Set("d_hash.pprev", 0)
	rm := k.Mount(1, rfs, droot, sk.Obj{}, sk.Obj{})
	gf := k.New("file").Set("f_path.mnt", rm.At("mnt")).Set("f_path.dentry", gone.Addr).Set("f_mode", 3)
	if s, err := FilePath(k.value(t, "file", gf.Addr)); err != nil || s != "/gone (deleted)" {
		t.Errorf("deleted: %q %v", s, err)
	}
	// An unknown d_dname is named by its address.
	dop.Set("d_dname", 0xffffffff81999990)
	if _, err := FilePath(k.value(t, "file", pf.Addr)); !errors.Is(err, objects.ErrNotSupported) || !strings.Contains(err.Error(), "0xffffffff81999990") {
		t.Errorf("unknown d_dname: %v", err)
	}
}

// TestSignals: pending, shared, blocked, ignored and caught sets and a
// queued signal, as status and crash's sig show them.
func TestSignals(t *testing.T) {
	k := mmKernel(t, func(k *sk.Kernel) {
		b := k.B
		sigset := b.Struct("sigset_t_s", sk.F("sig", b.Array(b.ULong, 1)))
		b.Struct("sigpending", sk.F("list", b.ListHead()), sk.F("signal", sigset))
		b.Struct("sigaction", sk.F("sa_handler", b.VoidPtr), sk.F("sa_flags", b.ULong), sk.F("sa_restorer", b.VoidPtr), sk.F("sa_mask", sigset))
		b.Struct("k_sigaction", sk.F("sa", b.Decl("sigaction")))
		b.Struct("sighand_struct", sk.F("count", b.Atomic()), sk.F("action", b.Array(b.Decl("k_sigaction"), 64)))
		b.Struct("__kill", sk.F("_pid", b.Int), sk.F("_uid", b.U32))
		b.Struct("kernel_siginfo", sk.F("si_signo", b.Int), sk.F("si_errno", b.Int), sk.F("si_code", b.Int),
			sk.F("_sifields", b.Union("", sk.F("_kill", b.Decl("__kill")))))
		b.Struct("sigqueue", sk.F("list", b.ListHead()), sk.F("flags", b.Int), sk.F("info", b.Decl("kernel_siginfo")))
		appendMember(b.Decl("signal_struct"), "shared_pending", b.Decl("sigpending"))
		task := b.Decl("task_struct")
		appendMember(task, "pending", b.Decl("sigpending"))
		appendMember(task, "blocked", sigset)
		appendMember(task, "sighand", sk.Ptr(b.Decl("sighand_struct")))
	})
	tk := k.Task(5, 5, "sigtest", 0)
	k.Process(tk)
	sh := k.New("sighand_struct")
	sh.Set("action[1].sa.sa_handler", 1)                                                  // SIGINT ignored
	sh.Set("action[9].sa.sa_handler", 0x401000).Set("action[9].sa.sa_mask.sig[0]", 1<<14) // SIGUSR1 caught
	sh.Set("action[33].sa.sa_handler", 0x401100).Set("action[33].sa.sa_flags", 0x4000000) // SIGRTMIN+2
	tk.Set("sighand", sh.Addr).Set("blocked.sig[0]", 1<<13).Set("pending.signal.sig[0]", 1<<9)
	q := k.New("sigqueue").Set("info.si_signo", 10).Set("info.si_code", 0).Set("info._sifields._kill._pid", 4)
	k.M.List(tk.At("pending.list"), q.At("list"))
	sigAddr, _ := k.p.ReadU64(tk.At("signal"))
	k.M.List(k.Obj("signal_struct", sigAddr).At("shared_pending.list"))
	k.Obj("signal_struct", sigAddr).Set("shared_pending.signal.sig[0]", 1<<14)
	s, err := ReadTaskSignals(k.value(t, "task_struct", tk.Addr))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %s %s %s %s", s.Pending, s.SharedPending, s.Blocked, s.Ignored, s.Caught)
	if want := "0000000000000200 0000000000004000 0000000000002000 0000000000000002 0000000200000200"; got != want || s.NrThreads != 1 {
		t.Errorf("sets %s (threads %d), want %s", got, s.NrThreads, want)
	}
	if len(s.Actions) != 64 || s.Actions[9].Name != "SIGUSR1" || s.Actions[9].Disposition() != "401000" || s.Actions[1].Disposition() != "SIG_IGN" || s.Actions[33].Name != "SIGRTMIN+2" {
		t.Errorf("actions %+v %+v", s.Actions[9], s.Actions[33])
	}
	if len(s.Queued) != 1 || s.Queued[0] != (QueuedSignal{Signal: 10, PID: 4}) {
		t.Errorf("queued %+v", s.Queued)
	}
	if SigSetNames(s.Blocked) != "SIGALRM" {
		t.Errorf("blocked %q", SigSetNames(s.Blocked))
	}
}
