package kallsyms

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Finding the kallsyms tables by their shape, for kernels whose VMCOREINFO
// does not locate them (before 6.0) or dumps that have none.
//
// scripts/kallsyms writes the tables into .rodata, each label aligned to 8
// bytes (ALGN, on 64-bit), in an order that changed twice:
//
//	4.6 to 6.1:   kallsyms_offsets | kallsyms_addresses, kallsyms_relative_base,
//	              kallsyms_num_syms, kallsyms_names, kallsyms_markers,
//	              kallsyms_token_table, kallsyms_token_index
//	6.2 to 6.9:   kallsyms_seqs_of_names between kallsyms_markers and
//	              kallsyms_token_table (also in some 6.1 stable kernels)
//	6.10 and on:  kallsyms_num_syms, kallsyms_names, kallsyms_markers,
//	              kallsyms_token_table, kallsyms_token_index,
//	              kallsyms_offsets | kallsyms_addresses, kallsyms_relative_base
//	              (gone from the kernel of 2026 whose offsets are
//	              place-relative), kallsyms_seqs_of_names
//
// What never changed is the heart: the token table and its index, with the
// markers and the names before them. The token table holds 256
// NUL-terminated tokens; every character that occurs in a symbol name is
// its own token (insert_real_symbols_in_table), so the tokens of the
// digits are the digits, and "0\x001\x00...9\x00" runs through the middle
// of the table. The search looks for that run, then checks the shape
// around it:
//
//   - kallsyms_token_index (u16[256]) follows the table at the next
//     8-byte boundary: index[0] is 0 and index[i+1]-index[i] is the length
//     of token i plus one;
//   - kallsyms_markers (u32 per 256 symbols: the offset of symbol 256*i
//     in kallsyms_names; unsigned long before 4.20) ends just before the
//     token table, or before kallsyms_seqs_of_names (3 bytes per symbol)
//     that does: markers[0] is 0 and they increase;
//   - kallsyms_names ends just before the markers and kallsyms_num_syms
//     (u32, its upper half zero: a .long then padding, or a .quad before
//     4.20) is the 8 bytes before it; the last 256-symbol run of names,
//     from its marker, decodes to exactly the names' end;
//   - the addresses are before kallsyms_num_syms or after the token index,
//     and must decode to addresses in order (the table is sorted by
//     address).
//
// The decoder then checks everything: every marker, every name, the
// addresses against VMCOREINFO's other symbols.

// digitRun is tokens '0' to '9' of kallsyms_token_table.
var digitRun = []byte("0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00")

// Bounds of the search.
const (
	// DefaultSearchSize is how far past the kernel's text FindLocations
	// looks when asked to search the whole image: KERNEL_IMAGE_SIZE on
	// x86-64 with KASLR.
	DefaultSearchSize = 1 << 30
	// searchChunk is how much memory is read at a time.
	searchChunk = 1 << 20
	// maxEntryBytes bounds one kallsyms_names entry: a two-byte length
	// and a name of KSYM_NAME_LEN characters, each its own token code.
	maxEntryBytes = 2 + kernelNameLen
	// maxMarkerCandidates bounds the candidate kallsyms_markers tried for
	// one token table.
	maxMarkerCandidates = 256
	// maxBackward bounds how far before the token table the markers may
	// end: past a kallsyms_seqs_of_names of maxSyms 4-byte entries.
	maxBackward = seqSizeOld*maxSyms + markerSize*maxSyms/markerSpan + 64
	// kernelHalf is the lowest kernel address of x86-64 (5-level paging).
	kernelHalf = 0xff00000000000000
)

// FindLocations finds the kallsyms tables in the kernel's memory from
// start (the kernel's _stext) to start+size, by their shape, and returns
// their addresses as LocationsFromVMCOREINFO would, with Markers and,
// where scripts/kallsyms put it between the markers and the token table
// (6.2 to 6.9), SeqsOfNames. known (VMCOREINFO's other SYMBOL() lines,
// or nil) becomes Locations.Known. Unmapped pages are skipped: the image
// has holes (freed init memory, the gap between text and rodata).
//
// Errors wrap ErrNotSupported (no candidate has the shape; the error
// says why the first one failed).
func FindLocations(mem Memory, start, size uint64, known map[string]uint64) (Locations, error) {
	var found Locations
	var ok bool
	var why []string // of the first candidates
	tried := 0
	scanned := scanMemory(mem, start, size, func(d uint64) bool {
		tried++
		loc, err := locationsAt(mem, d)
		if err != nil {
			if len(why) < 4 {
				why = append(why, fmt.Sprintf("digit tokens at %#x: %v", d, err))
			}
			return false
		}
		found, ok = loc, true
		return true
	})
	if ok {
		found.Known = known
		return found, nil
	}
	if tried > 0 {
		return Locations{}, fmt.Errorf("find kallsyms by shape: %d candidate token tables in %d MiB from %#x, none with the kallsyms tables around it (%s): %w", tried, scanned>>20, start, strings.Join(why, "; "), ErrNotSupported)
	}
	return Locations{}, fmt.Errorf("find kallsyms by shape: no digit tokens (%q) in %d MiB from %#x: %w", digitRun, scanned>>20, start, ErrNotSupported)
}

