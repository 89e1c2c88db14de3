// Package dumpedit makes the dumps kinspect must survive out of good ones,
// for tests: copies of a lab dump without its VMCOREINFO note or with the
// kallsyms lines of its VMCOREINFO removed, and conversions of an ELF
// dump's physical memory to the forensic formats (LiME, AVML). Each is
// written from the format's published layout, independently of the
// readers under test (package vmcore): LiME's src/lime.h, AVML's
// src/image.rs, snappy's framing_format.txt, the ELF gABI and
// makedumpfile's diskdump_mod.h.
package dumpedit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/snappy"
)

var le = binary.LittleEndian

// Segment is a piece of physical memory stored in a file: the bytes of
// [Phys, Phys+Size) are at Off.
type Segment struct {
	Phys uint64
	Off  int64
	Size uint64
}

// elfNote is a note of an ELF core: where its name and descriptor are.
type elfNote struct {
	name     string
	nameOff  int64
	descOff  int64
	descSize int64
}

// ELF64 header fields and program-header layout (the gABI).
const (
	ehSize    = 64
	phSize    = 56
	ptLoad    = 1
	ptNote    = 4
	noPhysAdr = ^uint64(0)
)

// readELF returns an ELF core's PT_LOAD segments (those with a physical
// address; the file-backed part only) and its notes.
func readELF(f io.ReaderAt) ([]Segment, []elfNote, error) {
	var eh [ehSize]byte
	if _, err := f.ReadAt(eh[:], 0); err != nil {
		return nil, nil, fmt.Errorf("ELF header: %w", err)
	}
	if string(eh[:4]) != "\x7fELF" || eh[4] != 2 || eh[5] != 1 {
		return nil, nil, errors.New("not a little-endian ELF64 file")
	}
	phoff := int64(le.Uint64(eh[32:]))
	phnum := int(le.Uint16(eh[56:]))
	if phnum == 0xffff {
		var sh [64]byte
		if _, err := f.ReadAt(sh[:], int64(le.Uint64(eh[40:]))); err != nil {
			return nil, nil, fmt.Errorf("section header 0: %w", err)
		}
		phnum = int(le.Uint32(sh[44:]))
	}
	ph := make([]byte, phnum*phSize)
	if _, err := f.ReadAt(ph, phoff); err != nil {
		return nil, nil, fmt.Errorf("program headers: %w", err)
	}
	var segs []Segment
	var notes []elfNote
	for i := range phnum {
		p := ph[i*phSize:]
		off, paddr, filesz := int64(le.Uint64(p[8:])), le.Uint64(p[24:]), le.Uint64(p[32:])
		switch le.Uint32(p) {
		case ptLoad:
			if paddr != noPhysAdr && filesz > 0 {
				segs = append(segs, Segment{Phys: paddr, Off: off, Size: filesz})
			}
		case ptNote:
			b := make([]byte, filesz)
			if _, err := f.ReadAt(b, off); err != nil {
				return nil, nil, fmt.Errorf("PT_NOTE at %#x: %w", off, err)
			}
			notes = append(notes, parseNotes(b, off)...)
		}
	}
	return segs, notes, nil
}

// parseNotes lists the notes of a note area read from file offset base.
func parseNotes(b []byte, base int64) []elfNote {
	var out []elfNote
	for o := 0; o+12 <= len(b); {
		namesz, descsz := int(le.Uint32(b[o:])), int(le.Uint32(b[o+4:]))
		name := o + 12
		desc := name + (namesz+3)&^3
		next := desc + (descsz+3)&^3
		if namesz == 0 && descsz == 0 || next > len(b) {
			break
		}
		out = append(out, elfNote{
			name:    strings.TrimRight(string(b[name:name+namesz]), "\x00"),
			nameOff: base + int64(name), descOff: base + int64(desc), descSize: int64(descsz),
		})
		o = next
	}
	return out
}

// ELFSegments returns the physical memory an ELF core holds.
func ELFSegments(path string) ([]Segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	segs, _, err := readELF(f)
	return segs, err
}

