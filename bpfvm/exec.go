package bpfvm

import (
	"fmt"
	"math/bits"

	"github.com/kinspect/kinspect/bpfinsn"
)

// Opcode groups of the interpreter's switch.
const (
	gAlu64K = bpfinsn.ClassALU64 | bpfinsn.SrcK
	gAlu64X = bpfinsn.ClassALU64 | bpfinsn.SrcX
	gAlu32K = bpfinsn.ClassALU | bpfinsn.SrcK
	gAlu32X = bpfinsn.ClassALU | bpfinsn.SrcX
	gJmpK   = bpfinsn.ClassJMP | bpfinsn.SrcK
	gJmpX   = bpfinsn.ClassJMP | bpfinsn.SrcX
	gJmp32K = bpfinsn.ClassJMP32 | bpfinsn.SrcK
	gJmp32X = bpfinsn.ClassJMP32 | bpfinsn.SrcX

	gLdx    = bpfinsn.ClassLDX | bpfinsn.ModeMEM
	gLdxSX  = bpfinsn.ClassLDX | bpfinsn.ModeMEMSX
	gLdxP   = bpfinsn.ClassLDX | bpfinsn.ModeProbeMem
	gLdxPSX = bpfinsn.ClassLDX | bpfinsn.ModeProbeMemSX
	gSt     = bpfinsn.ClassST | bpfinsn.ModeMEM
	gStx    = bpfinsn.ClassSTX | bpfinsn.ModeMEM
	gAtomic = bpfinsn.ClassSTX | bpfinsn.ModeATOMIC

	sB  = bpfinsn.SizeB
	sH  = bpfinsn.SizeH
	sW  = bpfinsn.SizeW
	sDW = bpfinsn.SizeDW
)

