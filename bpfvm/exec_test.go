package bpfvm

import (
	"errors"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

// testMachine returns a machine over two pages of kernel memory at
// kernelData (bytes 0, 1, 2, ... 255, 0, 1, ...), with the standard
// helpers at their test addresses.
func testMachine(opts Options) *Machine {
	data := make([]byte, 2*4096)
	for i := range data {
		data[i] = byte(i)
	}
	if opts.Syms == nil {
		opts.Syms = testSyms()
	}
	if opts.CallBase == 0 {
		opts.CallBase = callBase
	}
	if opts.Helpers == nil {
		opts.Helpers = StandardHelpers()
	}
	return New(&fakeMem{base: kernelData, data: data}, opts)
}

// runProg runs insns with args; it fails the test on an error unless
// the caller wants it.
func runProg(t *testing.T, m *Machine, insns []I, args ...uint64) (uint64, error) {
	t.Helper()
	return m.Exec(NewProgram("test", insns, nil), args...)
}

func mustRun(t *testing.T, m *Machine, insns []I, args ...uint64) uint64 {
	t.Helper()
	v, err := runProg(t, m, insns, args...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return v
}

// Expected values below are worked out by hand from
// Documentation/bpf/standardization/instruction-set.rst and
// ___bpf_prog_run: never from this package.

type aluCase struct {
	name     string
	dst, src uint64 // r0, r1 before
	in       I      // on r0 (and r1)
	want     uint64
	opts     Options
}

func TestALU64(t *testing.T) {
	const min64 = 0x8000000000000000
	cases := []aluCase{
		{"add wraps", 0xffffffffffffffff, 0, alu64K(bpfinsn.OpAdd, r0, 1), 0, Options{}},
		{"add negative imm", 10, 0, alu64K(bpfinsn.OpAdd, r0, -3), 7, Options{}},
		{"add x", min64, min64, alu64X(bpfinsn.OpAdd, r0, r1), 0, Options{}},
		{"sub", 0, 0, alu64K(bpfinsn.OpSub, r0, 1), 0xffffffffffffffff, Options{}},
		{"sub x", 5, 7, alu64X(bpfinsn.OpSub, r0, r1), 0xfffffffffffffffe, Options{}},
		{"mul", 0x100000000, 0, alu64K(bpfinsn.OpMul, r0, 3), 0x300000000, Options{}},
		{"mul negative imm", 5, 0, alu64K(bpfinsn.OpMul, r0, -2), 0xfffffffffffffff6, Options{}},
		{"mul x", 0x100000000, 0x100000000, alu64X(bpfinsn.OpMul, r0, r1), 0, Options{}},
		{"div", 100, 0, alu64K(bpfinsn.OpDiv, r0, 7), 14, Options{}},
		{"div imm sign-extended then unsigned", 0xfffffffffffffffe, 0, alu64K(bpfinsn.OpDiv, r0, -1), 0, Options{}},
		{"div x", 0xffffffffffffffff, 0x10, alu64X(bpfinsn.OpDiv, r0, r1), 0x0fffffffffffffff, Options{}},
		{"div by zero", 1234, 0, alu64X(bpfinsn.OpDiv, r0, r1), 0, Options{}},
		{"sdiv truncates", 0xfffffffffffffff9, 2, withOff(alu64X(bpfinsn.OpDiv, r0, r1), 1), 0xfffffffffffffffd, Options{}},
		{"sdiv negative imm", 7, 0, withOff(alu64K(bpfinsn.OpDiv, r0, -2), 1), 0xfffffffffffffffd, Options{}},
		{"sdiv overflow", min64, 0xffffffffffffffff, withOff(alu64X(bpfinsn.OpDiv, r0, r1), 1), min64, Options{}},
		{"sdiv by zero", 0xfffffffffffffff9, 0, withOff(alu64X(bpfinsn.OpDiv, r0, r1), 1), 0, Options{}},
		{"mod", 100, 7, alu64X(bpfinsn.OpMod, r0, r1), 2, Options{}},
		{"mod imm", 100, 0, alu64K(bpfinsn.OpMod, r0, 7), 2, Options{}},
		{"mod by zero keeps dst", 0x123456789abcdef0, 0, alu64X(bpfinsn.OpMod, r0, r1), 0x123456789abcdef0, Options{}},
		{"smod sign of dividend", 0xfffffffffffffff9, 2, withOff(alu64X(bpfinsn.OpMod, r0, r1), 1), 0xffffffffffffffff, Options{}},
		{"smod negative divisor", 7, 0, withOff(alu64K(bpfinsn.OpMod, r0, -2), 1), 1, Options{}},
		{"smod overflow", min64, 0xffffffffffffffff, withOff(alu64X(bpfinsn.OpMod, r0, r1), 1), 0, Options{}},
		{"smod by zero keeps dst", 0xfffffffffffffff9, 0, withOff(alu64X(bpfinsn.OpMod, r0, r1), 1), 0xfffffffffffffff9, Options{}},
		{"or sign-extends imm", 0, 0, alu64K(bpfinsn.OpOr, r0, -16), 0xfffffffffffffff0, Options{}},
		{"and", 0xffffffffffffffff, 0, alu64K(bpfinsn.OpAnd, r0, 0x7fffffff), 0x7fffffff, Options{}},
		{"and negative imm", 0x123456789abcdef0, 0, alu64K(bpfinsn.OpAnd, r0, -1), 0x123456789abcdef0, Options{}},
		{"xor x", 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0, alu64X(bpfinsn.OpXor, r0, r1), 0xf0f0f0f0f0f0f0f0, Options{}},
		{"lsh 63", 1, 0, alu64K(bpfinsn.OpLsh, r0, 63), min64, Options{}},
		{"lsh x masked to 6 bits", 1, 65, alu64X(bpfinsn.OpLsh, r0, r1), 2, Options{}},
		{"rsh", min64, 0, alu64K(bpfinsn.OpRsh, r0, 63), 1, Options{}},
		{"rsh x masked", min64, 127, alu64X(bpfinsn.OpRsh, r0, r1), 1, Options{}},
		{"arsh", min64, 0, alu64K(bpfinsn.OpArsh, r0, 63), 0xffffffffffffffff, Options{}},
		{"arsh x", 0xf000000000000000, 4, alu64X(bpfinsn.OpArsh, r0, r1), 0xff00000000000000, Options{}},
		{"arsh positive", 0x7000000000000000, 4, alu64X(bpfinsn.OpArsh, r0, r1), 0x0700000000000000, Options{}},
		{"neg", 1, 0, alu64K(bpfinsn.OpNeg, r0, 0), 0xffffffffffffffff, Options{}},
		{"neg min", min64, 0, alu64K(bpfinsn.OpNeg, r0, 0), min64, Options{}},
		{"mov negative imm", 5, 0, mov64(r0, -1), 0xffffffffffffffff, Options{}},
		{"mov imm", 5, 0, mov64(r0, 0x7fffffff), 0x7fffffff, Options{}},
		{"mov x", 5, 0x1122334455667788, mov64X(r0, r1), 0x1122334455667788, Options{}},
		{"movsx 8", 0, 0x1234567890abcd80, withOff(mov64X(r0, r1), 8), 0xffffffffffffff80, Options{}},
		{"movsx 8 positive", 0, 0xff7f, withOff(mov64X(r0, r1), 8), 0x7f, Options{}},
		{"movsx 16", 0, 0x12348000, withOff(mov64X(r0, r1), 16), 0xffffffffffff8000, Options{}},
		{"movsx 32", 0, 0x80000000, withOff(mov64X(r0, r1), 32), 0xffffffff80000000, Options{}},
		{"movsx 32 positive", 0, 0xffffffff7fffffff, withOff(mov64X(r0, r1), 32), 0x7fffffff, Options{}},
		{"bswap16", 0x1122334455667788, 0, alu64K(bpfinsn.OpEnd, r0, 16), 0x8877, Options{}},
		{"bswap32", 0x1122334455667788, 0, alu64K(bpfinsn.OpEnd, r0, 32), 0x88776655, Options{}},
		{"bswap64", 0x1122334455667788, 0, alu64K(bpfinsn.OpEnd, r0, 64), 0x8877665544332211, Options{}},
		{"per-CPU address", 0, 0x1a000, withOff(mov64X(r0, r1), -1), 0xffff88807fc1a000, Options{PerCPUOffset: 0xffff88807fc00000}},
	}
	runALU(t, cases)
}

func TestALU32(t *testing.T) {
	cases := []aluCase{
		{"add wraps and zero-extends", 0xffffffffffffffff, 0, alu32K(bpfinsn.OpAdd, r0, 1), 0, Options{}},
		{"add drops the upper half", 0x100000005, 0, alu32K(bpfinsn.OpAdd, r0, 3), 8, Options{}},
		{"add x", 0xaaaaaaaa00000001, 0xbbbbbbbb00000002, alu32X(bpfinsn.OpAdd, r0, r1), 3, Options{}},
		{"sub", 0, 0, alu32K(bpfinsn.OpSub, r0, 1), 0xffffffff, Options{}},
		{"sub x", 0xffffffff00000005, 7, alu32X(bpfinsn.OpSub, r0, r1), 0xfffffffe, Options{}},
		{"mul overflows 32 bits", 0x10000, 0x10000, alu32X(bpfinsn.OpMul, r0, r1), 0, Options{}},
		{"mul", 0x10000, 0, alu32K(bpfinsn.OpMul, r0, 0x7fff), 0x7fff0000, Options{}},
		{"div of the low half", 0x100000064, 0, alu32K(bpfinsn.OpDiv, r0, 7), 14, Options{}},
		{"div imm unsigned 32", 0xffffffff, 0, alu32K(bpfinsn.OpDiv, r0, -1), 1, Options{}},
		{"div by zero", 0xffffffff12345678, 0xffffffff00000000, alu32X(bpfinsn.OpDiv, r0, r1), 0, Options{}},
		{"sdiv", 0xfffffff9, 2, withOff(alu32X(bpfinsn.OpDiv, r0, r1), 1), 0xfffffffd, Options{}},
		{"sdiv imm", 7, 0, withOff(alu32K(bpfinsn.OpDiv, r0, -2), 1), 0xfffffffd, Options{}},
		{"sdiv overflow", 0x80000000, 0xffffffff, withOff(alu32X(bpfinsn.OpDiv, r0, r1), 1), 0x80000000, Options{}},
		{"mod", 100, 7, alu32X(bpfinsn.OpMod, r0, r1), 2, Options{}},
		{"mod by zero zero-extends dst", 0xffffffff12345678, 0, alu32X(bpfinsn.OpMod, r0, r1), 0x12345678, Options{}},
		{"smod", 0xfffffff9, 2, withOff(alu32X(bpfinsn.OpMod, r0, r1), 1), 0xffffffff, Options{}},
		{"smod imm", 7, 0, withOff(alu32K(bpfinsn.OpMod, r0, -2), 1), 1, Options{}},
		{"smod overflow", 0x80000000, 0xffffffff, withOff(alu32X(bpfinsn.OpMod, r0, r1), 1), 0, Options{}},
		{"smod by zero", 0xfffffffffffffff9, 0, withOff(alu32X(bpfinsn.OpMod, r0, r1), 1), 0xfffffff9, Options{}},
		{"or", 0xffffffff00000000, 0, alu32K(bpfinsn.OpOr, r0, 1), 1, Options{}},
		{"and", 0xffffffffffffffff, 0, alu32K(bpfinsn.OpAnd, r0, -16), 0xfffffff0, Options{}},
		{"xor", 0xffffffff0f0f0f0f, 0xffffffff, alu32X(bpfinsn.OpXor, r0, r1), 0xf0f0f0f0, Options{}},
		{"lsh", 1, 0, alu32K(bpfinsn.OpLsh, r0, 31), 0x80000000, Options{}},
		{"lsh out of 32 bits", 0x80000000, 0, alu32K(bpfinsn.OpLsh, r0, 1), 0, Options{}},
		{"lsh x masked to 5 bits", 1, 33, alu32X(bpfinsn.OpLsh, r0, r1), 2, Options{}},
		{"rsh of the low half", 0xffffffff80000000, 0, alu32K(bpfinsn.OpRsh, r0, 31), 1, Options{}},
		{"arsh", 0x80000000, 0, alu32K(bpfinsn.OpArsh, r0, 31), 0xffffffff, Options{}},
		{"arsh x", 0xfffffffff0000000, 4, alu32X(bpfinsn.OpArsh, r0, r1), 0xff000000, Options{}},
		{"neg", 1, 0, alu32K(bpfinsn.OpNeg, r0, 0), 0xffffffff, Options{}},
		{"neg of the low half", 0x100000000, 0, alu32K(bpfinsn.OpNeg, r0, 0), 0, Options{}},
		{"mov imm zero-extends", 5, 0, alu32K(bpfinsn.OpMov, r0, -1), 0xffffffff, Options{}},
		{"mov x", 5, 0x1122334455667788, alu32X(bpfinsn.OpMov, r0, r1), 0x55667788, Options{}},
		{"movsx 8", 0, 0xffffffff00000080, withOff(alu32X(bpfinsn.OpMov, r0, r1), 8), 0xffffff80, Options{}},
		{"movsx 16", 0, 0x8000, withOff(alu32X(bpfinsn.OpMov, r0, r1), 16), 0xffff8000, Options{}},
		{"le16 truncates", 0x1122334455667788, 0, alu32K(bpfinsn.OpEnd, r0, 16), 0x7788, Options{}},
		{"le32 truncates", 0x1122334455667788, 0, alu32K(bpfinsn.OpEnd, r0, 32), 0x55667788, Options{}},
		{"le64 keeps", 0x1122334455667788, 0, alu32K(bpfinsn.OpEnd, r0, 64), 0x1122334455667788, Options{}},
		{"be16", 0x1122334455667788, 0, I{Code: bpfinsn.ClassALU | bpfinsn.OpEnd | bpfinsn.SrcX, Imm: 16}, 0x8877, Options{}},
		{"be32", 0x1122334455667788, 0, I{Code: bpfinsn.ClassALU | bpfinsn.OpEnd | bpfinsn.SrcX, Imm: 32}, 0x88776655, Options{}},
		{"be64", 0x1122334455667788, 0, I{Code: bpfinsn.ClassALU | bpfinsn.OpEnd | bpfinsn.SrcX, Imm: 64}, 0x8877665544332211, Options{}},
	}
	runALU(t, cases)
}

func withOff(in I, off int16) I { in.Off = off; return in }

func runALU(t *testing.T, cases []aluCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testMachine(c.opts)
			got := mustRun(t, m, prog(ldImm64(r0, c.dst), ldImm64(r1, c.src), c.in, exit()))
			if got != c.want {
				t.Errorf("%s: r0 = %#x, want %#x", bpfinsn.Format([]I{c.in}, 0), got, c.want)
			}
		})
	}
}

