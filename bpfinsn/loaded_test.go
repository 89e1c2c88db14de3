package bpfinsn

import (
	"strings"
	"testing"
)

// The tests load a program by hand, rewrite it as the verifier does
// (patch, with bpf_adj_branches' rule for jumps across the patch), and
// check that AsLoaded gives back the program as loaded: the same tag,
// and the same instructions where no file descriptor is involved.

const (
	tCallBase = 0xffffffff81000000
	tHelper5  = 0xffffffff81001000 // bpf_ktime_get_ns
	tMapOp    = 0xffffffff81002000 // a map's map_update_elem
	tHtab     = 0xffffffff81003000 // __htab_map_lookup_elem
	tKfunc    = 0xffffffff81004000
	tUnknown  = 0xffffffff81005000
	tMapAddr  = 0xffff888001000000
)

func callImm(addr uint64) int32 { return int32(int64(addr - tCallBase)) }

func movImm(dst uint8, imm int32) Insn {
	return Insn{Code: ClassALU64 | OpMov | SrcK, Dst: dst, Imm: imm}
}
func movReg(dst, src uint8) Insn { return Insn{Code: ClassALU64 | OpMov | SrcX, Dst: dst, Src: src} }
func exit() Insn                 { return Insn{Code: ClassJMP | OpExit} }
func call(imm int32) Insn        { return Insn{Code: CodeCall, Imm: imm} }
func jeq(dst uint8, imm int32, off int16) Insn {
	return Insn{Code: ClassJMP | OpJEQ | SrcK, Dst: dst, Imm: imm, Off: off}
}
func ldx(size, dst, src uint8, off int16) Insn {
	return Insn{Code: ClassLDX | ModeMEM | size, Dst: dst, Src: src, Off: off}
}
func stx(size, dst, src uint8, off int16) Insn {
	return Insn{Code: ClassSTX | ModeMEM | size, Dst: dst, Src: src, Off: off}
}
func ldMapFD(dst uint8, fd int32) []Insn {
	return []Insn{{Code: CodeLdImm64, Dst: dst, Src: PseudoMapFD, Imm: fd}, {}}
}
func ldAddr(dst uint8, a uint64) []Insn {
	return []Insn{{Code: CodeLdImm64, Dst: dst, Imm: int32(uint32(a))}, {Imm: int32(uint32(a >> 32))}}
}

func cat(parts ...any) []Insn {
	var out []Insn
	for _, p := range parts {
		switch v := p.(type) {
		case Insn:
			out = append(out, v)
		case []Insn:
			out = append(out, v...)
		}
	}
	return out
}

// isJump says in's Off (Imm for gotol) is a jump offset.
func isJump(in Insn) bool {
	c := in.Class()
	return (c == ClassJMP || c == ClassJMP32) && in.Op() != OpCall && in.Op() != OpExit
}

// patch replaces insns[pos] by repl as bpf_patch_insn_single does: a
// jump outside the patch to an instruction after pos moves with it, one
// to pos or before does not; so do BPF-to-BPF calls and subprogram loads.
func patch(insns []Insn, pos int, repl []Insn) []Insn {
	delta := len(repl) - 1
	at := func(i int) int {
		if i > pos {
			return i + delta
		}
		return i
	}
	var out []Insn
	for c, in := range insns {
		if c == pos {
			out = append(out, repl...)
			continue
		}
		switch {
		case isJump(in) && in.Class() == ClassJMP32 && in.Op() == OpJA:
			in.Imm = int32(at(c+int(in.Imm)+1) - at(c) - 1)
		case isJump(in):
			in.Off = int16(at(c+int(in.Off)+1) - at(c) - 1)
		case in.IsPseudoCall(), in.IsLdImm64() && in.Src == PseudoFunc:
			in.Imm = int32(at(c+int(in.Imm)+1) - at(c) - 1)
		}
		out = append(out, in)
	}
	return out
}

// jitSubprogs does what jit_subprogs leaves in the main program's
// instructions: a call's offset in off and the callee's index in imm, a
// subprogram load's offset in imm and its index in the second half.
func jitSubprogs(insns []Insn, starts []int) []Insn {
	out := append([]Insn(nil), insns...)
	index := func(t int) int32 {
		for k, s := range starts {
			if s == t {
				return int32(k)
			}
		}
		return -1
	}
	for i, in := range out {
		switch {
		case in.IsPseudoCall():
			out[i].Off, out[i].Imm = int16(in.Imm), index(i+int(in.Imm)+1)
		case in.IsLdImm64() && in.Src == PseudoFunc:
			out[i+1].Imm = index(i + int(in.Imm) + 1)
		}
	}
	return out
}

