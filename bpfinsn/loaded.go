package bpfinsn

import (
	"fmt"
	"sort"
)

// The kernel computes a program's tag (bpf_prog_calc_tag) over the
// instructions as user space loaded them, then the verifier rewrites them
// in place and keeps no copy of the originals. AsLoaded undoes the
// rewrites that have an exact inverse, so that Tag of its result can be
// compared with the kernel's tag; the rest it reports as Rewrites that
// cannot be undone.

// KernelFacts is what AsLoaded needs to know of the kernel that rewrote a
// program. Every field is optional: a rewrite whose facts are missing is
// left alone and the tag then differs.
type KernelFacts struct {
	// CallBase is the address of __bpf_call_base: the verifier turns a
	// helper call's immediate into the helper's address minus it.
	CallBase uint64
	// Helper gives the helper ID (enum bpf_func_id) that the verifier
	// replaced by a call of the kernel function at addr: the helper's
	// own implementation, or a map's operation called directly.
	Helper func(addr uint64) (id int32, ok bool)
	// Kfunc gives the BTF ID of the kfunc at addr, for a kfunc call
	// whose off (0: vmlinux BTF, else the index of a module BTF in the
	// loader's fd_array) is given.
	Kfunc func(addr uint64, off int16) (btfID int32, ok bool)
	// Syms names kernel symbols, to say what an unknown call calls.
	Syms Resolver
	// HtabLookup is the address of __htab_map_lookup_elem, which the
	// hash maps' map_gen_lookup calls.
	HtabLookup uint64
	// ArrayValueOff is offsetof(struct bpf_array, value); HtabKeyOff
	// offsetof(struct htab_elem, key); LRURefOff the offset of the LRU
	// node's ref byte in struct htab_elem (lru_node + bpf_lru_node.ref).
	// Zero: unknown.
	ArrayValueOff int32
	HtabKeyOff    int32
	LRURefOff     int32
	// Maps are the program's maps (prog->aux->used_maps).
	Maps []MapShape
	// Ctx are the program type's context fields whose loads the
	// verifier converts into one load of a kernel field
	// (convert_ctx_access), one to one.
	Ctx []CtxField
}

// MapShape is what the inlined lookups of a map depend on.
type MapShape struct {
	Type       uint32 // enum bpf_map_type
	KeySize    uint32
	MaxEntries uint32
	// ElemSize and IndexMask are struct bpf_array's (array maps only).
	ElemSize  uint32
	IndexMask uint32
}

// CtxField is one context field the verifier converts one to one: a
// load of CtxSize bytes at CtxOff of the program's context (struct
// __sk_buff, struct xdp_md, ...) becomes a load of KernSize bytes at
// KernOff of the kernel's object (struct sk_buff, struct xdp_buff).
// Sizes are BPF_W, BPF_H, BPF_B or BPF_DW.
type CtxField struct {
	Name     string // "__sk_buff.len"
	CtxOff   int16
	CtxSize  uint8
	KernOff  int16
	KernSize uint8
}

// Rewrite is a verifier rewrite of a program that AsLoaded could not
// undo.
type Rewrite struct {
	// Insn is the index of the (first) rewritten xlated instruction.
	Insn int `json:"insn"`
	// What says what was rewritten and why it cannot be undone.
	What string `json:"what"`
}

func (r Rewrite) String() string { return fmt.Sprintf("insn %d: %s", r.Insn, r.What) }

// Loaded is AsLoaded's reconstruction of a program's instructions as
// loaded.
type Loaded struct {
	Insns []Insn
	// Undone counts the rewrites undone.
	Undone int
	// Kept lists the instructions that still differ from what was
	// loaded, or may: the rewrites with no exact inverse.
	Kept []Rewrite
}

// Map types (enum bpf_map_type, UAPI) whose lookups the verifier inlines.
const (
	mapTypeHash          = 1
	mapTypeArray         = 2
	mapTypePerCPUHash    = 5
	mapTypePerCPUArray   = 6
	mapTypeLRUHash       = 9
	mapTypeLRUPerCPUHash = 10
	mapTypeArrayOfMaps   = 12
	mapTypeHashOfMaps    = 13
)

// helperMapLookupElem is BPF_FUNC_map_lookup_elem.
const helperMapLookupElem = 1

