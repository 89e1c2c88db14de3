package vmcore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
)

// AVML's compressed ranges. AVML (microsoft/avml, src/image.rs) writes a
// LiME header with magic "AVML" and version 2, then the range's bytes as a
// snappy *framed* stream (snap::write::FrameEncoder: a stream-identifier
// chunk, then chunks of at most 64 KiB of data each), then a
// little-endian u64 holding the byte length of that stream. It splits
// ranges into blocks of at most 16 MiB (MAX_BLOCK_SIZE) and leaves out
// blocks that are all zeros. Blocks of one range start every 16 MiB from
// the range's start, so a hole between a whole 16 MiB block and a later
// block, a multiple of 16 MiB long, can only be blocks left out as zeros:
// those read as zeros (zeroHoles). Any other hole (between System RAM
// ranges, or a zero block at a range's edge, which the capture cannot
// tell apart) reads as ErrNotInDump. Since the length follows the stream, opening walks the
// chunk headers of every range (a small read per chunk) to find the next
// header; the chunks are indexed so that a page is read by decoding one
// chunk.

// avmlMaxBlock is AVML's MAX_BLOCK_SIZE: it splits ranges into blocks of
// at most 16 MiB.
const avmlMaxBlock = 16 << 20

// zeroHoles finds the holes between sorted ranges that AVML's block
// splitting proves were all-zero blocks it left out (see above).
func zeroHoles(rs []limeRange) []Range {
	var out []Range
	for i := 1; i < len(rs); i++ {
		p, c := rs[i-1], rs[i]
		if p.Compressed && c.Compressed && p.End-p.Start == avmlMaxBlock && c.Start > p.End && (c.Start-p.End)%avmlMaxBlock == 0 {
			out = append(out, Range{Start: p.End, Size: c.Start - p.End})
		}
	}
	return out
}

// avmlChunk is one chunk of a compressed range that carries data.
type avmlChunk struct {
	At         uint64 // offset of its data in the range
	Off        int64  // file offset of the chunk body (after the type and length)
	Len        uint32 // body length: checksum and data
	Size       uint32 // uncompressed length
	Compressed bool
}

// maxAVMLChunks bounds the chunks indexed in one capture: 2^24 chunks of
// 64 KiB are 1 TiB of memory (32 bytes each).
const maxAVMLChunks = 1 << 24

// indexAVMLStream walks the snappy stream at off that must decode to
// exactly n bytes, then checks the length that follows it. It returns the
// offset past the length and the data chunks. first is the global number
// of the first chunk (for the limit).
func indexAVMLStream(r io.ReaderAt, size, off int64, n uint64, first uint64) (int64, []avmlChunk, error) {
	var out []avmlChunk
	var at uint64
	fail := func(src string, off int64, format string, args ...any) (int64, []avmlChunk, error) {
		return 0, nil, fmt.Errorf("stream decoded to %d of the range's %d bytes: %w", at, n, formatErr(src, off, format, args...))
	}
	w := window{r: r, size: size}
	pos := off
	sawID := false
	for at < n {
		h, err := w.bytes(pos, snappyChunkHeader+snappyChecksumSize+binary.MaxVarintLen32)
		if len(h) < snappyChunkHeader {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fail("AVML chunk", pos, "chunk header: %v", err)
		}
		typ := h[0]
		blen := int64(h[1]) | int64(h[2])<<8 | int64(h[3])<<16
		body := pos + snappyChunkHeader
		if blen > size-body {
			return fail("AVML chunk", pos, "chunk of type %#x and %d bytes runs past the end of the %d-byte file", typ, blen, size)
		}
		if !sawID && typ != snappyStreamID {
			return fail("AVML chunk", pos, "type %#x: a snappy stream starts with its identifier chunk (%#x)", typ, snappyStreamID)
		}
		switch {
		case typ == snappyStreamID:
			if blen != int64(len(snappyStreamMagic)) || len(h) < snappyChunkHeader+len(snappyStreamMagic) || string(h[snappyChunkHeader:snappyChunkHeader+len(snappyStreamMagic)]) != snappyStreamMagic {
				return fail("AVML chunk", pos, "stream identifier chunk of %d bytes is not %q", blen, snappyStreamMagic)
			}
			sawID = true
		case typ == snappyChunkCompressed || typ == snappyChunkUncompressed:
			if blen <= snappyChecksumSize {
				return fail("AVML chunk", pos, "data chunk of %d bytes holds no data", blen)
			}
			c := avmlChunk{At: at, Off: body, Len: uint32(blen), Compressed: typ == snappyChunkCompressed}
			if c.Compressed {
				v, k := binary.Uvarint(h[snappyChunkHeader+snappyChecksumSize:])
				if k <= 0 || v > snappyMaxChunkData {
					return fail("AVML chunk", body+snappyChecksumSize, "compressed chunk's decoded length is not a varint of at most %d", snappyMaxChunkData)
				}
				c.Size = uint32(v)
				if blen > maxChunkBody {
					return fail("AVML chunk", pos, "compressed chunk of %d bytes, more than any encoding of %d bytes", blen, v)
				}
			} else {
				if blen-snappyChecksumSize > snappyMaxChunkData {
					return fail("AVML chunk", pos, "uncompressed chunk of %d bytes, more than %d", blen-snappyChecksumSize, snappyMaxChunkData)
				}
				c.Size = uint32(blen - snappyChecksumSize)
			}
			if uint64(c.Size) > n-at {
				return fail("AVML chunk", pos, "chunk of %d bytes at range offset %#x overruns the range's %d bytes", c.Size, at, n)
			}
			if c.Size > 0 {
				if first+uint64(len(out)) >= maxAVMLChunks {
					return fail("AVML chunk", pos, "more than %d chunks in the capture", maxAVMLChunks)
				}
				out = append(out, c)
				at += uint64(c.Size)
			}
		case typ <= snappyUnskippableMax:
			return fail("AVML chunk", pos, "reserved unskippable chunk type %#x", typ)
		default:
			// Padding and reserved skippable chunks.
		}
		pos = body + blen
	}
	var tb [avmlTrailerSize]byte
	if k, _ := r.ReadAt(tb[:], pos); k < avmlTrailerSize {
		return fail("AVML range trailer", pos, "truncated: %d of %d bytes", k, avmlTrailerSize)
	}
	if got, want := binary.LittleEndian.Uint64(tb[:]), uint64(pos-off); got != want {
		return fail("AVML range trailer", pos, "stream length %d, but the stream that decodes to the range's %d bytes is %d bytes", got, n, want)
	}
	return pos + avmlTrailerSize, out, nil
}

