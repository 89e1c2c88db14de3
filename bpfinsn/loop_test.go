package bpfinsn

import "testing"

// TestAsLoadedInlinedLoop: inline_bpf_loop's 19 instructions (as
// kernel/bpf/verifier.c writes them, spilling to r10-24..-8) become the
// call of bpf_loop again, and a jump across them is shortened by 18.
func TestAsLoadedInlinedLoop(t *testing.T) {
	mov := func(dst, src uint8) Insn { return Insn{Code: ClassALU64 | OpMov | SrcX, Dst: dst, Src: src} }
	loop := []Insn{
		{Code: ClassJMP | OpJLE | SrcK, Dst: 1, Imm: 1 << 23, Off: 2},
		{Code: ClassALU | OpMov | SrcK, Dst: 0, Imm: -7},
		{Code: ClassJMP | OpJA, Off: 16},
		{Code: ClassSTX | SizeDW | ModeMEM, Dst: 10, Src: 6, Off: -24},
		{Code: ClassSTX | SizeDW | ModeMEM, Dst: 10, Src: 7, Off: -16},
		{Code: ClassSTX | SizeDW | ModeMEM, Dst: 10, Src: 8, Off: -8},
		mov(6, 1),
		{Code: ClassALU | OpMov | SrcK, Dst: 7},
		mov(8, 3),
		{Code: ClassJMP | OpJGE | SrcX, Dst: 7, Src: 6, Off: 5},
		mov(1, 7),
		mov(2, 8),
		{Code: CodeCall, Src: PseudoCall, Off: 7}, // to insn 12+7+1 = 20 + 2 (the callback)
		{Code: ClassALU64 | OpAdd | SrcK, Dst: 7, Imm: 1},
		{Code: ClassJMP | OpJEQ | SrcK, Dst: 0, Imm: 0, Off: -6},
		mov(0, 7),
		{Code: ClassLDX | SizeDW | ModeMEM, Dst: 6, Src: 10, Off: -24},
		{Code: ClassLDX | SizeDW | ModeMEM, Dst: 7, Src: 10, Off: -16},
		{Code: ClassLDX | SizeDW | ModeMEM, Dst: 8, Src: 10, Off: -8},
	}
	prog := append([]Insn{
		{Code: ClassJMP | OpJEQ | SrcK, Dst: 1, Imm: 0, Off: 19}, // over the loop, to the exit
	}, loop...)
	prog = append(prog, Insn{Code: ClassJMP | OpExit}, Insn{Code: ClassALU64 | OpMov | SrcK, Dst: 0}, Insn{Code: ClassJMP | OpExit})
	l := AsLoaded(prog, nil, KernelFacts{})
	if len(l.Insns) != 5 || l.Undone != 1 {
		t.Fatalf("%d instructions (%d undone): %v", len(l.Insns), l.Undone, l.Insns)
	}
	if c := l.Insns[1]; c.Code != CodeCall || c.Src != 0 || c.Imm != helperLoop {
		t.Errorf("insn 1: %+v, want call #181", c)
	}
	if j := l.Insns[0]; j.Off != 1 {
		t.Errorf("the jump across the loop: off %d, want 1", j.Off)
	}
	// One instruction different: no longer the inlined loop.
	prog[1+14].Off = -5
	if l := AsLoaded(prog, nil, KernelFacts{}); len(l.Insns) != len(prog) {
		t.Errorf("a changed sequence was undone: %d instructions", len(l.Insns))
	}
}