// piece is one instruction as loaded and where it came from: the xlated
// instructions [at, at+n) (n > 1 for an inlined sequence).
type piece struct {
	in  Insn
	at  int
	n   int
	fix int // fixJump, fixCall, fixFunc: its target is re-resolved
}

const (
	fixNone = iota
	fixJump
	fixCall // BPF-to-BPF call: imm = target - pc - 1
	fixFunc // ld_imm64 of a subprogram (BPF_PSEUDO_FUNC)
)

// AsLoaded reconstructs the instructions of a program as they were
// loaded, from the kernel's prog->insnsi (raw) and the program's maps:
// the xlated instructions before PrepareDump. It undoes, exactly:
//
//   - map loads: an address of a used map (or into a directly addressed
//     value) becomes the load of BPF_PSEUDO_MAP_FD (BPF_PSEUDO_MAP_VALUE)
//     whose immediates the tag ignores;
//   - helper calls: the function's offset from __bpf_call_base becomes
//     the helper's ID (facts.Helper), including maps' operations the
//     verifier calls directly, and BPF_TAIL_CALL call #12;
//   - kfunc calls (facts.Kfunc) and BPF-to-BPF calls and subprogram
//     loads (their immediates hold the subprogram index and the call's
//     offset after jit_subprogs);
//   - the inlined map lookups of array, array of maps, hash, LRU hash
//     and hash of maps (map_gen_lookup), back to call #1, with every
//     jump across them shortened;
//   - the inlined bpf_loop (inline_bpf_loop), back to call #181;
//   - BPF_PROBE_MEM, BPF_PROBE_MEMSX and BPF_PROBE_MEM32 loads and
//     stores back to BPF_MEM(SX);
//   - loads of the context that convert_ctx_accesses turned into one
//     load of a kernel field (facts.Ctx), on registers that hold the
//     context on every path (r1 at entry, copied, spilled and filled).
//
// Everything else the verifier may have done is either invisible (dead
// code removed, a branch it found never taken turned into "goto") or has
// no exact inverse; what AsLoaded can see of it is in Kept.
func AsLoaded(raw []Insn, maps []MapRef, facts KernelFacts) Loaded {
	var l Loaded
	xl := PrepareDump(raw, maps)
	var ps []piece
	for i := 0; i < len(xl); {
		if matchInlinedLoop(xl[i:]) {
			ps = append(ps, piece{in: Insn{Code: CodeCall, Imm: helperLoop}, at: i, n: inlinedLoopLen})
			l.Undone++
			i += inlinedLoopLen
			continue
		}
		if n, ok := inlinedLookup(xl[i:], facts); ok {
			ps = append(ps, piece{in: Insn{Code: CodeCall, Imm: helperMapLookupElem}, at: i, n: n})
			l.Undone++
			i += n
			continue
		}
		in, r := xl[i], raw[i]
		p := piece{in: in, at: i, n: 1}
		switch {
		case in.IsLdImm64() && i+1 < len(xl):
			hi := xl[i+1]
			switch {
			case in.Src == PseudoMapFD || in.Src == PseudoMapValue:
				if r.Src != in.Src {
					l.Undone++
				}
			case in.Src == PseudoFunc:
				// jit_subprogs left the call's offset in imm and the
				// subprogram's index in the second half.
				p.fix = fixFunc
				hi.Imm = 0
			case in.Src == 0 && facts.Syms != nil:
				addr := uint64(uint32(hi.Imm))<<32 | uint64(uint32(in.Imm))
				if name, ok := facts.Syms.SymbolAt(addr); ok {
					// A typed or untyped ksym (BPF_PSEUDO_BTF_ID) or an
					// inlined helper: the BTF ID and the BTF's fd are gone.
					l.Kept = append(l.Kept, Rewrite{i, fmt.Sprintf("64-bit load of the address of %s (a ksym's BTF ID and BTF fd, or an inlined helper, replaced by the address)", name)})
				}
			}
			ps = append(ps, p, piece{in: hi, at: i + 1, n: 1})
			i += 2
			continue
		case r.Code == ClassJMP|OpTailCall:
			l.Undone++
		case r.Code == ClassJMP|OpCallArgs:
			// The interpreter's call: insn->off was cleared, the
			// subprogram's offset is gone.
			l.Kept = append(l.Kept, Rewrite{i, "BPF-to-BPF call patched for the interpreter (BPF_CALL_ARGS): the callee's offset was overwritten"})
		case in.Code == CodeCall && in.Src == PseudoCall:
			// jit_subprogs: off holds the call's offset, imm the
			// subprogram's index.
			p.fix = fixCall
		case in.Code == CodeCall && in.Src == PseudoKfuncCall:
			addr := facts.CallBase + uint64(int64(in.Imm))
			if facts.Kfunc != nil {
				if id, ok := facts.Kfunc(addr, in.Off); ok {
					p.in.Imm = id
					l.Undone++
					break
				}
			}
			l.Kept = append(l.Kept, Rewrite{i, "kfunc call to " + describe(facts, addr) + ": its BTF ID is not known"})
		case in.Code == CodeCall && in.Src == 0 && r.Code == CodeCall:
			addr := facts.CallBase + uint64(int64(in.Imm))
			if facts.Helper != nil {
				if id, ok := facts.Helper(addr); ok {
					p.in.Imm = id
					l.Undone++
					break
				}
			}
			l.Kept = append(l.Kept, Rewrite{i, "call to " + describe(facts, addr) + ": not a helper's implementation nor a used map's operation (an inlined helper?)"})
		case (in.Class() == ClassJMP || in.Class() == ClassJMP32) && in.Op() != OpCall && in.Op() != OpExit:
			p.fix = fixJump
		case in.Class() == ClassLDX && in.Mode() == ModeProbeMemSX:
			p.in.Code = ClassLDX | in.Size() | ModeMEMSX
			l.Undone++
		case in.Code != r.Code:
			// PrepareDump turned BPF_PROBE_MEM(32) back into BPF_MEM.
			l.Undone++
		case in.Class() == ClassALU64 && in.Op() == OpMov && in.Source() == SrcX && in.Off == -1:
			// BPF_MOV64_PERCPU_REG (6.10+) exists only in inlined code.
			l.Kept = append(l.Kept, Rewrite{i, "per-CPU address move (BPF_MOV64_PERCPU_REG) of an inlined helper or map lookup"})
		case in.Class() == ClassST && in.Mode() == ModeNoSpec:
			l.Kept = append(l.Kept, Rewrite{i, "speculation barrier (BPF_NOSPEC) inserted by the verifier"})
		}
		ps = append(ps, p)
		i++
	}
	out, kept := relink(ps, len(xl))
	l.Kept = append(l.Kept, kept...)
	n, kept := undoCtx(out, ps, facts.Ctx)
	l.Undone += n
	l.Kept = append(l.Kept, kept...)
	sort.SliceStable(l.Kept, func(a, b int) bool { return l.Kept[a].Insn < l.Kept[b].Insn })
	l.Insns = out
	return l
}

