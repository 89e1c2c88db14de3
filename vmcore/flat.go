package vmcore

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sort"
)

// flatFile presents a flattened kdump file — the stream makedumpfile -F
// (and QEMU's kdump-* formats) write: a 4 KiB header, then records of
// {be64 offset, be64 size, data} in any order, ended by {-1, -1} — as the
// file "makedumpfile -R" would rebuild from it, without rewriting
// anything. Opening scans the record headers once, O(records), reading 4
// KiB at each header and skipping the data; it never reads page data.
// Where records overlap, the later one wins, as it does for -R; bytes no
// record wrote read as zero, as in the rebuilt (sparse) file.
type flatFile struct {
	r       io.ReaderAt
	extents []flatExtent // sorted by logical offset, disjoint
	size    int64        // logical size: the end of the last extent
	data    int64        // bytes the extents hold
	records int          // number of data records
}

// flatExtent maps logical bytes [Log, Log+Len) to file offset File.
type flatExtent struct {
	Log, Len, File int64
}

// flatWindow is how much is read at each record header while indexing:
// small records then need no further read.
const flatWindow = 4096

// isFlattened reports whether hdr (the first bytes of a file) starts a
// flattened dump.
func isFlattened(hdr []byte) bool {
	return len(hdr) >= 16 && bytes.Equal(bytes.TrimRight(hdr[:16], "\x00"), []byte(flatSignature))
}

// openFlat indexes the flattened file r of fileSize bytes.
func openFlat(r io.ReaderAt, fileSize int64) (*flatFile, error) {
	var h rawFlatHeader
	buf := make([]byte, binary.Size(h))
	if _, err := r.ReadAt(buf, 0); err != nil {
		return nil, formatErr("flattened header", 0, "truncated file: %v", err)
	}
	binary.Decode(buf, binary.BigEndian, &h)
	if !isFlattened(h.Signature[:]) {
		return nil, formatErr("flattened header", 0, "signature %q, want %q", bytes.TrimRight(h.Signature[:], "\x00"), flatSignature)
	}
	if h.Type != flatTypeFlat {
		return nil, formatErr("flattened header", 16, "type %d, want %d", h.Type, flatTypeFlat)
	}
	if h.Version != flatVersion {
		return nil, formatErr("flattened header", 24, "version %d, want %d", h.Version, flatVersion)
	}
	var recs []flatExtent
	win := make([]byte, flatWindow)
	winOff, winLen := int64(-1), 0
	pos := int64(flatHeaderSize)
	for {
		if pos+flatRecordSize > fileSize {
			return nil, formatErr("flattened record", pos, "file ends (size %d) before the end marker", fileSize)
		}
		if winOff < 0 || pos < winOff || pos+flatRecordSize > winOff+int64(winLen) {
			n, err := r.ReadAt(win, pos)
			if n < flatRecordSize {
				return nil, formatErr("flattened record", pos, "reading record header: %v", err)
			}
			winOff, winLen = pos, n
		}
		b := win[pos-winOff:]
		off := int64(binary.BigEndian.Uint64(b))
		size := int64(binary.BigEndian.Uint64(b[8:]))
		if off == flatEndFlag && size == flatEndFlag {
			break
		}
		if off < 0 || size <= 0 {
			return nil, formatErr("flattened record", pos, "bad record (offset %d, size %d)", off, size)
		}
		data := pos + flatRecordSize
		if size > fileSize-data {
			return nil, formatErr("flattened record", pos, "record of %d bytes runs past the end of the file (size %d)", size, fileSize)
		}
		if off > (1<<62)-size {
			return nil, formatErr("flattened record", pos, "offset %#x + size %d overflows", off, size)
		}
		recs = append(recs, flatExtent{Log: off, Len: size, File: data})
		pos = data + size
	}
	ff := &flatFile{r: r, records: len(recs)}
	ff.extents = resolveOverlaps(recs)
	if n := len(ff.extents); n > 0 {
		ff.size = ff.extents[n-1].Log + ff.extents[n-1].Len
	}
	for _, e := range ff.extents {
		ff.data += e.Len
	}
	return ff, nil
}

// resolveOverlaps turns records in file order into disjoint extents sorted
// by logical offset, a later record winning over an earlier one. Records
// that do not overlap (the common case) cost one sort.
func resolveOverlaps(recs []flatExtent) []flatExtent {
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return recs[order[a]].Log < recs[order[b]].Log })
	overlap := false
	for i := 1; i < len(order); i++ {
		p, c := recs[order[i-1]], recs[order[i]]
		if c.Log < p.Log+p.Len {
			overlap = true
			break
		}
	}
	if !overlap {
		out := make([]flatExtent, 0, len(recs))
		for _, i := range order {
			out = append(out, recs[i])
		}
		return coalesce(out)
	}
	// Sweep over the boundaries, keeping the live records in a max-heap
	// by record number; each elementary segment goes to the newest.
	bounds := make([]int64, 0, 2*len(recs))
	for _, r := range recs {
		bounds = append(bounds, r.Log, r.Log+r.Len)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	live := &recHeap{recs: recs}
	var out []flatExtent
	next := 0 // index in order of the next record to start
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]
		for next < len(order) && recs[order[next]].Log <= lo {
			heap.Push(live, order[next])
			next++
		}
		for live.Len() > 0 && recs[live.idx[0]].Log+recs[live.idx[0]].Len <= lo {
			heap.Pop(live)
		}
		if live.Len() == 0 {
			continue
		}
		// The top is the newest record live at lo; it covers [lo, hi)
		// as no boundary lies between. Older ended records below it are
		// popped when they surface.
		w := recs[live.idx[0]]
		out = append(out, flatExtent{Log: lo, Len: hi - lo, File: w.File + (lo - w.Log)})
	}
	return coalesce(out)
}

// coalesce merges extents contiguous in both spaces.
func coalesce(ex []flatExtent) []flatExtent {
	out := ex[:0]
	for _, e := range ex {
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.Log+p.Len == e.Log && p.File+p.Len == e.File {
				p.Len += e.Len
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// recHeap is a max-heap of record numbers (newest first).
type recHeap struct {
	recs []flatExtent
	idx  []int
}

func (h *recHeap) Len() int           { return len(h.idx) }
func (h *recHeap) Less(i, j int) bool { return h.idx[i] > h.idx[j] }
func (h *recHeap) Swap(i, j int)      { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *recHeap) Push(x any)         { h.idx = append(h.idx, x.(int)) }
func (h *recHeap) Pop() any {
	n := len(h.idx)
	x := h.idx[n-1]
	h.idx = h.idx[:n-1]
	return x
}

// ReadAt reads the rebuilt file at logical offset off.
func (ff *flatFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("flattened: negative offset")
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= ff.size {
			return n, io.EOF
		}
		// First extent ending after at.
		i := sort.Search(len(ff.extents), func(i int) bool {
			e := ff.extents[i]
			return e.Log+e.Len > at
		})
		if i == len(ff.extents) {
			return n, io.EOF
		}
		e := ff.extents[i]
		if at < e.Log {
			// A hole: zeros, as in the rebuilt sparse file.
			m := min(int64(len(p)-n), e.Log-at)
			clear(p[n : n+int(m)])
			n += int(m)
			continue
		}
		m := min(int64(len(p)-n), e.Log+e.Len-at)
		k, err := ff.r.ReadAt(p[n:n+int(m)], e.File+(at-e.Log))
		n += k
		if err != nil && k < int(m) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}
