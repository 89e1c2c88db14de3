package orc

import (
	"encoding/binary"

	"github.com/kinspect/kinspect/vmcore"
)

// Regs is a register set a frame came from: a CPU's saved registers (the
// dump's NT_PRSTATUS note), or a struct pt_regs on a stack (an
// interrupt, exception or syscall entry).
type Regs struct {
	// Addr is the pt_regs' address on the stack; 0 for a CPU's note.
	Addr uint64
	// Partial says only the hardware iret frame (IP, CS, EFlags, RSP,
	// SS) is valid (ORC regs_partial).
	Partial bool
	vmcore.Regs
}

// UserMode says the registers are user space's (the low bits of CS:
// user_mode()).
func (r *Regs) UserMode() bool { return r.CS&3 != 0 }

// field returns the register of pt_regs member name.
func (r *Regs) field(name string) *uint64 {
	x := &r.Regs
	switch name {
	case "r15":
		return &x.R15
	case "r14":
		return &x.R14
	case "r13":
		return &x.R13
	case "r12":
		return &x.R12
	case "bp":
		return &x.RBP
	case "bx":
		return &x.RBX
	case "r11":
		return &x.R11
	case "r10":
		return &x.R10
	case "r9":
		return &x.R9
	case "r8":
		return &x.R8
	case "ax":
		return &x.RAX
	case "cx":
		return &x.RCX
	case "dx":
		return &x.RDX
	case "si":
		return &x.RSI
	case "di":
		return &x.RDI
	case "orig_ax":
		return &x.OrigRAX
	case "ip":
		return &x.RIP
	case "cs":
		return &x.CS
	case "flags":
		return &x.EFlags
	case "sp":
		return &x.RSP
	case "ss":
		return &x.SS
	}
	return nil
}

// decodeRegs decodes the struct pt_regs bytes b (read at addr) by the
// BTF layout; only the members inside b are set (an iret frame).
func decodeRegs(l *layouts, b []byte, base uint64, addr uint64, partial bool) *Regs {
	r := &Regs{Addr: addr, Partial: partial}
	for name, f := range l.regsOff {
		if f.off < base || f.off-base+uint64(f.size) > uint64(len(b)) {
			continue
		}
		var tmp [8]byte
		copy(tmp[:], b[f.off-base:f.off-base+uint64(f.size)])
		*r.field(name) = binary.LittleEndian.Uint64(tmp[:])
	}
	return r
}

// orcReg returns the register an ORC entry names, from a full register
// set.
func (r *Regs) orcReg(reg Reg) (uint64, bool) {
	switch reg {
	case RegR10:
		return r.R10, true
	case RegR13:
		return r.R13, true
	case RegDI:
		return r.RDI, true
	case RegDX:
		return r.RDX, true
	case RegBP:
		return r.RBP, true
	}
	return 0, false
}
