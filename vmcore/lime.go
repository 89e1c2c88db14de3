package vmcore

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"sync"
)

// limeFile reads a forensic memory capture in LiME's "lime" format, or
// AVML's, which is the same sequence of range headers (raw.go) with
// version-2 ranges compressed (avml.go). Open walks the headers (and, for
// compressed ranges, the chunk headers of each range's stream, since the
// stream's length follows it); memory is read on demand.
//
// Such captures hold System RAM only, with no notes: no VMCOREINFO and no
// CPU registers. A compressed range's chunks are decoded whole and kept in
// the page cache, keyed by chunk.
type limeFile struct {
	r      io.ReaderAt
	size   int64
	ranges []limeRange // by Start, disjoint
	avml   bool        // some range is compressed
	holes  []Range     // AVML's left-out zero blocks, by Start (zeroHoles)

	cache    *pageCache // decoded chunks, by global chunk number
	chunkBuf sync.Pool  // *chunkBufs
}

// limeRange is one range of the capture.
type limeRange struct {
	Start, End uint64 // physical addresses, End exclusive
	Header     int64  // file offset of the header
	Off        int64  // file offset of the payload
	// Compressed ranges (AVML version 2): the chunks carrying data, by
	// offset in the range, and the global number of the first.
	Compressed bool
	chunks     []avmlChunk
	firstChunk uint64
}

// Limits on what a capture may ask of us before its bytes prove it.
const (
	// maxLiMERanges bounds the number of ranges: LiME writes one per
	// System RAM resource (a handful), AVML one per 16 MiB.
	maxLiMERanges = 1 << 20
)

// isLiME reports whether hdr starts with a LiME or AVML range header.
func isLiME(hdr []byte) bool {
	if len(hdr) < 8 {
		return false
	}
	m := binary.LittleEndian.Uint32(hdr)
	return m == limeMagic || m == avmlMagic
}

// openLiME walks the range headers of the capture r (size bytes).
func openLiME(r io.ReaderAt, size int64, cachePages int) (*limeFile, error) {
	lf := &limeFile{r: r, size: size}
	var chunks uint64
	for off := int64(0); off < size; {
		if len(lf.ranges) == maxLiMERanges {
			return nil, formatErr("LiME header", off, "more than %d ranges", maxLiMERanges)
		}
		var hb [limeHeaderSize]byte
		if n, _ := r.ReadAt(hb[:], off); n < limeHeaderSize {
			if n == 0 || allZero(hb[:n]) {
				// Zeros after the last range (a capture written to a
				// preallocated file) end it.
				break
			}
			return nil, formatErr("LiME header", off, "truncated: %d of %d bytes", n, limeHeaderSize)
		}
		if allZero(hb[:]) && len(lf.ranges) > 0 {
			break
		}
		var h rawLiMEHeader
		binary.Decode(hb[:], binary.LittleEndian, &h)
		var compressed bool
		switch {
		case h.Magic == limeMagic && h.Version == limeVersion:
		case h.Magic == avmlMagic && h.Version == avmlVersion:
			compressed = true
		case h.Magic == limeMagic || h.Magic == avmlMagic:
			return nil, formatErr("LiME header", off+4, "version %d with magic %#x: LiME writes version 1, AVML version 2 (%v)", h.Version, h.Magic, ErrNotSupported)
		default:
			return nil, formatErr("LiME header", off, "magic %#x, want %#x (LiME) or %#x (AVML)", h.Magic, limeMagic, avmlMagic)
		}
		if h.EAddr < h.SAddr || h.EAddr == ^uint64(0) {
			return nil, formatErr("LiME header", off+8, "range [%#x, %#x] is empty or reversed", h.SAddr, h.EAddr)
		}
		rg := limeRange{Start: h.SAddr, End: h.EAddr + 1, Header: off, Off: off + limeHeaderSize, Compressed: compressed}
		n := rg.End - rg.Start
		if !compressed {
			if n > uint64(size-rg.Off) {
				return nil, formatErr("LiME range", off, "[%#x, %#x]: %d bytes at %#x run past the end of the %d-byte file", h.SAddr, h.EAddr, n, rg.Off, size)
			}
			off = rg.Off + int64(n)
		} else {
			rg.firstChunk = chunks
			end, cs, err := indexAVMLStream(r, size, rg.Off, n, chunks)
			if err != nil {
				return nil, fmt.Errorf("AVML range [%#x, %#x] at %#x: %w", h.SAddr, h.EAddr, off, err)
			}
			rg.chunks = cs
			chunks += uint64(len(cs))
			lf.avml = true
			off = end
		}
		lf.ranges = append(lf.ranges, rg)
	}
	if len(lf.ranges) == 0 {
		return nil, formatErr("LiME header", 0, "no memory range")
	}
	sort.SliceStable(lf.ranges, func(a, b int) bool { return lf.ranges[a].Start < lf.ranges[b].Start })
	for i := 1; i < len(lf.ranges); i++ {
		if p, c := lf.ranges[i-1], lf.ranges[i]; c.Start < p.End {
			return nil, formatErr("LiME header", c.Header, "range [%#x, %#x) overlaps the range [%#x, %#x) at %#x", c.Start, c.End, p.Start, p.End, p.Header)
		}
	}
	if lf.avml {
		lf.holes = zeroHoles(lf.ranges)
		lf.cache = newPageCache(cachePages*4096/snappyMaxChunkData, snappyMaxChunkData)
		lf.chunkBuf.New = func() any { return new(chunkBufs) }
	}
	return lf, nil
}

