package kallsyms

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// This file builds kallsyms tables in fake kernel memory the way
// scripts/kallsyms lays them out, for the decoder's tests and fuzz seeds.

// fakeMem is kernel memory made of segments; reading a gap fails.
type fakeMem struct {
	segs []fakeSeg
}

type fakeSeg struct {
	addr uint64
	data []byte
}

func (m *fakeMem) add(addr uint64, data []byte) {
	m.segs = append(m.segs, fakeSeg{addr, data})
	slices.SortFunc(m.segs, func(a, b fakeSeg) int { return cmp.Compare(a.addr, b.addr) })
}

func (m *fakeMem) ReadVirt(p []byte, vaddr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := vaddr + uint64(n)
		i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].addr > a }) - 1
		if i < 0 || a-m.segs[i].addr >= uint64(len(m.segs[i].data)) {
			return n, fmt.Errorf("fake: %#x not mapped", a)
		}
		n += copy(p[n:], m.segs[i].data[a-m.segs[i].addr:])
	}
	return n, nil
}

// synthLayout is where scripts/kallsyms puts kallsyms_seqs_of_names.
type synthLayout int

const (
	layoutNoSeqs synthLayout = iota // before 6.2: no kallsyms_seqs_of_names
	layout62                        // 6.2 to 6.9: offsets, base, num, names, markers, seqs, token table, index
	layout610                       // 6.10+: num, names, markers, token table, index, offsets, base, seqs
)

type synthOptions struct {
	enc      Encoding
	layout   synthLayout
	seqWidth int // 3, or 4 for the first 6.2 release candidates
	base     uint64
	// wide: kallsyms_num_syms and kallsyms_markers as unsigned longs
	// (PTR), as before 4.20.
	wide bool
}

// synthSym is a symbol as nm gives it to scripts/kallsyms.
type synthSym struct {
	name string
	typ  byte
	addr uint64
}

// synthTable is a built table: its memory, locations and layout offsets.
type synthTable struct {
	mem  *fakeMem
	loc  Locations
	blob []byte // the whole .rodata region at loc base
	base uint64
	syms []synthSym // in table (address) order
	// seqs and markers are where kallsyms_seqs_of_names and
	// kallsyms_markers are (loc leaves them out, as VMCOREINFO does).
	seqs, markers uint64
}

// isPercpu says whether a synthetic symbol is an absolute per-CPU one.
func isPercpu(a uint64) bool { return a < 1<<32 }

// buildSynth lays out syms (sorted by address here, as scripts/kallsyms
// does) in one contiguous region.
func buildSynth(syms []synthSym, o synthOptions) *synthTable {
	syms = slices.Clone(syms)
	slices.SortStableFunc(syms, func(a, b synthSym) int { return cmp.Compare(a.addr, b.addr) })
	if o.seqWidth == 0 {
		o.seqWidth = 3
	}
	if o.base == 0 {
		o.base = 0xffffffff82600000
	}
	tokens, codes := synthCompress(syms)

	var blob []byte
	align := func(a int) {
		for len(blob)%a != 0 {
			blob = append(blob, 0)
		}
	}
	label := func() uint64 { align(8); return o.base + uint64(len(blob)) }
	u32 := func(v uint32) { blob = binary.LittleEndian.AppendUint32(blob, v) }
	u64 := func(v uint64) { blob = binary.LittleEndian.AppendUint64(blob, v) }
	n := len(syms)
	var loc Locations
	relBase := uint64(0)
	for _, s := range syms {
		if o.enc != EncodingAbsolutePercpu || !isPercpu(s.addr) {
			relBase = s.addr
			break
		}
	}
	addrTable := func() {
		if o.enc == EncodingAbsolute {
			loc.Addresses = label()
			for _, s := range syms {
				u64(s.addr)
			}
			return
		}
		loc.Offsets = label()
		for i, s := range syms {
			switch o.enc {
			case EncodingAbsolutePercpu:
				if isPercpu(s.addr) {
					u32(uint32(s.addr))
				} else {
					u32(uint32(int32(int64(relBase) - int64(s.addr) - 1)))
				}
			case EncodingRelative:
				u32(uint32(s.addr - relBase))
			case EncodingPlaceRelative:
				u32(uint32(int32(int64(s.addr - (loc.Offsets + uint64(i)*4)))))
			}
		}
		if o.enc != EncodingPlaceRelative {
			loc.RelativeBase = label()
			u64(relBase)
		}
	}
	var markers []uint32
	namesAndMarkers := func() {
		loc.NumSyms = label()
		if o.wide {
			u64(uint64(n))
		} else {
			u32(uint32(n))
		}
		loc.Names = label()
		start := len(blob)
		for i, c := range codes {
			if i%256 == 0 {
				markers = append(markers, uint32(len(blob)-start))
			}
			if len(c) <= 0x7f {
				blob = append(blob, byte(len(c)))
			} else {
				blob = append(blob, byte(len(c)&0x7f)|0x80, byte(len(c)>>7))
			}
			blob = append(blob, c...)
		}
		loc.Markers = label()
		for _, m := range markers {
			if o.wide {
				u64(uint64(m))
			} else {
				u32(m)
			}
		}
	}
	seqs := func() {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			if c := strings.Compare(syms[a].name, syms[b].name); c != 0 {
				return c
			}
			return cmp.Compare(syms[a].addr, syms[b].addr)
		})
		loc.SeqsOfNames = label()
		for _, i := range idx {
			if o.seqWidth == 4 {
				u32(uint32(i))
			} else {
				blob = append(blob, byte(i>>16), byte(i>>8), byte(i))
			}
		}
	}
	tokenTables := func() {
		loc.TokenTable = label()
		var idx []uint16
		start := len(blob)
		for _, t := range tokens {
			idx = append(idx, uint16(len(blob)-start))
			blob = append(blob, t...)
			blob = append(blob, 0)
		}
		loc.TokenIndex = label()
		for _, v := range idx {
			blob = binary.LittleEndian.AppendUint16(blob, v)
		}
	}
	switch o.layout {
	case layout610:
		namesAndMarkers()
		tokenTables()
		addrTable()
		seqs()
	case layout62:
		addrTable()
		namesAndMarkers()
		seqs()
		tokenTables()
	default:
		addrTable()
		namesAndMarkers()
		tokenTables()
	}
	align(8)
	// Something else of .rodata follows.
	blob = append(blob, make([]byte, 64)...)
	m := &fakeMem{}
	m.add(o.base, blob)
	st := &synthTable{mem: m, loc: loc, blob: blob, base: o.base, syms: syms, seqs: loc.SeqsOfNames, markers: loc.Markers}
	// The caller does not know where seqs are (VMCOREINFO does not say).
	st.loc.SeqsOfNames = 0
	if o.wide {
		// Markers of unsigned longs are not what the decoder checks.
		st.loc.Markers = 0
	}
	return st
}

