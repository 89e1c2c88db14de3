package synthkernel

import (
	"encoding/binary"

	"github.com/cilium/ebpf/btf"
)

// LinuxLayout picks, where kernels differ, the older layout; the zero
// value is the newest.
type LinuxLayout struct {
	OldThreads   bool   // task->thread_group ring (before 6.7), no signal->thread_head
	CPUInTask    bool   // task->cpu (4.9-5.15), no thread_info.cpu
	OldState     bool   // task->state (before 5.14), no __state
	Current      string // per-CPU "current_task", "pcpu_hot", or "" (runqueues.curr only)
	ModuleLayout bool   // core_layout/init_layout (before 6.4), no mem[]
	MountList    bool   // ns->list linked by mnt_list (before 6.8), no rbtree
	Subdirs      bool   // d_subdirs linked by d_child (before 6.8)
	ShadowTK     bool   // shadow_timekeeper (before 6.13), no struct tk_data
	AbsRelocs    bool   // struct kernel_symbol with pointers, not PREL32 offsets
}

// Linux declares, in b, the members the kernel walkers read of tasks,
// runqueues, workqueue workers, files, mounts and dentries, the
// timekeeper, modules and the printk ring buffer: named and typed as
// the kernel's headers (cited below) define them, at C's layout of
// just those members. It returns the section offsets of the per-CPU
// variables it declares (runqueues, and current_task or pcpu_hot).
func (b *BTF) Linux(l LinuxLayout) map[string]uint32 {
	pcpu := map[string]uint32{}
	lh := b.ListHead()
	b.HlistHead()
	b.RBRoot()
	b.Cpumask()
	atomic := b.Atomic()
	task := b.Decl("task_struct")
	taskp := Ptr(task)

	// include/linux/sched.h, arch/x86/include/asm/thread_info.h,
	// include/linux/sched/signal.h.
	ti := []Field{F("flags", b.ULong), F("syscall_work", b.ULong), F("status", b.U32)}
	if !l.CPUInTask {
		ti = append(ti, F("cpu", b.U32))
	}
	b.Struct("thread_info", ti...)
	sig := []Field{F("nr_threads", b.Int)}
	if !l.OldThreads {
		sig = append(sig, F("thread_head", lh))
	}
	b.Struct("signal_struct", sig...)
	fields := []Field{F("thread_info", b.Decl("thread_info"))}
	if l.OldState {
		fields = append(fields, F("state", b.Long))
	} else {
		fields = append(fields, F("__state", b.U32))
	}
	if l.CPUInTask {
		fields = append(fields, F("cpu", b.U32))
	}
	fields = append(fields,
		F("flags", b.U32),
		F("tasks", lh),
		F("exit_state", b.Int),
		F("pid", b.Int),
		F("tgid", b.Int),
		F("real_parent", taskp),
		F("group_leader", taskp),
		F("comm", b.Array(b.Char, 16)),
		F("signal", Ptr(b.Decl("signal_struct"))),
		F("worker_private", b.VoidPtr),
		F("files", Ptr(b.Decl("files_struct"))),
		F("nsproxy", Ptr(b.Decl("nsproxy"))))
	if l.OldThreads {
		fields = append(fields, F("thread_group", lh))
	} else {
		fields = append(fields, F("thread_node", lh))
	}
	// include/linux/sched.h: the scheduling entities.
	cfsRQ := b.Decl("cfs_rq")
	b.Struct("sched_entity", F("run_node", b.RBNode()), F("on_rq", b.U32), F("sum_exec_runtime", b.U64),
		F("vruntime", b.U64), F("depth", b.Int), F("my_q", Ptr(cfsRQ)))
	b.Struct("sched_rt_entity", F("run_list", lh), F("on_rq", b.U16))
	fields = append(fields, F("prio", b.Int), F("se", b.Decl("sched_entity")), F("rt", b.Decl("sched_rt_entity")),
		F("sched_class", b.VoidPtr))
	b.Struct("task_struct", fields...)

	// kernel/sched/sched.h; arch/x86/include/asm/current.h.
	b.Struct("cfs_rq", F("nr_running", b.U32), F("tasks_timeline", b.RBRoot()))
	b.Struct("rt_prio_array", F("bitmap", b.Array(b.ULong, 2)), F("queue", b.Array(lh, 100)))
	b.Struct("rt_rq", F("active", b.Decl("rt_prio_array")))
	b.Struct("rq", F("nr_running", b.U32), F("curr", taskp), F("idle", taskp), F("clock", b.U64),
		F("cfs", cfsRQ), F("rt", b.Decl("rt_rq")))
	pcpu["runqueues"] = b.PerCPU("runqueues", b.Decl("rq"))
	switch l.Current {
	case "current_task":
		pcpu["current_task"] = b.PerCPU("current_task", taskp)
	case "pcpu_hot":
		b.Struct("pcpu_hot", F("current_task", taskp), F("preempt_count", b.Int))
		pcpu["pcpu_hot"] = b.PerCPU("pcpu_hot", b.Decl("pcpu_hot"))
	}

	// kernel/kthread.c, kernel/workqueue_internal.h, kernel/workqueue.c.
	b.Struct("kthread", F("flags", b.ULong), F("data", b.VoidPtr), F("full_name", Ptr(b.Char)))
	b.Struct("work_struct", F("data", b.AtomicLong()))
	b.Struct("workqueue_attrs", F("nice", b.Int))
	b.Struct("worker_pool", F("cpu", b.Int), F("id", b.Int), F("attrs", Ptr(b.Decl("workqueue_attrs"))))
	b.Struct("workqueue_struct", F("name", b.Array(b.Char, 24)))
	b.Struct("worker",
		F("current_work", Ptr(b.Decl("work_struct"))),
		F("pool", Ptr(b.Decl("worker_pool"))),
		F("id", b.Int),
		F("desc", b.Array(b.Char, 24)),
		F("rescue_wq", Ptr(b.Decl("workqueue_struct"))))

	// include/linux/fdtable.h, include/linux/fs.h.
	b.Struct("file", F("f_op", b.VoidPtr), F("f_mode", b.U32), F("private_data", b.VoidPtr))
	b.Struct("fdtable", F("max_fds", b.U32), F("fd", Ptr(Ptr(b.Decl("file")))))
	b.Struct("files_struct", F("count", atomic), F("fdt", Ptr(b.Decl("fdtable"))))

	// fs/mount.h, include/linux/mount.h, include/linux/dcache.h.
	dentry := b.Decl("dentry")
	b.Struct("file_system_type", F("name", Ptr(b.Char)))
	b.Struct("super_block", F("s_type", Ptr(b.Decl("file_system_type"))))
	b.Struct("vfsmount", F("mnt_root", Ptr(dentry)), F("mnt_sb", Ptr(b.Decl("super_block"))))
	mnt := b.Decl("mount")
	mf := []Field{F("mnt_parent", Ptr(mnt)), F("mnt_mountpoint", Ptr(dentry)), F("mnt", b.Decl("vfsmount")), F("mnt_id", b.Int)}
	if l.MountList {
		mf = append(mf, F("mnt_list", lh))
		b.Struct("mnt_namespace", F("mounts", b.U32), F("list", lh))
	} else {
		mf = append(mf, F("mnt_node", b.RBNode()))
		b.Struct("mnt_namespace", F("mounts", b.RBRoot()), F("nr_mounts", b.U32))
	}
	b.Struct("mount", mf...)
	b.Struct("nsproxy", F("count", atomic), F("mnt_ns", Ptr(b.Decl("mnt_namespace"))))
	b.Struct("hlist_bl_node", F("next", Ptr(b.Decl("hlist_bl_node"))), F("pprev", Ptr(Ptr(b.Decl("hlist_bl_node")))))
	b.Struct("qstr",
		F("", b.Union("", F("", AnonStruct(F("hash", b.U32), F("len", b.U32))), F("hash_len", b.U64))),
		F("name", Ptr(b.U8)))
	b.Struct("inode", F("i_mode", b.U16), F("i_op", b.VoidPtr), F("i_private", b.VoidPtr))
	df := []Field{
		F("d_flags", b.U32),
		F("d_hash", b.Decl("hlist_bl_node")),
		F("d_parent", Ptr(dentry)),
		F("d_name", b.Decl("qstr")),
		F("d_inode", Ptr(b.Decl("inode"))),
	}
	if l.Subdirs {
		df = append(df, F("d_child", lh), F("d_subdirs", lh))
	} else {
		df = append(df, F("d_sib", b.HlistNode()), F("d_children", b.HlistHead()))
	}
	b.Struct("dentry", df...)

	// include/linux/timekeeper_internal.h (ktime_t is s64).
	ktime := b.Typedef("ktime_t", b.S64)
	b.Struct("timekeeper", F("xtime_sec", b.U64), F("offs_real", ktime), F("offs_boot", ktime), F("offs_tai", ktime))
	if !l.ShadowTK {
		b.Struct("tk_data", F("seq", b.U32), F("timekeeper", b.Decl("timekeeper")))
	}

	// include/linux/module.h, include/uapi/linux/elf.h,
	// include/linux/export-internal.h.
	b.Enum("module_state", EV("MODULE_STATE_LIVE", 0), EV("MODULE_STATE_COMING", 1), EV("MODULE_STATE_GOING", 2), EV("MODULE_STATE_UNFORMED", 3))
	b.Struct("elf64_sym", F("st_name", b.U32), F("st_info", b.U8), F("st_other", b.U8), F("st_shndx", b.U16), F("st_value", b.U64), F("st_size", b.U64))
	b.Struct("mod_kallsyms", F("symtab", Ptr(b.Decl("elf64_sym"))), F("num_symtab", b.U32), F("strtab", Ptr(b.Char)), F("typetab", Ptr(b.Char)))
	if l.AbsRelocs {
		b.Struct("kernel_symbol", F("value", b.ULong), F("name", Ptr(b.Char)), F("namespace", Ptr(b.Char)))
	} else {
		b.Struct("kernel_symbol", F("value_offset", b.Int), F("name_offset", b.Int), F("namespace_offset", b.Int))
	}
	modf := []Field{
		F("state", b.Named("enum module_state")),
		F("list", lh),
		F("name", b.Array(b.Char, 56)),
		F("syms", Ptr(b.Decl("kernel_symbol"))),
		F("num_syms", b.U32),
	}
	if l.ModuleLayout {
		b.Struct("module_layout", F("base", b.VoidPtr), F("size", b.U32), F("text_size", b.U32), F("ro_size", b.U32))
		modf = append(modf, F("core_layout", b.Decl("module_layout")), F("init_layout", b.Decl("module_layout")))
	} else {
		b.Enum("mod_mem_type", EV("MOD_TEXT", 0), EV("MOD_DATA", 1), EV("MOD_RODATA", 2), EV("MOD_RO_AFTER_INIT", 3),
			EV("MOD_INIT_TEXT", 4), EV("MOD_INIT_DATA", 5), EV("MOD_INIT_RODATA", 6), EV("MOD_MEM_NUM_TYPES", 7))
		b.Struct("module_memory", F("base", b.VoidPtr), F("size", b.U32))
		modf = append(modf, F("mem", b.Array(b.Decl("module_memory"), 7)))
	}
	modf = append(modf, F("kallsyms", Ptr(b.Decl("mod_kallsyms"))), F("refcnt", atomic))
	b.Struct("module", modf...)

	// kernel/printk/printk_ringbuffer.h, include/linux/dev_printk.h.
	al := b.AtomicLong()
	b.Struct("prb_data_blk_lpos", F("begin", b.ULong), F("next", b.ULong))
	b.Struct("prb_desc", F("state_var", al), F("text_blk_lpos", b.Decl("prb_data_blk_lpos")))
	b.Struct("dev_printk_info", F("subsystem", b.Array(b.Char, 16)), F("device", b.Array(b.Char, 48)))
	b.Struct("printk_info",
		F("seq", b.U64), F("ts_nsec", b.U64), F("text_len", b.U16), F("facility", b.U8),
		Bitfield("flags", b.U8, 19*8, 5), Bitfield("level", b.U8, 19*8+5, 3),
		At(20, "caller_id", b.U32), F("dev_info", b.Decl("dev_printk_info")))
	b.Struct("prb_desc_ring", F("count_bits", b.U32), F("descs", Ptr(b.Decl("prb_desc"))),
		F("infos", Ptr(b.Decl("printk_info"))), F("head_id", al), F("tail_id", al), F("last_finalized_seq", al))
	b.Struct("prb_data_ring", F("size_bits", b.U32), F("data", Ptr(b.Char)), F("head_lpos", al), F("tail_lpos", al))
	b.Struct("printk_ringbuffer", F("desc_ring", b.Decl("prb_desc_ring")), F("text_data_ring", b.Decl("prb_data_ring")), F("fail", al))

	return pcpu
}

