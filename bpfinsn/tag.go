package bpfinsn

import "crypto/sha1"

// TagSize is BPF_TAG_SIZE.
const TagSize = 8

// Tag computes a program's tag as the kernel's bpf_prog_calc_tag
// (kernel/bpf/core.c) does: the first 8 bytes of the SHA-1 of the
// instructions, with the immediates of map loads (BPF_PSEUDO_MAP_FD and
// BPF_PSEUDO_MAP_VALUE, both halves) zeroed, since they hold file
// descriptors.
//
// The kernel computes the tag over the instructions as they were loaded,
// before the verifier rewrites them; over xlated instructions the result
// equals the kernel's tag only for a program the verifier left alone.
// Hash AsLoaded's reconstruction instead.
func Tag(insns []Insn) [TagSize]byte {
	b := Encode(insns)
	wasLdMap := false
	for i, in := range insns {
		off := i * InsnSize
		switch {
		case !wasLdMap && in.IsLdImm64() && (in.Src == PseudoMapFD || in.Src == PseudoMapValue):
			wasLdMap = true
			clear(b[off+4 : off+8])
		case wasLdMap && in.Code == 0 && in.Dst == 0 && in.Src == 0 && in.Off == 0:
			wasLdMap = false
			clear(b[off+4 : off+8])
		default:
			wasLdMap = false
		}
	}
	sum := sha1.Sum(b)
	var t [TagSize]byte
	copy(t[:], sum[:])
	return t
}
