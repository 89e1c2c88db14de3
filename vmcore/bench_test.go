package vmcore

import (
	"errors"
	"math/rand/v2"
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
		doff := kf.descOff + int64(kf.descIndex(pfn))*rawPageDescSize
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
