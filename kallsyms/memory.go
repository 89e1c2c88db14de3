package kallsyms

import (
	"fmt"
	"math/bits"
	"slices"
)

// Memory is kernel virtual memory, as *vmcore.KernelAS provides it. A
// short read returns the bytes read and an error.
type Memory interface {
	ReadVirt(p []byte, vaddr uint64) (int, error)
}

// Locations gives the run-time (KASLR-relocated) addresses of the kallsyms
// tables in kernel memory. NumSyms, Names, TokenTable and TokenIndex are
// required, with Addresses, or Offsets (with RelativeBase unless the
// kernel's offsets are place-relative). LocationsFromVMCOREINFO fills it
// from a dump.
type Locations struct {
	NumSyms      uint64 // kallsyms_num_syms
	Names        uint64 // kallsyms_names
	TokenTable   uint64 // kallsyms_token_table
	TokenIndex   uint64 // kallsyms_token_index
	Addresses    uint64 // kallsyms_addresses (absolute)
	Offsets      uint64 // kallsyms_offsets
	RelativeBase uint64 // kallsyms_relative_base
	// Markers (kallsyms_markers), when known, is checked against the
	// decoded names.
	Markers uint64
	// SeqsOfNames (kallsyms_seqs_of_names), when known, is used as the
	// name index; otherwise it is looked for where scripts/kallsyms
	// places it. It is used only if it is a valid index.
	SeqsOfNames uint64
	// Known maps names to their addresses from another source
	// (VMCOREINFO's SYMBOL() lines). The decoding must agree with every
	// one of them that kallsyms has; it also chooses between the offset
	// encodings.
	Known map[string]uint64
}

// Encoding is how a kernel stores its symbol addresses.
type Encoding int

// Encodings, in the order kernels adopted them.
const (
	EncodingUnknown Encoding = iota
	// EncodingText: parsed from /proc/kallsyms text.
	EncodingText
	// EncodingAbsolute: kallsyms_addresses (!CONFIG_KALLSYMS_BASE_RELATIVE).
	EncodingAbsolute
	// EncodingAbsolutePercpu: kallsyms_offsets with
	// CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP, 4.6 to 6.14).
	EncodingAbsolutePercpu
	// EncodingRelative: kallsyms_relative_base + (u32)kallsyms_offsets[i].
	EncodingRelative
	// EncodingPlaceRelative: &kallsyms_offsets[i] + kallsyms_offsets[i],
	// without kallsyms_relative_base.
	EncodingPlaceRelative
)

