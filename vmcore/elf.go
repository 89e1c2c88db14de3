package vmcore

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// elfFile reads an ELF64 x86-64 core: QEMU's dump-guest-memory output,
// makedumpfile -E output, a copy of /proc/vmcore, or /proc/kcore. Open
// reads the ELF header, the program headers and the notes; memory is read
// on demand straight from the file (the OS caches it).
//
// A PT_LOAD whose p_memsz exceeds p_filesz is how makedumpfile -E marks
// excluded pages (the tail of the segment); reading there is
// ErrPageExcluded, not zeros.
type elfFile struct {
	r        io.ReaderAt
	size     int64
	phoff    int64
	loads    []segment // PT_LOADs with a physical address, by paddr
	vloads   []segment // every PT_LOAD, by vaddr (kcore reads by vaddr)
	notes    []note
	pageSize uint64
}

// segment is one PT_LOAD.
type segment struct {
	Index  int    // program header index
	PAddr  uint64 // p_paddr; ^0 when the segment has none (kcore vmalloc)
	VAddr  uint64
	Off    int64  // p_offset
	FileSz uint64 // p_filesz
	MemSz  uint64 // p_memsz
}

// ELF constants (elf.h); kept here so the parser stands alone.
const (
	elfHeaderSize = 64
	elfPhdrSize   = 56
	etCore        = 4
	emX86_64      = 62
	ptLoad        = 1
	ptNote        = 4
	pnXNum        = 0xffff // e_phnum overflow: the count is in section 0's sh_info
	noPAddr       = ^uint64(0)
	maxPhnum      = 1 << 20
)

func isELF(hdr []byte) bool { return len(hdr) >= 4 && string(hdr[:4]) == "\x7fELF" }

// openELF parses the headers and notes of the ELF core r.
func openELF(r io.ReaderAt, size int64, pageSize uint64) (*elfFile, error) {
	var eh [elfHeaderSize]byte
	if n, _ := r.ReadAt(eh[:], 0); n < elfHeaderSize {
		return nil, formatErr("ELF header", 0, "truncated: %d of %d bytes", n, elfHeaderSize)
	}
	switch {
	case !isELF(eh[:]):
		return nil, formatErr("ELF header", 0, "bad magic %q", eh[:4])
	case eh[4] != 2:
		return nil, formatErr("ELF header", 4, "class %d: only ELF64 cores are supported: %v", eh[4], ErrNotSupported)
	case eh[5] != 1:
		return nil, formatErr("ELF header", 5, "data encoding %d: only little-endian cores are supported", eh[5])
	}
	le := binary.LittleEndian
	if t := le.Uint16(eh[16:]); t != etCore {
		return nil, formatErr("ELF header", 16, "type %d, want ET_CORE (4)", t)
	}
	if m := le.Uint16(eh[18:]); m != emX86_64 {
		return nil, formatErr("ELF header", 18, "machine %d: only x86-64 (62) is supported", m)
	}
	ef := &elfFile{r: r, size: size, pageSize: pageSize}
	ef.phoff = int64(le.Uint64(eh[32:]))
	shoff := int64(le.Uint64(eh[40:]))
	phentsize := le.Uint16(eh[54:])
	phnum := uint64(le.Uint16(eh[56:]))
	if phnum == pnXNum {
		// Extended numbering (QEMU uses it for many memory blocks).
		var sh [64]byte
		if shoff <= 0 || shoff > size-64 {
			return nil, formatErr("ELF header", 40, "PN_XNUM with section header offset %#x outside the file", shoff)
		}
		if _, err := r.ReadAt(sh[:], shoff); err != nil {
			return nil, formatErr("ELF section header 0", shoff, "%v", err)
		}
		phnum = uint64(le.Uint32(sh[44:])) // sh_info
	}
	if phentsize != elfPhdrSize {
		return nil, formatErr("ELF header", 54, "program header size %d, want %d", phentsize, elfPhdrSize)
	}
	if phnum > maxPhnum || ef.phoff < 0 || phnum*elfPhdrSize > uint64(size) || ef.phoff > size-int64(phnum*elfPhdrSize) {
		return nil, formatErr("ELF header", 32, "%d program headers at %#x do not fit the %d-byte file", phnum, ef.phoff, size)
	}
	ph := make([]byte, phnum*elfPhdrSize)
	if _, err := r.ReadAt(ph, ef.phoff); err != nil {
		return nil, formatErr("ELF program headers", ef.phoff, "%v", err)
	}
	for i := range int(phnum) {
		p := ph[i*elfPhdrSize:]
		at := ef.phoff + int64(i*elfPhdrSize)
		typ := le.Uint32(p)
		s := segment{
			Index:  i,
			Off:    int64(le.Uint64(p[8:])),
			VAddr:  le.Uint64(p[16:]),
			PAddr:  le.Uint64(p[24:]),
			FileSz: le.Uint64(p[32:]),
			MemSz:  le.Uint64(p[40:]),
		}
		if s.FileSz > 0 && (s.Off < 0 || s.FileSz > uint64(size) || s.Off > size-int64(s.FileSz)) {
			return nil, formatErr("ELF program header", at, "segment %d: %d bytes at %#x run past the end of the %d-byte file", i, s.FileSz, s.Off, size)
		}
		switch typ {
		case ptNote:
			if s.FileSz > maxNotesSize {
				return nil, formatErr("ELF program header", at, "PT_NOTE of %d bytes", s.FileSz)
			}
			b := make([]byte, s.FileSz)
			if _, err := r.ReadAt(b, s.Off); err != nil {
				return nil, formatErr("ELF notes", s.Off, "%v", err)
			}
			ns, err := parseNotes(b, s.Off)
			ef.notes = append(ef.notes, ns...)
			if err != nil {
				return nil, err
			}
		case ptLoad:
			if s.FileSz > s.MemSz {
				return nil, formatErr("ELF program header", at, "segment %d: p_filesz %#x > p_memsz %#x", i, s.FileSz, s.MemSz)
			}
			if s.MemSz == 0 {
				continue
			}
			if s.PAddr != noPAddr && s.PAddr > noPAddr-s.MemSz {
				return nil, formatErr("ELF program header", at, "segment %d: p_paddr %#x + p_memsz %#x overflows", i, s.PAddr, s.MemSz)
			}
			ef.vloads = append(ef.vloads, s)
			if s.PAddr != noPAddr {
				ef.loads = append(ef.loads, s)
			}
		}
	}
	sort.SliceStable(ef.loads, func(a, b int) bool { return ef.loads[a].PAddr < ef.loads[b].PAddr })
	sort.SliceStable(ef.vloads, func(a, b int) bool { return ef.vloads[a].VAddr < ef.vloads[b].VAddr })
	return ef, nil
}

