// SPDX-License-Identifier: GPL-2.0
/*
 * lruev.bpf.c: LRU eviction, recorded by the kernel's own test runs.
 *
 * ki_tr_lruev applies a list of operations from its packet to two small
 * LRU hash maps, one with the common LRU and one with per-CPU LRU lists
 * (BPF_F_NO_COMMON_LRU), so that updates evict. Which elements an LRU
 * evicts depends on its lists, which every operation moves: a run cannot
 * be undone by writing the changed entries back. So the workload loads
 * this object twice: one copy (ki_tr_lruev_k, maps ki_tr_lrue_k and
 * ki_tr_lrup_k) is test-run, its runs chained, each from the state the
 * one before left; the other (ki_tr_lruev, maps ki_tr_lrue and
 * ki_tr_lrup) is never run and holds, in the dump, the state the first
 * runs started from. truth/testrun/ki_tr_lruev.json says so
 * (testrun.go); replaying the runs on the second copy must give the
 * kernel's results on the first.
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to,
				  __u32 len) = (void *)26;
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx,
			__u64 flags) = (void *)181;

#define BPF_F_NO_COMMON_LRU (1U << 1)
#define KI_LRUEV_OPS 32 /* a power of 2: the index is masked */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} ki_tr_lrue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u64);
} ki_tr_lrup SEC(".maps");

/*
 * ki_lruev_op applies operation op on key to map; it returns 1 for a
 * lookup that found the key or an update or delete that succeeded.
 */
static __attribute__((noinline)) int ki_lruev_op(void *map, __u32 op, __u32 key, __u64 val)
{
	switch (op) {
	case 1:
		return bpf_map_lookup_elem(map, &key) != 0;
	case 2:
		return bpf_map_update_elem(map, &key, &val, BPF_ANY) == 0;
	case 3:
		return bpf_map_delete_elem(map, &key) == 0;
	case 4:
		return bpf_map_update_elem(map, &key, &val, BPF_NOEXIST) == 0;
	default:
		return bpf_map_update_elem(map, &key, &val, BPF_EXIST) == 0;
	}
}

struct ki_lruev_ctx {
	__u8 ops[2 * KI_LRUEV_OPS];
	__u32 ok;
};

/*
 * ki_lruev_step applies operation i of c->ops (a bpf_loop callback: the
 * verifier checks it once, where a loop of 32 rounds calling
 * ki_lruev_op four ways exceeds its million instructions).
 */
static long ki_lruev_step(__u32 i, struct ki_lruev_ctx *c)
{
	__u32 op, key;
	__u64 val;

	i &= KI_LRUEV_OPS - 1; /* bounds the stack offset for the verifier */
	op = c->ops[2 * i];
	key = c->ops[2 * i + 1];
	if (op == 0 || op > 5)
		return 1;
	val = ((__u64)key << 16) | i;
	c->ok += ki_lruev_op(&ki_tr_lrue, op, key, val);
	c->ok += 256 * ki_lruev_op(&ki_tr_lrup, op, key, val);
	return 0;
}

/*
 * ki_tr_lruev: after the Ethernet header, 32 operations of two bytes
 * (operation: 1 lookup, 2 update, 3 delete, 4 update if absent, 5 update
 * if present; 0 ends the list; then the key). Each applies to both maps;
 * an update writes key << 16 | the operation's index. It returns the
 * successes on ki_tr_lrue plus 256 times those on ki_tr_lrup, or 0 for a
 * packet too short to hold the 32.
 */
SEC("socket")
int ki_tr_lruev(struct __sk_buff *skb)
{
	struct ki_lruev_ctx c = {};

	/* A socket filter's test run pulls the Ethernet header: offset 0 is after it. */
	if (bpf_skb_load_bytes(skb, 0, c.ops, sizeof(c.ops)) < 0)
		return 0;
	bpf_loop(KI_LRUEV_OPS, ki_lruev_step, &c, 0);
	return c.ok;
}
