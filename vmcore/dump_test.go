package vmcore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSyntheticFormats opens every format of the synthetic machines and
// checks metadata and memory against the machine itself.
func TestSyntheticFormats(t *testing.T) {
	for _, levels := range []int{4, 5} {
		k := newSynthKernel(levels)
		for _, c := range synthDumps(t, k) {
			t.Run(c.name+"/L"+string(rune('0'+levels)), func(t *testing.T) {
				d, err := Open(writeTemp(t, c.name, c.data))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				checkSynthDump(t, d, k, c)
			})
		}
	}
}

func checkSynthDump(t *testing.T, d *Dump, k *synthKernel, c synthCase) {
	noInfo := c.name == "elf-noinfo"
	if p := d.Problems(); noInfo {
		// No VMCOREINFO anywhere: the kernel's placement comes from CR3.
		if len(p) != 1 || !errors.Is(p[0], ErrNotSupported) || !strings.Contains(p[0].Error(), "derived from CPU 0's page tables") {
			t.Errorf("problems: %v, want the one saying where the KASLR offset came from", p)
		}
	} else if len(p) > 0 {
		t.Errorf("problems: %v", p)
	}
	vi := d.VMCOREINFO()
	if noInfo != (vi == nil) {
		t.Fatalf("VMCOREINFO = %v, want present = %v", vi, !noInfo)
	}
	if !noInfo {
		if d.Release() != "6.1.0-synthetic" {
			t.Errorf("Release = %q", d.Release())
		}
		if tm, ok := d.CrashTime(); !ok || !tm.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("CrashTime = %v, %v", tm, ok)
		}
	}
	cpus := d.CPUs()
	if len(cpus) != 2 {
		t.Fatalf("%d CPUs, want 2", len(cpus))
	}
	for i, cpu := range cpus {
		if cpu.PID != 100+i || cpu.Regs.R15 != synthReg(i, 0) || cpu.Regs.RIP != synthReg(i, 16) || cpu.Regs.RSP != synthReg(i, 19) || cpu.Regs.GS != synthReg(i, 26) {
			t.Errorf("CPU %d: %+v", i, cpu)
		}
		if cpu.QEMU == nil || cpu.QEMU.CR[3] != k.root || cpu.QEMU.KernelGSBase != 0xffff888000000000+uint64(i)<<20 {
			t.Errorf("CPU %d QEMU state: %+v", i, cpu.QEMU)
		}
	}
	if n, err := d.MemorySize(); err != nil || n != synthMemSize {
		t.Errorf("MemorySize = %d, %v; want %d", n, err, synthMemSize)
	}
	as, err := d.Kernel()
	if err != nil {
		t.Fatal(err)
	}
	if as.Levels() != k.levels {
		t.Errorf("Levels = %d, want %d", as.Levels(), k.levels)
	}
	if want := "VMCOREINFO"; noInfo {
		if as.RootSource != "QEMU CR3" {
			t.Errorf("root from %s", as.RootSource)
		}
	} else if as.RootSource != want {
		t.Errorf("root from %s", as.RootSource)
	}
	// With VMCOREINFO or without, through CR3's tables.
	if off, ok := as.KASLROffset(); !ok || off != k.kaslr {
		t.Errorf("KASLROffset = %#x, %v; want %#x", off, ok, k.kaslr)
	}
	if pb, ok := as.PhysBase(); !ok || pb != k.physBase {
		t.Errorf("PhysBase = %#x, %v; want %#x", pb, ok, k.physBase)
	}
	if st, ok := as.TextStart(); !ok || st != startKernel+k.kaslr {
		t.Errorf("TextStart = %#x, %v; want %#x", st, ok, startKernel+k.kaslr)
	}
	if po, err := as.PageOffset(); err != nil || po != k.pageOffset {
		t.Errorf("PageOffset = %#x, %v; want %#x", po, err, k.pageOffset)
	}
	textV := uint64(startKernel) + k.kaslr
	tests := []struct {
		name  string
		vaddr uint64
		paddr uint64
		n     int
		err   error
	}{
		{"text", textV + 0x1234, synthTextPhys + 0x1234, 100, nil},
		{"text across 2M pages", textV + 2<<20 - 50, synthTextPhys + 2<<20 - 50, 100, nil},
		{"direct map", k.pageOffset + 0x345678, 0x345678, 5000, nil},
		{"direct map excluded", k.pageOffset + 0xc00000 + 8, 0xc00000 + 8, 8, ErrPageExcluded},
		{"direct map zero page", k.pageOffset + 0x800000, 0x800000, 64, ErrPageExcluded},
		{"direct map beyond memory", k.pageOffset + 0x2000000, 0x2000000, 8, ErrNotInDump},
		{"vmalloc", k.vmalloc + 16, k.vmallocPA + 0x5000 + 16, 64, nil},
		{"vmalloc hole", k.vmalloc + synthPage, 0, 8, ErrNotPresent},
		{"vmalloc third page", k.vmalloc + 2*synthPage + 100, k.vmallocPA + 100, 64, nil},
		{"unmapped", 0xffffffffff000000, 0, 8, ErrNotPresent},
		{"non-canonical", 0x0000900000000000, 0, 8, ErrNotPresent},
	}
	for _, tt := range tests {
		want := tt.err
		if !c.filtered && want == ErrPageExcluded {
			want = nil
		}
		pa, err := as.Translate(tt.vaddr)
		if tt.err == ErrNotPresent {
			if !errors.Is(err, ErrNotPresent) {
				t.Errorf("%s: Translate(%#x) = %#x, %v; want ErrNotPresent", tt.name, tt.vaddr, pa, err)
			}
		} else if err != nil || pa != tt.paddr {
			t.Errorf("%s: Translate(%#x) = %#x, %v; want %#x", tt.name, tt.vaddr, pa, err, tt.paddr)
		}
		buf := make([]byte, tt.n)
		n, err := as.ReadVirt(buf, tt.vaddr)
		switch {
		case want == nil:
			if err != nil || n != tt.n || !bytes.Equal(buf, k.mem[tt.paddr:tt.paddr+uint64(tt.n)]) {
				t.Errorf("%s: ReadVirt(%#x) = %d, %v; bytes differ from memory: %v", tt.name, tt.vaddr, n, err, !bytes.Equal(buf, k.mem[tt.paddr:tt.paddr+uint64(tt.n)]))
			}
		case !errors.Is(err, want):
			t.Errorf("%s: ReadVirt(%#x) = %d, %v; want %v", tt.name, tt.vaddr, n, err, want)
		default:
			var ae *AddrError
			if !errors.As(err, &ae) || !ae.Virtual || ae.VAddr != tt.vaddr {
				t.Errorf("%s: error %v does not name vaddr %#x", tt.name, err, tt.vaddr)
			} else if want != ErrNotPresent && (!ae.Physical || ae.PAddr != tt.paddr) {
				t.Errorf("%s: error %v does not name paddr %#x", tt.name, err, tt.paddr)
			}
		}
	}
	// Every page, physically: equal to memory or excluded exactly where
	// the filter says.
	page := make([]byte, synthPage)
	for pfn := uint64(0); pfn < synthMemSize/synthPage; pfn++ {
		_, err := d.ReadPhys(page, pfn*synthPage)
		if c.filtered && excludedPFN(pfn) {
			if !errors.Is(err, ErrPageExcluded) {
				t.Fatalf("pfn %#x: %v, want ErrPageExcluded", pfn, err)
			}
			var ae *AddrError
			if p, ok := func() (uint64, bool) { errors.As(err, &ae); return ae.PFN() }(); !ok || p != pfn {
				t.Fatalf("pfn %#x: error names pfn %#x", pfn, p)
			}
			continue
		}
		if err != nil || !bytes.Equal(page, k.mem[pfn*synthPage:(pfn+1)*synthPage]) {
			t.Fatalf("pfn %#x: %v or bytes differ", pfn, err)
		}
	}
	// Reads straddling pages, and from the cache.
	big := make([]byte, 3*synthPage+10)
	for _, pa := range []uint64{5, synthPage - 3, 0x9ff000 - 7} {
		for range 2 {
			if _, err := d.ReadPhys(big, pa); err != nil || !bytes.Equal(big, k.mem[pa:pa+uint64(len(big))]) {
				t.Errorf("ReadPhys(%#x, %d): %v", pa, len(big), err)
			}
		}
	}
}