// copyFile copies src to dst (the kernel copies: copy_file_range).
func copyFile(src, dst string) (*os.File, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// ELFWithoutVMCOREINFO copies the ELF core src to dst with its VMCOREINFO
// note renamed "VMCOREINFX", so that no reader recognizes it: what QEMU
// writes without -device vmcoreinfo, as far as a reader can tell.
func ELFWithoutVMCOREINFO(src, dst string) error {
	out, err := copyFile(src, dst)
	if err != nil {
		return err
	}
	defer out.Close()
	_, notes, err := readELF(out)
	if err != nil {
		return err
	}
	n := 0
	for _, nt := range notes {
		if nt.name == "VMCOREINFO" {
			if _, err := out.WriteAt([]byte("VMCOREINFX"), nt.nameOff); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s has no VMCOREINFO note", src)
	}
	return out.Close()
}

// ELFWithoutAnyVMCOREINFO copies the ELF core src to dst as
// ELFWithoutVMCOREINFO does, and also spoils every page of its memory
// that begins with "OSRELEASE=" (the kernel's vmcoreinfo_data, the copy a
// reader looks for when the note is missing), as if the kernel kept none
// where it can be found (before 4.15 it was not page-aligned). It returns
// how many pages it spoiled.
func ELFWithoutAnyVMCOREINFO(src, dst string) (int, error) {
	if err := ELFWithoutVMCOREINFO(src, dst); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	segs, _, err := readELF(f)
	if err != nil {
		return 0, err
	}
	const page = 4096
	buf := make([]byte, 1<<20)
	n := 0
	for _, s := range segs {
		first := (s.Phys+page-1)&^(page-1) - s.Phys // first page-aligned byte
		for done := first; done+page <= s.Size; {
			k := min(uint64(len(buf)), (s.Size-done)&^(page-1))
			b := buf[:k]
			if _, err := f.ReadAt(b, s.Off+int64(done)); err != nil {
				return 0, err
			}
			for i := uint64(0); i < k; i += page {
				if bytes.HasPrefix(b[i:], []byte("OSRELEASE=")) {
					if _, err := f.WriteAt([]byte("X"), s.Off+int64(done+i)); err != nil {
						return 0, err
					}
					n++
				}
			}
			done += k
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no page begins with OSRELEASE=", src)
	}
	return n, f.Close()
}

// WithoutKallsymsLines copies the dump src (an ELF core, or a
// kdump-compressed file in the normal layout) to dst with the
// SYMBOL(kallsyms_*) lines removed from its VMCOREINFO, as a kernel before
// 6.0 writes it: the text is rewritten in place, shorter, NUL-padded to
// its old size. In a kdump file, the sub-header's VMCOREINFO and the
// VMCOREINFO note of its note area are both rewritten. It returns how
// many lines were removed.
func WithoutKallsymsLines(src, dst string) (int, error) {
	out, err := copyFile(src, dst)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	var areas [][2]int64 // offset, size of each VMCOREINFO text
	var magic [8]byte
	if _, err := out.ReadAt(magic[:], 0); err != nil {
		return 0, err
	}
	switch {
	case string(magic[:4]) == "\x7fELF":
		_, notes, err := readELF(out)
		if err != nil {
			return 0, err
		}
		for _, nt := range notes {
			if nt.name == "VMCOREINFO" {
				areas = append(areas, [2]int64{nt.descOff, nt.descSize})
			}
		}
	case string(magic[:]) == "KDUMP   ":
		// struct disk_dump_header: block_size at 428, header_version at
		// 8; struct kdump_sub_header in block 1: offset_vmcoreinfo at
		// 32, size_vmcoreinfo at 40, offset_note at 48, size_note at 56.
		var h [464]byte
		if _, err := out.ReadAt(h[:], 0); err != nil {
			return 0, err
		}
		bs := int64(le.Uint32(h[428:]))
		var sub [64]byte
		if _, err := out.ReadAt(sub[:], bs); err != nil {
			return 0, err
		}
		if o, n := int64(le.Uint64(sub[32:])), int64(le.Uint64(sub[40:])); n > 0 {
			areas = append(areas, [2]int64{o, n})
		}
		if o, n := int64(le.Uint64(sub[48:])), int64(le.Uint64(sub[56:])); n > 0 {
			b := make([]byte, n)
			if _, err := out.ReadAt(b, o); err != nil {
				return 0, err
			}
			for _, nt := range parseNotes(b, o) {
				if nt.name == "VMCOREINFO" {
					areas = append(areas, [2]int64{nt.descOff, nt.descSize})
				}
			}
		}
	default:
		return 0, fmt.Errorf("%s: neither an ELF core nor a kdump file in the normal layout", src)
	}
	if len(areas) == 0 {
		return 0, fmt.Errorf("%s has no VMCOREINFO", src)
	}
	removed := 0
	for _, a := range areas {
		b := make([]byte, a[1])
		if _, err := out.ReadAt(b, a[0]); err != nil {
			return 0, err
		}
		text := b
		if i := bytes.IndexByte(text, 0); i >= 0 {
			text = text[:i]
		}
		var kept []byte
		for _, line := range bytes.SplitAfter(text, []byte("\n")) {
			if bytes.HasPrefix(line, []byte("SYMBOL(kallsyms_")) {
				removed++
				continue
			}
			kept = append(kept, line...)
		}
		nb := make([]byte, len(b))
		copy(nb, kept)
		if _, err := out.WriteAt(nb, a[0]); err != nil {
			return 0, err
		}
	}
	if removed == 0 {
		return 0, fmt.Errorf("%s: no SYMBOL(kallsyms_*) line in its VMCOREINFO", src)
	}
	return removed, out.Close()
}

// LiME layout (LiME's src/lime.h, lime_mem_range_header, packed): magic
// 0x4C694D45, version 1, first and last (inclusive) physical address, 8
// reserved bytes; then the range's bytes. AVML (src/image.rs) writes
// magic 0x4C4D5641 ("AVML") and version 2 for snappy-compressed ranges.
const (
	limeMagic    = 0x4C694D45
	avmlMagic    = 0x4C4D5641
	avmlMaxBlock = 0x1000 * 0x1000 // AVML's MAX_BLOCK_SIZE: version-2 ranges are split at 16 MiB
)

func rangeHeader(magic, version uint32, start, size uint64) []byte {
	h := make([]byte, 32)
	le.PutUint32(h, magic)
	le.PutUint32(h[4:], version)
	le.PutUint64(h[8:], start)
	le.PutUint64(h[16:], start+size-1)
	return h
}

// WriteLiME writes the memory of segs, read from src, as a LiME capture
// ("lime" format): one range per segment.
func WriteLiME(w io.Writer, src io.ReaderAt, segs []Segment) error {
	buf := make([]byte, 1<<20)
	for _, s := range segs {
		if _, err := w.Write(rangeHeader(limeMagic, 1, s.Phys, s.Size)); err != nil {
			return err
		}
		for done := uint64(0); done < s.Size; {
			n := min(uint64(len(buf)), s.Size-done)
			if _, err := src.ReadAt(buf[:n], s.Off+int64(done)); err != nil {
				return fmt.Errorf("reading %#x: %w", s.Off+int64(done), err)
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			done += n
		}
	}
	return nil
}

// WriteAVML writes the memory of segs, read from src, as AVML does with
// compression (version 2, src/image.rs): each segment in blocks of at
// most 16 MiB, a block that is all zeros left out, each block a header,
// its bytes as a snappy framed stream, and the stream's length as a
// little-endian u64.
func WriteAVML(w io.Writer, src io.ReaderAt, segs []Segment) error {
	buf := make([]byte, avmlMaxBlock)
	for _, s := range segs {
		for done := uint64(0); done < s.Size; {
			n := min(uint64(avmlMaxBlock), s.Size-done)
			b := buf[:n]
			if _, err := src.ReadAt(b, s.Off+int64(done)); err != nil {
				return fmt.Errorf("reading %#x: %w", s.Off+int64(done), err)
			}
			start := s.Phys + done
			done += n
			if allZero(b) {
				continue
			}
			if _, err := w.Write(rangeHeader(avmlMagic, 2, start, n)); err != nil {
				return err
			}
			stream := FrameSnappy(b)
			if _, err := w.Write(stream); err != nil {
				return err
			}
			var tr [8]byte
			le.PutUint64(tr[:], uint64(len(stream)))
			if _, err := w.Write(tr[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Snappy framing (google/snappy framing_format.txt): a stream identifier
// chunk, then chunks of at most 64 KiB of data: type 0x00 (compressed) or
// 0x01 (uncompressed), a 3-byte length, the masked CRC-32C of the data and
// the data. Like Rust's snap::write::FrameEncoder (AVML's), a chunk is
// stored uncompressed when compression saves less than an eighth.
const frameChunk = 65536

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FrameSnappy returns data as a snappy framed stream.
func FrameSnappy(data []byte) []byte {
	out := []byte("\xff\x06\x00\x00sNaPpY")
	for len(data) > 0 {
		n := min(len(data), frameChunk)
		chunk := data[:n]
		data = data[n:]
		c := crc32.Checksum(chunk, castagnoli)
		masked := (c>>15 | c<<17) + 0xa282ead8
		typ, body := byte(0x00), snappy.Encode(nil, chunk)
		if len(body) >= n-n/8 {
			typ, body = 0x01, chunk
		}
		l := len(body) + 4
		out = append(out, typ, byte(l), byte(l>>8), byte(l>>16))
		out = le.AppendUint32(out, masked)
		out = append(out, body...)
	}
	return out
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if le.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ELFToLiME converts the ELF core src to a LiME capture dst.
func ELFToLiME(src, dst string) error { return convert(src, dst, WriteLiME) }

// ELFToAVML converts the ELF core src to a compressed AVML capture dst.
func ELFToAVML(src, dst string) error { return convert(src, dst, WriteAVML) }

func convert(src, dst string, write func(io.Writer, io.ReaderAt, []Segment) error) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	segs, _, err := readELF(in)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	bw := newBufWriter(out)
	if err := write(bw, in, segs); err != nil {
		out.Close()
		return err
	}
	if err := bw.flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// bufWriter buffers writes of small headers between large payloads.
type bufWriter struct {
	w   io.Writer
	buf []byte
}

func newBufWriter(w io.Writer) *bufWriter { return &bufWriter{w: w, buf: make([]byte, 0, 4<<20)} }

func (b *bufWriter) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flush(); err != nil {
			return 0, err
		}
		if len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *bufWriter) flush() error {
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}