// Kernel is a synthetic Linux kernel being laid out: memory, BTF (with
// the Linux types), symbols, and helpers that write the kernel's
// structures. Tests add their own types to B, then build the spec.
type Kernel struct {
	M    *Mem
	B    *BTF
	Syms Syms
	L    LinuxLayout
	// PerCPU holds the section offsets of the per-CPU variables.
	PerCPU map[string]uint32
}

// NewKernel declares the Linux types of l, makes two possible CPUs and
// init_task, whose tasks list is empty.
func NewKernel(l LinuxLayout) *Kernel {
	k := &Kernel{M: NewMem(), B: NewBTF(), Syms: Syms{}, L: l}
	k.PerCPU = k.B.Linux(l)
	k.M.CPUs(k.Syms, 2)
	init := k.M.Global(k.Syms, "init_task", uint64(k.S("task_struct").Size))
	k.M.List(k.Obj("task_struct", init).At("tasks"))
	return k
}

// S is the struct called name.
func (k *Kernel) S(name string) *btf.Struct { return k.B.Decl(name) }

// Obj is the object of the named struct at addr.
func (k *Kernel) Obj(name string, addr uint64) Obj { return k.M.Obj(k.S(name), addr) }

// New allocates a zeroed object of the named struct.
func (k *Kernel) New(name string) Obj { return k.M.New(k.S(name)) }

