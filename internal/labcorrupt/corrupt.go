// Package labcorrupt makes damaged copies of lab dumps: a copy of an ELF
// dump with bytes overwritten at kernel virtual addresses, as a crashing
// kernel's bad memory would have them. Tests of the walkers' recovery
// use it; the dump itself is never written.
package labcorrupt

import (
	"debug/elf"
	"fmt"
	"io"
	"os"

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
	src := k.Dump().Path()
	as, err := k.Dump().Kernel()
	if err != nil {
		return err
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
	return out.Close()
}
