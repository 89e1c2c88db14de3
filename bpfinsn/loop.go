package bpfinsn

// helperLoop is BPF_FUNC_loop (enum bpf_func_id, UAPI, 5.17+).
const helperLoop = 181

// Constants of the inlined bpf_loop (kernel/bpf/verifier.c,
// inline_bpf_loop, 6.0+: 1ade23711971 "bpf: Inline calls to bpf_loop
// when callback is known").
const (
	bpfMaxLoops = 1 << 23 // BPF_MAX_LOOPS
	errE2BIG    = 7
)

// inlinedLoopLen is the length of inline_bpf_loop's sequence.
const inlinedLoopLen = 19

// matchInlinedLoop matches, at the start of x, the sequence the verifier
// puts in place of a call of bpf_loop whose callback and flags it knows
// (inline_bpf_loop), spilling r6-r8 to three stack slots it adds:
//
//	if r1 <= 0x800000 goto pc+2
//	w0 = -7
//	goto pc+16
//	*(u64 *)(r10 +S) = r6; *(u64 *)(r10 +S+8) = r7; *(u64 *)(r10 +S+16) = r8
//	r6 = r1; w7 = 0; r8 = r3
//	if r7 >= r6 goto pc+5
//	r1 = r7; r2 = r8; call pc+CALLBACK
//	r7 += 1
//	if r0 == 0x0 goto pc-6
//	r0 = r7
//	r6 = *(u64 *)(r10 +S); r7 = *(u64 *)(r10 +S+8); r8 = *(u64 *)(r10 +S+16)
//
// and says whether it is there. The call to the callback (a subprogram
// the program also loads into r2) goes with it: the call as loaded is
// bpf_loop's.
func matchInlinedLoop(x []Insn) bool {
	if len(x) < inlinedLoopLen {
		return false
	}
	mov := func(i Insn, dst, src uint8) bool {
		return i.Code == ClassALU64|OpMov|SrcX && i.Dst == dst && i.Src == src && i.Off == 0
	}
	movImm32 := func(i Insn, dst uint8, imm int32) bool {
		return i.Code == ClassALU|OpMov|SrcK && i.Dst == dst && i.Imm == imm
	}
	s := x[3].Off
	spill := func(i Insn, reg uint8, off int16) bool {
		return i.Code == ClassSTX|SizeDW|ModeMEM && i.Dst == 10 && i.Src == reg && i.Off == off
	}
	fill := func(i Insn, reg uint8, off int16) bool {
		return i.Code == ClassLDX|SizeDW|ModeMEM && i.Dst == reg && i.Src == 10 && i.Off == off
	}
	return x[0].Code == ClassJMP|OpJLE|SrcK && x[0].Dst == 1 && x[0].Imm == bpfMaxLoops && x[0].Off == 2 &&
		movImm32(x[1], 0, -errE2BIG) &&
		x[2].Code == ClassJMP|OpJA && x[2].Off == 16 &&
		spill(x[3], 6, s) && spill(x[4], 7, s+8) && spill(x[5], 8, s+16) &&
		mov(x[6], 6, 1) && movImm32(x[7], 7, 0) && mov(x[8], 8, 3) &&
		x[9].Code == ClassJMP|OpJGE|SrcX && x[9].Dst == 7 && x[9].Src == 6 && x[9].Off == 5 &&
		mov(x[10], 1, 7) && mov(x[11], 2, 8) &&
		x[12].Code == CodeCall && x[12].Src == PseudoCall &&
		x[13].Code == ClassALU64|OpAdd|SrcK && x[13].Dst == 7 && x[13].Imm == 1 &&
		x[14].Code == ClassJMP|OpJEQ|SrcK && x[14].Dst == 0 && x[14].Imm == 0 && x[14].Off == -6 &&
		mov(x[15], 0, 7) &&
		fill(x[16], 6, s) && fill(x[17], 7, s+8) && fill(x[18], 8, s+16)
}
