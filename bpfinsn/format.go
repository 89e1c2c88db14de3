package bpfinsn

import "fmt"

// The tables of kernel/bpf/disasm.c. A NULL entry prints as glibc
// prints a NULL %s, "(null)".
var (
	aluOps = [16]string{
		OpAdd >> 4: "+=", OpSub >> 4: "-=", OpMul >> 4: "*=", OpDiv >> 4: "/=",
		OpOr >> 4: "|=", OpAnd >> 4: "&=", OpLsh >> 4: "<<=", OpRsh >> 4: ">>=",
		OpNeg >> 4: "neg", OpMod >> 4: "%=", OpXor >> 4: "^=", OpMov >> 4: "=",
		OpArsh >> 4: "s>>=", OpEnd >> 4: "endian",
	}
	atomicOps = [16]string{OpAdd >> 4: "add", OpAnd >> 4: "and", OpOr >> 4: "or", OpXor >> 4: "xor"}
	sizeNames = [4]string{SizeW >> 3: "u32", SizeH >> 3: "u16", SizeB >> 3: "u8", SizeDW >> 3: "u64"}
	jmpOps    = [16]string{
		OpJA >> 4: "jmp", OpJEQ >> 4: "==", OpJGT >> 4: ">", OpJLT >> 4: "<",
		OpJGE >> 4: ">=", OpJLE >> 4: "<=", OpJSET >> 4: "&", OpJNE >> 4: "!=",
		OpJSGT >> 4: "s>", OpJSLT >> 4: "s<", OpJSGE >> 4: "s>=", OpJSLE >> 4: "s<=",
		OpCall >> 4: "call", OpExit >> 4: "exit",
	}
)

func orNull(s string) string {
	if s == "" {
		return "(null)"
	}
	return s
}

// HelperName returns the helper's name for a BPF_FUNC_ id ("bpf_map_lookup_elem"),
// false for an id the table does not know.
func HelperName(id int32) (string, bool) {
	if id >= 0 && int(id) < len(helperNames) && helperNames[id] != "" {
		return helperNames[id], true
	}
	return "", false
}

// namer is the kernel's struct bpf_insn_cbs: how calls and immediates
// are named. A nil field falls back to the kernel's own text.
type namer struct {
	call func(in Insn) string
	imm  func(in, next Insn, full uint64) string
}

// funcName is disasm.c's __func_get_name.
func (n namer) funcName(in Insn) string {
	if in.Src == 0 {
		if s, ok := HelperName(in.Imm); ok {
			return s
		}
	}
	if n.call != nil {
		if s := n.call(in); s != "" {
			return s
		}
	}
	switch in.Src {
	case PseudoCall:
		return fmt.Sprintf("%+d", in.Imm)
	case PseudoKfuncCall:
		return "kernel-function"
	}
	return "unknown"
}

func reg(class uint8) byte {
	if class == ClassALU || class == ClassJMP32 {
		return 'w'
	}
	return 'r'
}

