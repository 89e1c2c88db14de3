// SPDX-License-Identifier: GPL-2.0
/*
 * testrun.bpf.c: programs the workload runs through BPF_PROG_TEST_RUN to
 * record the kernel's own results (truth/testrun/NAME.json, testrun.go),
 * which kinspect's replay of the dump must equal.
 *
 * One program per test-runnable type (socket_filter, tc, xdp, cgroup_skb,
 * raw_tracepoint), between them: tail calls through ki_tr_progs,
 * BPF-to-BPF calls, bpf_loop, lookups, updates and deletes on hash, array,
 * per-CPU array, LRU hash and LPM trie maps, ringbuf and perf event
 * output, bpf_skb_load_bytes/store_bytes and bpf_xdp_adjust_head/tail.
 * Every branch is chosen by the input alone, and nothing written to a map
 * depends on time or randomness, so each run's map changes are
 * deterministic. No program here is attached: only test runs run them.
 * Map names are at most 15 characters (BPF_OBJ_NAME_LEN).
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

/* Helpers bpf_defs.h does not declare (enum bpf_func_id). */
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from,
				   __u32 len, __u64 flags) = (void *)9;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to,
				  __u32 len) = (void *)26;
static long (*bpf_xdp_adjust_head)(struct xdp_md *xdp_md, int delta) = (void *)44;
static long (*bpf_xdp_adjust_tail)(struct xdp_md *xdp_md, int delta) = (void *)65;
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx,
			__u64 flags) = (void *)181;

/* enum tc_action codes (include/uapi/linux/pkt_cls.h). */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_RECLASSIFY 1
#define TC_ACT_SHOT 2
#define XDP_TX 3

/* struct bpf_raw_tracepoint_args: the raw_tracepoint context. */
struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

/* ki_tr_lpm_key is the key of ki_tr_lpm (struct bpf_lpm_trie_key + IPv4). */
struct ki_tr_lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

/* ki_tr_rec is what ki_tr_xdp and ki_tr_rawtp write to the output maps. */
struct ki_tr_rec {
	__u64 magic;
	__u64 arg;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} ki_tr_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ki_tr_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} ki_tr_pcpu SEC(".maps");

/*
 * Big enough that neither the runs nor the workload's restoring of the
 * entries a run changed evict: an update from user space takes a node
 * from the LRU as a program's does, and a small LRU evicts then (each
 * CPU's local free list takes up to 128 nodes at once), so the dump would
 * not hold the state the runs started from.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} ki_tr_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ki_tr_lpm_key);
	__type(value, __u32);
} ki_tr_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ki_tr_progs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} ki_tr_rb SEC(".maps");

/* max_entries 0: the loader sets it to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ki_tr_perf SEC(".maps");

/* ki_tr_mix is a BPF-to-BPF call target (never inlined). */
static __noinline __u64 ki_tr_mix(__u64 a, __u64 b)
{
	return a * 31 + (b ^ 0x5a);
}

/* ki_tr_loop_ctx is bpf_loop's callback context. */
struct ki_tr_loop_ctx {
	__u64 sum;
	__u8 buf[8];
};

/* ki_tr_loop_cb folds one byte into the sum; it stops the loop above 1e6. */
static int ki_tr_loop_cb(__u32 i, void *data)
{
	struct ki_tr_loop_ctx *c = data;

	c->sum = c->sum * 3 + c->buf[i & 7];
	return c->sum > 1000000 ? 1 : 0;
}

/*
 * ki_tr_sock: the socket filter. Its first 8 bytes (after the Ethernet
 * header) choose: byte 1 % 4 is the operation, byte 0 & 7 the key, byte 2
 * an operand.
 */
