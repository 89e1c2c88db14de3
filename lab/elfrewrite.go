package main

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// rewriteELF copies an ELF core with a plain layout: the ELF header, the
// program headers right after it, the notes, then each PT_LOAD's data in
// order. makedumpfile 1.7.2 reads QEMU 7.2's dumps only in this shape.
func rewriteELF(src, dst string) error {
	f, err := elf.Open(src)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", src, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Type != elf.ET_CORE {
		return fmt.Errorf("rewrite %s: not a 64-bit ELF core", src)
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
	defer out.Close()

	const ehsize, phsize = 64, 56
	phnum := len(f.Progs)
	off := uint64(ehsize + phsize*phnum)
	le := binary.LittleEndian
	eh := make([]byte, ehsize)
	copy(eh, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(eh[16:], uint16(elf.ET_CORE))
	le.PutUint16(eh[18:], uint16(f.Machine))
	le.PutUint32(eh[20:], 1)
	le.PutUint64(eh[32:], ehsize) // e_phoff
	le.PutUint16(eh[52:], ehsize)
	le.PutUint16(eh[54:], phsize)
	if phnum >= 0xffff {
		return fmt.Errorf("rewrite %s: %d program headers", src, phnum)
	}
	le.PutUint16(eh[56:], uint16(phnum))
	w := bufio.NewWriterSize(out, 1<<20)
	w.Write(eh)
	// Notes first, then loads, each placed right after the previous.
	offsets := make([]uint64, phnum)
	for _, pass := range []elf.ProgType{elf.PT_NOTE, elf.PT_LOAD} {
		for i, p := range f.Progs {
			if (pass == elf.PT_NOTE) != (p.Type == elf.PT_NOTE) {
				continue
			}
			offsets[i] = off
			off += p.Filesz
		}
	}
	for i, p := range f.Progs {
		ph := make([]byte, phsize)
		le.PutUint32(ph[0:], uint32(p.Type))
		le.PutUint32(ph[4:], uint32(p.Flags))
		le.PutUint64(ph[8:], offsets[i])
		le.PutUint64(ph[16:], p.Vaddr)
		le.PutUint64(ph[24:], p.Paddr)
		le.PutUint64(ph[32:], p.Filesz)
		le.PutUint64(ph[40:], p.Memsz)
		le.PutUint64(ph[48:], p.Align)
		w.Write(ph)
	}
	for _, pass := range []elf.ProgType{elf.PT_NOTE, elf.PT_LOAD} {
		for _, p := range f.Progs {
			if (pass == elf.PT_NOTE) != (p.Type == elf.PT_NOTE) {
				continue
			}
			if _, err := io.Copy(w, io.NewSectionReader(in, int64(p.Off), int64(p.Filesz))); err != nil {
				return fmt.Errorf("rewrite %s: segment at %#x: %w", src, p.Off, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return out.Close()
}