// scanMemory calls fn with the address of each digit run in [start,
// start+size), until it returns true; it returns how many bytes it read.
// A page that cannot be read is skipped, and a 2 MiB page whose first
// page cannot be read is skipped whole.
func scanMemory(mem Memory, start, size uint64, fn func(uint64) bool) uint64 {
	const page, large = 4096, 2 << 20
	end := start + size
	if end < start {
		end = ^uint64(0)
	}
	buf := make([]byte, searchChunk)
	var read uint64
	for a := start; a < end; {
		n := int(min(uint64(len(buf)), end-a))
		got, err := mem.ReadVirt(buf[:n], a)
		got = max(0, min(got, n))
		read += uint64(got)
		b := buf[:got]
		for i := 0; ; {
			j := bytes.Index(b[i:], digitRun)
			if j < 0 {
				break
			}
			at := i + j
			// Token '/' ends just before token '0'.
			if at > 0 && b[at-1] == 0 && fn(a+uint64(at)) {
				return read
			}
			i = at + 1
		}
		switch {
		case got == n && err == nil:
			// Overlap the next chunk by a run's length, so that no run
			// is cut (the byte before it included).
			if got > len(digitRun) {
				a += uint64(got - len(digitRun))
			} else {
				a += uint64(got)
			}
		default:
			fail := a + uint64(got)
			if fail%large == 0 {
				a = fail + large
			} else {
				a = fail&^(page-1) + page
			}
		}
	}
	return read
}

// locationsAt checks the shape of the tables around a run of digit tokens
// at d and returns their addresses.
func locationsAt(mem Memory, d uint64) (Locations, error) {
	tt, ti, err := tokenTableAt(mem, d)
	if err != nil {
		return Locations{}, err
	}
	loc := Locations{TokenTable: tt, TokenIndex: ti}
	if err := findNames(mem, &loc); err != nil {
		return Locations{}, err
	}
	if err := findAddresses(mem, &loc); err != nil {
		return Locations{}, err
	}
	return loc, nil
}

// tokenTableAt returns kallsyms_token_table and kallsyms_token_index
// given the address of token '0' in the table.
func tokenTableAt(mem Memory, d uint64) (uint64, uint64, error) {
	const first = '0'
	// The tokens from '0' on, then the index after them.
	fwd := make([]byte, (tokenCount-first)*maxTokenLen+8+tokenIndexSize)
	n, _ := mem.ReadVirt(fwd, d)
	fwd = fwd[:max(0, min(n, len(fwd)))]
	var rel [tokenCount]int // offset of each token from d, from '0' on
	p := 0
	for i := first; i < tokenCount; i++ {
		rel[i] = p
		e := bytes.IndexByte(fwd[p:min(len(fwd), p+maxTokenLen)], 0)
		if e < 0 {
			return 0, 0, fmt.Errorf("token %#x at %#x is not NUL-terminated within %d bytes", i, d+uint64(p), maxTokenLen)
		}
		p += e + 1
	}
	idx := (d + uint64(p) + 7) &^ 7
	o := int(idx - d)
	if o+tokenIndexSize > len(fwd) {
		return 0, 0, fmt.Errorf("token index at %#x cannot be read", idx)
	}
	if !allZero(fwd[p:o]) {
		return 0, 0, fmt.Errorf("padding before the token index at %#x is not zeros", idx)
	}
	ix := fwd[o : o+tokenIndexSize]
	base := int(le16(ix[2*first:]))
	if le16(ix) != 0 || base > first*maxTokenLen {
		return 0, 0, fmt.Errorf("token index at %#x: index[0] %d, index['0'] %d", idx, le16(ix), base)
	}
	for i := first; i < tokenCount; i++ {
		if int(le16(ix[2*i:])) != base+rel[i] {
			return 0, 0, fmt.Errorf("token index at %#x: index[%#x] %d, but the token is at table offset %d", idx, i, le16(ix[2*i:]), base+rel[i])
		}
	}
	// The tokens before '0' fill the table up to it, as the index says.
	tt := d - uint64(base)
	back := make([]byte, base)
	if err := readFull(mem, "kallsyms_token_table", back, tt); err != nil {
		return 0, 0, err
	}
	q := 0
	for i := range first {
		if int(le16(ix[2*i:])) != q {
			return 0, 0, fmt.Errorf("token index at %#x: index[%#x] %d, but the token is at table offset %d", idx, i, le16(ix[2*i:]), q)
		}
		e := bytes.IndexByte(back[q:min(len(back), q+maxTokenLen)], 0)
		if e < 0 {
			return 0, 0, fmt.Errorf("token %#x at %#x is not NUL-terminated before token '0'", i, tt+uint64(q))
		}
		q += e + 1
	}
	if q != base {
		return 0, 0, fmt.Errorf("the tokens before '0' end at table offset %d, the index puts '0' at %d", q, base)
	}
	return tt, idx, nil
}