// describe names the kernel function at addr.
func describe(f KernelFacts, addr uint64) string {
	if f.Syms != nil {
		if name, ok := f.Syms.SymbolAt(addr); ok {
			return name
		}
	}
	return fmt.Sprintf("%#x", addr)
}

// relink lays the pieces out as instructions and points every jump, call
// and subprogram load at its target's new index, as bpf_adj_branches
// moved them when the verifier patched.
func relink(ps []piece, nx int) ([]Insn, []Rewrite) {
	// idx[x] is the new index of the piece starting at xlated x, -1
	// inside an inlined sequence.
	idx := make([]int, nx+1)
	for i := range idx {
		idx[i] = -1
	}
	for k, p := range ps {
		idx[p.at] = k
	}
	idx[nx] = len(ps)
	var kept []Rewrite
	target := func(p piece, t int) (int, bool) {
		if t < 0 || t > nx || idx[t] < 0 {
			kept = append(kept, Rewrite{p.at, fmt.Sprintf("jump to xlated insn %d, which is not an instruction as loaded", t)})
			return 0, false
		}
		return idx[t], true
	}
	out := make([]Insn, len(ps))
	for k, p := range ps {
		in := p.in
		switch p.fix {
		case fixJump:
			off := int(in.Off)
			if in.Class() == ClassJMP32 && in.Op() == OpJA {
				off = int(in.Imm) // gotol
			}
			if t, ok := target(p, p.at+off+1); ok {
				if in.Class() == ClassJMP32 && in.Op() == OpJA {
					in.Imm = int32(t - k - 1)
				} else {
					in.Off = int16(t - k - 1)
				}
			}
		case fixCall:
			if t, ok := target(p, p.at+int(in.Off)+1); ok {
				in.Imm, in.Off = int32(t-k-1), 0
			}
		case fixFunc:
			if t, ok := target(p, p.at+int(in.Imm)+1); ok {
				in.Imm, in.Off = int32(t-k-1), 0
			}
		}
		out[k] = in
	}
	return out, kept
}

