package bpf

import (
	"bytes"
	"testing"

	"github.com/cilium/ebpf/btf"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// A synthetic kernel for the BPF walkers: the Linux types of
// synthkernel and the BPF ones below, each declaring the members the
// walkers read, named and typed as the kernel's headers define them
// (include/linux/bpf.h unless said otherwise; where a walker reads a
// struct whole, its leading members are laid out as the header does).
// Tests fill its memory and the IDRs; what they check comes from what
// they wrote.

type bpfKernel struct {
	*sk.Kernel
	p *objects.Program
}

// Symbols of functions and tables the walkers compare pointers with.
const (
	symArrayMeta = 0xffffffff81100000 // array_map_direct_value_meta
	symProgIops  = 0xffffffff81200000 // bpf_prog_iops
	symMapIops   = 0xffffffff81200100
	symLinkIops  = 0xffffffff81200200
	symProgFops  = 0xffffffff81200300 // bpf_prog_fops
	symMapFops   = 0xffffffff81200400
	symLinkFops  = 0xffffffff81200500
	symExt4Fops  = 0xffffffff81200600 // another file's f_op
)

func bpfTypes(b *sk.BTF) {
	lh, u8, u16, u32, u64, s32 := b.ListHead(), b.U8, b.U16, b.U32, b.U64, b.Int
	F, P := sk.F, sk.Ptr
	a64 := b.Named("atomic64_t")
	b.IDR()
	b.Enum("bpf_prog_type", sk.EV("BPF_PROG_TYPE_UNSPEC", 0), sk.EV("BPF_PROG_TYPE_SOCKET_FILTER", 1), sk.EV("BPF_PROG_TYPE_KPROBE", 2),
		sk.EV("BPF_PROG_TYPE_SCHED_CLS", 3), sk.EV("BPF_PROG_TYPE_XDP", 6), sk.EV("BPF_PROG_TYPE_TRACING", 26), sk.EV("BPF_PROG_TYPE_STRUCT_OPS", 27),
		sk.EV("__MAX_BPF_PROG_TYPE", 28))
	b.Enum("bpf_attach_type", sk.EV("BPF_CGROUP_INET_INGRESS", 0), sk.EV("BPF_CGROUP_INET_EGRESS", 1), sk.EV("BPF_FLOW_DISSECTOR", 17),
		sk.EV("BPF_TRACE_FENTRY", 24), sk.EV("BPF_TRACE_ITER", 28), sk.EV("__MAX_BPF_ATTACH_TYPE", 29))
	b.Enum("bpf_map_type", sk.EV("BPF_MAP_TYPE_UNSPEC", 0), sk.EV("BPF_MAP_TYPE_HASH", 1), sk.EV("BPF_MAP_TYPE_ARRAY", 2),
		sk.EV("BPF_MAP_TYPE_PROG_ARRAY", 3), sk.EV("BPF_MAP_TYPE_PERF_EVENT_ARRAY", 4), sk.EV("BPF_MAP_TYPE_PERCPU_HASH", 5),
		sk.EV("BPF_MAP_TYPE_PERCPU_ARRAY", 6), sk.EV("BPF_MAP_TYPE_STACK_TRACE", 7), sk.EV("BPF_MAP_TYPE_CGROUP_ARRAY", 8),
		sk.EV("BPF_MAP_TYPE_LRU_HASH", 9), sk.EV("BPF_MAP_TYPE_LRU_PERCPU_HASH", 10), sk.EV("BPF_MAP_TYPE_LPM_TRIE", 11),
		sk.EV("BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED", 19), sk.EV("BPF_MAP_TYPE_CGROUP_STORAGE", 19),
		sk.EV("BPF_MAP_TYPE_QUEUE", 22), sk.EV("BPF_MAP_TYPE_STACK", 23), sk.EV("BPF_MAP_TYPE_STRUCT_OPS", 26), sk.EV("BPF_MAP_TYPE_RINGBUF", 27),
		sk.EV("__MAX_BPF_MAP_TYPE", 28))
	b.Enum("bpf_link_type", sk.EV("BPF_LINK_TYPE_UNSPEC", 0), sk.EV("BPF_LINK_TYPE_RAW_TRACEPOINT", 1), sk.EV("BPF_LINK_TYPE_TRACING", 2),
		sk.EV("BPF_LINK_TYPE_CGROUP", 3), sk.EV("BPF_LINK_TYPE_ITER", 4), sk.EV("BPF_LINK_TYPE_NETNS", 5), sk.EV("BPF_LINK_TYPE_XDP", 6),
		sk.EV("BPF_LINK_TYPE_PERF_EVENT", 7), sk.EV("BPF_LINK_TYPE_KPROBE_MULTI", 8), sk.EV("BPF_LINK_TYPE_STRUCT_OPS", 9))
	b.Enum("bpf_func_id", sk.EV("BPF_FUNC_unspec", 0), sk.EV("BPF_FUNC_map_lookup_elem", 1), sk.EV("BPF_FUNC_map_update_elem", 2),
		sk.EV("BPF_FUNC_map_delete_elem", 3), sk.EV("BPF_FUNC_probe_read", 4), sk.EV("BPF_FUNC_ktime_get_ns", 5),
		sk.EV("BPF_FUNC_get_smp_processor_id", 8), sk.EV("BPF_FUNC_perf_event_output", 25), sk.EV("__BPF_FUNC_MAX_ID", 26))

	prog, mp, bt := b.Decl("bpf_prog"), b.Decl("bpf_map"), b.Decl("btf")
	// include/uapi/linux/bpf.h.
	b.Struct("bpf_insn", F("code", u8), sk.Bitfield("dst_reg", u8, 8, 4), sk.Bitfield("src_reg", u8, 12, 4), sk.At(2, "off", b.S16), F("imm", s32))
	b.Struct("bpf_func_info", F("insn_off", u32), F("type_id", u32))
	b.Struct("bpf_line_info", F("insn_off", u32), F("file_name_off", u32), F("line_off", u32), F("line_col", u32))
	b.Struct("bpf_ksym", F("start", b.ULong), F("end", b.ULong), F("name", b.Array(b.Char, 512)), F("lnode", lh), F("prog", b.Bool))
	b.Struct("user_struct", F("__count", b.Refcount()), F("uid", sk.AnonStruct(F("val", u32))))
	stats := b.Typedef("u64_stats_t", sk.AnonStruct(F("v", u64)))
	b.Struct("bpf_prog_stats", F("cnt", stats), F("nsecs", stats), F("misses", stats))
	b.Struct("bpf_prog_aux",
		F("refcnt", a64), F("used_map_cnt", u32), F("used_btf_cnt", u32), F("max_ctx_offset", u32), F("max_pkt_offset", u32),
		F("max_tp_access", u32), F("stack_depth", u32), F("id", u32), F("func_cnt", u32), F("real_func_cnt", u32),
		F("func_idx", u32), F("attach_btf_id", u32), F("verified_insns", u32),
		F("load_time", u64), F("name", b.Array(b.Char, 16)),
		F("btf", P(bt)), F("attach_btf", P(bt)), F("used_maps", P(P(mp))), F("user", P(b.Decl("user_struct"))),
		F("attach_func_name", P(b.Char)), F("func", P(P(prog))), F("jited_linfo", P(b.VoidPtr)),
		F("func_info", P(b.Decl("bpf_func_info"))), F("func_info_cnt", u32),
		F("linfo", P(b.Decl("bpf_line_info"))), F("nr_linfo", u32), F("ksym", b.Decl("bpf_ksym")))
	// struct bpf_prog as include/linux/bpf.h (6.x) lays it out.
	b.Struct("bpf_prog",
		F("pages", u16),
		sk.Bitfield("jited", u16, 16, 1), sk.Bitfield("jit_requested", u16, 17, 1), sk.Bitfield("gpl_compatible", u16, 18, 1),
		sk.At(4, "type", b.Named("enum bpf_prog_type")), F("expected_attach_type", b.Named("enum bpf_attach_type")),
		F("len", u32), F("jited_len", u32), F("tag", b.Array(u8, 8)),
		F("stats", P(b.Decl("bpf_prog_stats"))), F("active", P(s32)), F("bpf_func", b.FuncPtr()),
		F("aux", P(b.Decl("bpf_prog_aux"))), F("orig_prog", b.VoidPtr),
		F("", b.Union("", F("insns", b.Array(u64, 0)), F("insnsi", b.Array(b.Decl("bpf_insn"), 0)))))

	b.Struct("btf", F("data", b.VoidPtr), F("data_size", u32), F("id", u32), F("name", b.Array(b.Char, 56)),
		F("kernel_btf", b.Bool), F("base_btf", P(bt)))

	fp := b.FuncPtr()
	b.Struct("bpf_map_ops", F("map_alloc", fp), F("map_lookup_elem", fp), F("map_update_elem", fp), F("map_delete_elem", fp),
		F("map_direct_value_meta", fp), F("map_mem_usage", fp))
	b.Struct("bpf_map_owner", F("type", b.Named("enum bpf_prog_type")), F("jited", b.Bool))
	b.Struct("bpf_map",
		F("ops", P(b.Decl("bpf_map_ops"))), F("inner_map_meta", P(mp)),
		F("map_type", b.Named("enum bpf_map_type")), F("key_size", u32), F("value_size", u32), F("max_entries", u32),
		F("map_extra", u64), F("map_flags", u32), F("id", u32), F("btf", P(bt)),
		F("btf_key_type_id", u32), F("btf_value_type_id", u32), F("btf_vmlinux_value_type_id", u32),
		F("name", b.Array(b.Char, 16)), F("refcnt", a64), F("usercnt", a64), F("frozen", b.Bool),
		F("owner", P(b.Decl("bpf_map_owner"))), F("elem_count", P(b.S64)))

	// kernel/bpf/arraymap.c (struct in include/linux/bpf.h).
	b.Struct("bpf_array", F("map", mp), F("elem_size", u32), F("index_mask", u32), F("aux", b.VoidPtr),
		sk.At(uint32(mp.Size)+16, "", b.Union("", F("value", b.Array(b.Char, 0)), F("ptrs", b.Array(b.VoidPtr, 0)), F("pptrs", b.Array(b.VoidPtr, 0)))))
	// kernel/bpf/hashtab.c, include/linux/list_nulls.h, include/linux/percpu_counter.h.
	nn := b.Decl("hlist_nulls_node")
	b.Struct("hlist_nulls_node", F("next", P(nn)), F("pprev", P(P(nn))))
	b.Struct("hlist_nulls_head", F("first", P(nn)))
	b.Struct("bucket", F("head", b.Decl("hlist_nulls_head")), F("raw_lock", u32))
	b.Struct("bpf_lru_node", F("list", lh), F("cpu", u16), F("type", u8), F("ref", u8))
	b.Struct("htab_elem",
		F("", b.Union("", F("hash_node", nn), F("", sk.AnonStruct(F("padding", b.VoidPtr), F("fnode", b.VoidPtr))))),
		F("", b.Union("", F("ptr_to_pptr", b.VoidPtr), F("lru_node", b.Decl("bpf_lru_node")))),
		F("hash", u32), sk.At(48, "key", b.Array(b.Char, 0)))
	b.Struct("percpu_counter", F("lock", u32), F("count", b.S64), F("counters", P(s32)))
	b.Struct("bpf_htab", F("map", mp), F("buckets", P(b.Decl("bucket"))), F("elems", b.VoidPtr),
		F("pcount", b.Decl("percpu_counter")), F("count", b.Atomic()), F("use_percpu_counter", b.Bool),
		F("n_buckets", u32), F("elem_size", u32), F("hashrnd", u32), F("map_locked", b.Array(P(s32), 8)))
	// kernel/bpf/lpm_trie.c.
	ln := b.Decl("lpm_trie_node")
	b.Struct("lpm_trie_node", F("child", b.Array(P(ln), 2)), F("prefixlen", u32), F("flags", u32), F("data", b.Array(u8, 0)))
	b.Struct("lpm_trie", F("map", mp), F("root", P(ln)), F("n_entries", b.ULong), F("max_prefixlen", b.ULong), F("data_size", b.ULong))
	// kernel/bpf/stackmap.c.
	b.Struct("stack_map_bucket", F("fnode", b.VoidPtr), F("hash", u32), F("nr", u32), F("data", b.Array(u64, 0)))
	b.Struct("bpf_stack_build_id", F("status", s32), F("build_id", b.Array(u8, 20)), F("offset", u64))
	b.Struct("bpf_stack_map", F("map", mp), F("elems", b.VoidPtr), F("freelist", b.VoidPtr), F("n_buckets", u32),
		F("buckets", b.Array(P(b.Decl("stack_map_bucket")), 0)))
	// kernel/bpf/queue_stack_maps.c.
	b.Struct("bpf_queue_stack", F("map", mp), F("lock", u32), F("head", u32), F("tail", u32), F("size", u32),
		sk.At(uint32(mp.Size)+16, "elements", b.Array(b.Char, 0)))
	// kernel/bpf/ringbuf.c: the positions and data each on a page of
	// their own.
	b.Struct("bpf_ringbuf", F("mask", u64), F("pages", b.VoidPtr), F("nr_pages", s32), F("pending_pos", u64),
		sk.At(4096, "consumer_pos", b.ULong), sk.At(8192, "producer_pos", b.ULong), sk.At(12288, "data", b.Array(b.Char, 0)))
	b.Struct("bpf_ringbuf_map", F("map", mp), F("rb", P(b.Decl("bpf_ringbuf"))))
	// include/linux/perf_event.h, kernel/events/internal.h,
	// include/uapi/linux/perf_event.h.
	b.Struct("perf_event_attr", F("type", u32), F("size", u32), F("config", u64))
	b.Struct("perf_event_mmap_page", F("version", u32), sk.At(1024, "data_head", u64), F("data_tail", u64))
	b.Struct("perf_buffer", F("refcount", b.Refcount()), F("nr_pages", s32), F("user_page", P(b.Decl("perf_event_mmap_page"))),
		F("data_pages", b.Array(b.VoidPtr, 0)))
	b.Struct("tracepoint", F("name", P(b.Char)))
	b.Struct("trace_event_call", F("list", lh), F("", b.Union("", F("name", P(b.Char)), F("tp", P(b.Decl("tracepoint"))))), F("flags", s32))
	b.Struct("perf_event", F("attr", b.Decl("perf_event_attr")), F("cpu", s32), F("rb", P(b.Decl("perf_buffer"))),
		F("tp_event", P(b.Decl("trace_event_call"))), F("bpf_cookie", u64))
	b.Struct("bpf_event_entry", F("event", P(b.Decl("perf_event"))), F("perf_file", P(b.Decl("file"))), F("map_file", P(b.Decl("file"))))
	// kernel/trace/trace_probe.h, kernel/trace/trace_kprobe.c,
	// include/linux/kprobes.h.
	b.Struct("trace_probe_event", F("flags", u32), F("call", b.Decl("trace_event_call")), F("probes", lh))
	b.Struct("trace_probe", F("list", lh), F("event", P(b.Decl("trace_probe_event"))))
	b.Struct("kprobe", F("addr", b.VoidPtr), F("symbol_name", P(b.Char)), F("offset", u32))
	b.Struct("kretprobe", F("kp", b.Decl("kprobe")), F("handler", fp))
	b.Struct("trace_kprobe", F("list", lh), F("rp", b.Decl("kretprobe")), F("nhit", b.VoidPtr), F("symbol", P(b.Char)), F("tp", b.Decl("trace_probe")))

	// Links (kernel/bpf/syscall.c, cgroup.c, bpf_iter.c, net_namespace.c,
	// net/core/dev.c, kernel/trace/bpf_trace.c).
	b.Struct("bpf_link", F("refcnt", a64), F("id", u32), F("type", b.Named("enum bpf_link_type")), F("ops", b.VoidPtr), F("prog", P(prog)))
	link := b.Decl("bpf_link")
	b.Struct("kernfs_node", F("count", b.Atomic()), F("id", u64))
	b.Struct("cgroup", F("self", b.VoidPtr), F("kn", P(b.Decl("kernfs_node"))))
	b.Struct("bpf_cgroup_link", F("link", link), F("cgroup", P(b.Decl("cgroup"))), F("type", b.Named("enum bpf_attach_type")))
	b.Struct("bpf_tramp_link", F("link", link), F("tramp_hlist", b.HlistNode()), F("cookie", u64))
	b.Struct("bpf_trampoline", F("hlist", b.HlistNode()), F("key", u64))
	b.Struct("bpf_tracing_link", F("link", b.Decl("bpf_tramp_link")), F("attach_type", b.Named("enum bpf_attach_type")),
		F("trampoline", P(b.Decl("bpf_trampoline"))), F("tgt_prog", P(prog)))
	b.Struct("net_device", F("name", b.Array(b.Char, 16)), F("ifindex", s32))
	b.Struct("bpf_xdp_link", F("link", link), F("dev", P(b.Decl("net_device"))), F("flags", s32))
	b.Struct("bpf_raw_event_map", F("tp", P(b.Decl("tracepoint"))))
	b.Struct("bpf_raw_tp_link", F("link", link), F("btp", P(b.Decl("bpf_raw_event_map"))), F("cookie", u64))
	b.Struct("bpf_iter_reg", F("target", P(b.Char)))
	b.Struct("bpf_iter_target_info", F("list", lh), F("reg_info", P(b.Decl("bpf_iter_reg"))))
	b.Struct("bpf_iter_aux_info", F("map", P(mp)),
		F("cgroup", sk.AnonStruct(F("start", P(b.Decl("cgroup"))), F("order", u32))),
		F("task", sk.AnonStruct(F("type", u32), F("pid", u32))))
	b.Struct("bpf_iter_link", F("link", link), F("aux", b.Decl("bpf_iter_aux_info")), F("tinfo", P(b.Decl("bpf_iter_target_info"))))
	b.Struct("ns_common", F("stashed", b.VoidPtr), F("inum", u32))
	b.Struct("net", F("passive", b.Refcount()), F("ns", b.Decl("ns_common")))
	b.Struct("bpf_netns_link", F("link", link), F("type", b.Named("enum bpf_attach_type")), F("netns_type", u32), F("net", P(b.Decl("net"))))
	b.Struct("bpf_perf_link", F("link", link), F("perf_file", P(b.Decl("file"))))

	// struct_ops (kernel/bpf/bpf_struct_ops.c, include/net/tcp.h).
	b.Enum("bpf_struct_ops_state", sk.EV("BPF_STRUCT_OPS_STATE_INIT", 0), sk.EV("BPF_STRUCT_OPS_STATE_INUSE", 1),
		sk.EV("BPF_STRUCT_OPS_STATE_TOBEFREE", 2), sk.EV("BPF_STRUCT_OPS_STATE_READY", 3))
	b.Struct("bpf_struct_ops_common_value", F("refcnt", b.Refcount()), F("state", b.Named("enum bpf_struct_ops_state")))
	b.Struct("bpf_struct_ops_value", F("common", b.Decl("bpf_struct_ops_common_value")), sk.At(8, "data", b.Array(b.Char, 0)))
	b.Struct("tcp_congestion_ops", F("list", lh), F("key", u32), F("flags", u32), F("init", fp), F("release", fp),
		F("ssthresh", fp), F("cong_avoid", fp), F("name", b.Array(b.Char, 16)), F("owner", b.VoidPtr))
	b.Struct("bpf_struct_ops_tcp_congestion_ops", F("common", b.Decl("bpf_struct_ops_common_value")), F("data", b.Decl("tcp_congestion_ops")))
	b.Struct("bpf_struct_ops_link", F("link", link), F("map", P(mp)))
	b.Struct("bpf_struct_ops_map", F("map", mp), F("st_ops_desc", b.VoidPtr), F("uvalue", P(b.Decl("bpf_struct_ops_value"))),
		F("links", b.VoidPtr), F("ksyms", b.VoidPtr), F("funcs_cnt", u32), F("btf", P(bt)), F("kvalue", b.Decl("bpf_struct_ops_value")))
	// The members of struct bpf_map_info (include/uapi/linux/bpf.h).
	b.Struct("bpf_map_info", F("type", u32), F("id", u32), F("key_size", u32), F("value_size", u32), F("max_entries", u32),
		F("map_flags", u32), F("name", b.Array(b.Char, 16)), F("ifindex", u32), F("btf_vmlinux_value_type_id", u32),
		F("netns_dev", u64), F("netns_ino", u64), F("btf_id", u32), F("btf_key_type_id", u32), F("btf_value_type_id", u32),
		F("btf_vmlinux_id", u32), F("map_extra", u64))
	// kernel/bpf/verifier.c's table of struct bpf_verifier_ops.
	b.Struct("bpf_verifier_ops", F("get_func_proto", fp), F("is_valid_access", fp), F("convert_ctx_access", fp))
	b.Struct("__sk_buff", F("len", u32), F("pkt_type", u32), F("mark", u32))
	b.Struct("sk_buff", F("next", b.VoidPtr), F("len", u32), F("mark", u32))
	// A kfunc, as vmlinux BTF declares one.
	b.Add(&btf.Func{Name: "bpf_kfunc_example", Type: &btf.FuncProto{Return: s32}, Linkage: btf.GlobalFunc})
}

func newBPF(t *testing.T) *bpfKernel {
	k := &bpfKernel{Kernel: sk.NewKernel(sk.LinuxLayout{})}
	bpfTypes(k.B)
	for name, a := range map[string]uint64{
		"array_map_direct_value_meta": symArrayMeta,
		"bpf_prog_iops":               symProgIops, "bpf_map_iops": symMapIops, "bpf_link_iops": symLinkIops,
		"bpf_prog_fops": symProgFops, "bpf_map_fops": symMapFops, "bpf_link_fops": symLinkFops,
	} {
		k.Syms[name] = a
	}
	k.p = objects.NewProgram(k.M, k.B.Spec(t), k.Syms, objects.WithLimit(1000))
	return k
}

// idr fills the IDR called name (prog_idr, map_idr, ...) with objs by ID.
func (k *bpfKernel) idr(name string, objs map[uint64]uint64) {
	a, ok := k.Syms[name]
	if !ok {
		a = k.M.Global(k.Syms, name, uint64(k.S("idr").Size))
	}
	k.M.IDR(a, objs)
}

// prog allocates a struct bpf_prog of n instructions and its aux.
func (k *bpfKernel) prog(id uint32, typ uint64, name string, insns []byte) (sk.Obj, sk.Obj) {
	size := uint64(k.S("bpf_prog").Size) + uint64(len(insns))
	p := k.M.Obj(k.S("bpf_prog"), k.M.Alloc(size))
	aux := k.New("bpf_prog_aux").Set("id", uint64(id)).Str("name", name)
	p.Set("type", typ).Set("len", uint64(len(insns)/8)).Set("aux", aux.Addr)
	k.M.Write(p.At("insnsi"), insns)
	return p, aux
}

// mapIn allocates the struct called container with its struct bpf_map
// (member map) and extra bytes after it, and fills the map.
func (k *bpfKernel) mapIn(container string, extra uint64, id uint32, typ uint64, key, value, maxEntries uint32, name string) (sk.Obj, sk.Obj) {
	c := k.M.Obj(k.S(container), k.M.Alloc(uint64(k.S(container).Size)+extra))
	m := c.Member("map")
	m.Set("id", uint64(id)).Set("map_type", typ).Set("key_size", uint64(key)).Set("value_size", uint64(value)).
		Set("max_entries", uint64(maxEntries)).Str("name", name)
	return c, m
}

// rawBTF marshals types into raw BTF and returns the ID of the type
// called name in it.
func rawBTF(t *testing.T, name string, types ...btf.Type) ([]byte, uint32) {
	raw := sk.Raw(t, types...)
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if name == "" {
		return raw, 0
	}
	typ, err := spec.AnyTypeByName(name)
	if err != nil {
		t.Fatal(err)
	}
	id, err := spec.TypeID(typ)
	if err != nil {
		t.Fatal(err)
	}
	return raw, uint32(id)
}

// btfObj allocates a struct btf holding raw.
func (k *bpfKernel) btfObj(id uint32, name string, raw []byte) sk.Obj {
	data := k.M.Alloc(uint64(len(raw)))
	k.M.Write(data, raw)
	return k.New("btf").Set("id", uint64(id)).Str("name", name).Set("data", data).Set("data_size", uint64(len(raw)))
}
