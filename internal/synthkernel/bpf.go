package synthkernel

import (
	"encoding/binary"
)

// BPF declares the BPF structures of programs and maps (include/linux/
// bpf.h, kernel/bpf/*.c) and of the contexts BPF_PROG_TEST_RUN builds
// (include/linux/skbuff.h, net/xdp.h, uapi bpf.h), each with the members
// the bpf walkers and the replayer read, under the kernel's names and
// types.
func (b *BTF) BPF() {
	lh, u8, u16, u32, u64, s32 := b.ListHead(), b.U8, b.U16, b.U32, b.U64, b.Int
	a64 := b.Named("atomic64_t")
	b.IDR()
	b.Enum("bpf_prog_type", EV("BPF_PROG_TYPE_UNSPEC", 0), EV("BPF_PROG_TYPE_SOCKET_FILTER", 1), EV("BPF_PROG_TYPE_KPROBE", 2),
		EV("BPF_PROG_TYPE_SCHED_CLS", 3), EV("BPF_PROG_TYPE_XDP", 6), EV("BPF_PROG_TYPE_CGROUP_SKB", 8),
		EV("BPF_PROG_TYPE_RAW_TRACEPOINT", 17), EV("BPF_PROG_TYPE_TRACING", 26), EV("__MAX_BPF_PROG_TYPE", 28))
	b.Enum("bpf_attach_type", EV("BPF_CGROUP_INET_INGRESS", 0), EV("__MAX_BPF_ATTACH_TYPE", 29))
	b.Enum("bpf_map_type", EV("BPF_MAP_TYPE_UNSPEC", 0), EV("BPF_MAP_TYPE_HASH", 1), EV("BPF_MAP_TYPE_ARRAY", 2),
		EV("BPF_MAP_TYPE_PROG_ARRAY", 3), EV("BPF_MAP_TYPE_PERF_EVENT_ARRAY", 4), EV("BPF_MAP_TYPE_PERCPU_HASH", 5),
		EV("BPF_MAP_TYPE_PERCPU_ARRAY", 6), EV("BPF_MAP_TYPE_LRU_HASH", 9), EV("BPF_MAP_TYPE_LRU_PERCPU_HASH", 10),
		EV("BPF_MAP_TYPE_LPM_TRIE", 11), EV("BPF_MAP_TYPE_RINGBUF", 27), EV("__MAX_BPF_MAP_TYPE", 28))

	prog, mp, bt := b.Decl("bpf_prog"), b.Decl("bpf_map"), b.Decl("btf")
	b.Struct("bpf_insn", F("code", u8), Bitfield("dst_reg", u8, 8, 4), Bitfield("src_reg", u8, 12, 4), At(2, "off", b.S16), F("imm", s32))
	b.Struct("bpf_func_info", F("insn_off", u32), F("type_id", u32))
	b.Struct("bpf_line_info", F("insn_off", u32), F("file_name_off", u32), F("line_off", u32), F("line_col", u32))
	b.Struct("bpf_ksym", F("start", b.ULong), F("end", b.ULong), F("name", b.Array(b.Char, 512)), F("lnode", lh), F("prog", b.Bool))
	b.Struct("bpf_prog_aux",
		F("refcnt", a64), F("used_map_cnt", u32), F("max_ctx_offset", u32), F("stack_depth", u32), F("id", u32),
		F("func_cnt", u32), F("func_idx", u32), F("attach_btf_id", u32), F("load_time", u64), F("name", b.Array(b.Char, 16)),
		F("btf", Ptr(bt)), F("used_maps", Ptr(Ptr(mp))), F("user", b.VoidPtr), F("attach_func_name", Ptr(b.Char)),
		F("func", Ptr(Ptr(prog))), F("jited_linfo", Ptr(b.VoidPtr)), F("func_info", Ptr(b.Decl("bpf_func_info"))),
		F("func_info_cnt", u32), F("linfo", Ptr(b.Decl("bpf_line_info"))), F("nr_linfo", u32), F("ksym", b.Decl("bpf_ksym")))
	b.Struct("bpf_prog",
		F("pages", u16), Bitfield("jited", u16, 16, 1), Bitfield("gpl_compatible", u16, 18, 1),
		At(4, "type", b.Named("enum bpf_prog_type")), F("expected_attach_type", b.Named("enum bpf_attach_type")),
		F("len", u32), F("jited_len", u32), F("tag", b.Array(u8, 8)), F("stats", b.VoidPtr), F("bpf_func", b.FuncPtr()),
		F("aux", Ptr(b.Decl("bpf_prog_aux"))),
		F("", b.Union("", F("insns", b.Array(u64, 0)), F("insnsi", b.Array(b.Decl("bpf_insn"), 0)))))
	b.Struct("btf", F("data", b.VoidPtr), F("data_size", u32), F("id", u32))

	fp := b.FuncPtr()
	b.Struct("bpf_map_ops", F("map_alloc", fp), F("map_lookup_elem", fp), F("map_update_elem", fp), F("map_delete_elem", fp))
	b.Struct("bpf_map",
		F("ops", Ptr(b.Decl("bpf_map_ops"))), F("map_type", b.Named("enum bpf_map_type")), F("key_size", u32), F("value_size", u32),
		F("max_entries", u32), F("map_flags", u32), F("id", u32), F("btf", Ptr(bt)), F("btf_key_type_id", u32),
		F("btf_value_type_id", u32), F("name", b.Array(b.Char, 16)), F("frozen", b.Bool), F("owner", b.VoidPtr))
	b.Struct("bpf_array", F("map", mp), F("elem_size", u32), F("index_mask", u32), F("aux", b.VoidPtr),
		At(uint32(b.Decl("bpf_map").Size)+16, "", b.Union("", F("value", b.Array(b.Char, 0)), F("ptrs", b.Array(b.VoidPtr, 0)), F("pptrs", b.Array(b.VoidPtr, 0)))))
	nn := b.Decl("hlist_nulls_node")
	b.Struct("hlist_nulls_node", F("next", Ptr(nn)), F("pprev", Ptr(Ptr(nn))))
	b.Struct("hlist_nulls_head", F("first", Ptr(nn)))
	b.Struct("bucket", F("head", b.Decl("hlist_nulls_head")), F("raw_lock", u32))
	b.Struct("bpf_lru_node", F("list", lh), F("cpu", u16), F("type", u8), F("ref", u8))
	b.Struct("htab_elem",
		F("", b.Union("", F("hash_node", nn), F("", AnonStruct(F("padding", b.VoidPtr), F("fnode", b.VoidPtr))))),
		F("", b.Union("", F("ptr_to_pptr", b.VoidPtr), F("lru_node", b.Decl("bpf_lru_node")))),
		F("hash", u32), At(48, "key", b.Array(b.Char, 0)))
	b.Struct("bpf_htab", F("map", mp), F("buckets", Ptr(b.Decl("bucket"))), F("elems", b.VoidPtr), F("count", b.Atomic()),
		F("n_buckets", u32), F("elem_size", u32), F("hashrnd", u32))
	ln := b.Decl("lpm_trie_node")
	b.Struct("lpm_trie_node", F("rcu", AnonStruct(F("next", b.VoidPtr), F("func", b.VoidPtr))), F("child", b.Array(Ptr(ln), 2)),
		F("prefixlen", u32), F("flags", u32), F("data", b.Array(u8, 0)))
	b.Struct("lpm_trie", F("map", mp), F("root", Ptr(ln)), F("n_entries", b.ULong), F("max_prefixlen", b.ULong), F("data_size", b.ULong))
	b.Struct("bpf_ringbuf", F("mask", u64), F("pages", b.VoidPtr), F("nr_pages", s32), F("pending_pos", u64),
		At(4096, "consumer_pos", b.ULong), At(8192, "producer_pos", b.ULong), At(12288, "data", b.Array(b.Char, 0)))
	b.Struct("bpf_ringbuf_map", F("map", mp), F("rb", Ptr(b.Decl("bpf_ringbuf"))))
	b.Struct("perf_event_attr", F("type", u32), F("size", u32), F("config", u64))
	b.Struct("perf_event", F("attr", b.Decl("perf_event_attr")), F("oncpu", s32), F("cpu", s32))
	b.Struct("bpf_event_entry", F("event", Ptr(b.Decl("perf_event"))), F("perf_file", b.VoidPtr), F("map_file", b.VoidPtr))

	// The test runs' contexts.
	dev := b.Decl("net_device")
	b.Struct("sk_buff",
		F("next", b.VoidPtr), F("prev", b.VoidPtr), F("dev", Ptr(dev)), F("sk", Ptr(b.Decl("sock"))), F("tstamp", b.S64),
		F("cb", b.Array(b.Char, 48)), F("len", u32), F("data_len", u32), F("mac_len", u16), F("queue_mapping", u16),
		Bitfield("pkt_type", u8, 8*(8+8+8+8+8+48+4+4+2+2), 3), Bitfield("l4_hash", u8, 8*(8+8+8+8+8+48+4+4+2+2)+8, 1),
		Bitfield("sw_hash", u8, 8*(8+8+8+8+8+48+4+4+2+2)+9, 1),
		At(8+8+8+8+8+48+4+4+2+2+4, "priority", u32), F("skb_iif", s32), F("hash", u32), F("mark", u32), F("protocol", u16),
		F("transport_header", u16), F("network_header", u16), F("mac_header", u16), F("tail", u32), F("end", u32),
		F("head", Ptr(u8)), F("data", Ptr(u8)), F("truesize", u32), F("users", u32), F("alloc_cpu", u16))
	b.Struct("skb_shared_hwtstamps", F("hwtstamp", b.S64))
	b.Struct("skb_shared_info", F("flags", u8), F("meta_len", u8), F("nr_frags", u8), F("tx_flags", u8), F("gso_size", u16),
		F("gso_segs", u16), F("frag_list", b.VoidPtr), F("hwtstamps", b.Decl("skb_shared_hwtstamps")), F("dataref", u32),
		At(320-8, "destructor_arg", b.VoidPtr))
	b.Struct("qdisc_skb_cb", F("pkt_len", u32), F("slave_dev_queue_mapping", u16), F("tc_classid", u16), F("data", b.Array(u8, 20)))
	b.Struct("bpf_skb_data_end", F("qdisc_cb", b.Decl("qdisc_skb_cb")), F("data_meta", b.VoidPtr), F("data_end", b.VoidPtr))
	b.Struct("__sk_buff", F("len", u32), F("pkt_type", u32), F("mark", u32), F("queue_mapping", u32), F("protocol", u32),
		F("vlan_present", u32), F("vlan_tci", u32), F("vlan_proto", u32), F("priority", u32), F("ingress_ifindex", u32),
		F("ifindex", u32), F("tc_index", u32), F("cb", b.Array(u32, 5)), F("hash", u32), F("tc_classid", u32), F("data", u32),
		F("data_end", u32), F("napi_id", u32), F("family", u32), F("remote_ip4", u32), F("local_ip4", u32),
		F("remote_ip6", b.Array(u32, 4)), F("local_ip6", b.Array(u32, 4)), F("remote_port", u32), F("local_port", u32),
		F("data_meta", u32), F("flow_keys", u64), F("tstamp", u64), F("wire_len", u32), F("gso_segs", u32), F("sk", u64),
		F("gso_size", u32), F("tstamp_type", u8), At(176, "hwtstamp", u64))
	b.Struct("in6_addr", F("s6_addr", b.Array(u8, 16)))
	b.Struct("sock_common", F("skc_daddr", u32), F("skc_rcv_saddr", u32), F("skc_family", u16), F("skc_state", u8),
		F("skc_v6_daddr", b.Decl("in6_addr")), F("skc_v6_rcv_saddr", b.Decl("in6_addr")))
	b.Struct("sock", F("__sk_common", b.Decl("sock_common")), F("sk_mark", u32))
	b.Struct("xdp_rxq_info", F("dev", Ptr(dev)), F("queue_index", u32), F("reg_state", u32), At(64, "frag_size", u32))
	b.Struct("netdev_rx_queue", F("xdp_rxq", b.Decl("xdp_rxq_info")), At(192-8, "dev", Ptr(dev)))
	b.Struct("net_device", F("name", b.Array(b.Char, 16)), F("dev_list", lh), F("ifindex", s32), F("dev_addr", Ptr(u8)),
		F("broadcast", b.Array(u8, 32)), F("_rx", Ptr(b.Decl("netdev_rx_queue"))), F("real_num_rx_queues", u32))
	b.Struct("net", F("dev_base_head", lh), F("loopback_dev", Ptr(dev)))
	b.Struct("xdp_buff", F("data", b.VoidPtr), F("data_end", b.VoidPtr), F("data_meta", b.VoidPtr), F("data_hard_start", b.VoidPtr),
		F("rxq", Ptr(b.Decl("xdp_rxq_info"))), F("txq", b.VoidPtr), F("frame_sz", u32), F("flags", u32))
	b.Struct("xdp_md", F("data", u32), F("data_end", u32), F("data_meta", u32), F("ingress_ifindex", u32), F("rx_queue_index", u32),
		F("egress_ifindex", u32))
	b.Struct("xdp_frame", F("data", b.VoidPtr), F("len", u16), F("headroom", u16), F("metasize", u32), F("mem", u64),
		F("dev_rx", b.VoidPtr), F("frame_sz", u32), F("flags", u32))
}