// findNames finds kallsyms_markers, kallsyms_names and kallsyms_num_syms
// before the token table, and kallsyms_seqs_of_names between the markers
// and the token table where it is there.
func findNames(mem Memory, loc *Locations) error {
	tt := loc.TokenTable
	lo := uint64(0)
	if tt > maxBackward {
		lo = tt - maxBackward
	}
	var first error
	tried := 0
	const chunk = 64 << 10
	sc := &scratch{}
	// Walk back from the token table in chunks, trying each 8-aligned
	// zero word as markers[0].
	for hi := tt &^ 7; hi > lo && tried < maxMarkerCandidates; {
		from, b := readTail(mem, max(lo, hi-min(hi, chunk)), hi, make([]byte, chunk))
		for i := len(b) - 8; i >= 0 && tried < maxMarkerCandidates; i -= 8 {
			if le32(b[i:]) != 0 {
				continue
			}
			for _, width := range []uint64{markerSize, 8} {
				if width == 8 && le64(b[i:]) != 0 {
					continue
				}
				tried++
				err := namesAt(mem, loc, from+uint64(i), width, sc)
				if err == nil {
					return nil
				}
				if first == nil {
					first = err
				}
			}
		}
		if len(b) == 0 || from > max(lo, hi-min(hi, chunk)) {
			break // unreadable memory before
		}
		hi = from
	}
	if first == nil {
		first = errors.New("no zero word to start kallsyms_markers")
	}
	return fmt.Errorf("no kallsyms_markers before the token table at %#x (first candidate: %w)", tt, first)
}

// scratch holds buffers reused across the candidates of findNames.
type scratch struct {
	markers, window []byte
}

// grow returns b resized to n bytes, reallocated only to grow.
func grow(b *[]byte, n uint64) []byte {
	if uint64(cap(*b)) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return *b
}

