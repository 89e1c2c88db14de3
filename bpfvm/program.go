package bpfvm

import (
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpfinsn"
)

// Program is a program's xlated instructions, checked and prepared for
// running. A Program is immutable and may be shared by Machines.
type Program struct {
	// Name names the program in errors and traces.
	Name string
	// Insns are the instructions as given.
	Insns []bpfinsn.Insn
	// Subprogs are the program's subprograms as the caller knows them
	// (prog->aux->func_info, prog->aux->func[i]->bpf_func), sorted by
	// Start; subprograms that calls or callback loads reach are found
	// from the instructions too.
	Subprogs []Subprog

	code    []bpfinsn.Insn // Insns with the internal codes below
	reasons map[int]string // why code[i] is codeBad
	entries []Subprog      // Subprogs and every call target, by Start
}

// Subprog is a BPF subprogram: the function starting at instruction
// Start. Addr is the address of its JIT image (the bpf_func of
// prog->aux->func[i]), 0 when unknown: a callback's address loaded by
// BPF_PSEUDO_FUNC is Addr when known, else an address at FuncBase.
type Subprog struct {
	Start int
	Addr  uint64
}

// Internal codes of Program.code. They replace instructions whose form
// varies (in-kernel or as dumped) by one form with an absolute target.
const (
	// codeBPFCall: BPF-to-BPF call, imm = the callee's first instruction
	// (from BPF_PSEUDO_CALL or BPF_CALL_ARGS).
	codeBPFCall = bpfinsn.ClassJMP | bpfinsn.OpCallArgs
	// codeTailCall: BPF_TAIL_CALL, or "call bpf_tail_call#12" as dumped.
	codeTailCall = bpfinsn.ClassJMP | bpfinsn.OpTailCall
	// codeLdFunc: ld_imm64 of BPF_PSEUDO_FUNC, imm = the function's first
	// instruction (an otherwise unused code: BPF_LD | BPF_IMM | BPF_B).
	codeLdFunc = bpfinsn.ClassLD | bpfinsn.ModeIMM | bpfinsn.SizeB
	// codeLdRef: ld_imm64 whose src_reg marks a reference by fd, ID or
	// index (BPF_LD | BPF_IMM | BPF_H, unused otherwise).
	codeLdRef = bpfinsn.ClassLD | bpfinsn.ModeIMM | bpfinsn.SizeH
	// codeBad: an instruction that does not run; reasons says why.
	codeBad = 0xff
)

// Atomic operations in the imm of BPF_STX | BPF_ATOMIC (uapi bpf.h).
const (
	atomicAdd      = bpfinsn.OpAdd
	atomicOr       = bpfinsn.OpOr
	atomicAnd      = bpfinsn.OpAnd
	atomicXor      = bpfinsn.OpXor
	atomicFetch    = bpfinsn.AtomicFetch
	atomicXchg     = bpfinsn.AtomicXchg
	atomicCmpXchg  = bpfinsn.AtomicCmpXchg
	atomicLoadAcq  = 0x100 // BPF_LOAD_ACQ, 6.15+
	atomicStoreRel = 0x110 // BPF_STORE_REL, 6.15+
)

// Kernel-internal operands (include/linux/filter.h).
const (
	// offAddrPerCPU: BPF_MOV64_PERCPU_REG, dst = src + this CPU's per-CPU
	// offset (6.10+, inlined helpers and map lookups).
	offAddrPerCPU = -1
	// offAddrSpaceCast: BPF_ADDR_SPACE_CAST of arena programs (6.9+).
	offAddrSpaceCast = 1
	// regAX is BPF_REG_AX, the auxiliary register constant blinding uses.
	regAX = 11
)

