package bpfinsn

import "fmt"

// Insn is one decoded eBPF instruction (struct bpf_insn). A 64-bit
// immediate load (BPF_LD | BPF_IMM | BPF_DW) takes two: the second holds
// the upper 32 bits of the constant in Imm.
type Insn struct {
	Code uint8
	Dst  uint8 // destination register, 0-10
	Src  uint8 // source register, or a pseudo marker (BPF_PSEUDO_*)
	Off  int16
	Imm  int32
}

// Instruction classes, sizes, modes and operations of
// include/uapi/linux/bpf_common.h and bpf.h, and the kernel-internal
// codes the verifier and JITs use (include/linux/filter.h).
const (
	ClassLD    = 0x00
	ClassLDX   = 0x01
	ClassST    = 0x02
	ClassSTX   = 0x03
	ClassALU   = 0x04
	ClassJMP   = 0x05
	ClassJMP32 = 0x06
	ClassALU64 = 0x07

	SizeW  = 0x00
	SizeH  = 0x08
	SizeB  = 0x10
	SizeDW = 0x18

	ModeIMM    = 0x00
	ModeABS    = 0x20
	ModeIND    = 0x40
	ModeMEM    = 0x60
	ModeMEMSX  = 0x80 // 6.6+ (sign-extending loads)
	ModeATOMIC = 0xc0

	// Kernel-internal modes (include/linux/filter.h).
	ModeProbeMem   = 0x20 // BPF_PROBE_MEM: LDX through a BTF pointer
	ModeProbeMemSX = 0x40 // BPF_PROBE_MEMSX, 6.6+
	ModeProbeMem32 = 0xa0 // BPF_PROBE_MEM32 (arena), 6.9+
	ModeNoSpec     = 0xc0 // BPF_NOSPEC in class ST

	SrcK = 0x00
	SrcX = 0x08

	OpAdd  = 0x00
	OpSub  = 0x10
	OpMul  = 0x20
	OpDiv  = 0x30
	OpOr   = 0x40
	OpAnd  = 0x50
	OpLsh  = 0x60
	OpRsh  = 0x70
	OpNeg  = 0x80
	OpMod  = 0x90
	OpXor  = 0xa0
	OpMov  = 0xb0
	OpArsh = 0xc0
	OpEnd  = 0xd0

	OpJA       = 0x00
	OpJEQ      = 0x10
	OpJGT      = 0x20
	OpJGE      = 0x30
	OpJSET     = 0x40
	OpJNE      = 0x50
	OpJSGT     = 0x60
	OpJSGE     = 0x70
	OpCall     = 0x80
	OpExit     = 0x90
	OpJLT      = 0xa0
	OpJLE      = 0xb0
	OpJSLT     = 0xc0
	OpJSLE     = 0xd0
	OpCallArgs = 0xe0 // BPF_CALL_ARGS, kernel-internal
	OpTailCall = 0xf0 // BPF_TAIL_CALL, kernel-internal

	AtomicFetch   = 0x01
	AtomicXchg    = 0xe0 | AtomicFetch
	AtomicCmpXchg = 0xf0 | AtomicFetch

	// Pseudo source registers of a 64-bit immediate load.
	PseudoMapFD       = 1
	PseudoMapValue    = 2
	PseudoBTFID       = 3
	PseudoFunc        = 4
	PseudoMapIdx      = 5
	PseudoMapIdxValue = 6

	// Pseudo source registers of a call.
	PseudoCall      = 1
	PseudoKfuncCall = 2

	// HelperTailCall is BPF_FUNC_tail_call.
	HelperTailCall = 12

	// CodeLdImm64 is BPF_LD | BPF_IMM | BPF_DW, the two-slot load.
	CodeLdImm64 = ClassLD | ModeIMM | SizeDW
	// CodeCall is BPF_JMP | BPF_CALL.
	CodeCall = ClassJMP | OpCall
)

// Class is BPF_CLASS(code).
func (i Insn) Class() uint8 { return i.Code & 0x07 }

// Size is BPF_SIZE(code).
func (i Insn) Size() uint8 { return i.Code & 0x18 }

// Mode is BPF_MODE(code).
func (i Insn) Mode() uint8 { return i.Code & 0xe0 }

// Op is BPF_OP(code).
func (i Insn) Op() uint8 { return i.Code & 0xf0 }

// Source is BPF_SRC(code).
func (i Insn) Source() uint8 { return i.Code & 0x08 }

// IsLdImm64 says the instruction is the first of a two-slot load.
func (i Insn) IsLdImm64() bool { return i.Code == CodeLdImm64 }

// IsPseudoCall says the instruction calls a BPF subprogram.
func (i Insn) IsPseudoCall() bool { return i.Code == CodeCall && i.Src == PseudoCall }

// Decode decodes the instructions in b, a whole number of 8-byte struct
// bpf_insn. Errors wrap ErrFormat.
func Decode(b []byte) ([]Insn, error) {
	if len(b)%InsnSize != 0 {
		return nil, fmt.Errorf("decode BPF instructions: %d bytes is not a multiple of %d: %w", len(b), InsnSize, ErrFormat)
	}
	out := make([]Insn, len(b)/InsnSize)
	for k := range out {
		r := decodeRaw(b[k*InsnSize:])
		out[k] = Insn{Code: r.Code, Dst: r.Regs & 0x0f, Src: r.Regs >> 4, Off: r.Off, Imm: r.Imm}
	}
	return out, nil
}

// Encode returns the instructions' bytes.
func Encode(insns []Insn) []byte {
	b := make([]byte, len(insns)*InsnSize)
	for k, in := range insns {
		in.raw().put(b[k*InsnSize:])
	}
	return b
}

func (i Insn) raw() rawInsn {
	return rawInsn{Code: i.Code, Regs: i.Dst&0x0f | i.Src<<4, Off: i.Off, Imm: i.Imm}
}

// Bytes returns the instruction's 8 bytes.
func (i Insn) Bytes() [InsnSize]byte {
	var b [InsnSize]byte
	i.raw().put(b[:])
	return b
}
