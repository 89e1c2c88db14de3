package vmcore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"time"
)

// kdumpFile reads a kdump-compressed file (makedumpfile's diskdump
// format), normal or — through flatFile — flattened.
//
// Layout, in blocks of block_size (the page size):
//
//	block 0                    struct disk_dump_header
//	block 1 .. sub_hdr_size    struct kdump_sub_header, notes, VMCOREINFO
//	bitmap_blocks blocks       1st bitmap (pages that exist), then 2nd
//	                           bitmap (pages dumped), one bit per pfn
//	page descriptors           struct page_desc, one per bit set in the
//	                           2nd bitmap, in pfn order
//	page data
//
// Open reads the two headers and the small note and VMCOREINFO areas. The
// first page access reads the 2nd bitmap once, in 1 MiB pieces, to count
// the dumped pages before each 32768-pfn chunk (one uint64 per 128 MiB of
// memory); bitmap chunks, descriptors and pages are read on demand
// (docs/huge-dumps.md).
type kdumpFile struct {
	r    io.ReaderAt // the (logical) file
	size int64       // its size

	hdr         rawDiskDumpHeader
	sub         rawKdumpSubHeader
	hasSub      bool
	pageSize    int
	maxMapnr    uint64
	bitmapOff   int64 // 1st bitmap; the 2nd follows at bitmapOff+bitmapLen/2
	bitmapLen   int64 // both bitmaps
	descOff     int64
	compression Compression

	notes      []byte // note area, if any
	notesOff   int64
	vmcoreinfo []byte
	eraseinfo  []byte // makedumpfile --config's record of what it erased

	bmOnce sync.Once
	bmErr  error
	rank   []uint64 // pages dumped (2nd bitmap) before chunk i, i <= chunks
	ndumps uint64   // pages dumped
	bmMu   sync.Mutex
	chunks map[bmChunkKey]*bmChunk // bitmap chunks read, at most bmCacheChunks

	rangesOnce sync.Once
	rangeList  []Range
	rangesErr  error

	cache   *pageCache
	bufPool sync.Pool // *[]byte of a page, for compressed data and pages
}

// maxPageSize bounds the block (page) size: 64 KiB is the largest page
// size of any architecture makedumpfile supports.
const maxPageSize = 64 << 10

// maxBitmapBytes bounds the bitmaps: 2 x 2 GiB covers 64 TiB of 4 KiB
// pages, x86-64's physical limit with 4-level paging. They are never
// held whole: what is allocated from their size is the rank table, 8
// bytes per 4 KiB of a bitmap (4 MiB at 64 TiB).
const maxBitmapBytes = 4 << 30

func isKdump(hdr []byte) bool {
	return len(hdr) >= 8 && (string(hdr[:8]) == kdumpSignature || string(hdr[:8]) == diskdumpSig)
}