// inlinedLookup matches, at the start of x, the instructions a map's
// map_gen_lookup emitted in place of a call of bpf_map_lookup_elem, and
// says how many there are. Each shape is matched exactly, constants
// included, against one of the program's maps of a type that emits it.
func inlinedLookup(x []Insn, f KernelFacts) (int, bool) {
	for _, m := range f.Maps {
		var n int
		switch m.Type {
		case mapTypeArray:
			n = matchArrayLookup(x, f, m, false)
		case mapTypeArrayOfMaps:
			n = matchArrayLookup(x, f, m, true)
		case mapTypeHash, mapTypeLRUHash, mapTypeHashOfMaps:
			n = matchHtabLookup(x, f, m)
		}
		if n > 0 {
			return n, true
		}
	}
	return 0, false
}

// matchArrayLookup matches array_map_gen_lookup (kernel/bpf/arraymap.c)
// or, ofMaps, array_of_map_gen_lookup:
//
//	r1 += offsetof(struct bpf_array, value)
//	r0 = *(u32 *)(r2 +0)
//	if r0 >= max_entries goto pc+N
//	[w0 &= index_mask]             (without bypass_spec_v1)
//	r0 <<= log2(elem_size) | r0 *= elem_size
//	r0 += r1
//	[r0 = *(u64 *)(r0 +0); if r0 == 0x0 goto pc+1]   (of maps)
//	goto pc+1
//	r0 = 0
func matchArrayLookup(x []Insn, f KernelFacts, m MapShape, ofMaps bool) int {
	if f.ArrayValueOff == 0 || len(x) < 7 {
		return 0
	}
	const r0, r1, r2 = 0, 1, 2
	k := 0
	next := func(want Insn) bool {
		if k >= len(x) || x[k] != want {
			return false
		}
		k++
		return true
	}
	if !next(Insn{Code: ClassALU64 | OpAdd | SrcK, Dst: r1, Imm: f.ArrayValueOff}) ||
		!next(Insn{Code: ClassLDX | SizeW | ModeMEM, Dst: r0, Src: r2}) {
		return 0
	}
	if k >= len(x) {
		return 0
	}
	jge := x[k]
	if jge.Code != ClassJMP|OpJGE|SrcK || jge.Dst != r0 || jge.Src != 0 || uint32(jge.Imm) != m.MaxEntries {
		return 0
	}
	k++
	masked := k < len(x) && x[k] == Insn{Code: ClassALU | OpAnd | SrcK, Dst: r0, Imm: int32(m.IndexMask)}
	if masked {
		k++
	}
	es := m.ElemSize
	if es == 0 {
		return 0
	}
	if es&(es-1) == 0 {
		sh := int32(0)
		for 1<<sh < es {
			sh++
		}
		if !next(Insn{Code: ClassALU64 | OpLsh | SrcK, Dst: r0, Imm: sh}) {
			return 0
		}
	} else if !next(Insn{Code: ClassALU64 | OpMul | SrcK, Dst: r0, Imm: int32(es)}) {
		return 0
	}
	if !next(Insn{Code: ClassALU64 | OpAdd | SrcX, Dst: r0, Src: r1}) {
		return 0
	}
	if ofMaps && (!next(Insn{Code: ClassLDX | SizeDW | ModeMEM, Dst: r0, Src: r0}) ||
		!next(Insn{Code: ClassJMP | OpJEQ | SrcK, Dst: r0, Off: 1})) {
		return 0
	}
	if !next(Insn{Code: ClassJMP | OpJA, Off: 1}) || !next(Insn{Code: ClassALU64 | OpMov | SrcK, Dst: r0}) {
		return 0
	}
	// The bounds check jumps to the "r0 = 0".
	if int(jge.Off) != k-1-3 {
		return 0
	}
	return k
}