func TestJumps(t *testing.T) {
	const neg1 = 0xffffffffffffffff
	type jcase struct {
		name  string
		a, b  uint64 // r1, r2
		in    I      // on r1 and r2 (imm b), offset +2 to the taken branch
		taken bool
	}
	cases := []jcase{
		{"jeq", 5, 5, jmpX(bpfinsn.OpJEQ, r1, r2, 2), true},
		{"jeq imm sign-extended", neg1, 0, jmpK(bpfinsn.OpJEQ, r1, -1, 2), true},
		{"jeq 64 sees the upper half", 0x100000005, 0, jmpK(bpfinsn.OpJEQ, r1, 5, 2), false},
		{"jeq32 ignores the upper half", 0x100000005, 0, jmp32K(bpfinsn.OpJEQ, r1, 5, 2), true},
		{"jne", 5, 6, jmpX(bpfinsn.OpJNE, r1, r2, 2), true},
		{"jne32", 0x100000005, 5, jmp32X(bpfinsn.OpJNE, r1, r2, 2), false},
		{"jgt unsigned", neg1, 1, jmpX(bpfinsn.OpJGT, r1, r2, 2), true},
		{"jgt imm sign-extended", 5, 0, jmpK(bpfinsn.OpJGT, r1, -1, 2), false},
		{"jgt 64", 0x100000000, 1, jmpX(bpfinsn.OpJGT, r1, r2, 2), true},
		{"jgt32", 0x100000000, 1, jmp32X(bpfinsn.OpJGT, r1, r2, 2), false},
		{"jgt32 imm unsigned", 0xffffffff, 0, jmp32K(bpfinsn.OpJGT, r1, 1, 2), true},
		{"jge equal", 7, 7, jmpX(bpfinsn.OpJGE, r1, r2, 2), true},
		{"jge32", 6, 0, jmp32K(bpfinsn.OpJGE, r1, 7, 2), false},
		{"jlt", 1, neg1, jmpX(bpfinsn.OpJLT, r1, r2, 2), true},
		{"jlt32", 0xffffffff00000001, 0, jmp32K(bpfinsn.OpJLT, r1, 2, 2), true},
		{"jle", 3, 3, jmpK(bpfinsn.OpJLE, r1, 3, 2), true},
		{"jle32 x", 4, 3, jmp32X(bpfinsn.OpJLE, r1, r2, 2), false},
		{"jset", 0x10, 0x30, jmpX(bpfinsn.OpJSET, r1, r2, 2), true},
		{"jset none", 0x10, 0x20, jmpX(bpfinsn.OpJSET, r1, r2, 2), false},
		{"jset imm sign-extended", 0x8000000000000000, 0, jmpK(bpfinsn.OpJSET, r1, -1, 2), true},
		{"jset32 upper half only", 0x100000000, 0, jmp32K(bpfinsn.OpJSET, r1, -1, 2), false},
		{"jsgt", 1, neg1, jmpX(bpfinsn.OpJSGT, r1, r2, 2), true},
		{"jsgt imm", neg1, 0, jmpK(bpfinsn.OpJSGT, r1, 1, 2), false},
		{"jsgt32", 0x00000000ffffffff, 0, jmp32K(bpfinsn.OpJSGT, r1, 0, 2), false},
		{"jsgt 64 same value", 0x00000000ffffffff, 0, jmpK(bpfinsn.OpJSGT, r1, 0, 2), true},
		{"jsge", neg1, neg1, jmpX(bpfinsn.OpJSGE, r1, r2, 2), true},
		{"jsge32 x", 0x80000000, 0x7fffffff, jmp32X(bpfinsn.OpJSGE, r1, r2, 2), false},
		{"jslt", neg1, 0, jmpK(bpfinsn.OpJSLT, r1, 0, 2), true},
		{"jslt32 of the low half", 0x00000000ffffffff, 0, jmp32K(bpfinsn.OpJSLT, r1, 0, 2), true},
		{"jslt 64", 0x00000000ffffffff, 0, jmpK(bpfinsn.OpJSLT, r1, 0, 2), false},
		{"jsle", 0x8000000000000000, 0x7fffffffffffffff, jmpX(bpfinsn.OpJSLE, r1, r2, 2), true},
		{"jsle32 imm", 5, 0, jmp32K(bpfinsn.OpJSLE, r1, -5, 2), false},
		{"ja", 0, 0, ja(2), true},
		{"gotol", 0, 0, gotol(2), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testMachine(Options{})
			// r0 = 1 when taken, 2 when not.
			got := mustRun(t, m, prog(ldImm64(r1, c.a), ldImm64(r2, c.b), c.in, mov64(r0, 2), exit(), mov64(r0, 1), exit()))
			if (got == 1) != c.taken || got == 0 {
				t.Errorf("%s with r1=%#x r2=%#x: r0 = %d, want taken=%v", bpfinsn.Format([]I{c.in}, 0), c.a, c.b, got, c.taken)
			}
		})
	}
}

