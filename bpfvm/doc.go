// Package bpfvm interprets xlated (post-verifier) eBPF programs the way
// the kernel's interpreter does (kernel/bpf/core.c ___bpf_prog_run, with
// Documentation/bpf/standardization/instruction-set.rst as the
// specification), over a memory made of a read-only base, such as a crash
// dump's kernel memory, under a copy-on-write overlay.
//
// The instructions are the ones the kernel holds after verification
// (prog->insnsi): the verifier has already turned context accesses into
// loads at kernel offsets, map references into 64-bit loads of kernel
// addresses and helper calls into calls of kernel functions (imm =
// function address - __bpf_call_base). A Machine runs them as such: a
// call is dispatched by the kernel symbol of its target (a Resolver,
// kallsyms in kinspect) to a Go implementation in a Registry, a tail call
// asks a TailCaller for the program in a prog_array slot, a callback a
// helper is given (BPF_PSEUDO_FUNC) is run by Machine.Call. The in-kernel
// forms (BPF_TAIL_CALL, BPF_CALL_ARGS, BPF_PROBE_MEM, BPF_PROBE_MEMSX,
// BPF_NOSPEC, BPF_MOV64_PERCPU_REG, BPF_REG_AX of constant blinding) and
// the forms the kernel hands user space (bpf_insn_prepare_dump: "call
// bpf_tail_call#12", BPF-to-BPF calls with the callee's offset in off and
// its index in imm) both run; map references by ID, as dumped, run when
// Options.MapRef resolves them. A dump turns BPF_PROBE_MEM back into
// BPF_MEM, so give the in-kernel instructions where loads through BTF
// pointers may fault.
//
//	prog := bpfvm.NewProgram("xdp_prog", insns, subprogs)
//	m := bpfvm.New(kernelMemory, bpfvm.Options{CallBase: base, Syms: syms, Helpers: bpfvm.StandardHelpers()})
//	ctx, _ := m.Alloc("ctx", 64, false)
//	if err := m.Start(prog, ctx.Addr); err != nil { ... }
//	if _, err := m.Run(); err != nil { ... }
//	ret := m.Return()
//	changes := m.Changes() // what the run wrote to kernel memory
//
// # Address space
//
// Kernel addresses read the base memory; a write goes to the overlay and
// is reported by Changes with its bytes before and after. The machine's
// own memory lives in a user-space range the kernel never maps
// (x86-64 kernel addresses start at 0xffff800000000000):
//
//	0x00007e0000000000  StackBase: frame i's 512-byte stack ends at
//	                    StackBase + (i+1)*StackStride (R10), with an
//	                    unmapped guard below it
//	0x00007e4000000000  FuncBase: code addresses of BPF subprograms whose
//	                    JIT address is not known (callbacks of bpf_loop)
//	0x00007e8000000000  AllocBase: regions from Alloc (contexts, packet
//	                    data, helper scratch), each followed by a guard
//
// # Execution
//
// Run executes until the program exits, a breakpoint or an error; Step
// executes one instruction. A TraceFunc sees every instruction with the
// registers before and after it. An instruction budget (Options.Budget,
// DefaultBudget by default) bounds every run. BPF-to-BPF calls get their
// own frame (R6-R9 and R10 saved, a fresh zeroed 512-byte stack) up to the
// kernel's MAX_CALL_FRAMES; tail calls obey MAX_TAIL_CALL_CNT.
//
// A BPF_PROBE_MEM load that faults reads 0, as the kernel's exception
// table makes it; the machine's own memory, though in a user range, reads
// as the kernel memory it stands for.
//
// Not run (ErrBadInsn): arena programs (BPF_PROBE_MEM32, BPF_PROBE_ATOMIC,
// BPF_ADDR_SPACE_CAST), which only a JIT runs; BPF_LD_ABS and BPF_LD_IND,
// which the verifier rewrites before any xlated code exists; callx.
//
// Errors are *ExecError values naming the program, the instruction index
// and, for memory faults, the address; they wrap one of the sentinels
// ErrFault, ErrBudget, ErrUnknownHelper, ErrBadInsn, ErrCallDepth,
// ErrHelper or ErrNotRunning. Memory accesses outside a run (Read, Write,
// Check) fail with *MemError values wrapping ErrFault.
package bpfvm