// matchHtabLookup matches htab_map_gen_lookup, htab_lru_map_gen_lookup
// and htab_of_map_gen_lookup (kernel/bpf/hashtab.c):
//
//	call __htab_map_lookup_elem
//	if r0 == 0x0 goto pc+N
//	[r1 = *(u8 *)(r0 +ref); if r1 != 0x0 goto pc+1; *(u8 *)(r0 +ref) = 1]  (LRU)
//	r0 += offsetof(struct htab_elem, key) + round_up(key_size, 8)
//	[r0 = *(u64 *)(r0 +0)]                                                  (of maps)
func matchHtabLookup(x []Insn, f KernelFacts, m MapShape) int {
	if f.HtabLookup == 0 || f.HtabKeyOff == 0 || len(x) < 3 {
		return 0
	}
	c := x[0]
	if c.Code != CodeCall || c.Src != 0 || f.CallBase+uint64(int64(c.Imm)) != f.HtabLookup {
		return 0
	}
	var body []Insn
	if m.Type == mapTypeLRUHash {
		if f.LRURefOff == 0 {
			return 0
		}
		ref := int16(f.LRURefOff)
		body = append(body,
			Insn{Code: ClassLDX | SizeB | ModeMEM, Dst: 1, Src: 0, Off: ref},
			Insn{Code: ClassJMP | OpJNE | SrcK, Dst: 1, Off: 1},
			Insn{Code: ClassST | SizeB | ModeMEM, Dst: 0, Off: ref, Imm: 1})
	}
	body = append(body, Insn{Code: ClassALU64 | OpAdd | SrcK, Dst: 0, Imm: f.HtabKeyOff + int32((m.KeySize+7)&^7)})
	if m.Type == mapTypeHashOfMaps {
		body = append(body, Insn{Code: ClassLDX | SizeDW | ModeMEM, Dst: 0, Src: 0})
	}
	want := append([]Insn{{Code: ClassJMP | OpJEQ | SrcK, Dst: 0, Off: int16(len(body))}}, body...)
	if len(x) < 1+len(want) {
		return 0
	}
	for k, w := range want {
		if x[1+k] != w {
			return 0
		}
	}
	return 1 + len(want)
}

// ctxState is what undoCtx knows before an instruction: which registers
// and which 8-byte stack slots (fp-8 is bit 0) hold the context pointer
// on every path there.
type ctxState struct {
	regs  uint16
	slots uint64
	seen  bool
}

func (s ctxState) reg(r uint8) bool { return r < 16 && s.regs&(1<<r) != 0 }

func (s *ctxState) set(r uint8, v bool) {
	if r >= 16 {
		return
	}
	if v {
		s.regs |= 1 << r
	} else {
		s.regs &^= 1 << r
	}
}

// slot gives the bit of the 8-byte stack slot at fp+off, ok false for an
// offset that is not one.
func slot(off int16) (uint64, bool) {
	if off >= 0 || off < -512 || off%8 != 0 {
		return 0, false
	}
	return 1 << ((-int(off))/8 - 1), true
}

// clobberSlots forgets the slots a store of size bytes at fp+off touches.
func (s *ctxState) clobberSlots(off int16, size int) {
	for o := int(off) &^ 7; o < int(off)+size; o += 8 {
		if b, ok := slot(int16(o)); ok {
			s.slots &^= b
		}
	}
}

func sizeBytes(sz uint8) int {
	switch sz {
	case SizeB:
		return 1
	case SizeH:
		return 2
	case SizeW:
		return 4
	}
	return 8
}

