// SPDX-License-Identifier: GPL-2.0
/*
 * links.bpf.c: programs attached through the link types the core object
 * does not use: an iterator (iter link) and an sk_lookup program (netns
 * link).
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

/* ki_iter walks one map's elements (the loader attaches it to ki_hash). */
SEC("iter/bpf_map_elem")
int ki_iter(void *ctx)
{
	return 0;
}

/* ki_sk_lookup lets every socket lookup of the network namespace go on as
 * usual (SK_PASS without selecting a socket). */
SEC("sk_lookup")
int ki_sk_lookup(void *ctx)
{
	return 1;
}