// window serves small reads of a file through a 64 KiB buffer, for
// walking chunk headers that are often close together.
type window struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	at   int64
}

// bytes returns up to n bytes at off (fewer at the end of the file),
// valid until the next call.
func (w *window) bytes(off int64, n int) ([]byte, error) {
	if off >= w.at && off+int64(n) <= w.at+int64(len(w.buf)) {
		return w.buf[off-w.at : off-w.at+int64(n)], nil
	}
	if w.buf == nil {
		w.buf = make([]byte, 64<<10)
	}
	w.buf = w.buf[:cap(w.buf)]
	k, err := w.r.ReadAt(w.buf, off)
	w.buf, w.at = w.buf[:max(k, 0)], off
	if k < n {
		return w.buf, err
	}
	return w.buf[:n], nil
}

// crcTable is CRC-32C, the framing format's checksum.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is the framing format's masked checksum of data.
func maskedCRC(data []byte) uint32 {
	c := crc32.Checksum(data, crcTable)
	return (c>>15 | c<<17) + 0xa282ead8
}

// readCompressed reads p at offset off of the compressed range rg.
func (lf *limeFile) readCompressed(rg *limeRange, p []byte, off uint64) (int, error) {
	n := 0
	for n < len(p) {
		o := off + uint64(n)
		i := sort.Search(len(rg.chunks), func(i int) bool { return rg.chunks[i].At+uint64(rg.chunks[i].Size) > o })
		if i == len(rg.chunks) {
			return n, formatErr("AVML range", rg.Header, "offset %#x past the range's chunks", o)
		}
		c := &rg.chunks[i]
		key := rg.firstChunk + uint64(i)
		within := int(o - c.At)
		if k, ok := lf.cache.read(key, within, p[n:min(len(p), n+int(c.Size)-within)]); ok {
			n += k
			continue
		}
		cb := lf.chunkBuf.Get().(*chunkBufs)
		data, err := lf.decodeChunk(c, cb)
		if err != nil {
			lf.chunkBuf.Put(cb)
			return n, err
		}
		lf.cache.put(key, data)
		n += copy(p[n:], data[within:])
		lf.chunkBuf.Put(cb)
	}
	return n, nil
}

// chunkBufs are the buffers of decoding one chunk.
type chunkBufs struct {
	body [maxChunkBody]byte
	data [snappyMaxChunkData]byte
}

// maxChunkBody bounds a data chunk's body: the checksum and the largest
// snappy encoding of 64 KiB (snappy.h's MaxCompressedLength: 32 + n +
// n/6).
const maxChunkBody = snappyChecksumSize + 32 + snappyMaxChunkData + snappyMaxChunkData/6

// decodeChunk reads and decodes chunk c, returning its data (c.Size bytes
// of cb) after checking the checksum.
func (lf *limeFile) decodeChunk(c *avmlChunk, cb *chunkBufs) ([]byte, error) {
	body := cb.body[:c.Len]
	if k, err := lf.r.ReadAt(body, c.Off); k < len(body) {
		return nil, formatErr("AVML chunk", c.Off, "%v", err)
	}
	want := binary.LittleEndian.Uint32(body)
	data := cb.data[:c.Size]
	if c.Compressed {
		if err := decompressPage(CompressSnappy, data, body[snappyChecksumSize:]); err != nil {
			return nil, formatErr("AVML chunk", c.Off, "%v", err)
		}
	} else {
		copy(data, body[snappyChecksumSize:])
	}
	if got := maskedCRC(data); got != want {
		return nil, formatErr("AVML chunk", c.Off, "checksum %#08x, the data's is %#08x", want, got)
	}
	return data, nil
}

// String names a chunk for messages.
func (c avmlChunk) String() string {
	return fmt.Sprintf("chunk at %#x (%d bytes, %d decoded)", c.Off, c.Len, c.Size)
}
