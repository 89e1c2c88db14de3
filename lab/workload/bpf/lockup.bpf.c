// SPDX-License-Identifier: GPL-2.0
/*
 * lockup.bpf.c: ki_lockup, the program that locks a CPU up (kd-lockup:
 * the workload's -lockup thread runs it once through BPF_PROG_TEST_RUN on
 * CPU 0). bpf_loop calls ki_lockup_step 1<<23 times, each a bounded loop
 * of the spinner's arithmetic: one run lasts minutes under TCG (seconds on
 * hardware) and never reaches a reschedule point on 6.1, so the soft
 * lockup watchdog fires with the program on the stack.
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

/* bpf_loop is helper 181 in __BPF_FUNC_MAPPER (5.17+). */
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx,
			__u64 flags) = (void *)181;

#define KI_LOCKUP_LOOPS (1 << 23)
#define KI_LOCKUP_STEP_ITERS 256

struct ki_lockup_ctx {
	__u64 x;
	__u64 acc;
};

static long ki_lockup_step(__u32 i, void *data)
{
	struct ki_lockup_ctx *c = data;
	__u64 x = c->x, acc = c->acc;

#pragma clang loop unroll(disable)
	for (int j = 0; j < KI_LOCKUP_STEP_ITERS; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		acc += x * 0x9e3779b97f4a7c15ULL;
		acc ^= acc >> 29;
	}
	c->x = x;
	c->acc = acc;
	return 0;
}

SEC("socket")
int ki_lockup(struct __sk_buff *skb)
{
	struct ki_lockup_ctx c = { .x = skb->len | 1, .acc = skb->mark };

	bpf_loop(KI_LOCKUP_LOOPS, ki_lockup_step, &c, 0);
	return c.acc & 0xff;
}