func testFacts() KernelFacts {
	return KernelFacts{
		CallBase: tCallBase,
		Helper: func(a uint64) (int32, bool) {
			switch a {
			case tHelper5:
				return 5, true
			case tMapOp:
				return 2, true
			}
			return 0, false
		},
		Kfunc: func(a uint64, off int16) (int32, bool) {
			if a == tKfunc && off == 0 {
				return 4242, true
			}
			return 0, false
		},
		Syms: ResolverFunc(func(a uint64) (string, bool) {
			if a == tUnknown {
				return "bpf_inlined_thing", true
			}
			return "", false
		}),
		HtabLookup:    tHtab,
		ArrayValueOff: 264,
		HtabKeyOff:    48,
		LRURefOff:     35,
	}
}

var testMaps = []MapRef{{Addr: tMapAddr, ID: 7}}

// lookupProg calls bpf_map_lookup_elem (at insn 6) with jumps over the
// call from both sides, and returns 0 or the value's first u64.
func lookupProg() []Insn {
	return cat(
		movImm(0, 0),          // 0
		jeq(1, 0, 7),          // 1: -> 9 (exit), over the call
		stx(SizeW, 10, 0, -4), // 2
		movReg(2, 10),         // 3
		Insn{Code: ClassALU64 | OpAdd | SrcK, Dst: 2, Imm: -4}, // 4
		ldMapFD(1, 3),                         // 5, 6
		call(1),                               // 7
		jeq(0, 0, 1),                          // 8: -> 10
		ldx(SizeDW, 0, 0, 0),                  // 9
		Insn{Code: ClassJMP | OpJA, Off: -10}, // 10: -> 1, back over the call
	)
}

// verify rewrites orig into what sits in the kernel: the lookup call
// at callAt inlined as seq, map loads given the map's address.
func verify(orig []Insn, callAt int, seq []Insn) []Insn {
	raw := patch(orig, callAt, seq)
	for i := range raw {
		if raw[i].IsLdImm64() && raw[i].Src == PseudoMapFD {
			copy(raw[i:], ldAddr(raw[i].Dst, tMapAddr))
		}
	}
	return raw
}

