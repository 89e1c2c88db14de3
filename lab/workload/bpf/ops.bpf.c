// SPDX-License-Identifier: GPL-2.0
/*
 * ops.bpf.c: ki_cc, a struct_ops map implementing a TCP congestion control
 * ("ki_cc") with three struct_ops programs. The kernel requires struct_ops
 * programs to be GPL-compatible, hence an object of its own.
 *
 * The section is ".struct_ops.link" (what cilium/ebpf reads); on kernels
 * before 6.4 the loader clears BPF_F_LINK and the map update registers it.
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

struct sock;

/* The members of the kernel's struct tcp_congestion_ops that ki_cc sets;
 * cilium/ebpf matches them to the kernel's type by name. */
struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
};

/* struct_ops programs receive their arguments as an array of u64. */
SEC("struct_ops/ki_ssthresh")
__u32 ki_ssthresh(__u64 *ctx)
{
	return 2;
}

SEC("struct_ops/ki_cong_avoid")
void ki_cong_avoid(__u64 *ctx)
{
}

SEC("struct_ops/ki_undo_cwnd")
__u32 ki_undo_cwnd(__u64 *ctx)
{
	return 10;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops ki_cc = {
	.ssthresh = (void *)ki_ssthresh,
	.cong_avoid = (void *)ki_cong_avoid,
	.undo_cwnd = (void *)ki_undo_cwnd,
	.name = "ki_cc",
};
