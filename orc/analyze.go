package orc

import (
	"fmt"

	"github.com/kinspect/kinspect/kallsyms"
	"golang.org/x/arch/x86/x86asm"
)

// Code analysis: objtool leaves some functions without ORC data on
// purpose (STACK_FRAME_NON_STANDARD: __crash_kexec, whose inline
// crash_setup_regs is where a kdump's saved registers point). For those,
// the frame is found by following the function's code from its start to
// the instruction, counting what each instruction pushes and pops on the
// stack, as objtool itself would. The caller's frame then unwinds by ORC
// again.

// WithSymbols gives the unwinder the kernel's symbols, which code
// analysis needs to find where a function without ORC data starts.
func WithSymbols(t *kallsyms.Table) Option { return func(k *Kernel) { k.symtab = t } }

// Bounds on an analysis: a function's size, and the instructions
// followed.
const (
	maxAnalyzedFunc  = 64 << 10
	maxAnalyzedInsns = 1 << 14
)

// errAnalysis marks why a function's code could not give its frame.
var errAnalysis = fmt.Errorf("code analysis")

// analyze returns the ORC entry the code of the function holding look
// (the instruction, or the call before a return address) implies at ip:
// the stack pointer's offset from the caller's (CFA = SP + offset) and
// where the caller's frame pointer was saved.
func (k *Kernel) analyze(st *state, look, ip uint64) (Entry, error) {
	if k.symtab == nil {
		return Entry{}, fmt.Errorf("%w: no symbol table", errAnalysis)
	}
	loc, err := k.symtab.LookupAddr(look)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", errAnalysis, err)
	}
	start := look - loc.Offset
	size := loc.Size
	if size == 0 || size > maxAnalyzedFunc || ip-start > size {
		return Entry{}, fmt.Errorf("%w: %s has no usable size (%d)", errAnalysis, loc.Name, size)
	}
	code := make([]byte, size)
	if err := st.mem.read(code, start); err != nil {
		return Entry{}, fmt.Errorf("%w: read %s: %v", errAnalysis, loc.Name, err)
	}
	d, err := frameAt(code, ip-start)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %s: %v", errAnalysis, loc.Name, err)
	}
	e := Entry{SPReg: RegSP, SPOffset: int16(d.sp + 8), BPReg: RegUndefined, Type: TypeCall}
	if d.bpSaved {
		// rbp was pushed at depth bpAt: it lies at CFA - 8 - bpAt.
		e.BPReg, e.BPOffset = RegPrevSP, int16(-8-d.bpAt)
	}
	return e, nil
}

// depth is what a function has pushed at an instruction: sp bytes below
// its entry stack pointer (the return address's slot), and whether and at
// which depth it pushed rbp.
type depth struct {
	sp      int
	bpSaved bool
	bpAt    int
}

// frameAt follows the code from offset 0 to target through every branch,
// and returns the stack depth there. Paths that reach target with
// different depths, or an instruction that moves the stack pointer in a
// way that cannot be followed, fail.
func frameAt(code []byte, target uint64) (depth, error) {
	type item struct {
		off uint64
		d   depth
	}
	seen := map[uint64]depth{}
	work := []item{{0, depth{}}}
	var found *depth
	n := 0
	for len(work) > 0 {
		it := work[len(work)-1]
		work = work[:len(work)-1]
		off, d := it.off, it.d
		for {
			if off >= uint64(len(code)) {
				break
			}
			if prev, ok := seen[off]; ok {
				if prev != d {
					return depth{}, fmt.Errorf("offset %#x reached with stack depths %d and %d", off, prev.sp, d.sp)
				}
				break
			}
			seen[off] = d
			if off == target {
				if found != nil && *found != d {
					return depth{}, fmt.Errorf("target reached with stack depths %d and %d", found.sp, d.sp)
				}
				dd := d
				found = &dd
				break
			}
			if n++; n > maxAnalyzedInsns {
				return depth{}, fmt.Errorf("more than %d instructions", maxAnalyzedInsns)
			}
			in, err := x86asm.Decode(code[off:], 64)
			if err != nil {
				return depth{}, fmt.Errorf("offset %#x: %v", off, err)
			}
			next := off + uint64(in.Len)
			stop := false
			switch in.Op {
			case x86asm.PUSH, x86asm.PUSHF, x86asm.PUSHFQ:
				d.sp += 8
				if r, ok := in.Args[0].(x86asm.Reg); ok && r == x86asm.RBP && !d.bpSaved {
					d.bpSaved, d.bpAt = true, d.sp
				}
			case x86asm.POP, x86asm.POPF, x86asm.POPFQ:
				d.sp -= 8
				if r, ok := in.Args[0].(x86asm.Reg); ok && r == x86asm.RBP && d.bpSaved && d.sp < d.bpAt {
					d.bpSaved, d.bpAt = false, 0
				}
			case x86asm.SUB, x86asm.ADD:
				if r, ok := in.Args[0].(x86asm.Reg); ok && r == x86asm.RSP {
					imm, ok := in.Args[1].(x86asm.Imm)
					if !ok {
						return depth{}, fmt.Errorf("offset %#x: %s moves the stack by a register", off, in)
					}
					if in.Op == x86asm.SUB {
						d.sp += int(imm)
					} else {
						d.sp -= int(imm)
					}
				}
			case x86asm.LEA, x86asm.MOV, x86asm.AND:
				if r, ok := in.Args[0].(x86asm.Reg); ok && r == x86asm.RSP {
					return depth{}, fmt.Errorf("offset %#x: %s sets the stack pointer", off, in)
				}
			case x86asm.LEAVE:
				return depth{}, fmt.Errorf("offset %#x: leave before the target", off)
			case x86asm.RET, x86asm.UD2, x86asm.INT:
				stop = true
			case x86asm.JMP:
				if rel, ok := in.Args[0].(x86asm.Rel); ok {
					t := int64(next) + int64(rel)
					if t >= 0 && t < int64(len(code)) {
						work = append(work, item{uint64(t), d})
					}
				}
				stop = true // a tail call, or an indirect jump
			default:
				if isCondJump(in.Op) {
					if rel, ok := in.Args[0].(x86asm.Rel); ok {
						t := int64(next) + int64(rel)
						if t >= 0 && t < int64(len(code)) {
							work = append(work, item{uint64(t), d})
						}
					}
				}
			}
			if d.sp < 0 {
				return depth{}, fmt.Errorf("offset %#x: pops past the return address", off)
			}
			if stop {
				break
			}
			off = next
		}
	}
	if found == nil {
		return depth{}, fmt.Errorf("offset %#x is not reached from the function's start", target)
	}
	return *found, nil
}

func isCondJump(op x86asm.Op) bool {
	switch op {
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JCXZ, x86asm.JE, x86asm.JECXZ, x86asm.JG, x86asm.JGE,
		x86asm.JL, x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO, x86asm.JP, x86asm.JRCXZ, x86asm.JS:
		return true
	}
	return false
}
