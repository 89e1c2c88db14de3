/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf_defs.h: the minimal, self-contained subset of the kernel's BPF uapi
 * and of libbpf's bpf_helpers.h that the kinspect lab workload needs.
 *
 * The lab builds the BPF objects with nothing but Debian's clang:
 *
 *   clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I lab/workload/bpf \
 *         -c lab/workload/bpf/X.bpf.c -o OUT/X.bpf.o
 *
 * so this header must not include any kernel or libc header (with
 * -target bpf clang does not search the multiarch include directory, and
 * there is no vmlinux.h). Every constant and layout below is copied from
 * include/uapi/linux/bpf.h; the values are ABI and identical on 6.1 and 6.12.
 */
#ifndef KI_BPF_DEFS_H
#define KI_BPF_DEFS_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;

/* Section and inlining helpers, as in libbpf's bpf_helpers.h. */
#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __noinline __attribute__((noinline))

/* BTF-defined map attributes, as in libbpf's bpf_helpers.h. */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name
#define __array(name, val) __typeof__(val) *name[]

/* enum bpf_map_type */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PROG_ARRAY 3
#define BPF_MAP_TYPE_PERF_EVENT_ARRAY 4
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_STACK_TRACE 7
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_LRU_PERCPU_HASH 10
#define BPF_MAP_TYPE_LPM_TRIE 11
#define BPF_MAP_TYPE_QUEUE 22
#define BPF_MAP_TYPE_STACK 23
#define BPF_MAP_TYPE_RINGBUF 27

/* Map creation and update flags. */
#define BPF_F_NO_PREALLOC (1U << 0)
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_EXIST 2

/* Flags for bpf_perf_event_output and bpf_get_stackid. */
#define BPF_F_CURRENT_CPU 0xffffffffULL
#define BPF_F_FAST_STACK_CMP (1ULL << 9)

/* enum xdp_action */
#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_PASS 2

/* PERF_MAX_STACK_DEPTH from include/uapi/linux/perf_event.h. */
#define PERF_MAX_STACK_DEPTH 127

/*
 * struct __sk_buff: the user-visible socket buffer context. Only the
 * leading fields up to data_end are declared; the verifier checks context
 * accesses by offset, so a prefix of the uapi layout is enough.
 */
struct __sk_buff {
	__u32 len;             /* offset 0 */
	__u32 pkt_type;        /* 4 */
	__u32 mark;            /* 8 */
	__u32 queue_mapping;   /* 12 */
	__u32 protocol;        /* 16 */
	__u32 vlan_present;    /* 20 */
	__u32 vlan_tci;        /* 24 */
	__u32 vlan_proto;      /* 28 */
	__u32 priority;        /* 32 */
	__u32 ingress_ifindex; /* 36 */
	__u32 ifindex;         /* 40 */
	__u32 tc_index;        /* 44 */
	__u32 cb[5];           /* 48 */
	__u32 hash;            /* 68 */
	__u32 tc_classid;      /* 72 */
	__u32 data;            /* 76 */
	__u32 data_end;        /* 80 */
};

/* struct xdp_md: the XDP context (uapi layout, 24 bytes). */
struct xdp_md {
	__u32 data;             /* offset 0 */
	__u32 data_end;         /* 4 */
	__u32 data_meta;        /* 8 */
	__u32 ingress_ifindex;  /* 12 */
	__u32 rx_queue_index;   /* 16 */
	__u32 egress_ifindex;   /* 20 */
};

/*
 * Helper prototypes. The number cast to a function pointer is the helper's
 * index in the kernel's __BPF_FUNC_MAPPER (enum bpf_func_id).
 */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key,
				   const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)8;
static long (*bpf_tail_call)(void *ctx, void *prog_array_map,
			     __u32 index) = (void *)12;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_perf_event_output)(void *ctx, void *map, __u64 flags,
				     void *data, __u64 size) = (void *)25;
static long (*bpf_get_stackid)(void *ctx, void *map, __u64 flags) = (void *)27;
static long (*bpf_map_push_elem)(void *map, const void *value,
				 __u64 flags) = (void *)87;
static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size,
				  __u64 flags) = (void *)130;

#endif /* KI_BPF_DEFS_H */