SEC("socket")
int ki_tr_sock(struct __sk_buff *skb)
{
	struct ki_tr_loop_ctx lc = {};
	__u64 val, *v;
	__u32 key;

	if (bpf_skb_load_bytes(skb, 0, lc.buf, 8) < 0)
		return 0;
	key = lc.buf[0] & 7;
	switch (lc.buf[1] & 3) {
	case 0:
		v = bpf_map_lookup_elem(&ki_tr_hash, &key);
		if (v) {
			*v += lc.buf[2];
			return 1;
		}
		val = lc.buf[2];
		return bpf_map_update_elem(&ki_tr_hash, &key, &val, BPF_NOEXIST) ? 3 : 2;
	case 1:
		return 10 + (bpf_map_delete_elem(&ki_tr_hash, &key) == 0);
	case 2:
		val = ki_tr_mix(key, lc.buf[2]);
		bpf_map_update_elem(&ki_tr_lru, &key, &val, BPF_ANY);
		return 20;
	default:
		bpf_loop(lc.buf[2] & 15, ki_tr_loop_cb, &lc, 0);
		bpf_map_update_elem(&ki_tr_array, &key, &lc.sum, BPF_ANY);
		return lc.sum & 0xffff;
	}
}

/*
 * ki_tr_tc: the tc classifier. IPv4 (with the UDP/TCP destination port,
 * or TC_ACT_UNSPEC): the destination's ki_tr_lpm value counts in
 * ki_tr_pcpu and, xor the port, is the mark; no match rewrites the destination
 * MAC and drops. IPv6: a tail call to ki_tr_progs[mark & 3]. Others: the
 * length plus the mark.
 */
SEC("tc")
int ki_tr_tc(struct __sk_buff *skb)
{
	__u64 mac = 0x0163746b6902ULL; /* 02:69:6b:74:63:01, little-endian */
	struct ki_tr_lpm_key lk = { .prefixlen = 32 };
	__u16 proto, port;
	__u32 *val;

	if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0)
		return TC_ACT_UNSPEC;
	if (proto == 0x0008) { /* htons(ETH_P_IP) */
		if (bpf_skb_load_bytes(skb, 30, lk.addr, 4) < 0 ||
		    bpf_skb_load_bytes(skb, 36, &port, 2) < 0)
			return TC_ACT_UNSPEC;
		val = bpf_map_lookup_elem(&ki_tr_lpm, &lk);
		if (val) {
			__u32 idx = *val & 3;
			__u64 *c = bpf_map_lookup_elem(&ki_tr_pcpu, &idx);

			if (c)
				*c += 1;
			skb->mark = *val ^ port;
			return TC_ACT_OK;
		}
		bpf_skb_store_bytes(skb, 0, &mac, 6, 0);
		return TC_ACT_SHOT;
	}
	if (proto == 0xdd86) { /* htons(ETH_P_IPV6) */
		bpf_tail_call(skb, &ki_tr_progs, skb->mark & 3);
		return TC_ACT_RECLASSIFY; /* an empty slot */
	}
	return skb->len + skb->mark;
}

/* ki_tr_tail0 is ki_tr_progs[0]: it counts the packet length in ki_tr_hash[9]. */
SEC("tc")
int ki_tr_tail0(struct __sk_buff *skb)
{
	__u32 key = 9;
	__u64 val = skb->len;

	bpf_map_update_elem(&ki_tr_hash, &key, &val, BPF_ANY);
	skb->cb[0] = 0x7a11;
	return 7;
}

/* ki_tr_tail1 is ki_tr_progs[1]: ki_tr_mix of the length and cb[1] into ki_tr_array[5]. */
SEC("tc")
int ki_tr_tail1(struct __sk_buff *skb)
{
	__u32 key = 5;
	__u64 val = ki_tr_mix(skb->len, skb->cb[1]);

	bpf_map_update_elem(&ki_tr_array, &key, &val, BPF_ANY);
	return 8;
}

/*
 * ki_tr_xdp: byte 0 & 3 chooses: 0 pops 14 bytes, 1 pushes 4 bytes of
 * 0xdeadbeef (XDP_TX), 2 trims 8 bytes, 3 grows 16 bytes (zeros) and writes
 * 0x5a over the first byte. Each run writes a perf record (with the packet's first 8
 * bytes) and keeps the result of bpf_perf_event_output in ki_tr_array[6].
 */
