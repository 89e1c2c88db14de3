package bpfvm

import (
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/bpfinsn"
)

// Regs are a frame's registers: R0-R10 and, at 11, the kernel's
// auxiliary register BPF_REG_AX that constant blinding (bpf_jit_harden)
// writes into xlated code.
type Regs [12]uint64

// Changed returns the indexes of the registers that differ in o.
func (r Regs) Changed(o Regs) []int {
	var out []int
	for i := range r {
		if r[i] != o[i] {
			out = append(out, i)
		}
	}
	return out
}

// String renders the registers as "r0=0x0 r1=0x... ... ax=0x...".
func (r Regs) String() string {
	var b strings.Builder
	for i, v := range r {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%#x", RegName(i), v)
	}
	return b.String()
}

// RegName names register i as the kernel's disassembler does: "r0" to
// "r10", "ax" for 11.
func RegName(i int) string {
	if i == regAX {
		return "ax"
	}
	return fmt.Sprintf("r%d", i)
}

// TraceFunc is called after each instruction a Machine executes. ev is
// reused: copy what is kept. The instructions of a callback that a helper
// calls are reported before the helper's call instruction itself, which
// completes after them.
type TraceFunc func(ev *TraceEvent)

// TraceEvent is one executed instruction.
type TraceEvent struct {
	Prog *Program
	// Index is the instruction's index in Prog, Insn the instruction.
	Index int
	Insn  bpfinsn.Insn
	// Depth is the frame's depth, 0 for the main program.
	Depth int
	// Before and After are the registers around the instruction (After:
	// the caller's or callee's after a call or exit).
	Before, After Regs
	// Access is the memory the instruction accessed: Size 0 if none.
	Access Access
}

// Changed returns the registers the instruction changed.
func (ev *TraceEvent) Changed() []int { return ev.Before.Changed(ev.After) }

// Access is a memory access of an instruction: Size bytes at Addr.
type Access struct {
	Addr  uint64
	Size  int
	Write bool
}

// access computes the memory access of instruction pc of p from the
// registers before it.
func access(p *Program, pc int, r *[16]uint64) Access {
	if pc < 0 || pc >= len(p.code) {
		return Access{}
	}
	in := &p.code[pc]
	size := sizeOf(in.Code)
	switch in.Class() {
	case bpfinsn.ClassLDX:
		return Access{Addr: r[in.Src&15] + uint64(int64(in.Off)), Size: size}
	case bpfinsn.ClassST:
		if in.Mode() != bpfinsn.ModeMEM {
			return Access{}
		}
		return Access{Addr: r[in.Dst&15] + uint64(int64(in.Off)), Size: size, Write: true}
	case bpfinsn.ClassSTX:
		if in.Mode() == bpfinsn.ModeATOMIC && in.Imm == atomicLoadAcq {
			return Access{Addr: r[in.Src&15] + uint64(int64(in.Off)), Size: size}
		}
		return Access{Addr: r[in.Dst&15] + uint64(int64(in.Off)), Size: size, Write: true}
	}
	return Access{}
}
