// SPDX-License-Identifier: GPL-2.0
/*
 * small.bpf.c: ki_small, the template of the ~500 tiny programs that
 * "workload run -scale" loads as ki_s0000..ki_s0499. The loader patches the
 * KI_SMALL_MAGIC immediate to make each copy's tag distinct.
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

#define KI_SMALL_MAGIC 0x5a5a0000

SEC("socket")
int ki_small(struct __sk_buff *skb)
{
	return KI_SMALL_MAGIC;
}
