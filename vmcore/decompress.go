package vmcore

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	lzo "github.com/anchore/go-lzo"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a dump's pages are stored.
type Compression int

const (
	CompressNone Compression = iota
	CompressZlib
	CompressLZO
	CompressSnappy
	CompressZstd
)

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressZlib:
		return "zlib"
	case CompressLZO:
		return "lzo"
	case CompressSnappy:
		return "snappy"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// compressionOfFlags maps DUMP_DH_COMPRESSED_* bits to a Compression;
// ok is false for more than one bit.
func compressionOfFlags(f uint32) (Compression, bool) {
	switch f & dumpCompressionMask {
	case 0:
		return CompressNone, true
	case dumpCompressedZlib:
		return CompressZlib, true
	case dumpCompressedLZO:
		return CompressLZO, true
	case dumpCompressedSnappy:
		return CompressSnappy, true
	case dumpCompressedZstd:
		return CompressZstd, true
	}
	return CompressNone, false
}

// decoder holds reusable decompression state; one per goroutine at a
// time, from decoderPool.
type decoder struct {
	zr  io.ReadCloser // zlib, reset per page
	src bytes.Reader
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

// zstdDec is shared: DecodeAll is safe for concurrent use.
var zstdDec = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<20))
})

// decompressPage expands src, compressed with c, into dst, which must be
// exactly one page long; anything that does not decompress to exactly
// len(dst) bytes is an error (not wrapped: the caller names the page).
func decompressPage(c Compression, dst, src []byte) error {
	switch c {
	case CompressNone:
		if len(src) != len(dst) {
			return fmt.Errorf("uncompressed page of %d bytes, want %d", len(src), len(dst))
		}
		copy(dst, src)
		return nil
	case CompressZlib:
		d := decoderPool.Get().(*decoder)
		defer decoderPool.Put(d)
		d.src.Reset(src)
		var err error
		if d.zr == nil {
			d.zr, err = zlib.NewReader(&d.src)
		} else {
			err = d.zr.(zlib.Resetter).Reset(&d.src, nil)
		}
		if err != nil {
			d.zr = nil
			return fmt.Errorf("zlib: %w", err)
		}
		n, err := io.ReadFull(d.zr, dst)
		if err != nil {
			return fmt.Errorf("zlib: page decompressed to %d bytes: %w", n, err)
		}
		// The stream must end here (checksum included).
		var one [1]byte
		if m, err := d.zr.Read(one[:]); m != 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				return fmt.Errorf("zlib: page decompresses to more than %d bytes", len(dst))
			}
			return fmt.Errorf("zlib: %w", err)
		}
		return nil
	case CompressLZO:
		n, err := lzoDecompress(src, dst)
		if err != nil {
			return err
		}
		if n != len(dst) {
			return fmt.Errorf("lzo: page decompressed to %d bytes, want %d", n, len(dst))
		}
		return nil
	case CompressSnappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return fmt.Errorf("snappy: %w", err)
		}
		if n != len(dst) {
			return fmt.Errorf("snappy: page decompresses to %d bytes, want %d", n, len(dst))
		}
		out, err := snappy.Decode(dst, src)
		if err != nil {
			return fmt.Errorf("snappy: %w", err)
		}
		if &out[0] != &dst[0] {
			copy(dst, out)
		}
		return nil
	case CompressZstd:
		zd, err := zstdDec()
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		out, err := zd.DecodeAll(src, dst[:0:len(dst)])
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		if len(out) != len(dst) {
			return fmt.Errorf("zstd: page decompressed to %d bytes, want %d", len(out), len(dst))
		}
		if &out[0] != &dst[0] {
			copy(dst, out)
		}
		return nil
	}
	return fmt.Errorf("%v: %w", c, ErrNotSupported)
}

// lzoDecompress runs the LZO1X decoder, turning a panic on hostile input
// (none is known) into an error.
func lzoDecompress(src, dst []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("lzo: decoder panic: %v", r)
		}
	}()
	n, err = lzoDecompressRaw(src, dst)
	if err != nil {
		return n, fmt.Errorf("lzo: %w", err)
	}
	return n, nil
}

func lzoDecompressRaw(src, dst []byte) (int, error) { return lzo.Decompress(src, dst) }
