package bpfrun

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/x86dis"
)

// The kernel keeps no map from a JIT image's addresses back to the
// xlated instructions: the x86 JIT's addrs[] is freed after compiling.
// What it keeps is jited_linfo: the address where each line_info record's
// first instruction starts (bpf_prog_fill_jited_linfo). Between two such
// anchors, the instruction boundaries are re-derived here from the x86-64
// JIT's code generation (arch/x86/net/bpf_jit_comp.c do_jit, 6.1 to
// 6.12): how many x86 instructions each BPF instruction becomes, read off
// the disassembled image. The count is exact for every instruction class
// but tail calls (and instructions the model does not know), whose
// sequences vary with the kernel; those are resolved by the next anchor
// when it follows them directly, else the whole stretch up to the next
// anchor is reported as a range. Each anchor is checked: a count that
// does not land on it marks the stretch before it inexact. Without line
// info the only anchor is the image's start.

// InsnSpan is the x86 code of one xlated instruction.
type InsnSpan struct {
	Insn       int    // the xlated instruction
	Start, End uint64 // its x86 code, [Start, End)
}

// JITImage is one JIT image (a subprogram) mapped to its instructions.
type JITImage struct {
	Func ProgFuncRef
	// First and Last are the image's xlated instructions, [First, Last).
	First, Last int
	// Prologue ends where the first instruction's code starts.
	Prologue uint64
	// Spans are the instructions' code, in order; an instruction that
	// emits no code has an empty span.
	Spans []InsnSpan
	// Inexact are the stretches whose boundaries could not be derived:
	// each a range of instructions [From, To) over code [Start, End).
	Inexact []InexactSpan
	// Anchors is how many jited_linfo addresses the image has, Checked
	// how many the derived boundaries met (the others start an inexact
	// stretch).
	Anchors, Checked int

	good uint64 // where the boundaries were last known right

	// Saved are where the prologue pushed the callee-saved registers
	// (x86 name to offset from rbp): a caller's R6-R9.
	Saved map[string]int64
}

// ProgFuncRef names a JIT image.
type ProgFuncRef struct {
	Name       string
	Addr       uint64
	Len        uint32
	StackDepth uint32
}

// InexactSpan is a stretch of instructions whose individual boundaries
// are unknown.
type InexactSpan struct {
	From, To   int
	Start, End uint64
	Why        string
}

// Where locates the instruction whose code holds pc: its index (-1 in
// the prologue), and whether the boundaries there are exact; for an
// inexact stretch, idx and last are its first and last instructions.
func (im *JITImage) Where(pc uint64) (idx, last int, exact bool) {
	if pc < im.Prologue {
		return -1, -1, true
	}
	for _, x := range im.Inexact {
		if pc >= x.Start && pc < x.End {
			return x.From, x.To - 1, false
		}
	}
	k := sort.Search(len(im.Spans), func(i int) bool { return im.Spans[i].End > pc })
	for ; k < len(im.Spans); k++ {
		s := im.Spans[k]
		if pc >= s.Start && pc < s.End {
			return s.Insn, s.Insn, true
		}
		if s.Start > pc {
			break
		}
	}
	return -2, -2, false
}

// JIT maps the program's JIT images to its instructions (once).
func (p *Prog) JIT() ([]*JITImage, error) {
	p.jitOnce.Do(func() { p.jit, p.jitErr = p.mapJIT() })
	return p.jit, p.jitErr
}

func (p *Prog) mapJIT() ([]*JITImage, error) {
	if len(p.Funcs) == 0 {
		return nil, fmt.Errorf("prog %d is not JITed: %w", p.ID, ErrNotSupported)
	}
	if len(p.Funcs) != len(p.Starts) {
		return nil, fmt.Errorf("prog %d: %d JIT images for %d subprograms", p.ID, len(p.Funcs), len(p.Starts))
	}
	insns := p.VM.Insns
	var out []*JITImage
	for i, f := range p.Funcs {
		first, last := p.Starts[i], len(insns)
		if i+1 < len(p.Starts) {
			last = p.Starts[i+1]
		}
		code, err := f.Image()
		if err != nil {
			return nil, err
		}
		facts := jitFacts(f)
		im := &JITImage{Func: ProgFuncRef{Name: f.Name, Addr: f.Addr, Len: f.Len, StackDepth: facts.stackDepth}, First: first, Last: last}
		// The anchors: line_info records of the image's instructions with
		// their JIT addresses (the first is the image's start).
		anchors := map[int]uint64{}
		if src := p.Source; src != nil && src.JitAddrs != nil {
			for j, l := range src.Lines {
				if int(l.InsnOff) > first && int(l.InsnOff) < last {
					anchors[int(l.InsnOff)] = src.JitAddrs[j]
				}
			}
		}
		im.Anchors = len(anchors)
		mapImage(im, insns, x86dis.Disassemble(code, f.Addr), anchors, facts)
		out = append(out, im)
	}
	return out, nil
}

