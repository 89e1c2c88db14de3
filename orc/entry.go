package orc

import "fmt"

// Reg is the register an ORC entry computes the caller's stack pointer
// (or frame pointer) from: ORC_REG_* of orc_types.h.
type Reg uint8

// The registers.
const (
	RegUndefined  Reg = rawRegUndefined
	RegPrevSP     Reg = rawRegPrevSP // the CFA just computed
	RegDX         Reg = rawRegDX
	RegDI         Reg = rawRegDI
	RegBP         Reg = rawRegBP
	RegSP         Reg = rawRegSP
	RegR10        Reg = rawRegR10
	RegR13        Reg = rawRegR13
	RegBPIndirect Reg = rawRegBPIndirect // *(bp + offset)
	RegSPIndirect Reg = rawRegSPIndirect // *(sp) + offset
)

var regNames = [...]string{"undef", "prevsp", "dx", "di", "bp", "sp", "r10", "r13", "bp(ind)", "sp(ind)"}

// String names the register as objtool's ORC dump does ("sp", "bp(ind)"),
// and "reg(N)" for an unknown one.
func (r Reg) String() string {
	if int(r) < len(regNames) {
		return regNames[r]
	}
	return fmt.Sprintf("reg(%d)", uint8(r))
}

// Type is what an entry says the caller's frame is: the newest model
// (v6.4+); older layouts decode into it.
type Type uint8

// The types.
const (
	// TypeUndefined: no unwind information (a gap, or code objtool could
	// not follow); a stack reaching it does not unwind.
	TypeUndefined Type = iota
	// TypeEndOfStack: the outermost frame (ret_from_fork of a kernel
	// thread, the boot CPU's startup code).
	TypeEndOfStack
	// TypeCall: a normal frame; the return address is just below the CFA.
	TypeCall
	// TypeRegs: a full struct pt_regs sits at the CFA (syscall,
	// interrupt or exception entry).
	TypeRegs
	// TypeRegsPartial: only the hardware iret frame (ip, cs, flags, sp,
	// ss) is at the CFA.
	TypeRegsPartial
)

var typeNames = [...]string{"undefined", "end", "call", "regs", "regs_partial"}

// String names the type; "type(N)" for an unknown one.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Entry is one decoded ORC entry: how to find the caller's frame from an
// instruction address.
type Entry struct {
	SPOffset int16
	BPOffset int16
	SPReg    Reg
	BPReg    Reg
	Type     Type
	// Signal says the caller's IP is an interrupted instruction, not a
	// return address (so it is looked up as is, not minus one): set for
	// regs frames, and by objtool's signal bit since v6.3.
	Signal bool
}

// String renders the entry as objtool --dump does: "sp:sp+8 bp:prevsp-16
// type:call signal:0".
func (e Entry) String() string {
	sig := 0
	if e.Signal {
		sig = 1
	}
	return fmt.Sprintf("sp:%s%+d bp:%s%+d type:%s signal:%d", e.SPReg, e.SPOffset, e.BPReg, e.BPOffset, e.Type, sig)
}

// Special entries of the kernel's unwinder (arch/x86/kernel/unwind_orc.c).
var (
	// nullEntry unwinds a call through a NULL function pointer (ip 0):
	// the return address is at the stack pointer.
	nullEntry = Entry{SPOffset: 8, SPReg: RegSP, BPReg: RegUndefined, Type: TypeCall}
	// fpEntry (orc_fp_entry) guesses a frame-pointer frame for code
	// without ORC data, such as BPF JIT images: CFA = bp+16, the
	// caller's bp saved at CFA-16.
	fpEntry = Entry{SPOffset: 16, SPReg: RegBP, BPOffset: -16, BPReg: RegPrevSP, Type: TypeCall}
)
