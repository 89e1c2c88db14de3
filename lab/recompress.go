package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"os"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// Layout of makedumpfile's kdump-compressed file on x86-64 (diskdump_mod.h):
// block 0 the disk_dump_header, then sub_hdr_size blocks of
// kdump_sub_header, bitmap_blocks blocks of two bitmaps, one 24-byte
// page_desc per dumped page, then the pages.
const (
	kdhStatus       = 424 // disk_dump_header.status
	kdhBlockSize    = 428
	kdhSubHdrSize   = 432
	kdhBitmapBlocks = 436
	kdhVersion      = 8
	kdhMaxMapnr     = 440
	kshSizeErase    = 72 // kdump_sub_header.size_eraseinfo
	kshMaxMapnr64   = 96

	dumpCompressedSnappy = 0x4
	dumpCompressedZstd   = 0x20
)

// recompressKdump rewrites an uncompressed kdump file with every page
// compressed by comp ("zstd" or "snappy"), as makedumpfile -z/-p would: a
// page that does not shrink stays raw, and pages sharing data (the zero
// page) still share it.
func recompressKdump(src, dst, comp string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	hdr := make([]byte, 4096)
	if _, err := in.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("%s: header: %w", src, err)
	}
	if string(hdr[:8]) != "KDUMP   " {
		return fmt.Errorf("%s: not a kdump file", src)
	}
	le := binary.LittleEndian
	if st := le.Uint32(hdr[kdhStatus:]); st&0x27 != 0 {
		return fmt.Errorf("%s: pages already compressed (status %#x)", src, st)
	}
	bs := int64(le.Uint32(hdr[kdhBlockSize:]))
	sub := int64(le.Uint32(hdr[kdhSubHdrSize:]))
	bmBlocks := int64(le.Uint32(hdr[kdhBitmapBlocks:]))
	subHdr := make([]byte, 128)
	if _, err := in.ReadAt(subHdr, bs); err != nil {
		return fmt.Errorf("%s: sub-header: %w", src, err)
	}
	if le.Uint64(subHdr[kshSizeErase:]) != 0 {
		return fmt.Errorf("%s: erase info is not supported", src)
	}
	maxMapnr := uint64(le.Uint32(hdr[kdhMaxMapnr:]))
	if le.Uint32(hdr[kdhVersion:]) >= 6 { // max_mapnr_64 since header version 6
		maxMapnr = le.Uint64(subHdr[kshMaxMapnr64:])
	}
	// The second half of the bitmap area marks the pages that are dumped.
	bmLen := bmBlocks * bs / 2
	bm2 := make([]byte, bmLen)
	if _, err := in.ReadAt(bm2, bs*(1+sub)+bmLen); err != nil {
		return fmt.Errorf("%s: bitmap: %w", src, err)
	}
	var n int64
	for pfn := uint64(0); pfn < maxMapnr && pfn/8 < uint64(bmLen); pfn += 8 {
		b := bm2[pfn/8]
		if rest := maxMapnr - pfn; rest < 8 {
			b &= byte(1<<rest - 1)
		}
		n += int64(bits.OnesCount8(b))
	}
	descOff := bs * (1 + sub + bmBlocks)
	if fi, err := in.Stat(); err != nil || n == 0 || descOff+n*24 > fi.Size() {
		return fmt.Errorf("%s: %d dumped pages: descriptors do not fit the file", src, n)
	}
	descs := make([]byte, n*24)
	if _, err := in.ReadAt(descs, descOff); err != nil {
		return fmt.Errorf("%s: page descriptors: %w", src, err)
	}

	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	// Everything before the descriptors is unchanged but the status.
	if _, err := io.Copy(out, io.NewSectionReader(in, 0, descOff)); err != nil {
		return err
	}
	flag := uint32(dumpCompressedZstd)
	var enc *zstd.Encoder
	if comp == "snappy" {
		flag = dumpCompressedSnappy
	} else if enc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1)); err != nil {
		return err
	}
	st := make([]byte, 4)
	le.PutUint32(st, le.Uint32(hdr[kdhStatus:])|flag)
	if _, err := out.WriteAt(st, kdhStatus); err != nil {
		return err
	}

	dataOff := descOff + int64(len(descs))
	w := bufio.NewWriterSize(io.NewOffsetWriter(out, dataOff), 1<<20)
	pos := dataOff
	moved := map[int64][]byte{} // old data offset -> new descriptor head
	page := make([]byte, bs)
	var buf []byte
	for i := int64(0); i < n; i++ {
		d := descs[i*24 : i*24+24]
		off, size, flags := int64(le.Uint64(d)), int64(le.Uint32(d[8:])), le.Uint32(d[12:])
		if flags != 0 || size != bs {
			return fmt.Errorf("%s: page descriptor %d: flags %#x size %d, want a raw page", src, i, flags, size)
		}
		if head, ok := moved[off]; ok {
			copy(d, head)
			continue
		}
		if _, err := in.ReadAt(page, off); err != nil {
			return fmt.Errorf("%s: page at %#x: %w", src, off, err)
		}
		if comp == "snappy" {
			buf = snappy.Encode(buf[:cap(buf)], page)
		} else {
			buf = enc.EncodeAll(page, buf[:0])
		}
		data, f := buf, flag
		if int64(len(buf)) >= bs {
			data, f = page, 0
		}
		le.PutUint64(d, uint64(pos))
		le.PutUint32(d[8:], uint32(len(data)))
		le.PutUint32(d[12:], f)
		moved[off] = append([]byte(nil), d[:16]...)
		if _, err := w.Write(data); err != nil {
			return err
		}
		pos += int64(len(data))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if _, err := out.WriteAt(descs, descOff); err != nil {
		return err
	}
	return out.Close()
}