// imageFacts are what the JIT's prologue depends on, from the image's
// struct bpf_prog_aux.
type imageFacts struct {
	stackDepth        uint32
	tailCallReachable bool
}

func jitFacts(f bpf.ProgFunc) imageFacts {
	var fa imageFacts
	aux, err := f.Prog.Member("aux")
	if err != nil {
		return fa
	}
	if d, err := aux.MemberUint("stack_depth"); err == nil {
		fa.stackDepth = uint32(d)
	}
	if t, err := aux.MemberUint("tail_call_reachable"); err == nil {
		fa.tailCallReachable = t != 0
	}
	return fa
}

// x86 instruction classes the counts look at.
func mnem(in x86dis.Inst) string { return in.Mnemonic() }

func isCall(in x86dis.Inst) bool { m := mnem(in); return m == "call" || m == "callq" }
func isJmp(in x86dis.Inst) bool  { m := mnem(in); return m == "jmp" || m == "jmpq" }
func isRet(in x86dis.Inst) bool  { m := mnem(in); return m == "ret" || m == "retq" }
func isNop(in x86dis.Inst) bool {
	m := mnem(in)
	return strings.HasPrefix(m, "nop") || in.Text == "xchg   %ax,%ax" || m == "endbr64"
}
func operands(in x86dis.Inst) string {
	m := mnem(in)
	return strings.TrimSpace(strings.TrimPrefix(in.Text, m))
}

// prologueLen is the number of x86 instructions of the image's prologue
// (emit_prologue and the callee-saved pushes of do_jit), and where below
// rbp it saved the callee-saved registers.
func prologueLen(x []x86dis.Inst, fa imageFacts) (int, map[string]int64) {
	saved := map[string]int64{}
	var sp int64 // rsp - rbp once rbp is set
	i := 0
	for i < len(x) && (isNop(x[i]) || (i == 0 && (isCall(x[i]) || isJmp(x[i])) && len(x[i].Bytes) == 5) || x[i].Text == "xor    %eax,%eax" || x[i].Text == "xor    %rax,%rax") {
		i++ // endbr64, the 5-byte patch site (a trampoline's call when attached), xor eax or nop2
	}
	if i+1 >= len(x) || mnem(x[i]) != "push" || operands(x[i]) != "%rbp" || x[i+1].Text != "mov    %rsp,%rbp" {
		return -1, nil
	}
	i += 2
	for i < len(x) && mnem(x[i]) == "endbr64" {
		i++
	}
	if i < len(x) && mnem(x[i]) == "sub" && strings.HasSuffix(x[i].Text, ",%rsp") {
		var n int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(operands(x[i]), "$"), "0x%x", &n); err == nil {
			sp -= n
		}
		i++
	}
	if fa.tailCallReachable {
		// 6.1: push rax (the tail call count); 6.12: the count's
		// pointer set up (cmp, ja, push, mov, jmp, push, push), where
		// the first two pushes are alternatives.
		if i < len(x) && strings.HasPrefix(x[i].Text, "cmp    $0x21,%rax") {
			sp += 8
		}
		for i < len(x) {
			t := x[i].Text
			if t == "push   %rax" || strings.HasPrefix(t, "cmp    $0x21,%rax") || t == "mov    %rsp,%rax" ||
				(len(x[i].Bytes) == 2 && (strings.HasPrefix(mnem(x[i]), "ja") || isJmp(x[i]))) {
				if t == "push   %rax" {
					sp -= 8
				}
				i++
				continue
			}
			break
		}
	}
	// Callee-saved registers (r12 for arenas and exception boundaries),
	// then an arena's base in r12.
	for i < len(x) && mnem(x[i]) == "push" {
		switch r := operands(x[i]); r {
		case "%rbx", "%r12", "%r13", "%r14", "%r15":
			sp -= 8
			saved[r] = sp
			i++
			continue
		}
		break
	}
	return i, saved
}