// synthCompress builds a token table and compresses "type+name" of each
// symbol with it, greedily: codes of bytes that names use stand for
// themselves, the others for frequent substrings.
func synthCompress(syms []synthSym) ([tokenCount]string, [][]byte) {
	var tokens [tokenCount]string
	used := [256]bool{}
	for _, s := range syms {
		used[s.typ] = true
		for i := range len(s.name) {
			used[s.name[i]] = true
		}
	}
	for c := range 256 {
		if used[c] {
			tokens[c] = string(rune(c))
			if c >= 0x80 {
				tokens[c] = string([]byte{byte(c)})
			}
		}
	}
	// Frequent substrings of length 2 to 6.
	count := map[string]int{}
	for _, s := range syms {
		for l := 2; l <= 6; l++ {
			for i := 0; i+l <= len(s.name); i++ {
				count[s.name[i:i+l]]++
			}
		}
	}
	var subs []string
	for k, v := range count {
		if v > 1 {
			subs = append(subs, k)
		}
	}
	slices.SortFunc(subs, func(a, b string) int {
		if c := cmp.Compare(count[b]*len(b), count[a]*len(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for c := range 256 {
		if !used[c] && len(subs) > 0 {
			tokens[c], subs = subs[0], subs[1:]
		}
	}
	codes := make([][]byte, len(syms))
	for i, s := range syms {
		text := string(s.typ) + s.name
		var out []byte
		for p := 0; p < len(text); {
			best, bestLen := -1, 0
			for c, t := range tokens {
				if len(t) > bestLen && strings.HasPrefix(text[p:], t) {
					best, bestLen = c, len(t)
				}
			}
			out = append(out, byte(best))
			p += bestLen
		}
		codes[i] = out
	}
	return tokens, codes
}

// synthSyms is a small kernel: per-CPU symbols at 0, text, data, aliases,
// duplicate names, and a name long enough for a two-byte length.
func synthSyms() []synthSym {
	// A 207-char name of pseudo-random letters: its compressed length
	// needs the two-byte form.
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	long := []byte("__long_")
	x := uint32(1)
	for range 200 {
		x = x*1103515245 + 12345
		long = append(long, letters[(x>>16)%uint32(len(letters))])
	}
	return []synthSym{
		{"__per_cpu_start", 'D', 0},
		{"fixed_percpu_data", 'D', 0},
		{"irq_stack_backing_store", 'd', 0x6000},
		{"cpu_number", 'D', 0x1f000},
		{"__per_cpu_end", 'D', 0x2c000},
		{"_text", 'T', 0xffffffff81000000},
		{"_stext", 'T', 0xffffffff81000000},
		{"startup_64", 'T', 0xffffffff81000000},
		{"secondary_startup_64", 'T', 0xffffffff81000060},
		{"do_one_initcall", 'T', 0xffffffff81001000},
		{"match_token", 't', 0xffffffff81002000},
		{"schedule", 'T', 0xffffffff81e6a2c0},
		{"__schedule", 't', 0xffffffff81e69a10},
		{"schedule_tail", 'T', 0xffffffff810c1230},
		{"match_token", 't', 0xffffffff81f00000},
		{string(long), 't', 0xffffffff81f00100},
		{"_etext", 'T', 0xffffffff82000000},
		{"init_uts_ns", 'D', 0xffffffff82a12340},
		{"jiffies", 'D', 0xffffffff82a13000},
		{"__bss_start", 'B', 0xffffffff83000000},
		{"_end", 'B', 0xffffffff83400000},
	}
}
