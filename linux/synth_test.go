package linux

import (
	"testing"

	"github.com/cilium/ebpf/btf"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// A synthetic kernel for the walkers of this package: BTF declaring the
// members they read, named and typed as the kernel's headers define
// them (the offsets are C's layout of just those members), memory the
// tests fill, and symbols.

// layout picks, where kernels differ, the older layout.
type layout struct {
	oldThreads   bool   // task->thread_group ring (before 6.7), no signal->thread_head
	cpuInTask    bool   // task->cpu (4.9-5.15), no thread_info.cpu
	oldState     bool   // task->state (before 5.14), no __state
	current      string // per-CPU "current_task", "pcpu_hot", or "" (runqueues.curr only)
	moduleLayout bool   // core_layout/init_layout (before 6.4), no mem[]
	mountList    bool   // ns->list linked by mnt_list (before 6.8), no rbtree
	subdirs      bool   // d_subdirs linked by d_child (before 6.8)
	shadowTK     bool   // shadow_timekeeper (before 6.13), no struct tk_data
	absRelocs    bool   // struct kernel_symbol with pointers, not PREL32 offsets
}

type kernel struct {
	p    *objects.Program
	m    *sk.Mem
	b    *sk.BTF
	syms sk.Syms
	// pcpu holds the section offsets of the per-CPU variables.
	pcpu map[string]uint32
	l    layout
	// exports counts the export tables addModule laid out.
	exports uint64
}

func (k *kernel) s(name string) *btf.Struct { return k.b.Decl(name) }

// newKernel builds the BTF of l, two CPUs and an init_task whose tasks
// list is empty.
func newKernel(t *testing.T, l layout) *kernel {
	b := sk.NewBTF()
	k := &kernel{b: b, m: sk.NewMem(), syms: sk.Syms{}, pcpu: map[string]uint32{}, l: l}
	lh := b.ListHead()
	b.HlistHead()
	b.RBRoot()
	b.Cpumask()
	atomic := b.Atomic()
	task := b.Decl("task_struct")
	taskp := sk.Ptr(task)

	// include/linux/sched.h, arch/x86/include/asm/thread_info.h,
	// include/linux/sched/signal.h.
	ti := []sk.Field{sk.F("flags", b.ULong), sk.F("syscall_work", b.ULong), sk.F("status", b.U32)}
	if !l.cpuInTask {
		ti = append(ti, sk.F("cpu", b.U32))
	}
	b.Struct("thread_info", ti...)
	sig := []sk.Field{sk.F("nr_threads", b.Int)}
	if !l.oldThreads {
		sig = append(sig, sk.F("thread_head", lh))
	}
	b.Struct("signal_struct", sig...)
	fields := []sk.Field{sk.F("thread_info", b.Decl("thread_info"))}
	if l.oldState {
		fields = append(fields, sk.F("state", b.Long))
	} else {
		fields = append(fields, sk.F("__state", b.U32))
	}
	if l.cpuInTask {
		fields = append(fields, sk.F("cpu", b.U32))
	}
	fields = append(fields,
		sk.F("flags", b.U32),
		sk.F("tasks", lh),
		sk.F("exit_state", b.Int),
		sk.F("pid", b.Int),
		sk.F("tgid", b.Int),
		sk.F("real_parent", taskp),
		sk.F("group_leader", taskp),
		sk.F("comm", b.Array(b.Char, 16)),
		sk.F("signal", sk.Ptr(b.Decl("signal_struct"))),
		sk.F("worker_private", b.VoidPtr),
		sk.F("files", sk.Ptr(b.Decl("files_struct"))),
		sk.F("nsproxy", sk.Ptr(b.Decl("nsproxy"))))
	if l.oldThreads {
		fields = append(fields, sk.F("thread_group", lh))
	} else {
		fields = append(fields, sk.F("thread_node", lh))
	}
	b.Struct("task_struct", fields...)

	// kernel/sched/sched.h; arch/x86/include/asm/current.h.
	b.Struct("rq", sk.F("nr_running", b.U32), sk.F("curr", taskp), sk.F("idle", taskp))
	k.pcpu["runqueues"] = b.PerCPU("runqueues", b.Decl("rq"))
	switch l.current {
	case "current_task":
		k.pcpu["current_task"] = b.PerCPU("current_task", taskp)
	case "pcpu_hot":
		b.Struct("pcpu_hot", sk.F("current_task", taskp), sk.F("preempt_count", b.Int))
		k.pcpu["pcpu_hot"] = b.PerCPU("pcpu_hot", b.Decl("pcpu_hot"))
	}

	// kernel/kthread.c, kernel/workqueue_internal.h, kernel/workqueue.c.
	b.Struct("kthread", sk.F("flags", b.ULong), sk.F("data", b.VoidPtr), sk.F("full_name", sk.Ptr(b.Char)))
	b.Struct("work_struct", sk.F("data", b.AtomicLong()))
	b.Struct("workqueue_attrs", sk.F("nice", b.Int))
	b.Struct("worker_pool", sk.F("cpu", b.Int), sk.F("id", b.Int), sk.F("attrs", sk.Ptr(b.Decl("workqueue_attrs"))))
	b.Struct("workqueue_struct", sk.F("name", b.Array(b.Char, 24)))
	b.Struct("worker",
		sk.F("current_work", sk.Ptr(b.Decl("work_struct"))),
		sk.F("pool", sk.Ptr(b.Decl("worker_pool"))),
		sk.F("id", b.Int),
		sk.F("desc", b.Array(b.Char, 24)),
		sk.F("rescue_wq", sk.Ptr(b.Decl("workqueue_struct"))))

	// include/linux/fdtable.h, include/linux/fs.h.
	b.Struct("file", sk.F("f_op", b.VoidPtr), sk.F("f_mode", b.U32), sk.F("private_data", b.VoidPtr))
	b.Struct("fdtable", sk.F("max_fds", b.U32), sk.F("fd", sk.Ptr(sk.Ptr(b.Decl("file")))))
	b.Struct("files_struct", sk.F("count", atomic), sk.F("fdt", sk.Ptr(b.Decl("fdtable"))))

	// fs/mount.h, include/linux/mount.h, include/linux/dcache.h.
	dentry := b.Decl("dentry")
	b.Struct("file_system_type", sk.F("name", sk.Ptr(b.Char)))
	b.Struct("super_block", sk.F("s_type", sk.Ptr(b.Decl("file_system_type"))))
	b.Struct("vfsmount", sk.F("mnt_root", sk.Ptr(dentry)), sk.F("mnt_sb", sk.Ptr(b.Decl("super_block"))))
	mnt := b.Decl("mount")
	mf := []sk.Field{sk.F("mnt_parent", sk.Ptr(mnt)), sk.F("mnt_mountpoint", sk.Ptr(dentry)), sk.F("mnt", b.Decl("vfsmount")), sk.F("mnt_id", b.Int)}
	if l.mountList {
		mf = append(mf, sk.F("mnt_list", lh))
		b.Struct("mnt_namespace", sk.F("mounts", b.U32), sk.F("list", lh))
	} else {
		mf = append(mf, sk.F("mnt_node", b.RBNode()))
		b.Struct("mnt_namespace", sk.F("mounts", b.RBRoot()), sk.F("nr_mounts", b.U32))
	}
	b.Struct("mount", mf...)
	b.Struct("nsproxy", sk.F("count", atomic), sk.F("mnt_ns", sk.Ptr(b.Decl("mnt_namespace"))))
	b.Struct("hlist_bl_node", sk.F("next", sk.Ptr(b.Decl("hlist_bl_node"))), sk.F("pprev", sk.Ptr(sk.Ptr(b.Decl("hlist_bl_node")))))
	b.Struct("qstr",
		sk.F("", b.Union("", sk.F("", sk.AnonStruct(sk.F("hash", b.U32), sk.F("len", b.U32))), sk.F("hash_len", b.U64))),
		sk.F("name", sk.Ptr(b.U8)))
	b.Struct("inode", sk.F("i_mode", b.U16), sk.F("i_op", b.VoidPtr), sk.F("i_private", b.VoidPtr))
	df := []sk.Field{
		sk.F("d_flags", b.U32),
		sk.F("d_hash", b.Decl("hlist_bl_node")),
		sk.F("d_parent", sk.Ptr(dentry)),
		sk.F("d_name", b.Decl("qstr")),
		sk.F("d_inode", sk.Ptr(b.Decl("inode"))),
	}
	if l.subdirs {
		df = append(df, sk.F("d_child", lh), sk.F("d_subdirs", lh))
	} else {
		df = append(df, sk.F("d_sib", b.HlistNode()), sk.F("d_children", b.HlistHead()))
	}
	b.Struct("dentry", df...)

	// include/linux/timekeeper_internal.h (ktime_t is s64).
	ktime := b.Typedef("ktime_t", b.S64)
	b.Struct("timekeeper", sk.F("xtime_sec", b.U64), sk.F("offs_real", ktime), sk.F("offs_boot", ktime), sk.F("offs_tai", ktime))
	if !l.shadowTK {
		b.Struct("tk_data", sk.F("seq", b.U32), sk.F("timekeeper", b.Decl("timekeeper")))
	}

	// include/linux/module.h, include/uapi/linux/elf.h,
	// include/linux/export-internal.h.
	b.Enum("module_state", sk.EV("MODULE_STATE_LIVE", 0), sk.EV("MODULE_STATE_COMING", 1), sk.EV("MODULE_STATE_GOING", 2), sk.EV("MODULE_STATE_UNFORMED", 3))
	b.Struct("elf64_sym", sk.F("st_name", b.U32), sk.F("st_info", b.U8), sk.F("st_other", b.U8), sk.F("st_shndx", b.U16), sk.F("st_value", b.U64), sk.F("st_size", b.U64))
	b.Struct("mod_kallsyms", sk.F("symtab", sk.Ptr(b.Decl("elf64_sym"))), sk.F("num_symtab", b.U32), sk.F("strtab", sk.Ptr(b.Char)), sk.F("typetab", sk.Ptr(b.Char)))
	if l.absRelocs {
		b.Struct("kernel_symbol", sk.F("value", b.ULong), sk.F("name", sk.Ptr(b.Char)), sk.F("namespace", sk.Ptr(b.Char)))
	} else {
		b.Struct("kernel_symbol", sk.F("value_offset", b.Int), sk.F("name_offset", b.Int), sk.F("namespace_offset", b.Int))
	}
	modf := []sk.Field{
		sk.F("state", b.Named("enum module_state")),
		sk.F("list", lh),
		sk.F("name", b.Array(b.Char, 56)),
		sk.F("syms", sk.Ptr(b.Decl("kernel_symbol"))),
		sk.F("num_syms", b.U32),
	}
	if l.moduleLayout {
		b.Struct("module_layout", sk.F("base", b.VoidPtr), sk.F("size", b.U32), sk.F("text_size", b.U32), sk.F("ro_size", b.U32))
		modf = append(modf, sk.F("core_layout", b.Decl("module_layout")), sk.F("init_layout", b.Decl("module_layout")))
	} else {
		b.Enum("mod_mem_type", sk.EV("MOD_TEXT", 0), sk.EV("MOD_DATA", 1), sk.EV("MOD_RODATA", 2), sk.EV("MOD_RO_AFTER_INIT", 3),
			sk.EV("MOD_INIT_TEXT", 4), sk.EV("MOD_INIT_DATA", 5), sk.EV("MOD_INIT_RODATA", 6), sk.EV("MOD_MEM_NUM_TYPES", 7))
		b.Struct("module_memory", sk.F("base", b.VoidPtr), sk.F("size", b.U32))
		modf = append(modf, sk.F("mem", b.Array(b.Decl("module_memory"), 7)))
	}
	modf = append(modf, sk.F("kallsyms", sk.Ptr(b.Decl("mod_kallsyms"))), sk.F("refcnt", atomic))
	b.Struct("module", modf...)

	// kernel/printk/printk_ringbuffer.h, include/linux/dev_printk.h.
	al := b.AtomicLong()
	b.Struct("prb_data_blk_lpos", sk.F("begin", b.ULong), sk.F("next", b.ULong))
	b.Struct("prb_desc", sk.F("state_var", al), sk.F("text_blk_lpos", b.Decl("prb_data_blk_lpos")))
	b.Struct("dev_printk_info", sk.F("subsystem", b.Array(b.Char, 16)), sk.F("device", b.Array(b.Char, 48)))
	b.Struct("printk_info",
		sk.F("seq", b.U64), sk.F("ts_nsec", b.U64), sk.F("text_len", b.U16), sk.F("facility", b.U8),
		sk.Bitfield("flags", b.U8, 19*8, 5), sk.Bitfield("level", b.U8, 19*8+5, 3),
		sk.At(20, "caller_id", b.U32), sk.F("dev_info", b.Decl("dev_printk_info")))
	b.Struct("prb_desc_ring", sk.F("count_bits", b.U32), sk.F("descs", sk.Ptr(b.Decl("prb_desc"))),
		sk.F("infos", sk.Ptr(b.Decl("printk_info"))), sk.F("head_id", al), sk.F("tail_id", al), sk.F("last_finalized_seq", al))
	b.Struct("prb_data_ring", sk.F("size_bits", b.U32), sk.F("data", sk.Ptr(b.Char)), sk.F("head_lpos", al), sk.F("tail_lpos", al))
	b.Struct("printk_ringbuffer", sk.F("desc_ring", b.Decl("prb_desc_ring")), sk.F("text_data_ring", b.Decl("prb_data_ring")), sk.F("fail", al))

	k.m.CPUs(k.syms, 2)
	init := k.m.Global(k.syms, "init_task", uint64(task.Size))
	k.m.List(k.obj("task_struct", init).At("tasks"))
	k.p = objects.NewProgram(k.m, b.Spec(t), k.syms, objects.WithLimit(1000))
	return k
}

// obj is the object of the named struct at addr.
func (k *kernel) obj(name string, addr uint64) sk.Obj { return k.m.Obj(k.s(name), addr) }

// alloc allocates a zeroed object of the named struct.
func (k *kernel) alloc(name string) sk.Obj { return k.m.New(k.s(name)) }

// str allocates a NUL-terminated string.
func (k *kernel) str(s string) uint64 {
	a := k.m.Alloc(uint64(len(s) + 1))
	k.m.String(a, s)
	return a
}

// value reads v of the Program as the object of the named struct at addr.
func (k *kernel) value(t *testing.T, name string, addr uint64) objects.Value {
	t.Helper()
	v, err := k.p.ObjectOf("struct "+name, addr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// task allocates a task_struct: its pid (the thread's id), tgid, comm,
// real_parent, group_leader itself.
func (k *kernel) task(pid, tgid int, comm string, parent uint64) sk.Obj {
	tk := k.alloc("task_struct").Set("pid", uint64(pid)).Set("tgid", uint64(tgid)).Str("comm", comm).Set("real_parent", parent)
	return tk.Set("group_leader", tk.Addr)
}

// process makes leader and threads one thread group: a shared
// signal_struct, each thread's group_leader, and the thread list (
// signal->thread_head, or the thread_group ring of older kernels).
func (k *kernel) process(leader sk.Obj, threads ...sk.Obj) {
	sig := k.alloc("signal_struct").Set("nr_threads", uint64(1+len(threads)))
	all := append([]sk.Obj{leader}, threads...)
	var nodes []uint64
	for _, t := range all {
		t.Set("signal", sig.Addr).Set("group_leader", leader.Addr)
		if k.l.oldThreads {
			nodes = append(nodes, t.At("thread_group"))
		} else {
			nodes = append(nodes, t.At("thread_node"))
		}
	}
	if k.l.oldThreads {
		k.m.List(nodes[0], nodes[1:]...)
	} else {
		k.m.List(sig.At("thread_head"), nodes...)
	}
}

// processes links the leaders on init_task.tasks.
func (k *kernel) processes(leaders ...sk.Obj) {
	var nodes []uint64
	for _, l := range leaders {
		nodes = append(nodes, l.At("tasks"))
	}
	k.m.List(k.obj("task_struct", k.syms["init_task"]).At("tasks"), nodes...)
}