func TestBackwardJumpAndGotol(t *testing.T) {
	// r0 = sum of 1..100 with a backward conditional jump, then a long
	// gotol backwards and forwards.
	m := testMachine(Options{})
	got := mustRun(t, m, prog(
		mov64(r0, 0),
		mov64(r1, 100),
		alu64X(bpfinsn.OpAdd, r0, r1),      // 2
		alu64K(bpfinsn.OpSub, r1, 1),       // 3
		jmpK(bpfinsn.OpJNE, r1, 0, -3),     // 4: to 2
		gotol(2),                           // 5: to 8
		alu64K(bpfinsn.OpAdd, r0, 1000),    // 6
		exit(),                             // 7
		jmp32K(bpfinsn.OpJEQ, r0, 5050, 1), // 8
		exit(),                             // 9
		alu64K(bpfinsn.OpAdd, r0, 1),       // 10
		gotol(-6),                          // 11: to 6
	))
	if got != 6051 {
		t.Fatalf("r0 = %d, want 6051", got)
	}
}

func TestLoadsAndStores(t *testing.T) {
	type mcase struct {
		name string
		code []I
		want uint64
	}
	cases := []mcase{
		{"stack dw", prog(ldImm64(r1, 0x1122334455667788), stx(bpfinsn.SizeDW, r10, r1, -8), ldx(bpfinsn.SizeDW, r0, r10, -8)), 0x1122334455667788},
		{"stack w zero-extends", prog(ldImm64(r1, 0x1122334488667788), stx(bpfinsn.SizeDW, r10, r1, -8), ldx(bpfinsn.SizeW, r0, r10, -8)), 0x88667788},
		{"stack h little-endian", prog(ldImm64(r1, 0x1122334455667788), stx(bpfinsn.SizeDW, r10, r1, -8), ldx(bpfinsn.SizeH, r0, r10, -6)), 0x5566},
		{"stack b", prog(ldImm64(r1, 0x1122334455667788), stx(bpfinsn.SizeDW, r10, r1, -8), ldx(bpfinsn.SizeB, r0, r10, -1)), 0x11},
		{"stx w stores the low half", prog(ldImm64(r1, 0xffffffffffffffff), stx(bpfinsn.SizeDW, r10, r1, -8), ldImm64(r2, 0xaabbccdd00000000), stx(bpfinsn.SizeW, r10, r2, -8), ldx(bpfinsn.SizeDW, r0, r10, -8)), 0xffffffff00000000},
		{"stx b", prog(st(bpfinsn.SizeDW, r10, -8, 0), mov64(r1, 0x1ff), stx(bpfinsn.SizeB, r10, r1, -7), ldx(bpfinsn.SizeDW, r0, r10, -8)), 0xff00},
		{"stx h", prog(st(bpfinsn.SizeDW, r10, -8, 0), mov64(r1, 0x12345), stx(bpfinsn.SizeH, r10, r1, -8), ldx(bpfinsn.SizeDW, r0, r10, -8)), 0x2345},
		{"st dw sign-extends imm", prog(st(bpfinsn.SizeDW, r10, -16, -2), ldx(bpfinsn.SizeDW, r0, r10, -16)), 0xfffffffffffffffe},
		{"st w", prog(st(bpfinsn.SizeDW, r10, -16, 0), st(bpfinsn.SizeW, r10, -12, -1), ldx(bpfinsn.SizeDW, r0, r10, -16)), 0xffffffff00000000},
		{"st h", prog(st(bpfinsn.SizeDW, r10, -16, 0), st(bpfinsn.SizeH, r10, -16, 0x12345), ldx(bpfinsn.SizeDW, r0, r10, -16)), 0x2345},
		{"st b", prog(st(bpfinsn.SizeDW, r10, -16, 0), st(bpfinsn.SizeB, r10, -9, 0x7f), ldx(bpfinsn.SizeDW, r0, r10, -16)), 0x7f00000000000000},
		{"through a copied pointer", prog(mov64X(r1, r10), alu64K(bpfinsn.OpAdd, r1, -512), st(bpfinsn.SizeDW, r1, 0, 42), ldx(bpfinsn.SizeDW, r0, r10, -512)), 42},
		{"memsx b", prog(st(bpfinsn.SizeB, r10, -1, 0x80), ldxMode(bpfinsn.ModeMEMSX, bpfinsn.SizeB, r0, r10, -1)), 0xffffffffffffff80},
		{"memsx h", prog(st(bpfinsn.SizeH, r10, -2, 0x7fff), ldxMode(bpfinsn.ModeMEMSX, bpfinsn.SizeH, r0, r10, -2)), 0x7fff},
		{"memsx h negative", prog(st(bpfinsn.SizeH, r10, -2, -2), ldxMode(bpfinsn.ModeMEMSX, bpfinsn.SizeH, r0, r10, -2)), 0xfffffffffffffffe},
		{"memsx w", prog(st(bpfinsn.SizeW, r10, -4, -1), ldxMode(bpfinsn.ModeMEMSX, bpfinsn.SizeW, r0, r10, -4)), 0xffffffffffffffff},
		// kernelData holds bytes 0, 1, 2, ...: at +0x10, 10 11 12 13 14 15 16 17.
		{"kernel dw", prog(ldImm64(r1, kernelData), ldx(bpfinsn.SizeDW, r0, r1, 0x10)), 0x1716151413121110},
		{"kernel w across pages", prog(ldImm64(r1, kernelData+4094), ldx(bpfinsn.SizeW, r0, r1, 0)), 0x0100fffe},
		{"kernel memsx b", prog(ldImm64(r1, kernelData), ldxMode(bpfinsn.ModeMEMSX, bpfinsn.SizeB, r0, r1, 0x90)), 0xffffffffffffff90},
		{"probe mem", prog(ldImm64(r1, kernelData), ldxMode(bpfinsn.ModeProbeMem, bpfinsn.SizeH, r0, r1, 0x20)), 0x2120},
		{"probe mem fault reads 0", prog(mov64(r0, 7), ldImm64(r1, 0xffff888012345678), ldxMode(bpfinsn.ModeProbeMem, bpfinsn.SizeDW, r0, r1, 0)), 0},
		{"probe mem null reads 0", prog(mov64(r0, 7), mov64(r1, 0), ldxMode(bpfinsn.ModeProbeMem, bpfinsn.SizeW, r0, r1, 16)), 0},
		{"probe memsx", prog(ldImm64(r1, kernelData), ldxMode(bpfinsn.ModeProbeMemSX, bpfinsn.SizeW, r0, r1, 0xfc)), 0xfffffffffffefdfc},
		{"probe memsx fault reads 0", prog(mov64(r0, -1), ldxMode(bpfinsn.ModeProbeMemSX, bpfinsn.SizeB, r0, r1, 0)), 0},
		{"nospec", prog(mov64(r0, 3), I{Code: bpfinsn.ClassST | bpfinsn.ModeNoSpec}), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testMachine(Options{})
			if got := mustRun(t, m, prog(c.code, exit())); got != c.want {
				t.Errorf("r0 = %#x, want %#x", got, c.want)
			}
		})
	}
}

