// Package btfload loads the kernel's BTF type information — from kernel
// memory between __start_BTF and __stop_BTF, from /sys/kernel/btf, or from
// a file — including the split BTF of modules, and answers questions about
// types by C name.
//
// Parsing is github.com/cilium/ebpf/btf's, which decodes a type (and what
// it refers to) on first use only; this package adds what an inspector
// needs on top:
//
//   - Spec.Type resolves C type names: "struct task_struct", "task_struct",
//     "unsigned long", "u64", "const char *", "struct list_head [4]".
//     Failures name the closest names the BTF has.
//   - ParseDecl and Decls: a small declaration language for global
//     variables, which have no BTF type ("struct task_struct init_task",
//     "unsigned long __per_cpu_offset[8192]"), with a built-in table of the
//     globals kinspect's walkers need (Builtin), and per-CPU variables
//     typed by the .data..percpu DATASEC.
//   - FormatC renders a type and everything it depends on as C that
//     compiles, like "bpftool btf dump format c" for one type's closure.
//   - NewLayout computes a pahole-style layout: offsets, holes, padding,
//     bitfields, cachelines.
//
// Errors wrap one of ErrNotFound, ErrFormat or ErrNotSupported.
package btfload