// openKdump reads the headers of the kdump file r (size bytes). budget is
// the number of bytes the file really holds (less than size for a sparse
// flattened file): no allocation the file asks for may exceed it.
func openKdump(r io.ReaderAt, size, budget int64, cachePages int) (*kdumpFile, error) {
	k := &kdumpFile{r: r, size: size}
	buf := make([]byte, rawDiskDumpHeaderSize)
	if n, _ := r.ReadAt(buf, 0); n < len(buf) {
		return nil, formatErr("kdump header", 0, "truncated: %d of %d bytes", n, len(buf))
	}
	if !isKdump(buf) {
		return nil, formatErr("kdump header", 0, "signature %q, want %q", buf[:8], kdumpSignature)
	}
	binary.Decode(buf, binary.LittleEndian, &k.hdr)
	h := &k.hdr
	bs := int64(h.BlockSize)
	if bs < 512 || bs > maxPageSize || bs&(bs-1) != 0 {
		return nil, formatErr("kdump header", 428, "block size %d is not a power of two in [512, %d]", h.BlockSize, maxPageSize)
	}
	k.pageSize = int(bs)
	if h.SubHdrSize < 0 || int64(h.SubHdrSize) > size/bs {
		return nil, formatErr("kdump header", 432, "sub-header of %d blocks in a %d-byte file", h.SubHdrSize, size)
	}
	c, ok := compressionOfFlags(h.Status)
	if !ok {
		return nil, formatErr("kdump header", 424, "status %#x names more than one compression", h.Status)
	}
	k.compression = c
	k.maxMapnr = uint64(h.MaxMapnr)

	if h.HeaderVersion >= 1 && h.SubHdrSize > 0 {
		sb := make([]byte, rawSubHeaderSize)
		n, _ := r.ReadAt(sb, bs)
		if n < 16 {
			return nil, formatErr("kdump sub-header", bs, "truncated: %d bytes", n)
		}
		// Older versions have a shorter sub-header: fields past what the
		// version defines stay zero.
		clear(sb[n:])
		binary.Decode(sb, binary.LittleEndian, &k.sub)
		k.hasSub = true
		if h.HeaderVersion < 3 {
			k.sub.OffsetVmcoreinfo, k.sub.SizeVmcoreinfo = 0, 0
		}
		if h.HeaderVersion < 4 {
			k.sub.OffsetNote, k.sub.SizeNote = 0, 0
		}
		if h.HeaderVersion >= 6 && k.sub.MaxMapnr64 != 0 {
			k.maxMapnr = k.sub.MaxMapnr64
		}
	}

	k.bitmapOff = (1 + int64(h.SubHdrSize)) * bs
	k.bitmapLen = int64(h.BitmapBlocks) * bs
	if k.bitmapLen > maxBitmapBytes || k.bitmapLen > size-k.bitmapOff || k.bitmapLen > budget {
		return nil, formatErr("kdump header", 436, "bitmaps of %d blocks at %#x do not fit the %d-byte file", h.BitmapBlocks, k.bitmapOff, size)
	}
	if need := 2 * ((k.maxMapnr + 7) / 8); need > uint64(k.bitmapLen) {
		return nil, formatErr("kdump header", 440, "max_mapnr %d needs %d bytes of bitmap, have %d", k.maxMapnr, need, k.bitmapLen)
	}
	k.descOff = k.bitmapOff + k.bitmapLen

	if k.hasSub {
		if o, n := k.sub.OffsetNote, k.sub.SizeNote; n > 0 {
			b, err := readArea(r, size, o, n, int(min(maxNotesSize, budget)), "kdump note area")
			if err != nil {
				return nil, err
			}
			k.notes, k.notesOff = b, o
		}
		if o, n := k.sub.OffsetVmcoreinfo, k.sub.SizeVmcoreinfo; n > 0 {
			b, err := readArea(r, size, o, n, int(min(maxVMCOREINFOSize, budget)), "kdump VMCOREINFO")
			if err != nil {
				return nil, err
			}
			k.vmcoreinfo = b
		}
		if o, n := k.sub.OffsetEraseinfo, k.sub.SizeEraseinfo; h.HeaderVersion >= 5 && n > 0 {
			// makedumpfile --config: what it erased (symbol and size per
			// line); an unreadable area is not the dump's end.
			if b, err := readArea(r, size, o, n, int(min(maxVMCOREINFOSize, budget)), "kdump eraseinfo"); err == nil {
				k.eraseinfo = b
			}
		}
	}
	k.cache = newPageCache(cachePages, k.pageSize)
	k.bufPool.New = func() any { b := make([]byte, k.pageSize); return &b }
	return k, nil
}

// readArea reads n bytes at off after checking them against the file
// size and limit.
func readArea(r io.ReaderAt, size, off int64, n uint64, limit int, what string) ([]byte, error) {
	if off < 0 || n > uint64(limit) || int64(n) > size || off > size-int64(n) {
		return nil, formatErr(what, off, "%d bytes at %#x do not fit the %d-byte file", n, off, size)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, formatErr(what, off, "%v", err)
	}
	return b, nil
}

// release returns the utsname release of the header (empty in QEMU's).
func (k *kdumpFile) release() string {
	return cString(k.hdr.Utsname.Release[:])
}

