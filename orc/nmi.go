package orc

import (
	"encoding/binary"
	"strings"

	"github.com/kinspect/kinspect/vmcore"
)

// The NMI a CPU was stopped by. When a kernel crashes, kdump stops the
// other CPUs with an NMI; each one's handler (crash_nmi_callback, or
// nmi_cpu_backtrace's) saves the pt_regs of the context it interrupted
// into the CPU's crash note and halts, still on the NMI stack. The note
// is a copy: the pt_regs itself lies on the CPU's NMI stack, under the
// handler's frames. Finding it gives the part of the stack the note
// leaves out: the handler's frames, the <NMI> the kernel's own trace
// would start with.

// maxNMIFrames bounds the frames tried from one candidate.
const maxNMIFrames = 32

// nmiFrames looks on the CPU's NMI stack for a struct pt_regs equal to
// regs. Found, it returns its address and the NMI handler's frames above
// it: from the lowest return address on the NMI stack from which ORC
// unwinds to that pt_regs (a scan, as the kernel's "?" entries, so the
// frames are marked Guess), up to the entry code that saved the pt_regs.
func (k *Kernel) nmiFrames(l *layouts, stacks []Stack, regs vmcore.Regs) ([]Frame, uint64, bool) {
	var nmi *Stack
	for i := range stacks {
		if stacks[i].Kind == StackException && stacks[i].Name == "NMI" {
			nmi = &stacks[i]
		}
	}
	if nmi == nil || nmi.End <= nmi.Begin || nmi.End-nmi.Begin > 1<<16 || l.regsSize == 0 {
		return nil, 0, false
	}
	buf := make([]byte, nmi.End-nmi.Begin)
	if err := k.read(buf, nmi.Begin); err != nil {
		return nil, 0, false
	}
	u64 := func(a uint64) uint64 { return binary.LittleEndian.Uint64(buf[a-nmi.Begin:]) }
	// The pt_regs: every register the note has, equal. The handler may
	// have left copies of it below (crash_save_cpu's): the one the
	// unwind reaches from the entry code is the pt_regs.
	found := map[uint64]bool{}
	var top uint64
	for a := nmi.Begin; a+uint64(l.regsSize) <= nmi.End; a += 8 {
		r := decodeRegs(l, buf[a-nmi.Begin:a-nmi.Begin+uint64(l.regsSize)], 0, a, false)
		if sameRegs(l, r, &Regs{Regs: regs}) {
			found[a], top = true, a
		}
	}
	if len(found) == 0 {
		return nil, 0, false
	}
	// A stale return address (of a call that returned) may unwind too,
	// through other stale slots: the lowest whose every step is a call
	// the caller could have made wins.
	for a := nmi.Begin; a < top; a += 8 {
		v := u64(a)
		if v>>47 != 0x1ffff || !k.isText(v) {
			continue
		}
		st := k.newState(l, stacks)
		st.ip, st.sp = v, a+8
		if !st.access(st.sp, 8) {
			continue
		}
		frames := []Frame{{PC: v, SP: a + 8, Slot: a, Stack: "NMI", Guess: true, How: "found on the NMI stack"}}
		for len(frames) < maxNMIFrames {
			f, end, err := st.next()
			if err != nil || end != "" {
				break
			}
			if f.Regs != nil && found[f.Regs.Addr] {
				return frames, f.Regs.Addr, true
			}
			if f.Stack != "NMI" || !k.calls(f.PC, frames[len(frames)-1].PC) {
				break
			}
			f.Guess, f.How = true, "found on the NMI stack"
			frames = append(frames, f)
		}
	}
	return nil, 0, false
}

// sameRegs says whether a and b agree in every member of struct pt_regs.
func sameRegs(l *layouts, a, b *Regs) bool {
	for name := range l.regsOff {
		if pa, pb := a.field(name), b.field(name); pa != nil && pb != nil && *pa != *pb {
			return false
		}
	}
	return true
}

// calls says whether the call instruction before the return address ret
// could have called the function holding callee (a return address in
// it): false only for a direct call (e8 rel32) to another function's
// start, as a chain of stale stack slots makes. Without symbols, or for
// an indirect call (or a retpoline thunk), true.
func (k *Kernel) calls(ret, callee uint64) bool {
	if k.symtab == nil {
		return true
	}
	var insn [5]byte
	if k.read(insn[:], ret-5) != nil || insn[0] != 0xe8 {
		return true
	}
	target := ret + uint64(int64(int32(binary.LittleEndian.Uint32(insn[1:]))))
	fn, err := k.symtab.LookupAddr(callee - 1)
	if err != nil {
		return true
	}
	if target == fn.Addr {
		return true
	}
	t, err := k.symtab.LookupAddr(target)
	return err == nil && t.Offset == 0 && strings.HasPrefix(t.Name, "__x86_indirect_thunk")
}