func TestOpenErrors(t *testing.T) {
	k := newSynthKernel(4)
	notes := synthNotes(2, k.vmcoreinfo(), k.root, 0)
	kd := buildKdump(t, k.mem, kdumpOpts{comp: CompressZlib, notes: notes})
	flat := buildKdump(t, k.mem, kdumpOpts{comp: CompressZlib, notes: notes, flat: true})
	elf := buildELF(k.mem, notes, []elfSeg{{paddr: 0, filesz: synthMemSize, memsz: synthMemSize}})
	mod := func(b []byte, off int, v ...byte) []byte {
		c := bytes.Clone(b)
		copy(c[off:], v)
		return c
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"bad magic", bytes.Repeat([]byte("x"), 100), "unknown magic"},
		{"elf truncated header", elf[:40], "truncated: 40 of 64"},
		{"tiny", elf[:10], "too short for any dump header"},
		{"elf truncated", elf[:len(elf)-100], "run past the end"},
		{"elf 32-bit", mod(elf, 4, 1), "only ELF64"},
		{"elf not core", mod(elf, 16, 2), "ET_CORE"},
		{"elf phoff beyond end", mod(elf, 32, 0, 0, 0, 0, 0x7f), "do not fit"},
		{"elf note size", mod(elf, 64+2*56+4, 0xff, 0xff, 0xff, 0x7f), "beyond the note area"},
		{"kdump truncated header", kd[:300], "truncated"},
		{"kdump bad block size", mod(kd, 428, 0x01, 0x10), "block size"},
		{"kdump bitmap beyond file", mod(kd, 436, 0xff, 0xff, 0xff), "do not fit"},
		{"kdump two compressions", mod(kd, 424, 3), "more than one compression"},
		{"kdump max_mapnr too big", mod(kd, 4096+96, 0, 0, 0, 0, 1), "bytes of bitmap"},
		{"kdump notes beyond file", mod(kd, 4096+56, 0, 0, 0, 0, 1), "do not fit"},
		{"flat truncated", flat[:len(flat)/2], "past the end of the file"},
		{"flat no end", flat[:len(flat)-16], "before the end marker"},
		{"flat bad type", mod(flat, 23, 2), "type 2"},
		{"flat negative size", mod(flat, 4096+8, 0xff), "bad record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(writeTemp(t, "dump", tt.data))
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("err = %v; want ErrFormat mentioning %q", err, tt.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v is not a *FormatError", err)
			}
		})
	}
}