func TestAsLoaded(t *testing.T) {
	arr := MapShape{Type: mapTypeArray, KeySize: 4, MaxEntries: 16, ElemSize: 8, IndexMask: 15}
	arr24 := MapShape{Type: mapTypeArray, KeySize: 4, MaxEntries: 5, ElemSize: 24, IndexMask: 7}
	aom := MapShape{Type: mapTypeArrayOfMaps, KeySize: 4, MaxEntries: 4, ElemSize: 8, IndexMask: 3}
	hash := MapShape{Type: mapTypeHash, KeySize: 4}
	lru := MapShape{Type: mapTypeLRUHash, KeySize: 12}
	hom := MapShape{Type: mapTypeHashOfMaps, KeySize: 8}
	addR1 := func(imm int32) Insn { return Insn{Code: ClassALU64 | OpAdd | SrcK, Dst: 1, Imm: imm} }
	ldIdx := ldx(SizeW, 0, 2, 0)
	jge := func(max int32, off int16) Insn {
		return Insn{Code: ClassJMP | OpJGE | SrcK, Dst: 0, Imm: max, Off: off}
	}
	and32 := func(m int32) Insn { return Insn{Code: ClassALU | OpAnd | SrcK, Dst: 0, Imm: m} }
	lsh := func(n int32) Insn { return Insn{Code: ClassALU64 | OpLsh | SrcK, Dst: 0, Imm: n} }
	mul := func(n int32) Insn { return Insn{Code: ClassALU64 | OpMul | SrcK, Dst: 0, Imm: n} }
	add01 := Insn{Code: ClassALU64 | OpAdd | SrcX, Dst: 0, Src: 1}
	ja1 := Insn{Code: ClassJMP | OpJA, Off: 1}
	r0zero := movImm(0, 0)
	addR0 := func(imm int32) Insn { return Insn{Code: ClassALU64 | OpAdd | SrcK, Dst: 0, Imm: imm} }
	htabCall := call(callImm(tHtab))

	for _, tc := range []struct {
		name string
		maps []MapShape
		seq  []Insn // what map_gen_lookup emitted for the call at insn 7
	}{
		{"array", []MapShape{arr}, cat(addR1(264), ldIdx, jge(16, 3), lsh(3), add01, ja1, r0zero)},
		{"array unpriv mask", []MapShape{arr}, cat(addR1(264), ldIdx, jge(16, 4), and32(15), lsh(3), add01, ja1, r0zero)},
		{"array mul", []MapShape{hash, arr24}, cat(addR1(264), ldIdx, jge(5, 3), mul(24), add01, ja1, r0zero)},
		{"array of maps", []MapShape{aom}, cat(addR1(264), ldIdx, jge(4, 5), lsh(3), add01, ldx(SizeDW, 0, 0, 0), jeq(0, 0, 1), ja1, r0zero)},
		{"hash", []MapShape{hash}, cat(htabCall, jeq(0, 0, 1), addR0(48+8))},
		{"lru hash", []MapShape{lru}, cat(htabCall, jeq(0, 0, 4), ldx(SizeB, 1, 0, 35),
			Insn{Code: ClassJMP | OpJNE | SrcK, Dst: 1, Off: 1}, Insn{Code: ClassST | ModeMEM | SizeB, Dst: 0, Off: 35, Imm: 1}, addR0(48+16))},
		{"hash of maps", []MapShape{hom}, cat(htabCall, jeq(0, 0, 2), addR0(48+8), ldx(SizeDW, 0, 0, 0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := lookupProg()
			raw := verify(orig, 7, tc.seq)
			f := testFacts()
			f.Maps = tc.maps
			l := AsLoaded(raw, testMaps, f)
			if Tag(l.Insns) != Tag(orig) || len(l.Kept) != 0 {
				t.Fatalf("kept %v\n got %v\nwant %v", l.Kept, l.Insns, orig)
			}
			// Without the map's shape the sequence stays, and the tag differs.
			f.Maps = nil
			if l := AsLoaded(raw, testMaps, f); Tag(l.Insns) == Tag(orig) {
				t.Errorf("tag equal without the map")
			}
		})
	}
}

func TestAsLoadedCalls(t *testing.T) {
	sub := cat(movImm(0, 1), exit())
	for _, tc := range []struct {
		name string
		orig []Insn
		raw  func(orig []Insn) []Insn
		kept string // a substring of the one rewrite kept; "" none
	}{
		{"helper", cat(call(5), exit()), func(o []Insn) []Insn { return cat(call(callImm(tHelper5)), exit()) }, ""},
		{"map op called directly", cat(call(2), exit()), func(o []Insn) []Insn { return cat(call(callImm(tMapOp)), exit()) }, ""},
		{"tail call", cat(call(HelperTailCall), exit()), func(o []Insn) []Insn {
			return cat(Insn{Code: ClassJMP | OpTailCall, Imm: 1}, exit())
		}, ""},
		{"kfunc", cat(Insn{Code: CodeCall, Src: PseudoKfuncCall, Imm: 4242}, exit()), func(o []Insn) []Insn {
			return cat(Insn{Code: CodeCall, Src: PseudoKfuncCall, Imm: callImm(tKfunc)}, exit())
		}, ""},
		{"module kfunc", cat(Insn{Code: CodeCall, Src: PseudoKfuncCall, Imm: 77, Off: 1}, exit()), func(o []Insn) []Insn {
			return cat(Insn{Code: CodeCall, Src: PseudoKfuncCall, Imm: callImm(tKfunc), Off: 1}, exit())
		}, "kfunc call"},
		{"inlined helper", cat(call(5), exit()), func(o []Insn) []Insn { return cat(call(callImm(tUnknown)), exit()) }, "bpf_inlined_thing"},
		{"probe mem", cat(ldx(SizeDW, 0, 1, 8), exit()), func(o []Insn) []Insn {
			return cat(Insn{Code: ClassLDX | ModeProbeMem | SizeDW, Src: 1, Off: 8}, exit())
		}, ""},
		{"probe memsx", cat(Insn{Code: ClassLDX | ModeMEMSX | SizeW, Src: 1, Off: 8}, exit()), func(o []Insn) []Insn {
			return cat(Insn{Code: ClassLDX | ModeProbeMemSX | SizeW, Src: 1, Off: 8}, exit())
		}, ""},
		{"bpf-to-bpf call across an inlined lookup", cat(
			ldMapFD(1, 3), call(1), Insn{Code: CodeCall, Src: PseudoCall, Imm: 1}, exit(), sub), func(o []Insn) []Insn {
			raw := verify(o, 2, cat(call(callImm(tHtab)), jeq(0, 0, 1), Insn{Code: ClassALU64 | OpAdd | SrcK, Imm: 56}))
			return jitSubprogs(raw, []int{0, 7})
		}, ""},
		{"subprogram load and gotol", cat(
			Insn{Code: CodeLdImm64, Dst: 2, Src: PseudoFunc, Imm: 5}, Insn{}, Insn{Code: ClassJMP32 | OpJA, Imm: 2},
			ldMapFD(1, 3), call(1), exit(), sub), func(o []Insn) []Insn {
			raw := verify(o, 5, cat(call(callImm(tHtab)), jeq(0, 0, 1), Insn{Code: ClassALU64 | OpAdd | SrcK, Imm: 56}))
			return jitSubprogs(raw, []int{0, 9})
		}, ""},
		{"interpreter call", cat(Insn{Code: CodeCall, Src: PseudoCall, Imm: 1}, exit(), sub), func(o []Insn) []Insn {
			return cat(Insn{Code: ClassJMP | OpCallArgs, Src: PseudoCall, Imm: 99}, exit(), sub)
		}, "BPF_CALL_ARGS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testFacts()
			f.Maps = []MapShape{{Type: mapTypeHash, KeySize: 4}}
			f.HtabKeyOff = 48
			l := AsLoaded(tc.raw(tc.orig), testMaps, f)
			if tc.kept != "" {
				if len(l.Kept) != 1 || !strings.Contains(l.Kept[0].What, tc.kept) {
					t.Fatalf("kept %v, want one saying %q", l.Kept, tc.kept)
				}
				return
			}
			if len(l.Kept) != 0 || Tag(l.Insns) != Tag(tc.orig) {
				t.Fatalf("kept %v\n got %v\nwant %v", l.Kept, l.Insns, tc.orig)
			}
			if !strings.Contains(tc.name, "load") && !strings.Contains(tc.name, "lookup") {
				for i := range tc.orig {
					if l.Insns[i] != tc.orig[i] {
						t.Errorf("insn %d: got %v, want %v", i, l.Insns[i], tc.orig[i])
					}
				}
			}
		})
	}
}