// Str allocates a NUL-terminated string.
func (k *Kernel) Str(s string) uint64 {
	a := k.M.Alloc(uint64(len(s) + 1))
	k.M.String(a, s)
	return a
}

// Task allocates a task_struct: its pid (the thread's id), tgid, comm,
// real_parent; its own group leader.
func (k *Kernel) Task(pid, tgid int, comm string, parent uint64) Obj {
	tk := k.New("task_struct").Set("pid", uint64(pid)).Set("tgid", uint64(tgid)).Str("comm", comm).Set("real_parent", parent)
	return tk.Set("group_leader", tk.Addr)
}

// Process makes leader and threads one thread group: a shared
// signal_struct, each thread's group_leader, and the thread list
// (signal->thread_head, or the thread_group ring of older kernels).
func (k *Kernel) Process(leader Obj, threads ...Obj) {
	sig := k.New("signal_struct").Set("nr_threads", uint64(1+len(threads)))
	all := append([]Obj{leader}, threads...)
	var nodes []uint64
	for _, t := range all {
		t.Set("signal", sig.Addr).Set("group_leader", leader.Addr)
		if k.L.OldThreads {
			nodes = append(nodes, t.At("thread_group"))
		} else {
			nodes = append(nodes, t.At("thread_node"))
		}
	}
	if k.L.OldThreads {
		k.M.List(nodes[0], nodes[1:]...)
	} else {
		k.M.List(sig.At("thread_head"), nodes...)
	}
}

