package bpfvm

import (
	"errors"
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpfinsn"
)

// A small assembler for the tests: each function returns the instruction
// the kernel's BPF_* macro of the same name (include/linux/filter.h)
// builds.

type I = bpfinsn.Insn

func aluK(class, op, dst uint8, imm int32) I {
	return I{Code: class | op | bpfinsn.SrcK, Dst: dst, Imm: imm}
}

func aluX(class, op, dst, src uint8) I {
	return I{Code: class | op | bpfinsn.SrcX, Dst: dst, Src: src}
}

func alu64K(op, dst uint8, imm int32) I { return aluK(bpfinsn.ClassALU64, op, dst, imm) }
func alu64X(op, dst, src uint8) I       { return aluX(bpfinsn.ClassALU64, op, dst, src) }
func alu32K(op, dst uint8, imm int32) I { return aluK(bpfinsn.ClassALU, op, dst, imm) }
func alu32X(op, dst, src uint8) I       { return aluX(bpfinsn.ClassALU, op, dst, src) }
func mov64(dst uint8, imm int32) I      { return alu64K(bpfinsn.OpMov, dst, imm) }
func mov64X(dst, src uint8) I           { return alu64X(bpfinsn.OpMov, dst, src) }

// ldImm64 is BPF_LD_IMM64: two instructions.
func ldImm64(dst uint8, v uint64) []I {
	return []I{{Code: bpfinsn.CodeLdImm64, Dst: dst, Imm: int32(uint32(v))}, {Imm: int32(uint32(v >> 32))}}
}

// ldFunc is BPF_LD_IMM64 of BPF_PSEUDO_FUNC, off instructions after the
// next.
func ldFunc(dst uint8, off int32) []I {
	return []I{{Code: bpfinsn.CodeLdImm64, Dst: dst, Src: bpfinsn.PseudoFunc, Imm: off}, {}}
}

func ldx(size, dst, src uint8, off int16) I {
	return I{Code: bpfinsn.ClassLDX | bpfinsn.ModeMEM | size, Dst: dst, Src: src, Off: off}
}

func ldxMode(mode, size, dst, src uint8, off int16) I {
	return I{Code: bpfinsn.ClassLDX | mode | size, Dst: dst, Src: src, Off: off}
}

func stx(size, dst, src uint8, off int16) I {
	return I{Code: bpfinsn.ClassSTX | bpfinsn.ModeMEM | size, Dst: dst, Src: src, Off: off}
}

func st(size, dst uint8, off int16, imm int32) I {
	return I{Code: bpfinsn.ClassST | bpfinsn.ModeMEM | size, Dst: dst, Off: off, Imm: imm}
}

func atomicOp(size, dst, src uint8, off int16, op int32) I {
	return I{Code: bpfinsn.ClassSTX | bpfinsn.ModeATOMIC | size, Dst: dst, Src: src, Off: off, Imm: op}
}

func jmpK(op, dst uint8, imm int32, off int16) I {
	return I{Code: bpfinsn.ClassJMP | op | bpfinsn.SrcK, Dst: dst, Imm: imm, Off: off}
}

func jmpX(op, dst, src uint8, off int16) I {
	return I{Code: bpfinsn.ClassJMP | op | bpfinsn.SrcX, Dst: dst, Src: src, Off: off}
}

func jmp32K(op, dst uint8, imm int32, off int16) I {
	return I{Code: bpfinsn.ClassJMP32 | op | bpfinsn.SrcK, Dst: dst, Imm: imm, Off: off}
}

func jmp32X(op, dst, src uint8, off int16) I {
	return I{Code: bpfinsn.ClassJMP32 | op | bpfinsn.SrcX, Dst: dst, Src: src, Off: off}
}

func ja(off int16) I { return I{Code: bpfinsn.ClassJMP | bpfinsn.OpJA, Off: off} }

// gotol is BPF_JMP32 | BPF_JA, its offset in imm.
func gotol(off int32) I { return I{Code: bpfinsn.ClassJMP32 | bpfinsn.OpJA, Imm: off} }

func exit() I { return I{Code: bpfinsn.ClassJMP | bpfinsn.OpExit} }

// callAddr is a call of the kernel function at addr, as the verifier
// leaves it: imm = addr - __bpf_call_base.
func callAddr(addr uint64) I { return I{Code: bpfinsn.CodeCall, Imm: int32(addr - callBase)} }

// callPseudo is a BPF-to-BPF call as loaded: imm is the offset.
func callPseudo(off int32) I { return I{Code: bpfinsn.CodeCall, Src: bpfinsn.PseudoCall, Imm: off} }

// tailCall is BPF_TAIL_CALL as the kernel holds it.
func tailCall() I { return I{Code: bpfinsn.ClassJMP | bpfinsn.OpTailCall} }

// prog flattens instructions and slices of them.
func prog(parts ...any) []I {
	var out []I
	for _, p := range parts {
		switch v := p.(type) {
		case I:
			out = append(out, v)
		case []I:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("prog: %T", p))
		}
	}
	return out
}

// Registers.
const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
	r6
	r7
	r8
	r9
	r10
)

// The kernel layout the tests pretend: __bpf_call_base and helpers
// above it, and kernel memory.
const (
	callBase   = 0xffffffff81000000
	kernelData = 0xffff888000100000
)

// fakeMem is kernel memory: data at base, nothing else.
type fakeMem struct {
	base uint64
	data []byte
}

var errUnmapped = errors.New("unmapped")

func (f *fakeMem) ReadVirt(p []byte, a uint64) (int, error) {
	if a < f.base || a-f.base >= uint64(len(f.data)) {
		return 0, fmt.Errorf("address %#x: %w", a, errUnmapped)
	}
	n := copy(p, f.data[a-f.base:])
	if n < len(p) {
		return n, fmt.Errorf("address %#x: %w", a+uint64(n), errUnmapped)
	}
	return n, nil
}

// syms names the helpers at callBase + 0x100*k.
type syms map[uint64]string

func (s syms) SymbolAt(a uint64) (string, bool) { n, ok := s[a]; return n, ok }

// helperAddrs are the addresses the tests give kernel functions: the
// standard helpers and a few more, 0x100 apart above callBase.
var helperAddrs = func() map[string]uint64 {
	names := append(StandardHelpers().Names(), "not_implemented", "test_helper", "test_fail", "test_write_scratch")
	sort.Strings(names)
	out := map[string]uint64{}
	for k, n := range names {
		out[n] = callBase + 0x1000 + uint64(k)*0x100
	}
	return out
}()

// addrOf returns the address of the kernel function name.
func addrOf(name string) uint64 {
	a, ok := helperAddrs[name]
	if !ok {
		panic("no address for " + name)
	}
	return a
}

func call(name string) I { return callAddr(addrOf(name)) }

func testSyms() syms {
	s := syms{}
	for n, a := range helperAddrs {
		s[a] = n
	}
	return s
}
