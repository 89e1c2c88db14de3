// SPDX-License-Identifier: GPL-2.0
/*
 * ki.bpf.c: the main BPF object of the kinspect lab workload.
 *
 * It defines one map of every type the workload needs and the programs
 * that the workload loads, attaches and pins. Every object name starts with
 * "ki_" so that tests can find it in a crash dump. The Go side (maps.go,
 * progs.go) fills the maps with deterministic entries; the layouts of the
 * structs below must match the Go types of the same name there.
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

/* Indexes into ki_counters, one per program that counts its runs. */
#define KI_CNT_KPROBE 0
#define KI_CNT_TRACEPOINT 1
#define KI_CNT_FENTRY 2
#define KI_CNT_CGROUP_SKB 3
#define KI_CNT_XDP 4
#define KI_CNT_SOCK_FILTER 5
#define KI_CNT_TAIL_TGT 6
#define KI_CNT_RINGBUF 7
#define KI_CNT_MAX 8

#define KI_PERF_MAGIC 0x4b495f50455246ULL /* "KI_PERF" */
#define KI_RB_MAGIC 0x4b495f524242ULL     /* "KI_RBB" */

/* ki_value is the value of ki_hash: an array member plus a name. */
struct ki_value {
	__u64 counters[4];
	char name[16];
	__u32 flags;
	__u32 id;
};

/* ki_lpm_key is the key of ki_lpm (struct bpf_lpm_trie_key + IPv4). */
struct ki_lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

/* ki_perf_rec is what ki_xdp writes to ki_perf_events. */
struct ki_perf_rec {
	__u64 magic;
	__u64 sum;
	__u32 pkt_len;
	__u32 lpm_val;
};

/* ki_rb_rec is what ki_rb_produce writes to ki_ringbuf. */
struct ki_rb_rec {
	__u64 magic;
	__u32 len;
	__u32 mark;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct ki_value);
} ki_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} ki_array SEC(".maps");

/* ki_counters counts program runs; its values are not deterministic. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KI_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ki_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ki_pcpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} ki_pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} ki_lru_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ki_lpm_key);
	__type(value, __u32);
} ki_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ki_prog_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} ki_ringbuf SEC(".maps");

/* max_entries 0: the loader sets it to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ki_perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
} ki_stack_trace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__uint(key_size, 0);
	__uint(value_size, sizeof(__u32));
} ki_queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} ki_lru_pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__uint(key_size, 0);
	__uint(value_size, sizeof(__u32));
} ki_stack SEC(".maps");

/* ki_count adds one to ki_counters[idx]. */
static __always_inline void ki_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ki_counters, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* ki_kprobe runs on every do_nanosleep and records the kernel stack. */
SEC("kprobe/do_nanosleep")
int ki_kprobe(void *ctx)
{
	ki_count(KI_CNT_KPROBE);
	bpf_get_stackid(ctx, &ki_stack_trace, 0);
	return 0;
}

/* ki_tracepoint runs on every getpid(2). */
SEC("tracepoint/syscalls/sys_enter_getpid")
int ki_tracepoint(void *ctx)
{
	ki_count(KI_CNT_TRACEPOINT);
	return 0;
}

/* ki_fentry runs on entry of do_nanosleep through a BPF trampoline. */
SEC("fentry/do_nanosleep")
int ki_fentry(__u64 *ctx)
{
	ki_count(KI_CNT_FENTRY);
	return 0;
}

/* ki_cgroup_skb counts ingress packets of the root cgroup; it lets all pass. */
SEC("cgroup_skb/ingress")
int ki_cgroup_skb(struct __sk_buff *skb)
{
	ki_count(KI_CNT_CGROUP_SKB);
	return 1;
}

/* ki_sum_value is a real BPF-to-BPF call target (never inlined). */
static __noinline __u64 ki_sum_value(struct ki_value *v)
{
	__u64 sum = 0;

	for (int i = 0; i < 4; i++)
		sum += v->counters[i];
	return sum + v->id;
}

/*
 * ki_xdp looks up ki_hash and, for IPv4 packets, ki_lpm, calls the
 * subprogram ki_sum_value and writes a record to ki_perf_events.
 */
SEC("xdp")
int ki_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ki_perf_rec rec = {};
	struct ki_value *v;
	__u32 key = 1;

	ki_count(KI_CNT_XDP);
	rec.magic = KI_PERF_MAGIC;
	rec.pkt_len = data_end - data;

	v = bpf_map_lookup_elem(&ki_hash, &key);
	if (v)
		rec.sum = ki_sum_value(v);

	/* Ethernet (14 bytes), then the IPv4 header; daddr is at offset 16. */
	if (data + 14 + 20 <= data_end) {
		__u8 *p = data;

		if (p[12] == 0x08 && p[13] == 0x00) {
			struct ki_lpm_key lk = { .prefixlen = 32 };
			__u32 *val;

			lk.addr[0] = p[14 + 16];
			lk.addr[1] = p[14 + 17];
			lk.addr[2] = p[14 + 18];
			lk.addr[3] = p[14 + 19];
			val = bpf_map_lookup_elem(&ki_lpm, &lk);
			if (val)
				rec.lpm_val = *val;
		}
	}

	bpf_perf_event_output(ctx, &ki_perf_events, BPF_F_CURRENT_CPU, &rec,
			      sizeof(rec));
	return XDP_PASS;
}

/*
 * ki_sock_filter is attached to a socket; it counts and looks up
 * ki_lru_hash: key 1 for a packet under 1000 bytes, else key 11, which
 * the workload does not create (the packet is dropped).
 */
SEC("socket")
int ki_sock_filter(struct __sk_buff *skb)
{
	__u32 key = skb->len < 1000 ? 1 : 11;
	__u64 *v;

	ki_count(KI_CNT_SOCK_FILTER);
	v = bpf_map_lookup_elem(&ki_lru_hash, &key);
	if (!v)
		return 0;
	return skb->len;
}

/*
 * ki_tail_entry tail-calls ki_prog_array[0] (ki_tail_tgt), or slot 3,
 * which stays empty, for a packet of 1000 bytes or more.
 */
SEC("socket")
int ki_tail_entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &ki_prog_array, skb->len < 1000 ? 0 : 3);
	return 1; /* only reached if the slot is empty */
}

/* ki_tail_tgt is the tail call target; it returns 42. */
SEC("socket")
int ki_tail_tgt(struct __sk_buff *skb)
{
	ki_count(KI_CNT_TAIL_TGT);
	return 42;
}

/*
 * ki_rb_produce writes one ki_rb_rec (with the packet length) to
 * ki_ringbuf. The workload runs it through BPF_PROG_TEST_RUN and never
 * consumes the records, so they stay pending.
 */
SEC("socket")
int ki_rb_produce(struct __sk_buff *skb)
{
	struct ki_rb_rec rec = {
		.magic = KI_RB_MAGIC,
		.len = skb->len,
		.mark = skb->mark,
	};

	ki_count(KI_CNT_RINGBUF);
	bpf_ringbuf_output(&ki_ringbuf, &rec, sizeof(rec), 0);
	return 0;
}
