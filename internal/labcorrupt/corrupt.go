// Package labcorrupt makes damaged copies of lab dumps: a copy of an ELF
// dump with bytes overwritten at kernel virtual addresses, as a crashing
// kernel's bad memory would have them. Tests of the walkers' recovery
// use it; the dump itself is never written.
package labcorrupt

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/kinspect/kinspect"
)

// Patch is bytes to write at a kernel virtual address.
type Patch struct {
	Addr uint64
	Data []byte
}

// U64 is a Patch writing one little-endian 64-bit value.
func U64(addr, v uint64) Patch {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return Patch{Addr: addr, Data: b}
}

// Copy writes a copy of k's dump (an ELF core) to dst with the patches
// applied, each translated through k's page tables to a physical address
// and through the ELF's PT_LOAD headers to a file offset.
func Copy(k *kinspect.Kernel, dst string, patches ...Patch) error {
	return CopyWithout(k, dst, nil, patches...)
}

// CopyWithout is Copy, and the copy lacks the pages holding the kernel
// virtual addresses of drop, as a dump a filter misjudged lacks them: its
// PT_LOAD headers, rewritten at the end of the file, leave them out.
func CopyWithout(k *kinspect.Kernel, dst string, drop []uint64, patches ...Patch) error {
	src := k.Dump().Path()
	as, err := k.Dump().Kernel()
	if err != nil {
		return err
	}
	var dropped []uint64 // physical page addresses
	for _, va := range drop {
		pa, err := as.Translate(va)
		if err != nil {
			return fmt.Errorf("labcorrupt: translate %#x: %w", va, err)
		}
		dropped = append(dropped, pa&^4095)
	}
	f, err := elf.Open(src)
	if err != nil {
		return fmt.Errorf("labcorrupt: %s: %w", src, err)
	}
	defer f.Close()
	type write struct {
		off  int64
		data []byte
	}
	var writes []write
	for _, pt := range patches {
		for i := 0; i < len(pt.Data); {
			va := pt.Addr + uint64(i)
			pa, err := as.Translate(va)
			if err != nil {
				return fmt.Errorf("labcorrupt: translate %#x: %w", va, err)
			}
			n := min(len(pt.Data)-i, int(4096-va%4096))
			off := int64(-1)
			for _, p := range f.Progs {
				if p.Type == elf.PT_LOAD && pa >= p.Paddr && pa+uint64(n) <= p.Paddr+p.Filesz {
					off = int64(p.Off + pa - p.Paddr)
				}
			}
			if off < 0 {
				return fmt.Errorf("labcorrupt: %#x (phys %#x) is not in %s", va, pa, src)
			}
			writes = append(writes, write{off, pt.Data[i : i+n]})
			i += n
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	for _, w := range writes {
		if _, err := out.WriteAt(w.data, w.off); err != nil {
			out.Close()
			return err
		}
	}
	if len(dropped) > 0 {
		if err := dropPages(out, f, dropped); err != nil {
			out.Close()
			return fmt.Errorf("labcorrupt: %s: %w", dst, err)
		}
	}
	return out.Close()
}

// dropPages appends to out (a copy of f) program headers that leave the
// physical pages dropped out of f's PT_LOAD segments, and points the ELF
// header at them. The data stays where it was.
func dropPages(out *os.File, f *elf.File, dropped []uint64) error {
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return fmt.Errorf("not a little-endian ELF64 core")
	}
	slices.Sort(dropped)
	var phdrs []elf.ProgHeader
	for _, p := range f.Progs {
		h := p.ProgHeader
		if h.Type != elf.PT_LOAD {
			phdrs = append(phdrs, h)
			continue
		}
		start := uint64(0) // offset into the segment of the piece to emit
		for _, pa := range dropped {
			if pa < h.Paddr+start || pa >= h.Paddr+h.Filesz {
				continue
			}
			cut := pa - h.Paddr
			if cut > start {
				phdrs = append(phdrs, piece(h, start, cut-start, cut-start))
			}
			start = min(cut+4096, h.Filesz)
		}
		if start < h.Filesz || start == 0 {
			phdrs = append(phdrs, piece(h, start, h.Filesz-start, h.Memsz-start))
		}
	}
	end, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	phoff := (end + 7) &^ 7
	b := make([]byte, 0, 56*len(phdrs))
	for _, h := range phdrs {
		b = binary.LittleEndian.AppendUint32(b, uint32(h.Type))
		b = binary.LittleEndian.AppendUint32(b, uint32(h.Flags))
		for _, v := range []uint64{h.Off, h.Vaddr, h.Paddr, h.Filesz, h.Memsz, h.Align} {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	if _, err := out.WriteAt(b, phoff); err != nil {
		return err
	}
	if len(phdrs) >= 0xffff {
		return fmt.Errorf("%d program headers: more than e_phnum holds", len(phdrs))
	}
	var hdr [10]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(phoff))
	if _, err := out.WriteAt(hdr[:8], 0x20); err != nil { // e_phoff
		return err
	}
	binary.LittleEndian.PutUint16(hdr[8:], uint16(len(phdrs)))
	_, err = out.WriteAt(hdr[8:], 0x38) // e_phnum
	return err
}

// piece is the part of PT_LOAD h from off, filesz bytes long in the file.
func piece(h elf.ProgHeader, off, filesz, memsz uint64) elf.ProgHeader {
	p := h
	p.Off += off
	p.Paddr += off
	if p.Vaddr != 0 {
		p.Vaddr += off
	}
	p.Filesz, p.Memsz = filesz, memsz
	return p
}
