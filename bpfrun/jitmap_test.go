package bpfrun

import (
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/x86dis"
)

// TestJITCounts: instruction classes the lab's programs do not use,
// JITed by hand as arch/x86/net/bpf_jit_comp.c (6.1) emits them, mapped
// back to their instructions.
func TestJITCounts(t *testing.T) {
	insns := []bpfinsn.Insn{
		mov(r0, 0), // xor eax,eax
		{Code: bpfinsn.ClassALU64 | bpfinsn.OpDiv | bpfinsn.SrcX, Dst: r3, Src: r1},                 // r3 /= r1
		{Code: bpfinsn.ClassALU64 | bpfinsn.OpLsh | bpfinsn.SrcX, Dst: r2, Src: r1},                 // r2 <<= r1
		{Code: bpfinsn.ClassSTX | bpfinsn.ModeATOMIC | bpfinsn.SizeDW, Dst: r2, Src: r1, Imm: 0x41}, // r1 = atomic_fetch_or(r2, r1)
		exit(),
	}
	code := [][]byte{
		// emit_prologue: the patch site's nop, nop2, push rbp, mov rbp,rsp.
		{0x0f, 0x1f, 0x44, 0x00, 0x00}, {0x66, 0x90}, {0x55}, {0x48, 0x89, 0xe5},
		{0x31, 0xc0}, // xor eax,eax
		// div: push rax, mov rax,rdx, xor edx,edx, div rdi, mov rdx,rax, pop rax.
		{0x50}, {0x48, 0x89, 0xd0}, {0x31, 0xd2}, {0x48, 0xf7, 0xf7}, {0x48, 0x89, 0xc2}, {0x58},
		// shift by cl: push rcx, mov rcx,rdi, shl rsi,cl, pop rcx.
		{0x51}, {0x48, 0x89, 0xf9}, {0x48, 0xd3, 0xe6}, {0x59},
		// the cmpxchg loop: mov r10,rax; mov rax,[rsi]; mov r11,rax; or
		// r11,rdi; lock cmpxchg [rsi],r11; jne; mov rdi,rax; mov rax,r10.
		{0x49, 0x89, 0xc2}, {0x48, 0x8b, 0x46, 0x00}, {0x49, 0x89, 0xc3}, {0x49, 0x09, 0xfb},
		{0xf0, 0x4c, 0x0f, 0xb1, 0x5e, 0x00}, {0x75, 0xee}, {0x48, 0x89, 0xc7}, {0x4c, 0x89, 0xd0},
		{0xc9}, {0xc3}, {0xcc}, // leave, ret, int3
	}
	var img []byte
	for _, c := range code {
		img = append(img, c...)
	}
	const base = 0xffffffffc0000000
	x := x86dis.Disassemble(img, base)
	if len(x) != len(code) {
		t.Fatalf("disassembled %d instructions, wrote %d", len(x), len(code))
	}
	wantCounts := []int{1, 6, 4, 8, 3}
	start := func(k int) uint64 { // the first x86 instruction of insn k
		n := 4
		for i := 0; i < k; i++ {
			n += wantCounts[i]
		}
		return x[n].Addr
	}
	for _, c := range []struct {
		anchors map[int]uint64
		inexact bool
	}{
		{nil, false},
		{map[int]uint64{3: start(3)}, false},    // a line_info address where the counts put insn 3
		{map[int]uint64{3: start(3) + 1}, true}, // one inside an instruction: the stretch before it is uncertain
		{map[int]uint64{3: start(2)}, true},     // one at another instruction: the same
	} {
		im := &JITImage{Func: ProgFuncRef{Name: "test", Addr: base, Len: uint32(len(img))}, First: 0, Last: len(insns)}
		mapImage(im, insns, x, c.anchors, imageFacts{})
		if im.Prologue != x[4].Addr {
			t.Errorf("prologue ends at %#x, want %#x", im.Prologue, x[4].Addr)
		}
		if c.inexact {
			if len(im.Inexact) == 0 {
				t.Errorf("anchors %v: no inexact stretch", c.anchors)
			}
			continue
		}
		if len(im.Inexact) > 0 || len(im.Spans) != len(insns) {
			t.Fatalf("anchors %v: spans %+v, inexact %+v", c.anchors, im.Spans, im.Inexact)
		}
		for k, s := range im.Spans {
			end := uint64(base) + uint64(len(img))
			if k+1 < len(insns) {
				end = start(k + 1)
			}
			if s.Insn != k || s.Start != start(k) || s.End != end {
				t.Errorf("insn %d: code [%#x, %#x), want [%#x, %#x)", k, s.Start, s.End, start(k), end)
			}
		}
		if i, last, exact := im.Where(x[17].Addr); i != 3 || last != 3 || !exact {
			t.Errorf("the cmpxchg: insn %d-%d exact %v, want 3", i, last, exact)
		}
		if len(c.anchors) > 0 && im.Checked != 1 {
			t.Errorf("anchors checked %d", im.Checked)
		}
	}
}