// Processes links the leaders on init_task.tasks.
func (k *Kernel) Processes(leaders ...Obj) {
	var nodes []uint64
	for _, l := range leaders {
		nodes = append(nodes, l.At("tasks"))
	}
	k.M.List(k.Obj("task_struct", k.Syms["init_task"]).At("tasks"), nodes...)
}

// Files gives task a files_struct whose fdtable has max_fds slots, the
// open files at their fds.
func (k *Kernel) Files(task Obj, maxFDs int, files map[int]uint64) Obj {
	arr := k.M.Alloc(8 * uint64(maxFDs))
	for fd, f := range files {
		k.M.U64(arr+8*uint64(fd), f)
	}
	fdt := k.New("fdtable").Set("max_fds", uint64(maxFDs)).Set("fd", arr)
	fs := k.New("files_struct").Set("count.counter", 1).Set("fdt", fdt.Addr)
	task.Set("files", fs.Addr)
	return fs
}

// The file type bits of include/uapi/linux/stat.h.
const (
	SIFDIR = 0o040000
	SIFREG = 0o100000
)

// Dentry allocates a dentry called name under parent (a zero Obj: a
// root, its own parent), hashed, with an inode of mode (0: negative,
// no inode), and adds it at the head of the parent's children, as
// d_alloc does. It returns the dentry and its inode.
func (k *Kernel) Dentry(parent Obj, name string, mode uint16) (Obj, Obj) {
	d := k.New("dentry")
	if k.L.Subdirs {
		k.M.List(d.At("d_subdirs"))
	}
	d.Set("d_name.name", k.Str(name)).Set("d_name.len", uint64(len(name)))
	var inode Obj
	if mode != 0 {
		inode = k.New("inode").Set("i_mode", uint64(mode))
		d.Set("d_inode", inode.Addr)
		d.Set("d_hash.pprev", d.At("d_hash")) // hashed: any non-NULL pprev
	}
	if parent.Addr == 0 {
		d.Set("d_parent", d.Addr)
		return d, inode
	}
	d.Set("d_parent", parent.Addr)
	if k.L.Subdirs {
		// list_add: at the head of d_subdirs.
		head := parent.At("d_subdirs")
		first, _ := k.M.u64(head)
		k.M.U64(d.At("d_child"), first)
		k.M.U64(d.At("d_child")+8, head)
		k.M.U64(first+8, d.At("d_child"))
		k.M.U64(head, d.At("d_child"))
	} else {
		// hlist_add_head: at the head of d_children.
		head := parent.At("d_children")
		first, _ := k.M.u64(head)
		k.M.U64(d.At("d_sib"), first)
		k.M.U64(d.At("d_sib")+8, head)
		if first != 0 {
			k.M.U64(first+8, d.At("d_sib"))
		}
		k.M.U64(head, d.At("d_sib"))
	}
	return d, inode
}