func (k *kdumpFile) timestamp() time.Time {
	if k.hdr.TimestampSec == 0 && k.hdr.TimestampUsec == 0 {
		return time.Time{}
	}
	return time.Unix(k.hdr.TimestampSec, k.hdr.TimestampUsec*1000).UTC()
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// The bitmaps are read in chunks of bmChunkBytes (32768 pfns: 128 MiB of
// 4 KiB pages), on demand, and at most bmCacheChunks of them are kept: a
// 2 TiB machine's bitmaps are 64 MiB each (docs/huge-dumps.md).
const (
	bmChunkBytes  = 4096
	bmChunkWords  = bmChunkBytes / 8
	bmChunkPFNs   = bmChunkBytes * 8
	bmCacheChunks = 256
	bmReadBytes   = 1 << 20 // a streaming pass reads this much at once
)

// bmChunkKey names a chunk: which bitmap (0: 1st, 1: 2nd) and its index.
type bmChunkKey struct {
	second bool
	chunk  uint64
}

// bmChunk is a chunk of a bitmap: its words, and the bits set before each
// 8 words (the rank within the chunk).
type bmChunk struct {
	w   []uint64
	sub []uint16
}

// loadBitmaps indexes the 2nd bitmap, once: one pass over it counts the
// dumped pages before each chunk (rank), the descriptor index's base.
// Nothing else of the bitmaps is kept.
func (k *kdumpFile) loadBitmaps() error {
	k.bmOnce.Do(func() {
		nchunks := (k.maxMapnr + bmChunkPFNs - 1) / bmChunkPFNs
		rank := make([]uint64, nchunks+1)
		var total uint64
		err := k.scanBitmap(true, func(word uint64, w []uint64) {
			for i, x := range w {
				if (word+uint64(i))%bmChunkWords == 0 {
					rank[(word+uint64(i))/bmChunkWords] = total
				}
				total += uint64(bits.OnesCount64(x))
			}
		})
		if err != nil {
			k.bmErr = err
			return
		}
		rank[nchunks] = total
		k.rank, k.ndumps = rank, total
		k.chunks = map[bmChunkKey]*bmChunk{}
		if total > uint64(k.size-k.descOff)/rawPageDescSize {
			k.bmErr = formatErr("kdump bitmap", k.bitmapOff+k.bitmapLen/2, "%d dumped pages need %d bytes of descriptors at %#x; the file has %d bytes", total, total*rawPageDescSize, k.descOff, k.size)
		}
	})
	return k.bmErr
}

// bitmapWords is the number of 64-bit words of one bitmap.
func (k *kdumpFile) bitmapWords() uint64 { return (k.maxMapnr + 63) / 64 }

// decodeWords turns the bitmap bytes b, from word first on, into w,
// clearing the bits past max_mapnr (they are not pages).
func (k *kdumpFile) decodeWords(w []uint64, b []byte, first uint64) {
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	last := k.bitmapWords() - 1
	if extra := (last+1)*64 - k.maxMapnr; extra > 0 && first <= last && last < first+uint64(len(w)) {
		w[last-first] &= ^uint64(0) >> extra
	}
}

// bitmapRead reads words [first, first+len(w)) of a bitmap into w (b is
// a buffer of 8*len(w) bytes).
func (k *kdumpFile) bitmapRead(second bool, first uint64, w []uint64, b []byte) error {
	off := k.bitmapOff + int64(first)*8
	if second {
		off += k.bitmapLen / 2
	}
	nbytes := int64((k.maxMapnr + 7) / 8)
	n := min(int64(len(b)), nbytes-int64(first)*8)
	clear(b[n:])
	if _, err := k.r.ReadAt(b[:n], off); err != nil {
		return formatErr("kdump bitmap", off, "%v", err)
	}
	k.decodeWords(w, b, first)
	return nil
}

// scanBitmap calls fn on the whole of a bitmap, bmReadBytes at a time:
// word is the index of w's first word.
func (k *kdumpFile) scanBitmap(second bool, fn func(word uint64, w []uint64)) error {
	nw := k.bitmapWords()
	w := make([]uint64, min(bmReadBytes/8, nw))
	b := make([]byte, 8*len(w))
	for first := uint64(0); first < nw; first += uint64(len(w)) {
		m := min(uint64(len(w)), nw-first)
		if err := k.bitmapRead(second, first, w[:m], b[:8*m]); err != nil {
			return err
		}
		fn(first, w[:m])
	}
	return nil
}

// chunk returns chunk c of a bitmap (bmChunkWords words, the last one
// fewer), read on demand and kept in a small cache.
func (k *kdumpFile) chunk(second bool, c uint64) (*bmChunk, error) {
	key := bmChunkKey{second, c}
	k.bmMu.Lock()
	ch, ok := k.chunks[key]
	k.bmMu.Unlock()
	if ok {
		return ch, nil
	}
	first := c * bmChunkWords
	w := make([]uint64, min(bmChunkWords, k.bitmapWords()-first))
	if err := k.bitmapRead(second, first, w, make([]byte, 8*len(w))); err != nil {
		return nil, err
	}
	ch = &bmChunk{w: w, sub: make([]uint16, (len(w)+7)/8)}
	var n int
	for i, x := range w {
		if i%8 == 0 {
			ch.sub[i/8] = uint16(n)
		}
		n += bits.OnesCount64(x)
	}
	k.bmMu.Lock()
	if len(k.chunks) >= bmCacheChunks {
		clear(k.chunks)
	}
	k.chunks[key] = ch
	k.bmMu.Unlock()
	return ch, nil
}

// bit reads pfn's bit of a bitmap (pfn < max_mapnr).
func (k *kdumpFile) bit(second bool, pfn uint64) (bool, error) {
	ch, err := k.chunk(second, pfn/bmChunkPFNs)
	if err != nil {
		return false, err
	}
	i := pfn % bmChunkPFNs
	return ch.w[i/64]&(1<<(i%64)) != 0, nil
}

// anyDumped says whether a page of pfns [lo, hi) is in the file (2nd
// bitmap); ok is false when the bitmaps cannot be read. Chunks with no
// dumped page (the rank says so) are not read.
func (k *kdumpFile) anyDumped(lo, hi uint64) (any, ok bool) {
	if k.loadBitmaps() != nil {
		return false, false
	}
	hi = min(hi, k.maxMapnr)
	for lo < hi {
		c := lo / bmChunkPFNs
		end := min(hi, (c+1)*bmChunkPFNs)
		if k.rank[c+1] == k.rank[c] {
			lo = end
			continue
		}
		ch, err := k.chunk(true, c)
		if err != nil {
			return false, false
		}
		w := ch.w
		for pfn := lo; pfn < end; {
			i := pfn % bmChunkPFNs
			x := w[i/64] >> (i % 64)
			if n := 64 - i%64; end-pfn < n {
				x &= 1<<(end-pfn) - 1
			}
			if x != 0 {
				return true, true
			}
			pfn += 64 - i%64
		}
		lo = end
	}
	return false, true
}

// descIndex is the number of dumped pages before pfn: the rank of its
// chunk, the rank within the chunk of its group of 8 words, and a count
// within the group. The 2nd bitmap says whether pfn is dumped.
func (k *kdumpFile) descIndex(pfn uint64) (idx uint64, dumped bool, err error) {
	c := pfn / bmChunkPFNs
	ch, err := k.chunk(true, c)
	if err != nil {
		return 0, false, err
	}
	i := pfn % bmChunkPFNs
	wi := i / 64
	n := k.rank[c] + uint64(ch.sub[wi/8])
	for _, x := range ch.w[wi&^7 : wi] {
		n += uint64(bits.OnesCount64(x))
	}
	bit := uint64(1) << (i % 64)
	return n + uint64(bits.OnesCount64(ch.w[wi]&(bit-1))), ch.w[wi]&bit != 0, nil
}

// memorySize is the number of bytes of memory the 1st bitmap says exist:
// one pass over it, nothing kept.
func (k *kdumpFile) memorySize() (uint64, error) {
	if err := k.loadBitmaps(); err != nil {
		return 0, err
	}
	var n uint64
	err := k.scanBitmap(false, func(_ uint64, w []uint64) {
		for _, x := range w {
			n += uint64(bits.OnesCount64(x))
		}
	})
	return n * uint64(k.pageSize), err
}

// ranges lists the runs of existing pages (1st bitmap): one pass over it,
// the runs kept.
func (k *kdumpFile) ranges() ([]Range, error) {
	if err := k.loadBitmaps(); err != nil {
		return nil, err
	}
	k.rangesOnce.Do(func() {
		ps := uint64(k.pageSize)
		var out []Range
		add := func(start, end uint64) { // pfns
			if n := len(out); n > 0 && out[n-1].End() == start*ps {
				out[n-1].Size += (end - start) * ps
			} else {
				out = append(out, Range{Start: start * ps, Size: (end - start) * ps})
			}
		}
		k.rangesErr = k.scanBitmap(false, func(word uint64, w []uint64) {
			for i, x := range w {
				base := (word + uint64(i)) * 64
				for x != 0 {
					lo := uint64(bits.TrailingZeros64(x))
					ones := uint64(bits.TrailingZeros64(^(x >> lo)))
					add(base+lo, base+lo+ones)
					if lo+ones >= 64 {
						break
					}
					x &^= (1<<ones - 1) << lo
				}
			}
		})
		k.rangeList = out
	})
	return k.rangeList, k.rangesErr
}

// readPage fills dst (one page) with page pfn. Errors: ErrNotInDump,
// ErrPageExcluded, or a *FormatError for a bad descriptor or page; the
// caller wraps them with the address.
func (k *kdumpFile) readPage(pfn uint64, dst []byte) error {
	if err := k.loadBitmaps(); err != nil {
		return err
	}
	if pfn >= k.maxMapnr {
		return ErrNotInDump
	}
	idx, dumped, err := k.descIndex(pfn)
	if err != nil {
		return err
	}
	if !dumped {
		if valid, err := k.bit(false, pfn); err != nil {
			return err
		} else if valid {
			return ErrPageExcluded
		}
		return ErrNotInDump
	}
	doff := k.descOff + int64(idx)*rawPageDescSize
	var db [rawPageDescSize]byte
	if _, err := k.r.ReadAt(db[:], doff); err != nil {
		return formatErr("kdump page descriptor", doff, "pfn %#x: %v", pfn, err)
	}
	off := int64(binary.LittleEndian.Uint64(db[0:]))
	size := binary.LittleEndian.Uint32(db[8:])
	flags := binary.LittleEndian.Uint32(db[12:])
	c, ok := compressionOfFlags(flags)
	switch {
	case !ok:
		return formatErr("kdump page descriptor", doff, "pfn %#x: flags %#x name more than one compression", pfn, flags)
	case size == 0 || int(size) > k.pageSize:
		return formatErr("kdump page descriptor", doff, "pfn %#x: size %d, want 1..%d", pfn, size, k.pageSize)
	case c == CompressNone && int(size) != k.pageSize:
		return formatErr("kdump page descriptor", doff, "pfn %#x: uncompressed page of %d bytes, want %d", pfn, size, k.pageSize)
	case off < k.descOff || off > k.size-int64(size):
		return formatErr("kdump page descriptor", doff, "pfn %#x: data at %#x+%d outside [%#x, %#x)", pfn, off, size, k.descOff, k.size)
	}
	if c == CompressNone {
		if _, err := k.r.ReadAt(dst, off); err != nil {
			return formatErr("kdump page", off, "pfn %#x: %v", pfn, err)
		}
		return nil
	}
	bp := k.bufPool.Get().(*[]byte)
	defer k.bufPool.Put(bp)
	src := (*bp)[:size]
	if _, err := k.r.ReadAt(src, off); err != nil {
		return formatErr("kdump page", off, "pfn %#x: %v", pfn, err)
	}
	if err := decompressPage(c, dst, src); err != nil {
		return formatErr("kdump page", off, "pfn %#x (descriptor at %#x): %v", pfn, doff, err)
	}
	return nil
}

// readPhys reads physical memory through the page cache.
func (k *kdumpFile) readPhys(p []byte, paddr uint64) (int, error) {
	ps := uint64(k.pageSize)
	n := 0
	for n < len(p) {
		a := paddr + uint64(n)
		pfn, off := a/ps, int(a%ps)
		if m, ok := k.cache.read(pfn, off, p[n:]); ok {
			n += m
			continue
		}
		var page []byte
		var bp *[]byte
		whole := off == 0 && len(p)-n >= k.pageSize
		if whole {
			page = p[n : n+k.pageSize]
		} else {
			bp = k.bufPool.Get().(*[]byte)
			page = *bp
		}
		if err := k.readPage(pfn, page); err != nil {
			if bp != nil {
				k.bufPool.Put(bp)
			}
			return n, physErr(a, ps, err)
		}
		k.cache.put(pfn, page)
		if whole {
			n += k.pageSize
		} else {
			n += copy(p[n:], page[off:])
			k.bufPool.Put(bp)
		}
	}
	return n, nil
}

func (k *kdumpFile) String() string {
	return fmt.Sprintf("kdump v%d, %d-byte pages, max_mapnr %d", k.hdr.HeaderVersion, k.pageSize, k.maxMapnr)
}