// namesAt checks markers of the given width (4 bytes; 8 before 4.20)
// starting at m, with the names and their count before them.
func namesAt(mem Memory, loc *Locations, m, width uint64, sc *scratch) error {
	tt := loc.TokenTable
	// The markers: 0, then increasing by at least 2 bytes a symbol, at
	// most an entry's largest. Read a page of them, all if they run on.
	var b []byte
	at := func(i uint64) uint64 {
		if width == 8 {
			return le64(b[i*8:])
		}
		return uint64(le32(b[i*4:]))
	}
	var run uint64
	for _, size := range []uint64{min(tt-m, 4096), min(tt-m, maxSyms/markerSpan*width)} {
		b = grow(&sc.markers, size)
		if err := readFull(mem, "kallsyms_markers", b, m); err != nil {
			return err
		}
		run = 1
		for ; (run+1)*width <= uint64(len(b)); run++ {
			d := at(run) - at(run-1)
			if at(run) <= at(run-1) || d < 2*markerSpan || d > maxEntryBytes*markerSpan {
				break
			}
		}
		if (run+1)*width <= uint64(len(b)) {
			break // the run ended within what was read
		}
	}
	var first error
	for nm := run; nm >= 1 && nm+2 >= run; nm-- {
		err := namesWithMarkers(mem, loc, m, width, nm, at, sc)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("markers at %#x: %w", m, first)
}

// namesWithMarkers checks that nm markers at m (at(i) is marker i) end
// kallsyms_names and that kallsyms_num_syms precedes the names.
func namesWithMarkers(mem Memory, loc *Locations, m, width, nm uint64, at func(uint64) uint64, sc *scratch) error {
	last := at(nm - 1)
	if last > m {
		return fmt.Errorf("marker %d (%#x) reaches before memory", nm-1, last)
	}
	// The last run of names starts at names+last and ends within 8 bytes
	// of m; the names start 8 bytes after num_syms.
	hi := m - last
	lo := hi - min(hi, maxEntryBytes*markerSpan+16)
	lo, win := readTail(mem, lo, hi, grow(&sc.window, hi-lo))
	minN, maxN := (nm-1)*markerSpan+1, nm*markerSpan
	var first error
	for nsAddr := (hi - 8) &^ 7; nsAddr >= lo && nsAddr+8 <= hi; nsAddr -= 8 {
		w := win[nsAddr-lo:]
		n := uint64(le32(w))
		if le32(w[4:]) != 0 || n < minN || n > maxN {
			continue
		}
		names := nsAddr + 8
		end, err := skipNames(mem, names+last, n-(nm-1)*markerSpan)
		if err == nil && (end > m || m-end >= 8) {
			err = fmt.Errorf("names end at %#x, not just before the markers at %#x", end, m)
		}
		if err == nil && end < m {
			pad := make([]byte, m-end)
			if err = readFull(mem, "kallsyms_names", pad, end); err == nil && !allZero(pad) {
				err = fmt.Errorf("padding between the names' end %#x and the markers is not zeros", end)
			}
		}
		if err == nil && nm > 1 {
			// The first run of names ends at the second marker.
			var e uint64
			if e, err = skipNames(mem, names, markerSpan); err == nil && e != names+at(1) {
				err = fmt.Errorf("symbols 0 to 255 end at kallsyms_names+%#x, marker 1 says %#x", e-names, at(1))
			}
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("kallsyms_num_syms %d at %#x: %w", n, nsAddr, err)
			}
			continue
		}
		// The markers end before the token table, or before
		// kallsyms_seqs_of_names that ends there.
		mend := (m + nm*width + 7) &^ 7
		switch tt := loc.TokenTable; {
		case mend == tt:
		case (mend+seqSize*n+7)&^7 == tt, (mend+seqSizeOld*n+7)&^7 == tt:
			loc.SeqsOfNames = mend
		default:
			if first == nil {
				first = fmt.Errorf("%d markers at %#x end at %#x, %d bytes before the token table, which neither is it nor fits kallsyms_seqs_of_names of %d symbols", nm, m, mend, tt-mend, n)
			}
			continue
		}
		loc.NumSyms, loc.Names = nsAddr, names
		if width == markerSize {
			loc.Markers = m
		}
		return nil
	}
	if first == nil {
		first = fmt.Errorf("no kallsyms_num_syms of %d to %d symbols within %d bytes before", minN, maxN, hi-lo)
	}
	return first
}

// readTail reads the longest readable end of [lo, hi) into b (hi-lo
// bytes), page by page from lo: memory before the tables may be unmapped.
// It returns where what it read starts.
func readTail(mem Memory, lo, hi uint64, b []byte) (uint64, []byte) {
	for from := lo; from < hi; from = (from &^ 4095) + 4096 {
		if n, _ := mem.ReadVirt(b[from-lo:], from); n == int(hi-from) {
			return from, b[from-lo:]
		}
	}
	return hi, nil
}

// skipNames walks count kallsyms_names entries from addr and returns the
// address past them.
func skipNames(mem Memory, addr, count uint64) (uint64, error) {
	s := &stream{mem: mem, table: "kallsyms_names", base: addr, limit: count * maxEntryBytes}
	var off uint64
	for i := range count {
		hdr, err := s.bytes(off, 1, int(i))
		if err != nil {
			return 0, err
		}
		if hdr[0]&bigLengthFlag != 0 {
			if hdr, err = s.bytes(off, 2, int(i)); err != nil {
				return 0, err
			}
		}
		l, p, _ := nameLength(hdr)
		if l == 0 || l > kernelNameLen {
			return 0, tableErr("kallsyms_names", int(i), addr+off, "entry of %d token codes", l)
		}
		off += uint64(p + l)
	}
	return addr + off, nil
}