// find returns the range holding paddr.
func (lf *limeFile) find(paddr uint64) (*limeRange, bool) {
	i := sort.Search(len(lf.ranges), func(i int) bool { return lf.ranges[i].End > paddr })
	if i < len(lf.ranges) && lf.ranges[i].Start <= paddr {
		return &lf.ranges[i], true
	}
	return nil, false
}

// hole returns the zero hole holding paddr.
func (lf *limeFile) hole(paddr uint64) (Range, bool) {
	i := sort.Search(len(lf.holes), func(i int) bool { return lf.holes[i].End() > paddr })
	if i < len(lf.holes) && lf.holes[i].Start <= paddr {
		return lf.holes[i], true
	}
	return Range{}, false
}

// readPhys reads physical memory: straight from the file for LiME
// ranges, through the chunk cache for compressed ones.
func (lf *limeFile) readPhys(p []byte, paddr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := paddr + uint64(n)
		rg, ok := lf.find(a)
		if !ok {
			h, ok := lf.hole(a)
			if !ok {
				return n, physErr(a, 4096, ErrNotInDump)
			}
			m := int(min(uint64(len(p)-n), h.End()-a))
			clear(p[n : n+m])
			n += m
			continue
		}
		m := int(min(uint64(len(p)-n), rg.End-a))
		var k int
		var err error
		if rg.Compressed {
			k, err = lf.readCompressed(rg, p[n:n+m], a-rg.Start)
		} else {
			k, err = lf.r.ReadAt(p[n:n+m], rg.Off+int64(a-rg.Start))
			if k < m {
				err = formatErr("LiME range", rg.Off+int64(a-rg.Start)+int64(k), "range [%#x, %#x): %v", rg.Start, rg.End, err)
			} else {
				err = nil
			}
		}
		n += k
		if err != nil {
			return n, physErr(paddr+uint64(n), 4096, err)
		}
	}
	return n, nil
}

// ranges lists the captured ranges and AVML's zero holes, adjacent ones
// merged.
func (lf *limeFile) physRanges() []Range {
	all := make([]Range, 0, len(lf.ranges)+len(lf.holes))
	for _, rg := range lf.ranges {
		all = append(all, Range{Start: rg.Start, Size: rg.End - rg.Start})
	}
	all = append(all, lf.holes...)
	sort.Slice(all, func(i, j int) bool { return all[i].Start < all[j].Start })
	var out []Range
	for _, r := range all {
		if n := len(out); n > 0 && out[n-1].End() == r.Start {
			out[n-1].Size += r.Size
			continue
		}
		out = append(out, r)
	}
	return out
}

func (lf *limeFile) String() string {
	kind := "LiME"
	if lf.avml {
		kind = "AVML"
	}
	if len(lf.holes) > 0 {
		return fmt.Sprintf("%s capture, %d ranges, %d holes of zero blocks", kind, len(lf.ranges), len(lf.holes))
	}
	return fmt.Sprintf("%s capture, %d ranges", kind, len(lf.ranges))
}