func TestAtomics(t *testing.T) {
	const fetch = bpfinsn.AtomicFetch
	type acase struct {
		name         string
		mem, r0, src uint64 // the u64 at r10-8, r0, r1 before
		in           I      // on *(r10-8) and r1
		wantMem      uint64
		wantR0       uint64
		wantSrc      uint64
	}
	dw, w := uint8(bpfinsn.SizeDW), uint8(bpfinsn.SizeW)
	cases := []acase{
		{"add dw", 40, 0, 2, atomicOp(dw, r10, r1, -8, bpfinsn.OpAdd), 42, 0, 2},
		{"add w wraps in 32 bits", 0x1ffffffff, 0, 1, atomicOp(w, r10, r1, -8, bpfinsn.OpAdd), 0x100000000, 0, 1},
		{"fetch add dw", 40, 0, 2, atomicOp(dw, r10, r1, -8, bpfinsn.OpAdd|fetch), 42, 0, 40},
		{"fetch add w zero-extends", 0xaaaaaaaaffffffff, 0, 0xffffffff00000001, atomicOp(w, r10, r1, -8, bpfinsn.OpAdd|fetch), 0xaaaaaaaa00000000, 0, 0xffffffff},
		{"or", 0xf0, 0, 0x0f, atomicOp(dw, r10, r1, -8, bpfinsn.OpOr), 0xff, 0, 0x0f},
		{"fetch or w", 0xf0, 0, 0x0f, atomicOp(w, r10, r1, -8, bpfinsn.OpOr|fetch), 0xff, 0, 0xf0},
		{"and", 0xff, 0, 0x0f, atomicOp(dw, r10, r1, -8, bpfinsn.OpAnd), 0x0f, 0, 0x0f},
		{"fetch and", 0xff, 0, 0x0f, atomicOp(dw, r10, r1, -8, bpfinsn.OpAnd|fetch), 0x0f, 0, 0xff},
		{"xor w", 0xffff0000ff, 0, 0x0f, atomicOp(w, r10, r1, -8, bpfinsn.OpXor), 0xffff0000f0, 0, 0x0f},
		{"fetch xor", 0xff, 0, 0x0f, atomicOp(dw, r10, r1, -8, bpfinsn.OpXor|fetch), 0xf0, 0, 0xff},
		{"xchg dw", 1, 0, 2, atomicOp(dw, r10, r1, -8, bpfinsn.AtomicXchg), 2, 0, 1},
		{"xchg w", 0x1111111122222222, 0, 0x3333333344444444, atomicOp(w, r10, r1, -8, bpfinsn.AtomicXchg), 0x1111111144444444, 0, 0x22222222},
		{"cmpxchg equal", 5, 5, 9, atomicOp(dw, r10, r1, -8, bpfinsn.AtomicCmpXchg), 9, 5, 9},
		{"cmpxchg differs", 5, 6, 9, atomicOp(dw, r10, r1, -8, bpfinsn.AtomicCmpXchg), 5, 5, 9},
		{"cmpxchg w compares 32 bits", 0x700000005, 0xff00000005, 9, atomicOp(w, r10, r1, -8, bpfinsn.AtomicCmpXchg), 0x700000009, 5, 9},
		{"load-acquire", 0x1122334455667788, 0, 0, I{Code: bpfinsn.ClassSTX | bpfinsn.ModeATOMIC | bpfinsn.SizeH, Dst: r1, Src: r10, Off: -8, Imm: 0x100}, 0x1122334455667788, 0, 0x7788},
		{"store-release", 0, 0, 0x1122334455667788, I{Code: bpfinsn.ClassSTX | bpfinsn.ModeATOMIC | bpfinsn.SizeW, Dst: r10, Src: r1, Off: -8, Imm: 0x110}, 0x55667788, 0, 0x1122334455667788},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testMachine(Options{})
			mustRun(t, m, prog(
				ldImm64(r2, c.mem), stx(bpfinsn.SizeDW, r10, r2, -8),
				ldImm64(r0, c.r0), ldImm64(r1, c.src),
				c.in,
				ldx(bpfinsn.SizeDW, r2, r10, -8), exit()))
			regs := m.Regs()
			if regs[r2] != c.wantMem || regs[r0] != c.wantR0 || regs[r1] != c.wantSrc {
				t.Errorf("%s: mem %#x r0 %#x r1 %#x, want %#x %#x %#x", bpfinsn.Format([]I{c.in}, 0), regs[r2], regs[r0], regs[r1], c.wantMem, c.wantR0, c.wantSrc)
			}
		})
	}
}

