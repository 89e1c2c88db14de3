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
// bitmaps are read on the first page access and indexed with a rank table
// (one uint32 per 512 pfns); descriptors and pages are read on demand.
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
	valid  []uint64 // 1st bitmap
	dumped []uint64 // 2nd bitmap
	rank   []uint32 // set bits of dumped before word 8*i
	ndumps uint64   // bits set in dumped

	cache   *pageCache
	bufPool sync.Pool // *[]byte of a page, for compressed data and pages
}

// maxPageSize bounds the block (page) size: 64 KiB is the largest page
// size of any architecture makedumpfile supports.
const maxPageSize = 64 << 10

// maxBitmapBytes bounds the bitmaps we load: 2 x 256 MiB covers 8 TiB of
// 4 KiB pages.
const maxBitmapBytes = 512 << 20

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

// loadBitmaps reads both bitmaps and builds the rank table, once.
func (k *kdumpFile) loadBitmaps() error {
	k.bmOnce.Do(func() {
		nbytes := int64((k.maxMapnr + 7) / 8)
		words := (nbytes + 7) / 8
		read := func(off int64) ([]uint64, error) {
			b := make([]byte, words*8)
			if _, err := k.r.ReadAt(b[:nbytes], off); err != nil {
				return nil, formatErr("kdump bitmap", off, "%v", err)
			}
			w := make([]uint64, words)
			for i := range w {
				w[i] = binary.LittleEndian.Uint64(b[8*i:])
			}
			// Bits past max_mapnr are not pages.
			if extra := uint64(words*64) - k.maxMapnr; extra > 0 && words > 0 {
				w[words-1] &= ^uint64(0) >> extra
			}
			return w, nil
		}
		var err error
		if k.valid, err = read(k.bitmapOff); err != nil {
			k.bmErr = err
			return
		}
		if k.dumped, err = read(k.bitmapOff + k.bitmapLen/2); err != nil {
			k.bmErr = err
			return
		}
		k.rank = make([]uint32, (len(k.dumped)+7)/8+1)
		var total uint64
		for i, w := range k.dumped {
			if i%8 == 0 {
				k.rank[i/8] = uint32(total)
			}
			total += uint64(bits.OnesCount64(w))
		}
		k.ndumps = total
		if total > uint64(k.size-k.descOff)/rawPageDescSize {
			k.bmErr = formatErr("kdump bitmap", k.bitmapOff+k.bitmapLen/2, "%d dumped pages need %d bytes of descriptors at %#x; the file has %d bytes", total, total*rawPageDescSize, k.descOff, k.size)
		}
	})
	return k.bmErr
}

func bitSet(w []uint64, pfn uint64) bool {
	return w[pfn/64]&(1<<(pfn%64)) != 0
}

// anyDumped says whether a page of pfns [lo, hi) is in the file (2nd
// bitmap); ok is false when the bitmaps cannot be read.
func (k *kdumpFile) anyDumped(lo, hi uint64) (any, ok bool) {
	if k.loadBitmaps() != nil {
		return false, false
	}
	hi = min(hi, k.maxMapnr)
	for pfn := lo; pfn < hi; {
		w := k.dumped[pfn/64] >> (pfn % 64)
		if n := 64 - pfn%64; hi-pfn < n {
			w &= 1<<(hi-pfn) - 1
		}
		if w != 0 {
			return true, true
		}
		pfn += 64 - pfn%64
	}
	return false, true
}

// descIndex is the number of dumped pages before pfn.
func (k *kdumpFile) descIndex(pfn uint64) uint64 {
	wi := pfn / 64
	n := uint64(k.rank[wi/8])
	for i := wi &^ 7; i < wi; i++ {
		n += uint64(bits.OnesCount64(k.dumped[i]))
	}
	return n + uint64(bits.OnesCount64(k.dumped[wi]&(1<<(pfn%64)-1)))
}

// memorySize is the number of bytes of memory the 1st bitmap says exist.
func (k *kdumpFile) memorySize() (uint64, error) {
	if err := k.loadBitmaps(); err != nil {
		return 0, err
	}
	var n uint64
	for _, w := range k.valid {
		n += uint64(bits.OnesCount64(w))
	}
	return n * uint64(k.pageSize), nil
}

// ranges lists the runs of existing pages (1st bitmap).
func (k *kdumpFile) ranges() ([]Range, error) {
	if err := k.loadBitmaps(); err != nil {
		return nil, err
	}
	var out []Range
	ps := uint64(k.pageSize)
	for pfn := uint64(0); pfn < k.maxMapnr; {
		w := k.valid[pfn/64] >> (pfn % 64)
		if w == 0 {
			pfn = (pfn/64 + 1) * 64
			continue
		}
		pfn += uint64(bits.TrailingZeros64(w))
		if pfn >= k.maxMapnr {
			break
		}
		start := pfn
		for pfn < k.maxMapnr && bitSet(k.valid, pfn) {
			pfn++
		}
		if n := len(out); n > 0 && out[n-1].End() == start*ps {
			out[n-1].Size += (pfn - start) * ps
		} else {
			out = append(out, Range{Start: start * ps, Size: (pfn - start) * ps})
		}
	}
	return out, nil
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
	if !bitSet(k.dumped, pfn) {
		if bitSet(k.valid, pfn) {
			return ErrPageExcluded
		}
		return ErrNotInDump
	}
	idx := k.descIndex(pfn)
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