SEC("xdp")
int ki_tr_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ki_tr_rec rec = { .magic = 0x4b495f5452ULL };
	__u32 key = 6;
	__u64 ret;
	__u8 op;

	if (data + 1 > data_end)
		return XDP_ABORTED;
	op = *(__u8 *)data;
	rec.arg = op;
	ret = bpf_perf_event_output(ctx, &ki_tr_perf, BPF_F_CURRENT_CPU | (8ULL << 32), &rec, sizeof(rec));
	bpf_map_update_elem(&ki_tr_array, &key, &ret, BPF_ANY);
	switch (op & 3) {
	case 0:
		return bpf_xdp_adjust_head(ctx, 14) ? XDP_DROP : XDP_PASS;
	case 1:
		if (bpf_xdp_adjust_head(ctx, -4))
			return XDP_DROP;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + 4 > data_end)
			return XDP_ABORTED;
		*(__u32 *)data = 0xefbeadde;
		return XDP_TX;
	case 2:
		return bpf_xdp_adjust_tail(ctx, -8) ? XDP_DROP : XDP_PASS;
	default:
		if (bpf_xdp_adjust_tail(ctx, 16))
			return XDP_DROP;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + 1 > data_end)
			return XDP_ABORTED;
		*(__u8 *)data = 0x5a;
		return XDP_PASS;
	}
}

/*
 * ki_tr_cgskb: the cgroup_skb program (ingress). By the IPv4 protocol:
 * UDP adds the length to ki_tr_pcpu[1]; TCP deletes ki_tr_lru[len & 31]
 * when present; ICMP drops; others store the length in ki_tr_array[2].
 */
SEC("cgroup_skb/ingress")
int ki_tr_cgskb(struct __sk_buff *skb)
{
	__u32 key, len = skb->len;
	__u8 proto;
	__u64 *v;

	if (bpf_skb_load_bytes(skb, 9, &proto, 1) < 0)
		return 0;
	switch (proto) {
	case 17:
		key = 1;
		v = bpf_map_lookup_elem(&ki_tr_pcpu, &key);
		if (v)
			*v += len;
		return 1;
	case 6:
		key = len & 31;
		if (bpf_map_lookup_elem(&ki_tr_lru, &key))
			bpf_map_delete_elem(&ki_tr_lru, &key);
		return 1;
	case 1:
		return 0;
	default: {
		__u64 val = len;

		key = 2;
		bpf_map_update_elem(&ki_tr_array, &key, &val, BPF_ANY);
		return 1;
	}
	}
}

/*
 * ki_tr_rawtp: the raw tracepoint program (never attached; its context
 * is the u64 array of ctx_in). args[1] chooses: 39 writes a ringbuf
 * record; below 16, the ki_tr_lpm value of the address in args[0]; below
 * 64, bpf_loop over args[0]'s bytes into ki_tr_array[3]; otherwise the
 * CPU's ki_tr_pcpu[3] = args[0] and ki_tr_hash[args[0]] deleted.
 */
SEC("raw_tracepoint/sys_enter")
int ki_tr_rawtp(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 a0 = ctx->args[0], id = ctx->args[1];
	__u32 key;

	if (id == 39) {
		struct ki_tr_rec rec = { .magic = 0x4b495f5452ULL, .arg = a0 };

		return 100 + bpf_ringbuf_output(&ki_tr_rb, &rec, sizeof(rec), 0);
	}
	if (id < 16) {
		struct ki_tr_lpm_key lk = { .prefixlen = 32 };
		__u32 *val;

		__builtin_memcpy(lk.addr, &a0, 4);
		val = bpf_map_lookup_elem(&ki_tr_lpm, &lk);
		return val ? *val : 0x100;
	}
	if (id < 64) {
		struct ki_tr_loop_ctx lc = {};

		__builtin_memcpy(lc.buf, &a0, 8);
		bpf_loop(id & 15, ki_tr_loop_cb, &lc, 0);
		key = 3;
		bpf_map_update_elem(&ki_tr_array, &key, &lc.sum, BPF_ANY);
		return lc.sum & 0xffff;
	}
	key = 3;
	bpf_map_update_elem(&ki_tr_pcpu, &key, &a0, BPF_ANY);
	key = a0;
	return 200 + bpf_map_delete_elem(&ki_tr_hash, &key);
}
