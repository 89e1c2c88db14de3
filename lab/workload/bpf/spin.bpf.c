// SPDX-License-Identifier: GPL-2.0
/*
 * spin.bpf.c: ki_spin, the program that the workload's spinner thread runs
 * forever through BPF_PROG_TEST_RUN on CPU 1. Its JIT image holds a long
 * bounded loop of xorshift/multiply arithmetic, so almost all of the CPU
 * time is spent inside ki_spin's own code, not in helpers or in the
 * test-run harness. The loop has a constant bound (the verifier accepts
 * it on 6.1 and 6.12) and an unknown seed (so clang cannot fold it).
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

#define KI_SPIN_ITERS 2048

SEC("socket")
int ki_spin(struct __sk_buff *skb)
{
	__u64 x = skb->len | 1;
	__u64 acc = skb->mark;

#pragma clang loop unroll(disable)
	for (int i = 0; i < KI_SPIN_ITERS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		acc += x * 0x9e3779b97f4a7c15ULL;
		acc ^= acc >> 29;
	}
	return acc & 0xff;
}