// BPFKernel is a synthetic kernel with the BPF structures, for tests of
// programs and maps: build maps and programs, then open it with
// objects.NewProgram(k.M, k.B.Spec(t), k.Syms).
type BPFKernel struct {
	*Kernel
}

// NewBPFKernel declares the Linux and BPF types and makes the netns's
// loopback device (ifindex 1, one rx queue registered for XDP).
func NewBPFKernel() *BPFKernel {
	k := &BPFKernel{Kernel: NewKernel(LinuxLayout{})}
	k.B.BPF()
	net := k.M.Global(k.Syms, "init_net", uint64(k.S("net").Size))
	lo := k.New("net_device").Str("name", "lo").Set("ifindex", 1)
	addr := k.M.Alloc(32)
	lo.Set("dev_addr", addr)
	k.M.Write(lo.At("broadcast"), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	rx := k.New("netdev_rx_queue").Set("xdp_rxq.dev", lo.Addr).Set("xdp_rxq.reg_state", 1).Set("dev", lo.Addr)
	lo.Set("_rx", rx.Addr).Set("real_num_rx_queues", 1)
	n := k.Obj("net", net).Set("loopback_dev", lo.Addr)
	k.M.List(n.At("dev_base_head"), lo.At("dev_list"))
	return k
}

// Map allocates the struct called container (bpf_htab, bpf_array,
// lpm_trie, ...) with extra bytes after it, and fills its struct bpf_map
// (member map), with ops (0: none).
func (k *BPFKernel) Map(container string, extra uint64, id uint32, typ uint64, key, value, maxEntries uint32, name string, ops uint64) (c, m Obj) {
	c = k.M.Obj(k.S(container), k.M.Alloc(uint64(k.S(container).Size)+extra))
	m = c.Member("map")
	m.Set("id", uint64(id)).Set("map_type", typ).Set("key_size", uint64(key)).Set("value_size", uint64(value)).
		Set("max_entries", uint64(maxEntries)).Str("name", name).Set("ops", ops)
	return c, m
}

// Ops allocates a struct bpf_map_ops naming the map's operations, each
// at the address syms gives it.
func (k *BPFKernel) Ops(lookup, update, del string) uint64 {
	o := k.New("bpf_map_ops")
	for _, f := range []struct{ member, name string }{{"map_lookup_elem", lookup}, {"map_update_elem", update}, {"map_delete_elem", del}} {
		if f.name != "" {
			o.Set(f.member, k.Syms[f.name])
		}
	}
	return o.Addr
}

// Htab is a hash map laid out as kernel/bpf/hashtab.c: struct bpf_htab,
// its buckets (each head's nulls marker its index), elements allocated
// one by one.
type Htab struct {
	H, M             Obj
	Buckets          uint64
	NBuckets         uint64
	ElemSize, KeyOff uint64
	percpu           bool
	key              uint32
}

// Htab makes a hash map of nBuckets buckets (a power of two) with hash
// seed hashrnd.
func (k *BPFKernel) Htab(id uint32, typ uint64, key, value, maxEntries, nBuckets, hashrnd uint32, ops uint64) *Htab {
	h, m := k.Map("bpf_htab", 0, id, typ, key, value, maxEntries, "htab", ops)
	percpu := typ == 5 || typ == 10
	es := uint64(k.S("htab_elem").Size) + uint64((key+7)&^7)
	if percpu {
		es += 8
	} else {
		es += uint64((value + 7) &^ 7)
	}
	bsz := uint64(k.S("bucket").Size)
	buckets := k.M.AllocPage(bsz * uint64(nBuckets))
	for i := uint64(0); i < uint64(nBuckets); i++ {
		k.M.U64(buckets+i*bsz, i<<1|1)
	}
	h.Set("buckets", buckets).Set("n_buckets", uint64(nBuckets)).Set("elem_size", es).Set("hashrnd", uint64(hashrnd))
	m.Set("map_flags", 1) // BPF_F_NO_PREALLOC: the walkers follow the buckets
	return &Htab{H: h, M: m, Buckets: buckets, NBuckets: uint64(nBuckets), ElemSize: es, KeyOff: uint64(k.S("htab_elem").Size), percpu: percpu, key: key}
}

// Add allocates an element with key, its hash and value (for a per-CPU
// map, value is the __percpu pointer), and links it first in the bucket
// hash selects, as hlist_nulls_add_head_rcu does.
func (k *BPFKernel) Add(h *Htab, key []byte, hash uint32, value []byte) uint64 {
	e := k.M.Alloc(h.ElemSize)
	k.M.Write(e, make([]byte, h.ElemSize))
	k.Obj("htab_elem", e).Set("hash", uint64(hash))
	k.M.Write(e+h.KeyOff, key)
	k.M.Write(e+h.KeyOff+uint64((len(key)+7)&^7), value)
	head := h.Buckets + (uint64(hash)&(h.NBuckets-1))*uint64(k.S("bucket").Size)
	first, _ := k.M.u64(head)
	k.M.U64(e, first)
	k.M.U64(e+8, head)
	if first&1 == 0 {
		k.M.U64(first+8, e)
	}
	k.M.U64(head, e)
	return e
}

// Array makes an array map: values inline, or per-CPU pointers pptrs
// (each value at PerCPUAddr(cpu, pptrs[i])).
func (k *BPFKernel) Array(id uint32, typ uint64, value, maxEntries uint32, ops uint64) (a Obj, values uint64) {
	es := uint64((value + 7) &^ 7)
	if typ == 6 || typ == 3 || typ == 4 {
		es = 8
	}
	mask := uint32(1)
	for mask < maxEntries {
		mask <<= 1
	}
	a, _ = k.Map("bpf_array", es*uint64(maxEntries), id, typ, 4, value, maxEntries, "array", ops)
	a.Set("elem_size", es).Set("index_mask", uint64(mask-1))
	return a, a.At("value")
}

// Trie makes an empty LPM trie of keys of dataSize bytes.
func (k *BPFKernel) Trie(id uint32, dataSize, value, maxEntries uint32, ops uint64) Obj {
	t, m := k.Map("lpm_trie", 0, id, 11, 4+dataSize, value, maxEntries, "trie", ops)
	m.Set("map_flags", 1)
	return t.Set("data_size", uint64(dataSize)).Set("max_prefixlen", uint64(8*dataSize))
}

// Prog allocates a struct bpf_prog with its aux holding insns, its
// used_maps, and stack depth; not JITed.
func (k *BPFKernel) Prog(id uint32, typ uint64, name string, insns []byte, maps ...uint64) Obj {
	size := uint64(k.S("bpf_prog").Size) + uint64(len(insns))
	p := k.M.Obj(k.S("bpf_prog"), k.M.Alloc(size))
	aux := k.New("bpf_prog_aux").Set("id", uint64(id)).Str("name", name).Set("stack_depth", 512)
	p.Set("type", typ).Set("len", uint64(len(insns)/8)).Set("aux", aux.Addr)
	k.M.Write(p.At("insnsi"), insns)
	if len(maps) > 0 {
		um := k.M.Alloc(8 * uint64(len(maps)))
		for i, m := range maps {
			k.M.U64(um+8*uint64(i), m)
		}
		aux.Set("used_maps", um).Set("used_map_cnt", uint64(len(maps)))
	}
	return p
}

// LE32 and LE64 encode little-endian.
func LE32(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }

// LE64 encodes x little-endian.
func LE64(x uint64) []byte { return binary.LittleEndian.AppendUint64(nil, x) }