// NewProgram checks insns and prepares them for running. Instructions the
// kernel's interpreter would not run are kept: running one is an error
// wrapping ErrBadInsn that says why. subprogs may be nil.
func NewProgram(name string, insns []bpfinsn.Insn, subprogs []Subprog) *Program {
	p := &Program{Name: name, Insns: insns, Subprogs: append([]Subprog(nil), subprogs...)}
	sort.SliceStable(p.Subprogs, func(a, b int) bool { return p.Subprogs[a].Start < p.Subprogs[b].Start })
	p.code = append([]bpfinsn.Insn(nil), insns...)
	p.reasons = map[int]string{}
	entries := map[int]uint64{0: 0}
	for _, s := range p.Subprogs {
		entries[s.Start] = s.Addr
	}
	bad := func(i int, format string, args ...any) {
		p.code[i].Code = codeBad
		p.reasons[i] = fmt.Sprintf(format, args...)
	}
	n := len(insns)
	for i := 0; i < n; i++ {
		in := insns[i]
		if why := checkInsn(in); why != "" {
			bad(i, "%s", why)
			continue
		}
		switch {
		case in.Code == bpfinsn.CodeLdImm64:
			if i+1 >= n {
				bad(i, "64-bit load without its second half")
				continue
			}
			p.code[i+1].Code = codeBad
			p.reasons[i+1] = fmt.Sprintf("second half of the 64-bit load at insn %d", i)
			switch in.Src {
			case bpfinsn.PseudoMapFD, bpfinsn.PseudoMapValue, bpfinsn.PseudoBTFID, bpfinsn.PseudoMapIdx, bpfinsn.PseudoMapIdxValue:
				p.code[i].Code = codeLdRef
			}
			if in.Src == bpfinsn.PseudoFunc {
				t := i + int(in.Imm) + 1
				if t < 0 || t >= n {
					bad(i, "callback address load of insn %d, outside the program's %d instructions", t, n)
				} else {
					p.code[i].Code, p.code[i].Imm = codeLdFunc, int32(t)
					if _, ok := entries[t]; !ok {
						entries[t] = 0
					}
				}
			}
			i++
		case in.Code == bpfinsn.CodeCall && in.Src == bpfinsn.PseudoCall,
			in.Code == bpfinsn.ClassJMP|bpfinsn.OpCallArgs:
			// As loaded, the callee's offset is in imm; after
			// jit_subprogs (and as dumped) it is in off, imm holding the
			// subprogram's index; BPF_CALL_ARGS keeps it in off. A call
			// of the next instruction cannot be: a subprogram does not
			// end with a call.
			rel := int(in.Off)
			if rel == 0 && in.Code == bpfinsn.CodeCall {
				rel = int(in.Imm)
			}
			t := i + rel + 1
			if t < 0 || t >= n || rel == 0 {
				bad(i, "call of insn %d, outside the program's %d instructions", t, n)
				continue
			}
			p.code[i].Code, p.code[i].Imm = codeBPFCall, int32(t)
			if _, ok := entries[t]; !ok {
				entries[t] = 0
			}
		case in.Code == bpfinsn.CodeCall && in.Src == 0 && in.Imm == bpfinsn.HelperTailCall:
			// bpf_insn_prepare_dump's rewrite of BPF_TAIL_CALL.
			p.code[i].Code = codeTailCall
		}
	}
	for s, a := range entries {
		p.entries = append(p.entries, Subprog{Start: s, Addr: a})
	}
	sort.Slice(p.entries, func(a, b int) bool { return p.entries[a].Start < p.entries[b].Start })
	return p
}

// Len is the number of instructions.
func (p *Program) Len() int { return len(p.code) }

// SubprogAt returns the subprogram holding instruction i: the last entry
// (a given Subprog, a call target or a callback) at or before i.
func (p *Program) SubprogAt(i int) Subprog {
	k := sort.Search(len(p.entries), func(k int) bool { return p.entries[k].Start > i })
	if k == 0 {
		return Subprog{}
	}
	return p.entries[k-1]
}

// Entries returns the starts of the program's subprograms: the given
// Subprogs, instruction 0 and every BPF-to-BPF call or callback target.
func (p *Program) Entries() []Subprog { return append([]Subprog(nil), p.entries...) }

// Invalid returns why instruction i does not run, "" if it does.
func (p *Program) Invalid(i int) string { return p.reasons[i] }

// checkInsn says why the kernel's interpreter would not run in, or "".
// It checks what ___bpf_prog_run's jump table and the verifier's
// invariants make of one instruction alone.
func checkInsn(in bpfinsn.Insn) string {
	if in.Dst > regAX || in.Src > regAX {
		return fmt.Sprintf("register r%d/r%d does not exist", in.Dst, in.Src)
	}
	writesDst := false
	switch in.Class() {
	case bpfinsn.ClassALU, bpfinsn.ClassALU64:
		if why := checkALU(in); why != "" {
			return why
		}
		writesDst = true
	case bpfinsn.ClassJMP, bpfinsn.ClassJMP32:
		if why := checkJMP(in); why != "" {
			return why
		}
	case bpfinsn.ClassLDX:
		switch in.Mode() {
		case bpfinsn.ModeMEM, bpfinsn.ModeProbeMem:
		case bpfinsn.ModeMEMSX, bpfinsn.ModeProbeMemSX:
			if in.Size() == bpfinsn.SizeDW {
				return "sign-extending load of 8 bytes"
			}
		case bpfinsn.ModeProbeMem32:
			return "arena load (BPF_PROBE_MEM32) is not supported"
		default:
			return fmt.Sprintf("unknown load mode %#x", in.Mode())
		}
		writesDst = true
	case bpfinsn.ClassST:
		switch {
		case in.Code == bpfinsn.ClassST|bpfinsn.ModeNoSpec:
		case in.Mode() == bpfinsn.ModeMEM:
		case in.Mode() == bpfinsn.ModeProbeMem32:
			return "arena store (BPF_PROBE_MEM32) is not supported"
		default:
			return fmt.Sprintf("unknown store mode %#x", in.Mode())
		}
	case bpfinsn.ClassSTX:
		switch in.Mode() {
		case bpfinsn.ModeMEM:
		case bpfinsn.ModeATOMIC:
			return checkAtomic(in)
		case bpfinsn.ModeProbeMem32, 0xe0:
			return "arena store (BPF_PROBE_MEM32, BPF_PROBE_ATOMIC) is not supported"
		default:
			return fmt.Sprintf("unknown store mode %#x", in.Mode())
		}
	case bpfinsn.ClassLD:
		if in.Code != bpfinsn.CodeLdImm64 {
			// BPF_ABS and BPF_IND never reach xlated code: the verifier
			// rewrites them (gen_ld_abs).
			return fmt.Sprintf("unknown load code %#02x", in.Code)
		}
		if in.Src > bpfinsn.PseudoMapIdxValue {
			return fmt.Sprintf("unknown 64-bit load kind %d", in.Src)
		}
		writesDst = true
	}
	if writesDst && in.Dst == 10 {
		return "r10 is read-only"
	}
	return ""
}