// findAddresses finds kallsyms_offsets (with kallsyms_relative_base) or
// kallsyms_addresses: before kallsyms_num_syms (to 6.9), or after the
// token index (6.10 on). The candidate must decode to addresses in order.
func findAddresses(mem Memory, loc *Locations) error {
	var b4 [4]byte
	if err := readFull(mem, "kallsyms_num_syms", b4[:], loc.NumSyms); err != nil {
		return err
	}
	n := uint64(le32(b4[:]))
	after := loc.TokenIndex + tokenIndexSize
	type cand struct {
		what                    string
		offsets, addrs, relBase uint64
	}
	cands := []cand{
		{what: "relative offsets before kallsyms_num_syms", relBase: loc.NumSyms - 8, offsets: loc.NumSyms - 8 - (offsetSize*n+7)&^7},
		{what: "absolute addresses before kallsyms_num_syms", addrs: loc.NumSyms - addressSize*n},
		{what: "relative offsets after kallsyms_token_index", offsets: after, relBase: (after + offsetSize*n + 7) &^ 7},
		{what: "absolute addresses after kallsyms_token_index", addrs: after},
		{what: "place-relative offsets after kallsyms_token_index", offsets: after},
	}
	if loc.SeqsOfNames != 0 {
		// 6.2 to 6.9: the addresses come first.
		cands = cands[:2]
	}
	var errs []error
	for _, c := range cands {
		var err error
		if c.addrs != 0 {
			err = checkAbsolute(mem, c.addrs, n)
		} else {
			err = checkOffsets(mem, c.offsets, c.relBase, n)
		}
		if err == nil {
			loc.Offsets, loc.Addresses, loc.RelativeBase = c.offsets, c.addrs, c.relBase
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.what, err))
	}
	return fmt.Errorf("no symbol addresses in order around the names at %#x: %w", loc.Names, errors.Join(errs...))
}

// inOrder checks that n decoded addresses do not decrease and mostly
// increase (aliases share an address), and that they reach kernel
// addresses.
type inOrder struct {
	prev, increases, n uint64
	kernel             bool
}

func (o *inOrder) add(a uint64) bool {
	if o.n > 0 {
		if a < o.prev {
			return false
		}
		if a > o.prev {
			o.increases++
		}
	}
	o.kernel = o.kernel || a >= kernelHalf
	o.prev = a
	o.n++
	return true
}

func (o *inOrder) check(at uint64) error {
	switch {
	case !o.kernel:
		return fmt.Errorf("at %#x: no kernel address", at)
	case o.n > 1 && o.increases*2 < o.n-1:
		return fmt.Errorf("at %#x: %d of %d addresses increase", at, o.increases, o.n-1)
	}
	return nil
}

// checkAbsolute checks kallsyms_addresses of n entries at addr.
func checkAbsolute(mem Memory, addr, n uint64) error {
	s := &stream{mem: mem, table: "kallsyms_addresses", base: addr, limit: n * addressSize}
	var o inOrder
	for i := range n {
		b, err := s.bytes(i*addressSize, addressSize, int(i))
		if err != nil {
			return err
		}
		if !o.add(le64(b)) {
			return fmt.Errorf("entry %d at %#x: %#x is below the one before", i, addr+i*addressSize, le64(b))
		}
	}
	return o.check(addr)
}

// checkOffsets checks kallsyms_offsets of n entries at addr, with
// kallsyms_relative_base at relBase (0: place-relative), in any encoding.
func checkOffsets(mem Memory, addr, relBase, n uint64) error {
	var encs []Encoding
	var base uint64
	if relBase == 0 {
		encs = []Encoding{EncodingPlaceRelative}
	} else {
		var b8 [8]byte
		if err := readFull(mem, "kallsyms_relative_base", b8[:], relBase); err != nil {
			return err
		}
		base = le64(b8[:])
		if base < kernelHalf {
			return fmt.Errorf("kallsyms_relative_base %#x at %#x is not a kernel address", base, relBase)
		}
		encs = []Encoding{EncodingAbsolutePercpu, EncodingRelative}
	}
	var first error
	for _, enc := range encs {
		s := &stream{mem: mem, table: "kallsyms_offsets", base: addr, limit: n * offsetSize}
		var o inOrder
		var err error
		for i := range n {
			var b []byte
			if b, err = s.bytes(i*offsetSize, offsetSize, int(i)); err != nil {
				break
			}
			if a := offsetAddress(enc, base, addr+i*offsetSize, int32(le32(b))); !o.add(a) {
				err = fmt.Errorf("entry %d at %#x decodes (%v) to %#x, below the one before", i, addr+i*offsetSize, enc, a)
				break
			}
		}
		if err == nil {
			err = o.check(addr)
		}
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