func TestAsLoadedCtx(t *testing.T) {
	// xdp_md.data (u32 at 0) is xdp_buff.data (u64 at 0); data_end (4)
	// is at 8.
	ctx := []CtxField{
		{Name: "xdp_md.data", CtxOff: 0, CtxSize: SizeW, KernOff: 0, KernSize: SizeDW},
		{Name: "xdp_md.data_end", CtxOff: 4, CtxSize: SizeW, KernOff: 8, KernSize: SizeDW},
	}
	for _, tc := range []struct {
		name string
		orig []Insn
		conv map[int]Insn // the converted loads
		kept string
	}{
		{"r1 at entry", cat(ldx(SizeW, 2, 1, 4), exit()), map[int]Insn{0: ldx(SizeDW, 2, 1, 8)}, ""},
		{"copied, spilled and filled", cat(
			movReg(6, 1), stx(SizeDW, 10, 6, -16), movImm(6, 0), ldx(SizeDW, 7, 10, -16), ldx(SizeW, 2, 7, 0), exit()),
			map[int]Insn{4: ldx(SizeDW, 2, 7, 0)}, ""},
		{"both branches", cat(movReg(6, 1), jeq(2, 0, 1), movReg(6, 1), ldx(SizeW, 3, 6, 4), exit()),
			map[int]Insn{3: ldx(SizeDW, 3, 6, 8)}, ""},
		{"not the context on one path", cat(jeq(2, 0, 1), movReg(1, 10), ldx(SizeDW, 3, 1, 8), exit()), nil, ""},
		{"clobbered by a call", cat(call(5), ldx(SizeDW, 3, 1, 8), exit()), map[int]Insn{0: call(callImm(tHelper5))}, ""},
		{"handed to a subprogram", cat(Insn{Code: CodeCall, Src: PseudoCall, Imm: 1}, exit(), ldx(SizeW, 0, 1, 0), exit()),
			map[int]Insn{2: ldx(SizeDW, 0, 1, 0)}, ""},
		{"no one-to-one field", cat(ldx(SizeW, 2, 1, 12), exit()), map[int]Insn{0: ldx(SizeDW, 2, 1, 40)}, "load of the context at +40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := append([]Insn(nil), tc.orig...)
			for i, in := range tc.conv {
				raw[i] = in
			}
			if strings.Contains(tc.name, "subprogram") {
				raw = jitSubprogs(raw, []int{0, 2})
			}
			f := testFacts()
			f.Ctx = ctx
			l := AsLoaded(raw, nil, f)
			if tc.kept != "" {
				if len(l.Kept) != 1 || !strings.Contains(l.Kept[0].What, tc.kept) {
					t.Fatalf("kept %v, want one saying %q", l.Kept, tc.kept)
				}
				return
			}
			if len(l.Kept) != 0 || Tag(l.Insns) != Tag(tc.orig) {
				t.Fatalf("kept %v\n got %v\nwant %v", l.Kept, l.Insns, tc.orig)
			}
		})
	}
}