func checkALU(in bpfinsn.Insn) string {
	alu64 := in.Class() == bpfinsn.ClassALU64
	switch in.Op() {
	case bpfinsn.OpAdd, bpfinsn.OpSub, bpfinsn.OpMul, bpfinsn.OpOr, bpfinsn.OpAnd,
		bpfinsn.OpLsh, bpfinsn.OpRsh, bpfinsn.OpXor, bpfinsn.OpArsh:
	case bpfinsn.OpDiv, bpfinsn.OpMod:
		if in.Off != 0 && in.Off != 1 {
			return fmt.Sprintf("division with offset %d (0: unsigned, 1: signed)", in.Off)
		}
	case bpfinsn.OpNeg:
		if in.Source() != bpfinsn.SrcK {
			return "negation with a source register"
		}
	case bpfinsn.OpMov:
		if in.Source() == bpfinsn.SrcK {
			break
		}
		switch {
		case in.Off == 0, in.Off == 8, in.Off == 16:
		case in.Off == 32 && alu64:
		case in.Off == offAddrPerCPU && alu64:
		case in.Off == offAddrSpaceCast && alu64:
			return "arena address space cast (BPF_ADDR_SPACE_CAST) is not supported"
		default:
			return fmt.Sprintf("move with offset %d", in.Off)
		}
	case bpfinsn.OpEnd:
		if alu64 && in.Source() != 0 {
			return "byte swap of ALU64 class with BPF_TO_BE"
		}
		if in.Imm != 16 && in.Imm != 32 && in.Imm != 64 {
			return fmt.Sprintf("byte swap of %d bits", in.Imm)
		}
	default:
		return fmt.Sprintf("unknown ALU operation %#02x", in.Op())
	}
	return ""
}

func checkJMP(in bpfinsn.Insn) string {
	jmp64 := in.Class() == bpfinsn.ClassJMP
	switch in.Op() {
	case bpfinsn.OpJA:
		if in.Source() != bpfinsn.SrcK {
			return "jump with a source register"
		}
	case bpfinsn.OpJEQ, bpfinsn.OpJGT, bpfinsn.OpJGE, bpfinsn.OpJSET, bpfinsn.OpJNE,
		bpfinsn.OpJSGT, bpfinsn.OpJSGE, bpfinsn.OpJLT, bpfinsn.OpJLE, bpfinsn.OpJSLT, bpfinsn.OpJSLE:
	case bpfinsn.OpCall:
		if !jmp64 || in.Source() != bpfinsn.SrcK {
			return "call of JMP32 class or through a register (callx)"
		}
		if in.Src > bpfinsn.PseudoKfuncCall {
			return fmt.Sprintf("unknown call kind %d", in.Src)
		}
	case bpfinsn.OpExit:
		if !jmp64 || in.Source() != bpfinsn.SrcK {
			return "exit of JMP32 class or with a source register"
		}
	case bpfinsn.OpCallArgs, bpfinsn.OpTailCall:
		if !jmp64 || in.Source() != bpfinsn.SrcK {
			return fmt.Sprintf("unknown jump code %#02x", in.Code)
		}
	default:
		return fmt.Sprintf("unknown jump operation %#02x", in.Op())
	}
	return ""
}

func checkAtomic(in bpfinsn.Insn) string {
	wide := in.Size() == bpfinsn.SizeW || in.Size() == bpfinsn.SizeDW
	switch in.Imm {
	case atomicAdd, atomicOr, atomicAnd, atomicXor, atomicXchg, atomicCmpXchg:
		if !wide {
			return "atomic operation on 1 or 2 bytes"
		}
	case atomicAdd | atomicFetch, atomicOr | atomicFetch, atomicAnd | atomicFetch, atomicXor | atomicFetch:
		if !wide {
			return "atomic operation on 1 or 2 bytes"
		}
	case atomicLoadAcq:
		if in.Dst == 10 {
			return "r10 is read-only"
		}
		return ""
	case atomicStoreRel:
		return ""
	default:
		return fmt.Sprintf("unknown atomic operation %#x", in.Imm)
	}
	if in.Imm&atomicFetch != 0 && in.Imm != atomicCmpXchg && in.Src == 10 {
		// A fetching operation writes the old value to src (cmpxchg: r0).
		return "r10 is read-only"
	}
	return ""
}
