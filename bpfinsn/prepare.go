package bpfinsn

// MapRef is one of a program's used maps (prog->aux->used_maps), as
// bpf_map_from_imm (kernel/bpf/syscall.c) needs it.
type MapRef struct {
	// Addr is the struct bpf_map's address.
	Addr uint64
	// ID is the map's ID.
	ID uint32
	// Direct says the map type implements map_direct_value_meta for a
	// single value at [ValueAddr, ValueAddr+ValueSize): an array map of
	// one element, whose value BPF_PSEUDO_MAP_VALUE loads point into.
	Direct    bool
	ValueAddr uint64
	ValueSize uint64
}

// PrepareDump rewrites a program's in-kernel instructions (prog->insnsi)
// into what the kernel hands user space as xlated instructions, as
// bpf_insn_prepare_dump does for a privileged reader: tail calls become
// calls of bpf_tail_call, internal call and probe-load codes their
// public ones, and each 64-bit load of a map's address (or of an address
// in a directly addressed map value) the map's ID with src_reg
// BPF_PSEUDO_MAP_FD (BPF_PSEUDO_MAP_VALUE and the offset). insns is not
// modified.
func PrepareDump(insns []Insn, maps []MapRef) []Insn {
	out := append([]Insn(nil), insns...)
	for i := range out {
		in := &out[i]
		code := in.Code
		if code == ClassJMP|OpTailCall {
			in.Code = CodeCall
			in.Imm = HelperTailCall
		}
		if code == ClassJMP|OpTailCall || code == CodeCall || code == ClassJMP|OpCallArgs {
			in.Code = CodeCall
			continue
		}
		class := in.Class()
		// The kernel leaves BPF_PROBE_MEMSX (6.6+) alone: it reaches user
		// space as is.
		if class == ClassLDX && in.Mode() == ModeProbeMem {
			in.Code = ClassLDX | in.Size() | ModeMEM
			continue
		}
		if (class == ClassLDX || class == ClassSTX || class == ClassST) && in.Mode() == ModeProbeMem32 {
			// 6.9+ arena accesses ("bpf: Add x86-64 JIT support for PROBE_MEM32").
			in.Code = class | in.Size() | ModeMEM
			continue
		}
		if code != CodeLdImm64 || i+1 >= len(out) {
			continue
		}
		imm := uint64(uint32(out[i+1].Imm))<<32 | uint64(uint32(in.Imm))
		for _, m := range maps {
			if m.Addr == imm {
				in.Src, in.Imm, out[i+1].Imm = PseudoMapFD, int32(m.ID), 0
				break
			}
			if m.Direct && imm >= m.ValueAddr && imm < m.ValueAddr+m.ValueSize {
				in.Src, in.Imm, out[i+1].Imm = PseudoMapValue, int32(m.ID), int32(imm-m.ValueAddr)
				break
			}
		}
	}
	return out
}
