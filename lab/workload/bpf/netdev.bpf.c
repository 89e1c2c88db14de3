// SPDX-License-Identifier: GPL-2.0
/*
 * netdev.bpf.c: programs attached to the lab's network devices (init.sh
 * makes ki_dummy0, the veth pair ki_veth0/ki_veth1 and the bridge ki_br0):
 * XDP in driver mode, through a link (workload) and through netlink
 * (init.sh: ip link set ... xdpdrv pinned), and tc, through tcx links
 * (workload, 6.6+) and cls_bpf filters (init.sh: tc filter ... bpf). They
 * touch no map, so the packets the devices see change nothing but their
 * run counts.
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int ki_net_xdp(struct xdp_md *ctx)
{
	return 2; /* XDP_PASS */
}

SEC("tc")
int ki_net_tc(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}
