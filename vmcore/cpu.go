package vmcore

// CPU is the saved state of one CPU, from the dump's NT_PRSTATUS note and,
// in QEMU dumps, QEMU's own CPU-state note.
type CPU struct {
	Index int
	// PID is pr_pid of the NT_PRSTATUS note: the task the CPU was running
	// when the kernel saved it, or (in QEMU dumps) the CPU index plus one.
	PID int
	// HasRegs says Regs came from a note; a dump without CPU notes has
	// none.
	HasRegs bool
	Regs    Regs
	// QEMU is QEMU's extra state (control registers and descriptor
	// tables), present in dumps written by QEMU's dump-guest-memory.
	QEMU *QEMUState
}

// Regs is the general register set in the order of struct pt_regs
// (arch/x86/include/asm/ptrace.h) followed by the fields that struct
// user_regs_struct adds, as NT_PRSTATUS carries them.
type Regs struct {
	R15, R14, R13, R12, RBP, RBX uint64
	R11, R10, R9, R8             uint64
	RAX, RCX, RDX, RSI, RDI      uint64
	OrigRAX                      uint64
	RIP, CS, EFlags, RSP, SS     uint64
	FSBase, GSBase               uint64 // user_regs_struct only
	DS, ES, FS, GS               uint64 // user_regs_struct only
}

// QEMUState is the part of QEMU's QEMUCPUState that NT_PRSTATUS lacks.
type QEMUState struct {
	CR           [5]uint64 // CR0..CR4; CR3 is the page-table root
	KernelGSBase uint64    // MSR_KERNEL_GS_BASE (0 in QEMU versions without it)
	GSBase       uint64    // GS segment base: per-CPU area in kernel mode
	FSBase       uint64
	GDTBase      uint64
	IDTBase      uint64
}

// cr4LA57 is CR4.LA57: 5-level paging.
const cr4LA57 = 1 << 12
