// Package bpfrun replays BPF programs from a kernel's memory, as
// BPF_PROG_TEST_RUN runs them in the kernel (net/bpf/test_run.c), and
// shows the state of a program that was running when the dump was taken.
//
// A Replayer loads a program's instructions as the kernel holds them
// (prog->insnsi, after the verifier) and runs them in a bpfvm.Machine
// over the kernel's memory, read-only under a copy-on-write overlay. The
// functions the program calls are dispatched by their kallsyms name to
// Go implementations that work on the kernel's own layouts in that
// memory: the map operations the verifier calls directly or inlines
// (htab_map_lookup_elem, __htab_map_lookup_elem, array_map_update_elem,
// trie_lookup_elem, ...), the generic bpf_map_*_elem helpers through the
// map's ops, bpf_tail_call through the dump's prog_array (the target's
// instructions loaded from the dump), the packet helpers
// (bpf_skb_load_bytes, bpf_xdp_adjust_head, ...), output (ring buffer
// and perf event records, collected) and bpfvm's standard helpers. A map
// lookup returns the kernel address of the value, as the kernel does;
// an update writes the overlay, and a new hash or trie element is
// allocated in the machine's memory and linked into the map's real
// buckets or trie so that later lookups, and the bpf package's walkers,
// find it.
//
//	r := bpfrun.FromKernel(k)
//	res, err := r.Run(prog, bpfrun.RunOptions{DataIn: pkt, Repeat: 1})
//	res.Retval, res.DataOut, res.MapChanges // what the run did
//
// Contexts are built as BPF_PROG_TEST_RUN builds them, in the kernel's
// layout from BTF (the verifier rewrote the program's context accesses
// into loads at kernel offsets): a struct sk_buff with its data for
// socket filter, cgroup skb and tc programs, a struct xdp_buff for XDP,
// the u64 array of a raw tracepoint. A run's map changes are decoded by
// running the bpf package's map walkers over the overlaid memory (a
// Session's View) and comparing with the dump's.
//
// A Session keeps one machine across runs, as a kernel keeps map
// contents between test runs; a Debugger steps one run. State reads the
// BPF view of programs found on the kernel's stacks: the instruction
// being executed, its source line, R0-R10 from the x86 registers of the
// frame, the stack and the BPF-to-BPF call chain.
//
// Errors: a run that faults, exhausts its budget or calls a function
// without an implementation returns the *bpfvm.ExecError (naming the
// program, the instruction and the function); a context the kernel
// would refuse wraps ErrInvalid, as the kernel's -EINVAL; a program type
// BPF_PROG_TEST_RUN does not run, or that bpfrun does not, wraps
// ErrNotSupported.
package bpfrun
