// Package orc unwinds kernel stacks with the kernel's own ORC tables,
// read from its memory, falling back to the frame pointer in code that
// has none (BPF JIT images), as arch/x86/kernel/unwind_orc.c does.
//
//	k, err := orc.Load(prog, release)           // finds the tables; reads nothing more
//	tr, err := k.UnwindTask(task)               // a sleeping task, from task->thread.sp
//	tr, err := k.UnwindRegs(regs, cpu, task)    // a CPU, from the dump's registers
//	for _, f := range tr.Frames {
//		s := k.Symbolize(syms, f)               // name+0xoff/0xsize [module], BPF id and line
//	}
//
// Tables: vmlinux's .orc_unwind_ip and .orc_unwind through orc_lookup (a
// 256-byte block of text at a time, read on first use), each module's
// mod->arch tables (read when one of its addresses is first looked up).
// Every entry layout (Format: 4.14-6.2, 6.3, 6.4+) decodes into one
// Entry; the layout is decided by BTF's struct orc_entry, else the
// orc_header hash (6.4+), else the release, and an unknown one is
// refused with ErrNotSupported.
//
// Unwinding follows the kernel's unwind_next_frame: regs and iret
// (regs_partial) frames, the IRQ, IST exception (NMI, DB, MCE, DF, VC)
// and entry stacks of the CPU, each visited once; the stack pointer must
// climb within a stack. A trace ends cleanly at an end-of-stack entry or
// at user mode's pt_regs; otherwise Trace.Err says where it stopped
// (ErrCorrupt, ErrFormat or a memory error), and frames found by the
// frame pointer mark it unreliable.
//
// Not handled: ftrace trampolines (orc_ftrace_find), return addresses
// replaced by the function-graph tracer or kretprobes
// (ftrace_graph_ret_addr, unwind_recover_rethook), 32-bit kernels.
package orc