// format renders insns[i] as print_bpf_insn does, without the trailing
// newline: "(b7) r0 = 0". A 64-bit load reads insns[i+1] (zero if absent).
//
// The text is that of bpftool 7.1's copy of the disassembler (Linux 6.1)
// for every instruction 6.1 knows; the instructions of the v4 ISA (6.6+:
// sign-extending loads and moves, signed division, byte swaps, gotol),
// which 6.1 prints as "BUG_...", get the newer kernel's text.
func (n namer) format(insns []Insn, i int) string {
	in := insns[i]
	class := in.Class()
	switch class {
	case ClassALU, ClassALU64:
		r := reg(class)
		switch {
		case in.Op() == OpEnd && class == ClassALU64:
			// 6.6+ ("bpf: Support new unconditional bswap instruction").
			return fmt.Sprintf("(%02x) r%d = bswap%d r%d", in.Code, in.Dst, in.Imm, in.Dst)
		case in.Op() == OpEnd:
			e := "le"
			if in.Source() == SrcX {
				e = "be"
			}
			return fmt.Sprintf("(%02x) r%d = %s%d r%d", in.Code, in.Dst, e, in.Imm, in.Dst)
		case in.Op() == OpNeg:
			return fmt.Sprintf("(%02x) %c%d = -%c%d", in.Code, r, in.Dst, r, in.Dst)
		case in.Op() == OpMov && in.Source() == SrcX && (in.Off == 8 || in.Off == 16 || in.Off == 32):
			// 6.6+ movsx ("bpf: Support new sign-extension mov insns").
			return fmt.Sprintf("(%02x) %c%d = (s%d)%c%d", in.Code, r, in.Dst, in.Off, r, in.Src)
		}
		op := orNull(aluOps[in.Op()>>4])
		if (in.Op() == OpDiv || in.Op() == OpMod) && in.Off == 1 {
			// 6.6+ sdiv/smod ("bpf: Support new signed div/mod instructions").
			op = "s" + op
		}
		if in.Source() == SrcX {
			return fmt.Sprintf("(%02x) %c%d %s %c%d", in.Code, r, in.Dst, op, r, in.Src)
		}
		return fmt.Sprintf("(%02x) %c%d %s %d", in.Code, r, in.Dst, op, in.Imm)
	case ClassSTX:
		size := sizeNames[in.Size()>>3]
		if in.Mode() == ModeMEM {
			return fmt.Sprintf("(%02x) *(%s *)(r%d %+d) = r%d", in.Code, size, in.Dst, in.Off, in.Src)
		}
		if in.Mode() != ModeATOMIC {
			return fmt.Sprintf("BUG_%02x", in.Code)
		}
		width := ""
		if in.Size() == SizeDW {
			width = "64"
		}
		switch in.Imm {
		case OpAdd, OpAnd, OpOr, OpXor:
			return fmt.Sprintf("(%02x) lock *(%s *)(r%d %+d) %s r%d", in.Code, size, in.Dst, in.Off, aluOps[in.Imm>>4], in.Src)
		case OpAdd | AtomicFetch, OpAnd | AtomicFetch, OpOr | AtomicFetch, OpXor | AtomicFetch:
			return fmt.Sprintf("(%02x) r%d = atomic%s_fetch_%s((%s *)(r%d %+d), r%d)", in.Code, in.Src, width, atomicOps[(in.Imm&0xf0)>>4], size, in.Dst, in.Off, in.Src)
		case AtomicCmpXchg:
			return fmt.Sprintf("(%02x) r0 = atomic%s_cmpxchg((%s *)(r%d %+d), r0, r%d)", in.Code, width, size, in.Dst, in.Off, in.Src)
		case AtomicXchg:
			return fmt.Sprintf("(%02x) r%d = atomic%s_xchg((%s *)(r%d %+d), r%d)", in.Code, in.Src, width, size, in.Dst, in.Off, in.Src)
		}
		return fmt.Sprintf("BUG_%02x", in.Code)
	case ClassST:
		switch in.Mode() {
		case ModeMEM:
			return fmt.Sprintf("(%02x) *(%s *)(r%d %+d) = %d", in.Code, sizeNames[in.Size()>>3], in.Dst, in.Off, in.Imm)
		case ModeNoSpec:
			return fmt.Sprintf("(%02x) nospec", in.Code)
		}
		return fmt.Sprintf("BUG_st_%02x", in.Code)
	case ClassLDX:
		switch in.Mode() {
		case ModeMEM:
			return fmt.Sprintf("(%02x) r%d = *(%s *)(r%d %+d)", in.Code, in.Dst, sizeNames[in.Size()>>3], in.Src, in.Off)
		case ModeMEMSX:
			// 6.6+ ("bpf: Support new sign-extension load insns").
			bits := [4]int{32, 16, 8, 64}[in.Size()>>3]
			return fmt.Sprintf("(%02x) r%d = *(s%d *)(r%d %+d)", in.Code, in.Dst, bits, in.Src, in.Off)
		}
		return fmt.Sprintf("BUG_ldx_%02x", in.Code)
	case ClassLD:
		size := sizeNames[in.Size()>>3]
		switch {
		case in.Mode() == ModeABS:
			return fmt.Sprintf("(%02x) r0 = *(%s *)skb[%d]", in.Code, size, in.Imm)
		case in.Mode() == ModeIND:
			return fmt.Sprintf("(%02x) r0 = *(%s *)skb[r%d + %d]", in.Code, size, in.Src, in.Imm)
		case in.Mode() == ModeIMM && in.Size() == SizeDW:
			var next Insn
			if i+1 < len(insns) {
				next = insns[i+1]
			}
			full := uint64(uint32(next.Imm))<<32 | uint64(uint32(in.Imm))
			var s string
			if n.imm != nil {
				s = n.imm(in, next, full)
			} else {
				s = fmt.Sprintf("0x%x", full)
			}
			return fmt.Sprintf("(%02x) r%d = %s", in.Code, in.Dst, s)
		}
		return fmt.Sprintf("BUG_ld_%02x", in.Code)
	}
	// ClassJMP, ClassJMP32.
	r := reg(class)
	switch {
	case in.Op() == OpCall && in.Src == PseudoCall:
		return fmt.Sprintf("(%02x) call pc%s", in.Code, n.funcName(in))
	case in.Op() == OpCall:
		return fmt.Sprintf("(%02x) call %s#%d", in.Code, n.funcName(in), in.Imm)
	case in.Code == ClassJMP|OpJA:
		return fmt.Sprintf("(%02x) goto pc%+d", in.Code, in.Off)
	case in.Code == ClassJMP32|OpJA:
		// 6.6+ gotol ("bpf: Support new 32bit offset jmp instruction").
		return fmt.Sprintf("(%02x) goto pc%+d", in.Code, in.Imm)
	case in.Code == ClassJMP|OpExit:
		return fmt.Sprintf("(%02x) exit", in.Code)
	case in.Source() == SrcX:
		return fmt.Sprintf("(%02x) if %c%d %s %c%d goto pc%+d", in.Code, r, in.Dst, orNull(jmpOps[in.Op()>>4]), r, in.Src, in.Off)
	}
	return fmt.Sprintf("(%02x) if %c%d %s 0x%x goto pc%+d", in.Code, r, in.Dst, orNull(jmpOps[in.Op()>>4]), uint32(in.Imm), in.Off)
}

// Format renders insns[i] in the kernel's disassembler format with no
// symbol names: "(b7) r0 = 0", "(85) call bpf_map_lookup_elem#1",
// "(18) r1 = 0x1234".
func Format(insns []Insn, i int) string { return namer{}.format(insns, i) }