// exec runs the top frame's instructions, as ___bpf_prog_run does, until
// the main frame or a callback frame exits (nil), an error, or, if
// single, after one instruction. A BPF-to-BPF call or exit, a tail call,
// continues in the same loop.
func (m *Machine) exec(single bool) error {
	r := &m.r
	f := &m.frames[len(m.frames)-1]
	code := f.prog.code
	pc, prev := m.pc, m.pc
	for {
		if uint(pc) >= uint(len(code)) {
			m.pc = prev
			return m.errAt(prev, ErrBadInsn, fmt.Sprintf("control goes to insn %d, outside the program's %d instructions", pc, len(code)), nil)
		}
		if m.left == 0 {
			m.pc = pc
			return m.errAt(pc, ErrBudget, fmt.Sprintf("instruction budget of %d exhausted before this instruction", m.budget), nil)
		}
		m.left--
		prev = pc
		in := &code[pc]
		dst := &r[in.Dst&15]
		src := r[in.Src&15]
		switch in.Code {
		// 64-bit ALU: imm is sign-extended.
		case gAlu64K | bpfinsn.OpAdd:
			*dst += uint64(int64(in.Imm))
		case gAlu64X | bpfinsn.OpAdd:
			*dst += src
		case gAlu64K | bpfinsn.OpSub:
			*dst -= uint64(int64(in.Imm))
		case gAlu64X | bpfinsn.OpSub:
			*dst -= src
		case gAlu64K | bpfinsn.OpMul:
			*dst *= uint64(int64(in.Imm))
		case gAlu64X | bpfinsn.OpMul:
			*dst *= src
		case gAlu64K | bpfinsn.OpDiv:
			*dst = div64(*dst, uint64(int64(in.Imm)), in.Off == 1)
		case gAlu64X | bpfinsn.OpDiv:
			*dst = div64(*dst, src, in.Off == 1)
		case gAlu64K | bpfinsn.OpMod:
			*dst = mod64(*dst, uint64(int64(in.Imm)), in.Off == 1)
		case gAlu64X | bpfinsn.OpMod:
			*dst = mod64(*dst, src, in.Off == 1)
		case gAlu64K | bpfinsn.OpOr:
			*dst |= uint64(int64(in.Imm))
		case gAlu64X | bpfinsn.OpOr:
			*dst |= src
		case gAlu64K | bpfinsn.OpAnd:
			*dst &= uint64(int64(in.Imm))
		case gAlu64X | bpfinsn.OpAnd:
			*dst &= src
		case gAlu64K | bpfinsn.OpXor:
			*dst ^= uint64(int64(in.Imm))
		case gAlu64X | bpfinsn.OpXor:
			*dst ^= src
		case gAlu64K | bpfinsn.OpLsh:
			*dst <<= uint32(in.Imm) & 63
		case gAlu64X | bpfinsn.OpLsh:
			*dst <<= src & 63
		case gAlu64K | bpfinsn.OpRsh:
			*dst >>= uint32(in.Imm) & 63
		case gAlu64X | bpfinsn.OpRsh:
			*dst >>= src & 63
		case gAlu64K | bpfinsn.OpArsh:
			*dst = uint64(int64(*dst) >> (uint32(in.Imm) & 63))
		case gAlu64X | bpfinsn.OpArsh:
			*dst = uint64(int64(*dst) >> (src & 63))
		case gAlu64K | bpfinsn.OpNeg:
			*dst = -*dst
		case gAlu64K | bpfinsn.OpMov:
			*dst = uint64(int64(in.Imm))
		case gAlu64X | bpfinsn.OpMov:
			switch in.Off {
			case 0:
				*dst = src
			case 8:
				*dst = uint64(int64(int8(src)))
			case 16:
				*dst = uint64(int64(int16(src)))
			case 32:
				*dst = uint64(int64(int32(src)))
			case offAddrPerCPU:
				*dst = src + m.opts.PerCPUOffset
			}
		case gAlu64K | bpfinsn.OpEnd: // bswap16/32/64, 6.6+
			*dst = bswap(*dst, in.Imm)

		// 32-bit ALU: on the low halves, the result zero-extended.
		case gAlu32K | bpfinsn.OpAdd:
			*dst = uint64(uint32(*dst) + uint32(in.Imm))
		case gAlu32X | bpfinsn.OpAdd:
			*dst = uint64(uint32(*dst) + uint32(src))
		case gAlu32K | bpfinsn.OpSub:
			*dst = uint64(uint32(*dst) - uint32(in.Imm))
		case gAlu32X | bpfinsn.OpSub:
			*dst = uint64(uint32(*dst) - uint32(src))
		case gAlu32K | bpfinsn.OpMul:
			*dst = uint64(uint32(*dst) * uint32(in.Imm))
		case gAlu32X | bpfinsn.OpMul:
			*dst = uint64(uint32(*dst) * uint32(src))
		case gAlu32K | bpfinsn.OpDiv:
			*dst = div32(uint32(*dst), uint32(in.Imm), in.Off == 1)
		case gAlu32X | bpfinsn.OpDiv:
			*dst = div32(uint32(*dst), uint32(src), in.Off == 1)
		case gAlu32K | bpfinsn.OpMod:
			*dst = mod32(uint32(*dst), uint32(in.Imm), in.Off == 1)
		case gAlu32X | bpfinsn.OpMod:
			*dst = mod32(uint32(*dst), uint32(src), in.Off == 1)
		case gAlu32K | bpfinsn.OpOr:
			*dst = uint64(uint32(*dst) | uint32(in.Imm))
		case gAlu32X | bpfinsn.OpOr:
			*dst = uint64(uint32(*dst) | uint32(src))
		case gAlu32K | bpfinsn.OpAnd:
			*dst = uint64(uint32(*dst) & uint32(in.Imm))
		case gAlu32X | bpfinsn.OpAnd:
			*dst = uint64(uint32(*dst) & uint32(src))
		case gAlu32K | bpfinsn.OpXor:
			*dst = uint64(uint32(*dst) ^ uint32(in.Imm))
		case gAlu32X | bpfinsn.OpXor:
			*dst = uint64(uint32(*dst) ^ uint32(src))
		case gAlu32K | bpfinsn.OpLsh:
			*dst = uint64(uint32(*dst) << (uint32(in.Imm) & 31))
		case gAlu32X | bpfinsn.OpLsh:
			*dst = uint64(uint32(*dst) << (uint32(src) & 31))
		case gAlu32K | bpfinsn.OpRsh:
			*dst = uint64(uint32(*dst) >> (uint32(in.Imm) & 31))
		case gAlu32X | bpfinsn.OpRsh:
			*dst = uint64(uint32(*dst) >> (uint32(src) & 31))
		case gAlu32K | bpfinsn.OpArsh:
			*dst = uint64(uint32(int32(*dst) >> (uint32(in.Imm) & 31)))
		case gAlu32X | bpfinsn.OpArsh:
			*dst = uint64(uint32(int32(*dst) >> (uint32(src) & 31)))
		case gAlu32K | bpfinsn.OpNeg:
			*dst = uint64(-uint32(*dst))
		case gAlu32K | bpfinsn.OpMov:
			*dst = uint64(uint32(in.Imm))
		case gAlu32X | bpfinsn.OpMov:
			switch in.Off {
			case 0:
				*dst = uint64(uint32(src))
			case 8:
				*dst = uint64(uint32(int32(int8(src))))
			case 16:
				*dst = uint64(uint32(int32(int16(src))))
			}
		case gAlu32K | bpfinsn.OpEnd: // to little endian: truncation here
			switch in.Imm {
			case 16:
				*dst = uint64(uint16(*dst))
			case 32:
				*dst = uint64(uint32(*dst))
			}
		case gAlu32X | bpfinsn.OpEnd: // to big endian
			*dst = bswap(*dst, in.Imm)

		// Jumps: off (gotol: imm) is relative to the next instruction.
		case gJmpK | bpfinsn.OpJA:
			pc += int(in.Off)
		case gJmp32K | bpfinsn.OpJA:
			pc += int(in.Imm)
		case gJmpK | bpfinsn.OpJEQ:
			if *dst == uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJEQ:
			if *dst == src {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJNE:
			if *dst != uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJNE:
			if *dst != src {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJGT:
			if *dst > uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJGT:
			if *dst > src {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJGE:
			if *dst >= uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJGE:
			if *dst >= src {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJLT:
			if *dst < uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJLT:
			if *dst < src {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJLE:
			if *dst <= uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJLE:
			if *dst <= src {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJSET:
			if *dst&uint64(int64(in.Imm)) != 0 {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJSET:
			if *dst&src != 0 {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJSGT:
			if int64(*dst) > int64(in.Imm) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJSGT:
			if int64(*dst) > int64(src) {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJSGE:
			if int64(*dst) >= int64(in.Imm) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJSGE:
			if int64(*dst) >= int64(src) {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJSLT:
			if int64(*dst) < int64(in.Imm) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJSLT:
			if int64(*dst) < int64(src) {
				pc += int(in.Off)
			}
		case gJmpK | bpfinsn.OpJSLE:
			if int64(*dst) <= int64(in.Imm) {
				pc += int(in.Off)
			}
		case gJmpX | bpfinsn.OpJSLE:
			if int64(*dst) <= int64(src) {
				pc += int(in.Off)
			}

		// 32-bit jumps compare the low halves.
		case gJmp32K | bpfinsn.OpJEQ:
			if uint32(*dst) == uint32(in.Imm) {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJEQ:
			if uint32(*dst) == uint32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJNE:
			if uint32(*dst) != uint32(in.Imm) {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJNE:
			if uint32(*dst) != uint32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJGT:
			if uint32(*dst) > uint32(in.Imm) {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJGT:
			if uint32(*dst) > uint32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJGE:
			if uint32(*dst) >= uint32(in.Imm) {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJGE:
			if uint32(*dst) >= uint32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJLT:
			if uint32(*dst) < uint32(in.Imm) {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJLT:
			if uint32(*dst) < uint32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJLE:
			if uint32(*dst) <= uint32(in.Imm) {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJLE:
			if uint32(*dst) <= uint32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJSET:
			if uint32(*dst)&uint32(in.Imm) != 0 {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJSET:
			if uint32(*dst)&uint32(src) != 0 {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJSGT:
			if int32(*dst) > in.Imm {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJSGT:
			if int32(*dst) > int32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJSGE:
			if int32(*dst) >= in.Imm {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJSGE:
			if int32(*dst) >= int32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJSLT:
			if int32(*dst) < in.Imm {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJSLT:
			if int32(*dst) < int32(src) {
				pc += int(in.Off)
			}
		case gJmp32K | bpfinsn.OpJSLE:
			if int32(*dst) <= in.Imm {
				pc += int(in.Off)
			}
		case gJmp32X | bpfinsn.OpJSLE:
			if int32(*dst) <= int32(src) {
				pc += int(in.Off)
			}

		// Calls and exit.
		case bpfinsn.CodeCall: // a kernel function: helper, map operation, kfunc
			m.pc = pc
			if err := m.callHelper(pc, in); err != nil {
				return err
			}
		case codeBPFCall:
			if len(m.frames) >= MaxCallFrames {
				m.pc = pc
				return m.errAt(pc, ErrCallDepth, fmt.Sprintf("call of insn %d beyond %d frames", in.Imm, MaxCallFrames), nil)
			}
			m.pc = pc
			m.pushFrame(f.prog, pc+1, frameCall)
			f = &m.frames[len(m.frames)-1]
			pc = int(in.Imm) - 1
		case codeTailCall:
			m.pc = pc
			p, err := m.tailCall(pc)
			if err != nil {
				return err
			}
			if p != nil {
				f.prog, code, pc = p, p.code, -1
			}
		case bpfinsn.ClassJMP | bpfinsn.OpExit:
			switch f.kind {
			case frameMain:
				m.done, m.pc = true, pc
				return nil
			case frameCallback:
				// Machine.Call restores the caller's pc and registers.
				m.popFrame()
				return nil
			}
			ret := f.ret
			m.popFrame()
			f = &m.frames[len(m.frames)-1]
			code, pc = f.prog.code, ret-1

		// 64-bit immediate loads.
		case bpfinsn.CodeLdImm64:
			*dst = uint64(uint32(in.Imm)) | uint64(uint32(code[pc+1].Imm))<<32
			pc++
		case codeLdRef:
			v := uint64(uint32(in.Imm)) | uint64(uint32(code[pc+1].Imm))<<32
			if m.opts.MapRef != nil {
				if a, ok := m.opts.MapRef(in.Src, in.Imm, code[pc+1].Imm); ok {
					v = a
				}
			}
			*dst = v
			pc++
		case codeLdFunc:
			*dst = m.FuncAddr(f.prog, int(in.Imm))
			pc++

		// Loads.
		case gLdx | sB, gLdx | sH, gLdx | sW, gLdx | sDW:
			v, err := m.load(src+uint64(int64(in.Off)), sizeOf(in.Code))
			if err != nil {
				m.pc = pc
				return m.memErr(pc, err)
			}
			*dst = v
		case gLdxSX | sB, gLdxSX | sH, gLdxSX | sW:
			size := sizeOf(in.Code)
			v, err := m.load(src+uint64(int64(in.Off)), size)
			if err != nil {
				m.pc = pc
				return m.memErr(pc, err)
			}
			*dst = signExtend(v, size)
		case gLdxP | sB, gLdxP | sH, gLdxP | sW, gLdxP | sDW:
			// bpf_probe_read_kernel_common: a fault reads as zero.
			v, err := m.load(src+uint64(int64(in.Off)), sizeOf(in.Code))
			if err != nil {
				v = 0
			}
			*dst = v
		case gLdxPSX | sB, gLdxPSX | sH, gLdxPSX | sW:
			size := sizeOf(in.Code)
			v, err := m.load(src+uint64(int64(in.Off)), size)
			if err != nil {
				v = 0
			}
			*dst = signExtend(v, size)

		// Stores.
		case gSt | sB, gSt | sH, gSt | sW, gSt | sDW:
			if err := m.store(*dst+uint64(int64(in.Off)), sizeOf(in.Code), uint64(int64(in.Imm))); err != nil {
				m.pc = pc
				return m.memErr(pc, err)
			}
		case gStx | sB, gStx | sH, gStx | sW, gStx | sDW:
			if err := m.store(*dst+uint64(int64(in.Off)), sizeOf(in.Code), src); err != nil {
				m.pc = pc
				return m.memErr(pc, err)
			}
		case bpfinsn.ClassST | bpfinsn.ModeNoSpec:
			// A speculation barrier: nothing to do here.
		case gAtomic | sB, gAtomic | sH, gAtomic | sW, gAtomic | sDW:
			if err := m.atomic(in); err != nil {
				m.pc = pc
				return m.memErr(pc, err)
			}

		default:
			m.pc = pc
			why := f.prog.reasons[pc]
			if why == "" {
				why = fmt.Sprintf("unknown opcode %#02x", in.Code)
			}
			return m.errAt(pc, ErrBadInsn, why, nil)
		}
		pc++
		if single {
			m.pc = pc
			return nil
		}
	}
}

func sizeOf(code uint8) int {
	switch code & 0x18 {
	case bpfinsn.SizeB:
		return 1
	case bpfinsn.SizeH:
		return 2
	case bpfinsn.SizeW:
		return 4
	}
	return 8
}

func signExtend(v uint64, size int) uint64 {
	switch size {
	case 1:
		return uint64(int64(int8(v)))
	case 2:
		return uint64(int64(int16(v)))
	case 4:
		return uint64(int64(int32(v)))
	}
	return v
}

// div64 is BPF_DIV of ALU64: x/0 is 0 (the verifier's patch, as the
// instruction set defines it); signed LLONG_MIN/-1 is LLONG_MIN.
func div64(a, b uint64, signed bool) uint64 {
	switch {
	case b == 0:
		return 0
	case signed:
		return uint64(int64(a) / int64(b))
	}
	return a / b
}

// mod64 is BPF_MOD of ALU64: x%0 is x; signed, the result has the
// dividend's sign (truncated division), LLONG_MIN%-1 is 0.
func mod64(a, b uint64, signed bool) uint64 {
	switch {
	case b == 0:
		return a
	case signed:
		return uint64(int64(a) % int64(b))
	}
	return a % b
}

// div32 is BPF_DIV of ALU, zero-extended.
func div32(a, b uint32, signed bool) uint64 {
	switch {
	case b == 0:
		return 0
	case signed:
		return uint64(uint32(int32(a) / int32(b)))
	}
	return uint64(a / b)
}

// mod32 is BPF_MOD of ALU: x%0 is x with its upper half zeroed.
func mod32(a, b uint32, signed bool) uint64 {
	switch {
	case b == 0:
		return uint64(a)
	case signed:
		return uint64(uint32(int32(a) % int32(b)))
	}
	return uint64(a % b)
}

// bswap reverses the bytes of the low width bits of v, the rest
// cleared.
func bswap(v uint64, width int32) uint64 {
	switch width {
	case 16:
		return uint64(bits.ReverseBytes16(uint16(v)))
	case 32:
		return uint64(bits.ReverseBytes32(uint32(v)))
	}
	return bits.ReverseBytes64(v)
}

// gAtomic runs BPF_STX | BPF_ATOMIC: a read-modify-write (32 or 64 bits),
// a load-acquire or a store-release.
func (m *Machine) atomic(in *bpfinsn.Insn) error {
	r := &m.r
	size := sizeOf(in.Code)
	switch in.Imm {
	case atomicLoadAcq:
		v, err := m.load(r[in.Src&15]+uint64(int64(in.Off)), size)
		if err != nil {
			return err
		}
		r[in.Dst&15] = v
		return nil
	case atomicStoreRel:
		return m.store(r[in.Dst&15]+uint64(int64(in.Off)), size, r[in.Src&15])
	}
	a := r[in.Dst&15] + uint64(int64(in.Off))
	old, err := m.load(a, size)
	if err != nil {
		return err
	}
	src := r[in.Src&15]
	if size == 4 {
		src = uint64(uint32(src))
	}
	var v uint64
	switch in.Imm &^ atomicFetch {
	case atomicAdd:
		v = old + src
	case atomicOr:
		v = old | src
	case atomicAnd:
		v = old & src
	case atomicXor:
		v = old ^ src
	case atomicXchg &^ atomicFetch:
		v = src
	case atomicCmpXchg &^ atomicFetch:
		v = old
		cmp := r[0]
		if size == 4 {
			cmp = uint64(uint32(cmp))
		}
		if old == cmp {
			v = src
		}
	}
	if err := m.store(a, size, v); err != nil {
		return err
	}
	switch {
	case in.Imm == atomicCmpXchg:
		r[0] = old
	case in.Imm&atomicFetch != 0:
		r[in.Src&15] = old
	}
	return nil
}