func TestAtomicOnKernelMemory(t *testing.T) {
	// A map value in kernel memory: the counter is in the overlay,
	// Changes reports it.
	m := testMachine(Options{})
	mustRun(t, m, prog(ldImm64(r1, kernelData+0x100), mov64(r2, 0x10), atomicOp(bpfinsn.SizeDW, r1, r2, 8, bpfinsn.OpAdd), mov64(r0, 0), exit()))
	ch := m.Changes()
	// Before: 08 09 0a 0b 0c 0d 0e 0f at +0x108 = 0x0f0e0d0c0b0a0908; +0x10 changes the first byte only.
	if len(ch) != 1 || ch[0].Addr != kernelData+0x108 || string(ch[0].Before) != "\x08" || string(ch[0].After) != "\x18" {
		t.Fatalf("changes = %+v", ch)
	}
}

func TestFaults(t *testing.T) {
	type fcase struct {
		name     string
		code     []I
		sentinel error
		insn     int
		addr     uint64
		hasAddr  bool
	}
	ro := func(m *Machine) uint64 { r, _ := m.Alloc("ctx", 16, true); return r.Addr }
	cases := []struct {
		fcase
		setup func(m *Machine) uint64 // r1
	}{
		{fcase{"unmapped load", prog(mov64(r0, 0), ldx(bpfinsn.SizeDW, r0, r1, 8), exit()), ErrFault, 1, 0xffff888000000008, true}, func(*Machine) uint64 { return 0xffff888000000000 }},
		{fcase{"null store", prog(st(bpfinsn.SizeW, r1, 4, 1), exit()), ErrFault, 0, 4, true}, func(*Machine) uint64 { return 0 }},
		{fcase{"store to read-only region", prog(st(bpfinsn.SizeW, r1, 0, 1), exit()), ErrFault, 0, 0, true}, ro},
		{fcase{"load past a region", prog(ldx(bpfinsn.SizeDW, r0, r1, 12), exit()), ErrFault, 0, 0, true}, ro},
		{fcase{"below the stack", prog(mov64(r0, 0), mov64(r0, 0), stx(bpfinsn.SizeDW, r10, r0, -520), exit()), ErrFault, 2, StackBase + StackStride - 520, true}, func(*Machine) uint64 { return 0 }},
		{fcase{"above the stack", prog(ldx(bpfinsn.SizeW, r0, r10, 0), exit()), ErrFault, 0, StackBase + StackStride, true}, func(*Machine) uint64 { return 0 }},
		{fcase{"store of unreadable kernel memory", prog(st(bpfinsn.SizeB, r1, 0, 1), exit()), ErrFault, 0, kernelData + 2*4096, true}, func(*Machine) uint64 { return kernelData + 2*4096 }},
		{fcase{"atomic on unmapped", prog(atomicOp(bpfinsn.SizeDW, r1, r1, 0, bpfinsn.OpAdd), exit()), ErrFault, 0, 0x1000, true}, func(*Machine) uint64 { return 0x1000 }},
		{fcase{"bad opcode", prog(mov64(r0, 0), I{Code: 0x8f}, exit()), ErrBadInsn, 1, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"ld_abs", prog(I{Code: bpfinsn.ClassLD | bpfinsn.ModeABS | bpfinsn.SizeW}, exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"register 12", prog(mov64(12, 0), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"write to r10", prog(mov64(r10, 0), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"memsx dw", prog(ldxMode(bpfinsn.ModeMEMSX, bpfinsn.SizeDW, r0, r10, -8), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"atomic add on a byte", prog(atomicOp(bpfinsn.SizeB, r10, r1, -8, bpfinsn.OpAdd), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"byte swap of 8 bits", prog(alu64K(bpfinsn.OpEnd, r0, 8), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"sdiv with off 2", prog(withOff(alu64K(bpfinsn.OpDiv, r0, 1), 2), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"arena cast", prog(I{Code: bpfinsn.ClassALU64 | bpfinsn.OpMov | bpfinsn.SrcX, Off: 1, Imm: 1}, exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"falls off the end", prog(mov64(r0, 0)), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"jumps out", prog(ja(5), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"jumps before the start", prog(mov64(r0, 0), ja(-3), exit()), ErrBadInsn, 1, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"into a wide load", prog(ja(1), ldImm64(r0, 1), exit()), ErrBadInsn, 2, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"wide load cut short", prog(exit(), I{Code: bpfinsn.CodeLdImm64}), ErrBadInsn, 1, 0, false}, func(*Machine) uint64 { return 1 }},
		{fcase{"call out of the program", prog(callPseudo(5), exit()), ErrBadInsn, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"unknown helper", prog(mov64(r0, 0), call("not_implemented"), exit()), ErrUnknownHelper, 1, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"helper no one knows", prog(callAddr(callBase+0x10), exit()), ErrUnknownHelper, 0, 0, false}, func(*Machine) uint64 { return 0 }},
		{fcase{"tail call without a TailCaller", prog(tailCall(), exit()), ErrUnknownHelper, 0, 0, false}, func(*Machine) uint64 { return 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testMachine(Options{})
			r1v := c.setup(m)
			if c.name == "wide load cut short" {
				// Reach insn 1 by a jump: exit at 0 is skipped.
				c.code = prog(ja(0), I{Code: bpfinsn.CodeLdImm64})
			}
			_, err := runProg(t, m, c.code, r1v)
			var xe *ExecError
			if !errors.As(err, &xe) || !errors.Is(err, c.sentinel) {
				t.Fatalf("error %v, want an *ExecError wrapping %v", err, c.sentinel)
			}
			if xe.Insn != c.insn || xe.Prog != "test" {
				t.Errorf("error at %s insn %d, want test insn %d: %v", xe.Prog, xe.Insn, c.insn, err)
			}
			want := c.addr
			if c.setup != nil && want == 0 && c.hasAddr && r1v != 0 {
				want = r1v + map[string]uint64{"load past a region": 12}[c.name]
			}
			if c.hasAddr && (!xe.HasAddr || xe.Addr != want) {
				t.Errorf("error address %#x (%v), want %#x: %v", xe.Addr, xe.HasAddr, want, err)
			}
			if m.Err() == nil {
				t.Errorf("Err() = nil after %v", err)
			}
			if _, err := m.Step(); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Step after a failure: %v, want ErrNotRunning", err)
			}
		})
	}
}

func TestFaultMessages(t *testing.T) {
	m := testMachine(Options{})
	_, err := runProg(t, m, prog(mov64(r0, 0), call("not_implemented"), exit()))
	if err == nil || !strings.Contains(err.Error(), "bpfvm: prog test insn 1: call of helper not_implemented at 0xffffffff81") {
		t.Errorf("error %q, want it to name the helper and the instruction", err)
	}
	_, err = runProg(t, m, prog(ldImm64(r1, 0xffff888000000000), ldx(bpfinsn.SizeDW, r0, r1, 8), exit()))
	want := "bpfvm: prog test insn 2: load of 8 bytes at 0xffff888000000008: not readable in the base memory: address 0xffff888000000000: unmapped: memory fault"
	if err == nil || err.Error() != want {
		t.Errorf("error %q,\nwant %q", err, want)
	}
	if !errors.Is(err, errUnmapped) {
		t.Errorf("error does not wrap the base memory's: %v", err)
	}
}

func TestBudget(t *testing.T) {
	m := testMachine(Options{Budget: 1000})
	_, err := runProg(t, m, prog(mov64(r0, 0), alu64K(bpfinsn.OpAdd, r0, 1), ja(-2)))
	var xe *ExecError
	if !errors.As(err, &xe) || !errors.Is(err, ErrBudget) {
		t.Fatalf("error %v, want ErrBudget", err)
	}
	if m.Executed() != 1000 {
		t.Errorf("executed %d, want 1000", m.Executed())
	}
	// Insn 0, 499 rounds of insns 1 and 2, then insn 1: the next is 2.
	if xe.Insn != 2 {
		t.Errorf("budget error at insn %d, want 2", xe.Insn)
	}
	// A program of exactly the budget runs.
	m = testMachine(Options{Budget: 3})
	if got := mustRun(t, m, prog(mov64(r0, 1), alu64K(bpfinsn.OpAdd, r0, 1), exit())); got != 2 {
		t.Errorf("r0 = %d", got)
	}
}

func TestLdImm64References(t *testing.T) {
	mapByID := []I{{Code: bpfinsn.CodeLdImm64, Dst: r0, Src: bpfinsn.PseudoMapValue, Imm: 7}, {Imm: 16}}
	// The kernel's interpreter loads the constant whatever src_reg says.
	m := testMachine(Options{})
	if got := mustRun(t, m, prog(mapByID, exit())); got != 16<<32|7 {
		t.Errorf("r0 = %#x, want the constant", got)
	}
	// A resolver turns map ID 7's value + 16 into its address.
	m = testMachine(Options{MapRef: func(src uint8, imm, imm2 int32) (uint64, bool) {
		if src == bpfinsn.PseudoMapValue && imm == 7 {
			return 0xffff888000500000 + uint64(imm2), true
		}
		return 0, false
	}})
	if got := mustRun(t, m, prog(mapByID, exit())); got != 0xffff888000500010 {
		t.Errorf("r0 = %#x, want the resolved address", got)
	}
	plain := ldImm64(r0, 0xffff888000600000)
	if got := mustRun(t, m, prog(plain, exit())); got != 0xffff888000600000 {
		t.Errorf("r0 = %#x", got)
	}
}