// String names the encoding; unknown values print as Encoding(N).
func (e Encoding) String() string {
	switch e {
	case EncodingText:
		return "text"
	case EncodingAbsolute:
		return "absolute"
	case EncodingAbsolutePercpu:
		return "relative, absolute per-cpu"
	case EncodingRelative:
		return "relative"
	case EncodingPlaceRelative:
		return "place-relative"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// stream reads a table of kernel memory sequentially through a window of
// readChunk bytes, never more than limit bytes from its start.
type stream struct {
	mem   Memory
	table string
	base  uint64
	limit uint64
	buf   []byte
	at    uint64 // offset of buf[0] from base
}

// bytes returns n bytes at offset off of the table. The slice is valid
// until the next call.
func (s *stream) bytes(off uint64, n int, index int) ([]byte, error) {
	end := off + uint64(n)
	if end > s.limit || end < off {
		return nil, tableErr(s.table, index, s.base+off, "%d bytes at offset %#x run past the %#x-byte limit", n, off, s.limit)
	}
	if off >= s.at && end <= s.at+uint64(len(s.buf)) {
		return s.buf[off-s.at : end-s.at], nil
	}
	size := min(uint64(max(n, readChunk)), s.limit-off)
	if uint64(cap(s.buf)) < size {
		s.buf = make([]byte, size)
	}
	s.buf = s.buf[:size]
	got, err := s.mem.ReadVirt(s.buf, s.base+off)
	got = max(0, min(got, len(s.buf)))
	s.buf, s.at = s.buf[:got], off
	if got < n {
		if err == nil {
			err = fmt.Errorf("short read: %d of %d bytes", got, n)
		}
		return nil, fmt.Errorf("read %s[%d] at %#x: %w", s.table, index, s.base+off+uint64(got), err)
	}
	return s.buf[:n], nil
}

// readFull reads exactly len(p) bytes at addr.
func readFull(mem Memory, table string, p []byte, addr uint64) error {
	n, err := mem.ReadVirt(p, addr)
	if n < len(p) {
		if err == nil {
			err = fmt.Errorf("short read: %d of %d bytes", n, len(p))
		}
		return fmt.Errorf("read %s at %#x: %w", table, addr, err)
	}
	return nil
}

// Decode rebuilds vmlinux's symbol table from the kallsyms tables in
// kernel memory, at once. Most callers want FromMemory or FromDump, which
// decode on first use.
//
// Errors wrap ErrNotSupported (Locations incomplete), ErrFormat (a
// *FormatError naming the table, the symbol index and the address), or
// the memory's read error.
func Decode(mem Memory, loc Locations) (*Table, error) {
	im, err := decode(mem, loc)
	if err != nil {
		return nil, err
	}
	return newTable(func() (*image, error) { return im, nil }), nil
}

func decode(mem Memory, loc Locations) (*image, error) {
	if loc.NumSyms == 0 || loc.Names == 0 || loc.TokenTable == 0 || loc.TokenIndex == 0 || (loc.Addresses == 0 && loc.Offsets == 0) {
		return nil, fmt.Errorf("decode kallsyms: incomplete table locations (need kallsyms_num_syms, _names, _token_table, _token_index and _offsets or _addresses): %w", ErrNotSupported)
	}
	var b4 [4]byte
	if err := readFull(mem, "kallsyms_num_syms", b4[:], loc.NumSyms); err != nil {
		return nil, err
	}
	n := int(le32(b4[:]))
	if n == 0 || n > maxSyms {
		return nil, tableErr("kallsyms_num_syms", -1, loc.NumSyms, "%d symbols: want 1 to %d", n, maxSyms)
	}
	tokens, err := readTokens(mem, loc)
	if err != nil {
		return nil, err
	}
	b, markers, err := decodeNames(mem, loc, n, tokens)
	if err != nil {
		return nil, err
	}
	if loc.Markers != 0 {
		if err := checkMarkers(mem, loc.Markers, markers); err != nil {
			return nil, err
		}
	}
	im := b.done()
	if err := decodeAddresses(mem, loc, im); err != nil {
		return nil, err
	}
	im.info.Source = "kernel memory"
	im.info.Symbols = n
	if !useSeqsOfNames(mem, loc, im) {
		im.sortNames()
	}
	im.finish()
	return im, nil
}

// readTokens reads kallsyms_token_index and the 256 tokens it points to.
func readTokens(mem Memory, loc Locations) (*[tokenCount]string, error) {
	var idx [tokenIndexSize]byte
	if err := readFull(mem, "kallsyms_token_index", idx[:], loc.TokenIndex); err != nil {
		return nil, err
	}
	var offs [tokenCount]int
	maxOff := 0
	for i := range offs {
		offs[i] = int(le16(idx[2*i:]))
		maxOff = max(maxOff, offs[i])
	}
	buf := make([]byte, maxOff+maxTokenLen)
	got, err := mem.ReadVirt(buf, loc.TokenTable)
	buf = buf[:max(0, min(got, len(buf)))]
	var tokens [tokenCount]string
	for i, o := range offs {
		end := -1
		if o < len(buf) {
			for j, c := range buf[o:min(len(buf), o+maxTokenLen)] {
				if c == 0 {
					end = o + j
					break
				}
			}
		}
		if end < 0 {
			if o+maxTokenLen > len(buf) && err != nil {
				return nil, fmt.Errorf("read kallsyms_token_table[%d] at %#x: %w", i, loc.TokenTable+uint64(o), err)
			}
			return nil, tableErr("kallsyms_token_table", i, loc.TokenTable+uint64(o), "token not NUL-terminated within %d bytes", maxTokenLen)
		}
		tokens[i] = string(buf[o:end])
	}
	return &tokens, nil
}

// decodeNames expands kallsyms_names: every symbol's type and name. It
// also returns the offset of every 256th entry, what kallsyms_markers
// should hold.
func decodeNames(mem Memory, loc Locations, n int, tokens *[tokenCount]string) (*builder, []uint32, error) {
	s := &stream{mem: mem, table: "kallsyms_names", base: loc.Names, limit: maxNamesBytes}
	b := newBuilder(min(n, initialCap))
	markers := make([]uint32, 0, min((n+markerSpan-1)/markerSpan, 1<<10))
	var off uint64
	var name []byte
	for i := range n {
		if i%markerSpan == 0 {
			markers = append(markers, uint32(off))
		}
		hdr, err := s.bytes(off, 1, i)
		if err != nil {
			return nil, nil, err
		}
		if hdr[0]&bigLengthFlag != 0 {
			if hdr, err = s.bytes(off, 2, i); err != nil {
				return nil, nil, err
			}
			b.im.info.BigNames++
		}
		l, p, _ := nameLength(hdr)
		if l == 0 {
			return nil, nil, tableErr("kallsyms_names", i, loc.Names+off, "zero-length entry")
		}
		codes, err := s.bytes(off+uint64(p), l, i)
		if err != nil {
			return nil, nil, err
		}
		name = name[:0]
		for _, c := range codes {
			name = append(name, tokens[c]...)
			if len(name) > maxExpandedName {
				return nil, nil, tableErr("kallsyms_names", i, loc.Names+off, "name expands past %d bytes", maxExpandedName)
			}
		}
		if len(name) < 2 {
			return nil, nil, tableErr("kallsyms_names", i, loc.Names+off, "entry expands to %q: want a type and a name", name)
		}
		b.add(name[1:], 0, name[0])
		if len(b.names) > maxExpandedBytes {
			return nil, nil, tableErr("kallsyms_names", i, loc.Names+off, "names expand past %d bytes", maxExpandedBytes)
		}
		off += uint64(p + l)
	}
	return b, markers, nil
}

// checkMarkers compares kallsyms_markers with the offsets decodeNames saw.
func checkMarkers(mem Memory, addr uint64, want []uint32) error {
	s := &stream{mem: mem, table: "kallsyms_markers", base: addr, limit: uint64(len(want)) * markerSize}
	for i, w := range want {
		b, err := s.bytes(uint64(i)*markerSize, markerSize, i)
		if err != nil {
			return err
		}
		if got := le32(b); got != w {
			return tableErr("kallsyms_markers", i, addr+uint64(i)*markerSize, "marker %#x, but symbol %d is at kallsyms_names+%#x", got, i*markerSpan, w)
		}
	}
	return nil
}

// decodeAddresses fills im.addrs from kallsyms_addresses or
// kallsyms_offsets, choosing the offset encoding (see raw.go) and checking
// it against loc.Known.
func decodeAddresses(mem Memory, loc Locations, im *image) error {
	n := len(im.types)
	im.addrs = im.addrs[:0]
	if loc.Addresses != 0 {
		s := &stream{mem: mem, table: "kallsyms_addresses", base: loc.Addresses, limit: uint64(n) * addressSize}
		for i := range n {
			b, err := s.bytes(uint64(i)*addressSize, addressSize, i)
			if err != nil {
				return err
			}
			im.addrs = append(im.addrs, le64(b))
		}
		im.info.Encoding = EncodingAbsolute
		return checkKnown(loc, im)
	}
	offs := make([]int32, 0, min(n, initialCap))
	negative := false
	s := &stream{mem: mem, table: "kallsyms_offsets", base: loc.Offsets, limit: uint64(n) * offsetSize}
	for i := range n {
		b, err := s.bytes(uint64(i)*offsetSize, offsetSize, i)
		if err != nil {
			return err
		}
		o := int32(le32(b))
		negative = negative || o < 0
		offs = append(offs, o)
	}
	var candidates []Encoding
	var base uint64
	switch {
	case loc.RelativeBase == 0:
		candidates = []Encoding{EncodingPlaceRelative}
	default:
		var b8 [8]byte
		if err := readFull(mem, "kallsyms_relative_base", b8[:], loc.RelativeBase); err != nil {
			return err
		}
		base = le64(b8[:])
		// Non-relocated text offsets are negative only with
		// absolute per-CPU symbols (a kernel spans less than 2 GiB).
		candidates = []Encoding{EncodingRelative, EncodingAbsolutePercpu}
		if negative {
			candidates[0], candidates[1] = candidates[1], candidates[0]
		}
	}
	im.addrs = im.addrs[:n]
	for _, enc := range candidates {
		for i, o := range offs {
			im.addrs[i] = offsetAddress(enc, base, loc.Offsets+uint64(i)*offsetSize, o)
		}
		im.info.Encoding = enc
		if err := checkKnown(loc, im); err == nil || enc == candidates[len(candidates)-1] {
			return err
		}
	}
	return nil
}

// offsetAddress decodes entry o of kallsyms_offsets, at address at.
func offsetAddress(enc Encoding, base, at uint64, o int32) uint64 {
	switch enc {
	case EncodingAbsolutePercpu:
		if o >= 0 {
			return uint64(o)
		}
		return base - 1 - uint64(int64(o))
	case EncodingPlaceRelative:
		return at + uint64(int64(o))
	}
	return base + uint64(uint32(o))
}

// checkKnown checks the decoded addresses against loc.Known. A wrong
// encoding agrees with none of them; a right one may disagree with a few
// (a SYMBOL() line may give a pointer's value rather than its address,
// as SYMBOL(mem_section) does under SPARSEMEM_EXTREME), which Info lists.
// It fails when some known names are in the table and none agrees.
func checkKnown(loc Locations, im *image) error {
	im.info.Checked, im.info.Disagreed = 0, nil
	if len(loc.Known) == 0 {
		return nil
	}
	found := map[string][]int{}
	for i := range im.types {
		if _, ok := loc.Known[im.name(i)]; ok {
			found[im.name(i)] = append(found[im.name(i)], i)
		}
	}
	var first string
	for name, idx := range found {
		want := loc.Known[name]
		ok := false
		for _, i := range idx {
			ok = ok || im.addrs[i] == want
		}
		if ok {
			im.info.Checked++
		} else {
			im.info.Disagreed = append(im.info.Disagreed, name)
			if first == "" || name < first {
				first = name
			}
		}
	}
	slices.Sort(im.info.Disagreed)
	if im.info.Checked > 0 || first == "" {
		return nil
	}
	i := found[first][0]
	at, table := loc.Addresses+uint64(i)*addressSize, "kallsyms_addresses"
	if loc.Addresses == 0 {
		at, table = loc.Offsets+uint64(i)*offsetSize, "kallsyms_offsets"
	}
	return tableErr(table, i, at, "no symbol decodes to its VMCOREINFO address (%s encoding): %s decodes to %#x, but it is at %#x",
		im.info.Encoding, first, im.addrs[i], loc.Known[first])
}

// useSeqsOfNames looks for kallsyms_seqs_of_names (6.2+) and, when one of
// the places scripts/kallsyms puts it holds a valid name index, makes it
// im.byName: it saves sorting the names.
func useSeqsOfNames(mem Memory, loc Locations, im *image) bool {
	n := uint64(len(im.types))
	type candidate struct {
		addr  uint64
		width int
	}
	var cands []candidate
	add := func(a uint64) {
		if a != 0 {
			cands = append(cands, candidate{a, seqSize}, candidate{a, seqSizeOld})
		}
	}
	add(loc.SeqsOfNames)
	if loc.RelativeBase != 0 {
		// 6.10+ layout: ... kallsyms_offsets, kallsyms_relative_base,
		// kallsyms_seqs_of_names.
		add(loc.RelativeBase + 8)
	} else if loc.Offsets != 0 {
		// Its label is 8-aligned (ALGN).
		add(loc.Offsets + n*offsetSize)
		add((loc.Offsets + n*offsetSize + 7) &^ 7)
	}
	// 6.2 to 6.9: ... kallsyms_markers, kallsyms_seqs_of_names,
	// kallsyms_token_table; each label aligned to 8.
	for _, w := range []uint64{seqSize, seqSizeOld} {
		if hi, borrow := bits.Sub64(loc.TokenTable, n*w, 0); borrow == 0 {
			add(hi &^ 7)
		}
	}
	seen := map[candidate]bool{}
	for _, c := range cands {
		if seen[c] {
			continue
		}
		seen[c] = true
		if idx, ok := readSeqs(mem, c.addr, c.width, im); ok {
			im.byName = idx
			im.info.NameIndex = fmt.Sprintf("kallsyms_seqs_of_names at %#x", c.addr)
			return true
		}
	}
	return false
}

// readSeqs reads a candidate kallsyms_seqs_of_names and returns it if it
// is a permutation of the symbols in compareNames order.
func readSeqs(mem Memory, addr uint64, width int, im *image) ([]uint32, bool) {
	n := len(im.types)
	s := &stream{mem: mem, table: "kallsyms_seqs_of_names", base: addr, limit: uint64(n * width)}
	idx := make([]uint32, 0, min(n, initialCap))
	seen := make([]uint64, (n+63)/64)
	const batch = readChunk / 4
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		b, err := s.bytes(uint64(i*width), m*width, i)
		if err != nil {
			return nil, false
		}
		for j := range m {
			q := seqAt(b, j, width)
			if q >= uint32(n) || seen[q/64]&(1<<(q%64)) != 0 {
				return nil, false
			}
			seen[q/64] |= 1 << (q % 64)
			if len(idx) > 0 && im.compareNames(idx[len(idx)-1], q) > 0 {
				return nil, false
			}
			idx = append(idx, q)
		}
	}
	return idx, true
}