// findSeg returns the segment of segs (sorted by key) containing a.
func findSeg(segs []segment, a uint64, key func(*segment) uint64) (*segment, bool) {
	i := sort.Search(len(segs), func(i int) bool { return key(&segs[i]) > a }) - 1
	// Segments may overlap (QEMU does not, but be safe): look back a few.
	for j := i; j >= 0 && j >= i-4; j-- {
		s := &segs[j]
		if a-key(s) < s.MemSz && a >= key(s) {
			return s, true
		}
	}
	return nil, false
}

func paddrKey(s *segment) uint64 { return s.PAddr }
func vaddrKey(s *segment) uint64 { return s.VAddr }

// readSegs reads [a, a+len(p)) through segs, addressed by key.
func (ef *elfFile) readSegs(segs []segment, key func(*segment) uint64, p []byte, a uint64) (int, error) {
	n := 0
	for n < len(p) {
		at := a + uint64(n)
		s, ok := findSeg(segs, at, key)
		if !ok {
			return n, ErrNotInDump
		}
		d := at - key(s)
		if d >= s.FileSz {
			return n, ErrPageExcluded
		}
		m := min(uint64(len(p)-n), s.FileSz-d)
		k, err := ef.r.ReadAt(p[n:n+int(m)], s.Off+int64(d))
		n += k
		if k < int(m) {
			return n, formatErr("ELF segment", s.Off+int64(d), "segment %d: %v", s.Index, err)
		}
	}
	return n, nil
}

func (ef *elfFile) readPhys(p []byte, paddr uint64) (int, error) {
	n, err := ef.readSegs(ef.loads, paddrKey, p, paddr)
	if err != nil {
		return n, physErr(paddr+uint64(n), ef.pageSize, err)
	}
	return n, nil
}

// readVirtSegs reads by p_vaddr (kcore).
func (ef *elfFile) readVirtSegs(p []byte, vaddr uint64) (int, error) {
	n, err := ef.readSegs(ef.vloads, vaddrKey, p, vaddr)
	if err != nil {
		return n, &AddrError{Op: "read", Virtual: true, VAddr: vaddr + uint64(n), Err: err}
	}
	return n, nil
}

// ranges lists the physical ranges of the PT_LOADs (memory size, not
// file size: excluded tails count as memory).
func (ef *elfFile) ranges() []Range {
	var out []Range
	for _, s := range ef.loads {
		if n := len(out); n > 0 && out[n-1].End() >= s.PAddr {
			if e := s.PAddr + s.MemSz; e > out[n-1].End() {
				out[n-1].Size = e - out[n-1].Start
			}
			continue
		}
		out = append(out, Range{Start: s.PAddr, Size: s.MemSz})
	}
	return out
}

func (ef *elfFile) String() string {
	return fmt.Sprintf("ELF core, %d PT_LOADs, %d notes", len(ef.vloads), len(ef.notes))
}