// TestCorruptPages damages page descriptors and page data: reads fail with
// ErrFormat naming the offset, other pages still read.
func TestCorruptPages(t *testing.T) {
	k := newSynthKernel(4)
	for _, comp := range []Compression{CompressZlib, CompressLZO, CompressSnappy, CompressZstd, CompressNone} {
		kd := buildKdump(t, k.mem, kdumpOpts{comp: comp})
		d0, err := Open(writeTemp(t, "ok", kd))
		if err != nil {
			t.Fatal(err)
		}
		kf := d0.kd
		if err := kf.loadBitmaps(); err != nil {
			t.Fatal(err)
		}
		// The descriptor of a compressible page (9 MiB, periodic).
		pfn := uint64(9<<20) / synthPage
		idx, _, err := kf.descIndex(pfn)
		if err != nil {
			t.Fatal(err)
		}
		doff := kf.descOff + int64(idx)*rawPageDescSize
		var db [24]byte
		kf.r.ReadAt(db[:], doff)
		dataOff := int64(leU64(db[:]))
		size := leU32(db[8:])
		d0.Close()
		put := func(off int64, v []byte) []byte {
			c := bytes.Clone(kd)
			copy(c[off:], v)
			return c
		}
		u32 := func(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
		u64 := func(v uint64) []byte { b := make([]byte, 8); putLeU64(b, v); return b }
		tests := []struct {
			name string
			data []byte
			want string
		}{
			{"size too big", put(doff+8, u32(synthPage+1)), "size 4097"},
			{"size zero", put(doff+8, u32(0)), "size 0"},
			{"offset beyond file", put(doff, u64(uint64(len(kd)))), "outside"},
			{"offset in headers", put(doff, u64(100)), "outside"},
			{"flags", put(doff+12, u32(3)), "more than one compression"},
		}
		if comp != CompressNone {
			tests = append(tests,
				struct {
					name string
					data []byte
					want string
				}{"garbage data", put(dataOff, bytes.Repeat([]byte{0xa5}, int(size))), "kdump page"},
				struct {
					name string
					data []byte
					want string
				}{"short page", put(doff+8, u32(size-1)), "kdump page"},
			)
		}
		for _, tt := range tests {
			t.Run(comp.String()+"/"+tt.name, func(t *testing.T) {
				d, err := Open(writeTemp(t, "bad", tt.data))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				page := make([]byte, synthPage)
				_, err = d.ReadPhys(page, pfn*synthPage)
				if !errors.Is(err, ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
					t.Fatalf("err = %v; want ErrFormat mentioning %q", err, tt.want)
				}
				if _, err := d.ReadPhys(page, 0x100000); err != nil {
					t.Errorf("another page: %v", err)
				}
			})
		}
	}
}

func leU64(b []byte) uint64 {
	return uint64(leU32(b)) | uint64(leU32(b[4:]))<<32
}
func leU32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func putLeU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}