// count is how many x86 instructions BPF instruction k becomes, from x[j]
// on; flex when the model cannot say. zeroJmp reports instructions that
// emit nothing, for jumps over them.
func count(insns []bpfinsn.Insn, k int, x []x86dis.Inst, j int, firstExit *bool, img *JITImage) (n int, flex bool) {
	in := insns[k]
	until := func(stop func(x86dis.Inst) bool) (int, bool) {
		for e := j; e < len(x); e++ {
			if stop(x[e]) {
				return e - j + 1, false
			}
		}
		return 0, true
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	switch in.Class() {
	case bpfinsn.ClassLD:
		if in.Code == bpfinsn.CodeLdImm64 {
			return 1, false
		}
	case bpfinsn.ClassALU, bpfinsn.ClassALU64:
		alu64 := in.Class() == bpfinsn.ClassALU64
		srcX := in.Source() == bpfinsn.SrcX
		switch in.Op() {
		case bpfinsn.OpMov:
			switch {
			case !srcX:
				return 1, false
			case in.Off == -1 && alu64: // BPF_MOV64_PERCPU_REG
				return b2i(in.Dst != in.Src) + 1, false
			case in.Off != 0:
				return 1, false // movsx
			case alu64:
				return b2i(in.Dst != in.Src), false
			}
			return 1, false
		case bpfinsn.OpAdd, bpfinsn.OpSub, bpfinsn.OpAnd, bpfinsn.OpOr, bpfinsn.OpXor, bpfinsn.OpMul, bpfinsn.OpNeg:
			return 1, false
		case bpfinsn.OpLsh, bpfinsn.OpRsh, bpfinsn.OpArsh:
			if !srcX {
				return 1, false
			}
			if j < len(x) {
				switch mnem(x[j]) {
				case "shlx", "shrx", "sarx":
					return 1, false
				}
			}
			d4, s4 := in.Dst == 4, in.Src == 4
			return b2i(d4) + 2*b2i(!s4) + 1 + b2i(!s4) + b2i(d4), false
		case bpfinsn.OpDiv, bpfinsn.OpMod:
			d0, d3 := in.Dst == 0, in.Dst == 3
			n := 2*b2i(!d0) + 2*b2i(!d3) + b2i(!d0) + 2
			if srcX {
				n += b2i(in.Src == 0 || in.Src == 3)
			} else {
				n++
			}
			if in.Op() == bpfinsn.OpMod {
				n += b2i(!d3)
			} else {
				n += b2i(!d0)
			}
			return n, false
		case bpfinsn.OpEnd:
			if in.Source() == 0 && !alu64 { // to little-endian: zero-extension
				switch in.Imm {
				case 16, 32:
					return 1, false
				case 64:
					return 0, false
				}
			}
			if in.Imm == 16 {
				return 2, false
			}
			return 1, false
		}
	case bpfinsn.ClassLDX:
		switch in.Mode() {
		case bpfinsn.ModeMEM, bpfinsn.ModeMEMSX:
			return 1, false
		case bpfinsn.ModeProbeMem, bpfinsn.ModeProbeMemSX:
			n, f := until(isJmp)
			return n + 1, f
		}
	case bpfinsn.ClassST:
		return 1, false
	case bpfinsn.ClassSTX:
		switch in.Mode() {
		case bpfinsn.ModeMEM:
			return 1, false
		case bpfinsn.ModeATOMIC:
			switch in.Imm {
			case bpfinsn.OpAnd | bpfinsn.AtomicFetch, bpfinsn.OpOr | bpfinsn.AtomicFetch, bpfinsn.OpXor | bpfinsn.AtomicFetch:
				return 8, false // the cmpxchg loop
			}
			return 1, false
		}
	case bpfinsn.ClassJMP, bpfinsn.ClassJMP32:
		switch in.Op() {
		case bpfinsn.OpJA:
			off := int(in.Off)
			if in.Class() == bpfinsn.ClassJMP32 {
				off = int(in.Imm)
			}
			if off == 0 || (off > 0 && allSilent(insns, k+1, k+off)) {
				return 0, false
			}
			return 1, false
		case bpfinsn.OpCall:
			return until(isCall)
		case bpfinsn.OpExit:
			if !*firstExit {
				return 1, false
			}
			*firstExit = false
			n, f := until(func(in x86dis.Inst) bool {
				return isRet(in) || (isJmp(in) && (in.Target < img.Func.Addr || in.Target >= img.Func.Addr+uint64(img.Func.Len)))
			})
			if !f && j+n < len(x) && mnem(x[j+n]) == "int3" {
				n++
			}
			return n, f
		case bpfinsn.OpTailCall, bpfinsn.OpCallArgs:
			return 0, true
		default:
			// A conditional jump: cmp or test, then jcc (a nop before
			// it when the JIT padded the jump).
			if j+1 < len(x) && isNop(x[j+1]) {
				return 3, false
			}
			return 2, false
		}
	}
	return 0, true
}

// allSilent says instructions [from, to] emit no code (statically: a
// move of a register to itself, a 64-bit little-endian conversion, a jump
// to the next instruction).
func allSilent(insns []bpfinsn.Insn, from, to int) bool {
	for k := from; k <= to && k < len(insns); k++ {
		in := insns[k]
		switch {
		case in.Code == bpfinsn.ClassALU64|bpfinsn.OpMov|bpfinsn.SrcX && in.Dst == in.Src && in.Off == 0:
		case in.Code == bpfinsn.ClassALU|bpfinsn.OpEnd && in.Imm == 64:
		case in.Code == bpfinsn.ClassJMP|bpfinsn.OpJA && in.Off == 0:
		default:
			return false
		}
	}
	return true
}

// mapImage derives the spans of the image's instructions.
func mapImage(im *JITImage, insns []bpfinsn.Insn, x []x86dis.Inst, anchors map[int]uint64, fa imageFacts) {
	end := im.Func.Addr + uint64(im.Func.Len)
	idxOf := map[uint64]int{}
	for i, in := range x {
		idxOf[in.Addr] = i
	}
	addr := func(j int) uint64 {
		if j < len(x) {
			return x[j].Addr
		}
		return end
	}
	pro, saved := prologueLen(x, fa)
	im.Saved = saved
	if pro < 0 {
		im.Prologue = im.Func.Addr
		im.Inexact = append(im.Inexact, InexactSpan{From: im.First, To: im.Last, Start: im.Func.Addr, End: end, Why: "the prologue is not the x86-64 JIT's"})
		return
	}
	im.Prologue = addr(pro)
	im.good = im.Prologue
	// The next anchor after instruction k.
	var order []int
	for a := range anchors {
		order = append(order, a)
	}
	sort.Ints(order)
	nextAnchor := func(k int) (int, uint64, bool) {
		i := sort.SearchInts(order, k+1)
		if i < len(order) {
			return order[i], anchors[order[i]], true
		}
		return im.Last, end, true
	}
	firstExit := true
	j := pro
	for k := im.First; k < im.Last; k++ {
		if a, ok := anchors[k]; ok {
			if addr(j) == a {
				im.Checked++
				im.good = a
			} else {
				// The counts went wrong before this anchor: everything
				// back to the previous one is uncertain. Counting goes on
				// from the anchor when it starts an x86 instruction.
				im.markInexact(k, addr(j), a, "the derived boundaries missed the line_info address")
				if ai, ok := idxOf[a]; ok {
					j = ai
					im.good = a
				}
			}
		}
		if k > im.First && insns[k-1].Code == bpfinsn.CodeLdImm64 {
			continue // the second half of a 64-bit load
		}
		n, flex := count(insns, k, x, j, &firstExit, im)
		if flex {
			nk, na, _ := nextAnchor(k)
			ai, ok := idxOf[na]
			if na == end {
				ai, ok = len(x), true
			}
			if !ok || ai < j {
				im.Inexact = append(im.Inexact, InexactSpan{From: k, To: im.Last, Start: addr(j), End: end, Why: "no anchor after an instruction of unknown length"})
				return
			}
			if nk == k+1 || (nk == k+2 && insns[k].Code == bpfinsn.CodeLdImm64) {
				im.Spans = append(im.Spans, InsnSpan{Insn: k, Start: addr(j), End: na})
			} else {
				im.Inexact = append(im.Inexact, InexactSpan{From: k, To: nk, Start: addr(j), End: na, Why: fmt.Sprintf("insn %d's code has no known length", k)})
			}
			j = ai
			im.good = na
			k = nk - 1
			continue
		}
		if j+n > len(x) {
			im.Inexact = append(im.Inexact, InexactSpan{From: k, To: im.Last, Start: addr(j), End: end, Why: "the counts ran past the image"})
			return
		}
		im.Spans = append(im.Spans, InsnSpan{Insn: k, Start: addr(j), End: addr(j + n)})
		j += n
	}
	if j != len(x) {
		im.markInexact(im.Last, addr(min(j, len(x))), end, "the counts did not end at the image's end")
	}
}

// markInexact turns the spans since the last checked point before insn
// k into an inexact stretch ending at addr end.
func (im *JITImage) markInexact(k int, at, end uint64, why string) {
	// Back to the previous anchor's instruction: the spans after it.
	from := len(im.Spans)
	for from > 0 && im.Spans[from-1].Start >= im.good {
		from--
	}
	start := at
	first := k
	if from < len(im.Spans) {
		start, first = im.Spans[from].Start, im.Spans[from].Insn
	}
	im.Spans = im.Spans[:from]
	if end < start {
		start, end = end, start
	}
	im.Inexact = append(im.Inexact, InexactSpan{From: first, To: k, Start: start, End: end, Why: why})
}