// undoCtx turns loads of the context that the verifier converted into
// loads of a kernel field (convert_ctx_accesses) back into the loads of
// the context field. Which registers hold the context comes from a
// forward data flow over the instructions as loaded: r1 at the program's
// entry, register copies, 8-byte spills and fills; a BPF-to-BPF call
// hands r1-r5 to the callee. A context access that does not match a
// one-to-one field is reported when ctx is not empty.
func undoCtx(insns []Insn, ps []piece, ctx []CtxField) (int, []Rewrite) {
	if len(ctx) == 0 || len(insns) == 0 {
		return 0, nil
	}
	type key struct {
		off  int16
		size uint8
	}
	rev := map[key]CtxField{}
	dup := map[key]bool{}
	for _, c := range ctx {
		k := key{c.KernOff, c.KernSize}
		if _, ok := rev[k]; ok {
			dup[k] = true
		}
		rev[k] = c
	}
	in := make([]ctxState, len(insns))
	in[0] = ctxState{regs: 1 << 1, seen: true}
	work := []int{0}
	flow := func(t int, s ctxState) {
		if t < 0 || t >= len(insns) {
			return
		}
		if !in[t].seen {
			in[t] = s
			work = append(work, t)
			return
		}
		m := ctxState{regs: in[t].regs & s.regs, slots: in[t].slots & s.slots, seen: true}
		if m != in[t] {
			in[t] = m
			work = append(work, t)
		}
	}
	for len(work) > 0 {
		k := work[len(work)-1]
		work = work[:len(work)-1]
		s := in[k]
		x := insns[k]
		next := k + 1
		switch x.Class() {
		case ClassALU, ClassALU64:
			s.set(x.Dst, x.Class() == ClassALU64 && x.Op() == OpMov && x.Source() == SrcX && x.Off == 0 && s.reg(x.Src))
		case ClassLD:
			s.set(x.Dst, false)
			if x.IsLdImm64() {
				next = k + 2
			} else {
				s.set(0, false) // legacy packet loads clobber r0
			}
		case ClassLDX:
			v := false
			if x.Src == 10 && x.Size() == SizeDW && x.Mode() == ModeMEM {
				if b, ok := slot(x.Off); ok {
					v = s.slots&b != 0
				}
			}
			s.set(x.Dst, v)
		case ClassST, ClassSTX:
			if x.Dst == 10 {
				s.clobberSlots(x.Off, sizeBytes(x.Size()))
				if x.Class() == ClassSTX && x.Mode() == ModeMEM && x.Size() == SizeDW && s.reg(x.Src) {
					b, _ := slot(x.Off)
					s.slots |= b
				}
			}
			if x.Class() == ClassSTX && x.Mode() == ModeATOMIC {
				if x.Imm&AtomicFetch != 0 {
					s.set(x.Src, false)
				}
				if x.Imm == AtomicCmpXchg {
					s.set(0, false)
				}
			}
		case ClassJMP, ClassJMP32:
			op := x.Op()
			switch {
			case op == OpExit:
				continue
			case op == OpCall:
				if x.Src == PseudoCall && x.Class() == ClassJMP {
					callee := ctxState{regs: s.regs & 0x3e, seen: true}
					flow(k+int(x.Imm)+1, callee)
				}
				s.regs &^= 0x3f
			case op == OpJA:
				off := int(x.Off)
				if x.Class() == ClassJMP32 {
					off = int(x.Imm)
				}
				flow(k+off+1, s)
				continue
			default:
				flow(k+int(x.Off)+1, s)
			}
		}
		flow(next, s)
	}
	var undone int
	var kept []Rewrite
	for k, x := range insns {
		s := in[k]
		if !s.seen {
			continue
		}
		cls := x.Class()
		var base uint8
		switch {
		case cls == ClassLDX:
			base = x.Src
		case cls == ClassST || cls == ClassSTX:
			base = x.Dst
		default:
			continue
		}
		if !s.reg(base) {
			continue
		}
		at := ps[k].at
		if cls == ClassLDX && x.Mode() == ModeMEM {
			kk := key{x.Off, x.Size()}
			if c, ok := rev[kk]; ok && !dup[kk] {
				insns[k].Off = c.CtxOff
				insns[k].Code = ClassLDX | ModeMEM | c.CtxSize
				undone++
				continue
			}
			kept = append(kept, Rewrite{at, fmt.Sprintf("load of the context at +%d: the verifier rewrote the context access, and no context field converts to a single %d-byte load there", x.Off, sizeBytes(x.Size()))})
			continue
		}
		kept = append(kept, Rewrite{at, fmt.Sprintf("store to the context at +%d: the verifier rewrote the context access (no inverse kept)", x.Off)})
	}
	return undone, kept
}
