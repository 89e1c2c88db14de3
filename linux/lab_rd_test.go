package linux_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
)

// rdBytes is what rd read, as bytes: each line's values, little-endian,
// of its unit size.
func rdBytes(r *linux.RdResult) []byte {
	var out []byte
	for _, l := range r.Lines {
		for _, v := range l.Values {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			out = append(out, b[:r.Size]...)
		}
	}
	return out
}

// TestLabRd: rd reads what the ELF dump holds. Physical memory (-p) is
// compared with the dump's segments read by debug/elf at a sample of
// addresses (every 64th MiB, at an offset that moves); virtual memory,
// through the direct map (page_offset_base, itself read by rd), with the
// same bytes where they are RAM (below the guest's memory size); and the kernel's release string, read with rd -8 at
// init_uts_ns, is the guest's uname -r.
func TestLabRd(t *testing.T) {
	for _, sc := range basicAndK612(t) {
		t.Run(sc.Scenario, func(t *testing.T) {
			k := labkernel.Open(t, sc, "elf")
			p, syms := k.Program(), k.Symbols()
			f, _ := sc.Format("elf")
			ef, err := elf.Open(sc.Path(f.Path))
			if err != nil {
				t.Fatal(err)
			}
			defer ef.Close()
			base, err := syms.Addr("page_offset_base")
			if err != nil {
				t.Fatal(err)
			}
			pob, err := linux.ReadMemory(p.Read, syms, base, linux.RdOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pageOffset := uint64(pob.Lines[0].Values[0])
			samples, direct := 0, 0
			for _, ph := range ef.Progs {
				if ph.Type != elf.PT_LOAD || ph.Filesz < 4096 {
					continue
				}
				for off := uint64(0); off+256 <= ph.Filesz; off += 64 << 20 {
					o := off + (off>>20)*8%4096
					want := make([]byte, 256)
					if _, err := ph.ReadAt(want, int64(o)); err != nil && err != io.EOF {
						t.Fatal(err)
					}
					paddr := ph.Paddr + o
					samples++
					for _, size := range []int{1, 2, 4, 8} {
						r, err := linux.ReadMemory(k.ReadPhys, syms, paddr, linux.RdOptions{Size: size, Count: 256 / size, Physical: true})
						if err != nil {
							t.Fatalf("rd -p %#x: %v", paddr, err)
						}
						if got := rdBytes(r); !bytes.Equal(got, want) {
							t.Errorf("rd -p -%d %#x: %x, the ELF segment %x", size*8, paddr, got[:16], want[:16])
						}
					}
					if paddr >= uint64(sc.MemoryMB)<<20 {
						continue // a device's memory (the VGA window, the BIOS): not in the direct map
					}
					r, err := linux.ReadMemory(p.Read, syms, pageOffset+paddr, linux.RdOptions{Count: 32})
					if err != nil {
						t.Errorf("rd %#x (the direct map of %#x): %v", pageOffset+paddr, paddr, err)
					} else if got := rdBytes(r); !bytes.Equal(got, want) {
						t.Errorf("rd %#x (the direct map of %#x): %x, the ELF segment %x", pageOffset+paddr, paddr, got[:16], want[:16])
					}
					direct++
				}
			}
			if direct < 8 {
				t.Errorf("only %d samples of RAM", direct)
			}
			uname, err := os.ReadFile(sc.Path("truth/uname.txt"))
			if err != nil {
				t.Fatal(err)
			}
			uts, err := syms.Addr("init_uts_ns")
			if err != nil {
				t.Fatal(err)
			}
			off, _, err := p.MemberOffset("struct uts_namespace", "name.release")
			if err != nil {
				t.Fatal(err)
			}
			r, err := linux.ReadMemory(p.Read, syms, uts+uint64(off), linux.RdOptions{Size: 1, Count: 64})
			if err != nil {
				t.Fatal(err)
			}
			var ascii string
			for _, l := range r.Lines {
				ascii += l.ASCII
			}
			if rel := strings.TrimSpace(string(uname)); !strings.HasPrefix(ascii, rel+".") {
				t.Errorf("rd -8 init_uts_ns.name.release: %q, uname -r %q", ascii, rel)
			}
			t.Logf("%d physical samples, %d of RAM also through the direct map at %#x", samples, direct, pageOffset)
		})
	}
}

// TestLabSearch: search finds a value (init_task's address, from the
// guest's /proc/kallsyms) where the ELF dump's segments, read by
// debug/elf, hold it: every aligned 8-byte unit of RAM equal to it,
// physically (-p) and through the direct map.
func TestLabSearch(t *testing.T) {
	for _, sc := range basicAndK612(t) {
		t.Run(sc.Scenario, func(t *testing.T) {
			k := labkernel.Open(t, sc, "elf")
			p := k.Program()
			ks, err := os.ReadFile(sc.Path("truth/kallsyms.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var value uint64
			for _, line := range strings.Split(string(ks), "\n") {
				if fs := strings.Fields(line); len(fs) == 3 && fs[2] == "init_task" {
					value, _ = strconv.ParseUint(fs[0], 16, 64)
				}
			}
			if value == 0 {
				t.Fatal("no init_task in the truth")
			}
			f, _ := sc.Format("elf")
			ef, err := elf.Open(sc.Path(f.Path))
			if err != nil {
				t.Fatal(err)
			}
			defer ef.Close()
			ram := uint64(sc.MemoryMB) << 20
			var want []uint64
			for _, ph := range ef.Progs {
				if ph.Type != elf.PT_LOAD || ph.Paddr >= ram {
					continue
				}
				b := make([]byte, min(ph.Filesz, ram-ph.Paddr))
				if _, err := ph.ReadAt(b, 0); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				for i := 0; i+8 <= len(b); i += 8 {
					if binary.LittleEndian.Uint64(b[i:]) == value {
						want = append(want, ph.Paddr+uint64(i))
					}
				}
			}
			l, err := linux.ReadMemLayout(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, phys := range []bool{true, false} {
				read := linux.ReadFunc(p.Read)
				if phys {
					read = k.ReadPhys
				}
				r, err := linux.SearchMemory(p, read, linux.SearchOptions{Values: []uint64{value}, Physical: phys, Max: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				var got []uint64
				for _, h := range r.Hits {
					a := uint64(h.Addr)
					if !phys {
						a -= l.PageOffset
					}
					got = append(got, a)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("search (physical %v) %#x: %d hits %#x, the ELF segments %d %#x", phys, value, len(got), got, len(want), want)
				}
				t.Logf("physical %v: %d hits, as the ELF segments hold them; %d pages unreadable", phys, len(got), r.Unreadable)
			}
		})
	}
}