// FSType allocates a file_system_type called name and a super_block of
// it.
func (k *Kernel) FSType(name string) Obj {
	fst := k.New("file_system_type").Set("name", k.Str(name))
	return k.New("super_block").Set("s_type", fst.Addr)
}

// Mount allocates a mount of the super_block sb whose root is root,
// mounted on dentry mp of mount parent (parent zero: a namespace's
// root mount, its own parent), with the given mount id.
func (k *Kernel) Mount(id int, sb, root, parent, mp Obj) Obj {
	m := k.New("mount").Set("mnt_id", uint64(id)).Set("mnt.mnt_sb", sb.Addr).Set("mnt.mnt_root", root.Addr)
	if parent.Addr == 0 {
		return m.Set("mnt_parent", m.Addr).Set("mnt_mountpoint", root.Addr)
	}
	return m.Set("mnt_parent", parent.Addr).Set("mnt_mountpoint", mp.Addr)
}

// Namespace makes init_task's mount namespace (through its nsproxy)
// hold mounts, in order: the rbtree ns->mounts by mnt_node, or the list
// ns->list by mnt_list.
func (k *Kernel) Namespace(mounts ...Obj) Obj {
	ns := k.New("mnt_namespace")
	var nodes []uint64
	for _, m := range mounts {
		if k.L.MountList {
			nodes = append(nodes, m.At("mnt_list"))
		} else {
			nodes = append(nodes, m.At("mnt_node"))
		}
	}
	if k.L.MountList {
		ns.Set("mounts", uint64(len(mounts)))
		k.M.List(ns.At("list"), nodes...)
	} else {
		k.M.RBTree(ns.At("mounts"), nodes...)
	}
	nsp := k.New("nsproxy").Set("count.counter", 1).Set("mnt_ns", ns.Addr)
	k.Obj("task_struct", k.Syms["init_task"]).Set("nsproxy", nsp.Addr)
	return ns
}

func (m *Mem) u64(addr uint64) (uint64, error) {
	var b [8]byte
	_, err := m.ReadVirt(b[:], addr)
	return binary.LittleEndian.Uint64(b[:]), err
}
