package vmcore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// BenchmarkOpen opens each format of the basic and scale scenarios. Open
// reads headers only (and a flattened file's record headers), so it must
// not grow with the dump's size beyond the record scan.
func BenchmarkOpen(b *testing.B) {
	for _, name := range []string{"basic", "scale"} {
		s, err := labdata.Load(name)
		if err != nil {
			b.Run(name, func(b *testing.B) { b.Skip(err) })
			continue
		}
		for _, f := range s.Formats {
			b.Run(name+"/"+f.Name, func(b *testing.B) {
				p := s.Path(f.Path)
				for b.Loop() {
					d, err := Open(p)
					if err != nil {
						b.Fatal(err)
					}
					d.Close()
				}
			})
		}
	}
}

// benchDump opens format of the basic scenario, or skips.
func benchDump(b *testing.B, format string, cachePages int) *Dump {
	s, err := labdata.Load("basic")
	if err != nil {
		b.Skip(err)
	}
	f, ok := s.Format(format)
	if !ok {
		b.Skipf("basic has no %s", format)
	}
	d, err := Open(s.Path(f.Path), WithCachePages(cachePages))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// randomPages picks n random page-aligned direct-map addresses of pages
// the dump holds.
func randomPages(b *testing.B, d *Dump, n int) []uint64 {
	as, err := d.Kernel()
	if err != nil {
		b.Fatal(err)
	}
	po, err := as.PageOffset()
	if err != nil {
		b.Fatal(err)
	}
	ranges, _ := d.Ranges()
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	page := make([]byte, 4096)
	var out []uint64
	for len(out) < n {
		r := ranges[rng.IntN(len(ranges))]
		if r.Size < 4096 {
			continue
		}
		pa := r.Start + rng.Uint64N(r.Size/4096)*4096
		// Pages of the direct map only (QEMU's ELF also holds VGA memory
		// and firmware; RAM's reserved tail may be unmapped).
		if _, err := as.ReadVirt(page, po+pa); err != nil {
			if errors.Is(err, ErrPageExcluded) || errors.Is(err, ErrNotPresent) {
				continue
			}
			b.Fatal(err)
		}
		out = append(out, po+pa)
	}
	return out
}

// BenchmarkReadRandom reads random 4 KiB pages through the kernel address
// space: cold (page cache off: every read decompresses) and warm (the
// working set cached).
func BenchmarkReadRandom(b *testing.B) {
	for _, format := range []string{"kdump-zlib", "kdump-zstd", "kdump-lzo", "kdump-snappy", "kdump-raw", "elf"} {
		b.Run(format+"/cold", func(b *testing.B) {
			d := benchDump(b, format, 0)
			addrs := randomPages(b, d, 4096)
			as, _ := d.Kernel()
			p := make([]byte, 4096)
			b.SetBytes(4096)
			i := 0
			for b.Loop() {
				if _, err := as.ReadVirt(p, addrs[i%len(addrs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(format+"/warm", func(b *testing.B) {
			d := benchDump(b, format, 1024)
			addrs := randomPages(b, d, 512)
			as, _ := d.Kernel()
			p := make([]byte, 4096)
			for _, a := range addrs {
				as.ReadVirt(p, a)
			}
			b.SetBytes(4096)
			i := 0
			for b.Loop() {
				if _, err := as.ReadVirt(p, addrs[i%len(addrs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkZlibDecode is the raw zlib decode speed of the pages
// BenchmarkReadRandom/kdump-zlib/cold reads: the compressed pages are in
// memory, only decompression is timed.
func BenchmarkZlibDecode(b *testing.B) {
	d := benchDump(b, "kdump-zlib", 0)
	addrs := randomPages(b, d, 4096)
	as, _ := d.Kernel()
	kf := d.kd
	type cpage struct {
		c    Compression
		data []byte
	}
	var pages []cpage
	for _, va := range addrs {
		pa, _ := as.Translate(va)
		pfn := pa / 4096
		idx, _, err := kf.descIndex(pfn)
		if err != nil {
			b.Fatal(err)
		}
		doff := kf.descOff + int64(idx)*rawPageDescSize
		var db [rawPageDescSize]byte
		kf.r.ReadAt(db[:], doff)
		off, size, flags := int64(leU64(db[:])), leU32(db[8:]), leU32(db[12:])
		c, _ := compressionOfFlags(flags)
		data := make([]byte, size)
		kf.r.ReadAt(data, off)
		pages = append(pages, cpage{c, data})
	}
	dst := make([]byte, 4096)
	b.SetBytes(4096)
	i := 0
	for b.Loop() {
		p := pages[i%len(pages)]
		if err := decompressPage(p.c, dst, p.data); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// writeSparseKdump writes to path a kdump file of a machine of mem bytes
// of 4 KiB pages, all existing (1st bitmap) and all but the lowest
// lowPages and the highest highPages excluded (2nd bitmap): a mostly free
// machine dumped with -d 31. The dumped pages are stored raw, each filled
// with its pfn. It returns the pfn of the highest dumped page.
func writeSparseKdump(tb testing.TB, path string, mem uint64, lowPages, highPages uint64) uint64 {
	tb.Helper()
	le := binary.LittleEndian
	maxMapnr := mem / synthPage
	bitmapBytes := (maxMapnr + 7) / 8
	bitmapBlocks := (2*bitmapBytes + synthPage - 1) / synthPage
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	h := make([]byte, synthPage)
	copy(h, kdumpSignature)
	le.PutUint32(h[8:], 6)
	le.PutUint32(h[428:], synthPage)
	le.PutUint32(h[432:], 1) // sub-header blocks
	le.PutUint32(h[436:], uint32(bitmapBlocks))
	le.PutUint32(h[440:], uint32(min(maxMapnr, 1<<32-1)))
	le.PutUint32(h[460:], 2)
	sub := make([]byte, synthPage)
	le.PutUint32(sub[8:], 31)
	le.PutUint64(sub[96:], maxMapnr)
	w.Write(h)
	w.Write(sub)
	dumped := func(pfn uint64) bool { return pfn < lowPages || pfn >= maxMapnr-highPages }
	half := bitmapBlocks * synthPage / 2
	chunk := make([]byte, 1<<20)
	for second := range 2 {
		for off := uint64(0); off < half; off += uint64(len(chunk)) {
			c := chunk[:min(uint64(len(chunk)), half-off)]
			for i := range c {
				c[i] = 0
				for bit := range uint64(8) {
					pfn := (off+uint64(i))*8 + bit
					if pfn < maxMapnr && (second == 0 || dumped(pfn)) {
						c[i] |= 1 << bit
					}
				}
			}
			w.Write(c)
		}
	}
	n := lowPages + highPages
	dataOff := uint64(1+1+bitmapBlocks)*synthPage + n*rawPageDescSize
	var d [rawPageDescSize]byte
	for i := range n {
		le.PutUint64(d[0:], dataOff+i*synthPage)
		le.PutUint32(d[8:], synthPage)
		w.Write(d[:])
	}
	page := make([]byte, synthPage)
	for pfn := uint64(0); pfn < maxMapnr; pfn++ {
		if pfn == lowPages {
			pfn = maxMapnr - highPages
		}
		for o := 0; o < synthPage; o += 8 {
			le.PutUint64(page[o:], pfn)
		}
		w.Write(page)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return maxMapnr - 1
}

// BenchmarkOpenBySize opens synthetic kdump files of mostly free machines
// of 1 GiB to 2 TiB (16 MiB dumped at the bottom, 1 MiB at the top) and
// reads one page, the highest: what opening a huge machine's dump costs
// before any kernel structure is read (docs/huge-dumps.md). It needs no
// lab. B/op is what the bitmaps and their index take.
func BenchmarkOpenBySize(b *testing.B) {
	for _, gib := range []uint64{1, 16, 256, 2048} {
		b.Run(fmt.Sprintf("%dGiB", gib), func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "kdump")
			top := writeSparseKdump(b, p, gib<<30, 4096, 256)
			page := make([]byte, synthPage)
			b.ReportAllocs()
			for b.Loop() {
				d, err := Open(p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.ReadPhys(page, top*synthPage); err != nil {
					b.Fatal(err)
				}
				if binary.LittleEndian.Uint64(page) != top {
					b.Fatalf("page %#x holds %#x", top, binary.LittleEndian.Uint64(page))
				}
				d.Close()
			}
		})
	}
}

// BenchmarkOpenLab opens the kdump-zlib-d31 dumps of the 1 GiB kd-sysrq
// and the 16 GiB kd-16g scenarios (not in CI's set: it skips when absent)
// and reads the kernel's first pages: the kernel address space, init_task's
// page.
func BenchmarkOpenLab(b *testing.B) {
	for _, name := range []string{"kd-sysrq", "kd-16g"} {
		b.Run(name, func(b *testing.B) {
			s, err := labdata.Load(name)
			if err != nil {
				b.Skip(err)
			}
			f, ok := s.Format("kdump-zlib-d31")
			if !ok {
				b.Skipf("%s has no kdump-zlib-d31", name)
			}
			p := s.Path(f.Path)
			page := make([]byte, synthPage)
			b.ReportAllocs()
			for b.Loop() {
				d, err := Open(p)
				if err != nil {
					b.Fatal(err)
				}
				as, err := d.Kernel()
				if err != nil {
					b.Fatal(err)
				}
				text, ok := as.TextStart()
				if !ok {
					b.Fatal("no _stext")
				}
				if _, err := as.ReadVirt(page, text); err != nil {
					b.Fatal(err)
				}
				d.Close()
			}
		})
	}
}
