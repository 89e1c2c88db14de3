package kallsyms

import (
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/vmcore"
)

// BenchmarkLabDecode decodes the whole vmlinux table from the basic
// scenario's dumps, the pages cached by the dump after the first round
// (warm), and from a dump opened afresh each time (cold).
func BenchmarkLabDecode(b *testing.B) {
	s := labdata.Require(b, "basic")
	for _, fname := range []string{"elf", "kdump-zlib"} {
		f, ok := s.Format(fname)
		if !ok {
			continue
		}
		b.Run(fname, func(b *testing.B) {
			d, err := vmcore.Open(s.Path(f.Path), vmcore.WithCachePages(4096))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.Run("warm", func(b *testing.B) {
				for b.Loop() {
					tab, err := FromDump(d)
					if err != nil {
						b.Fatal(err)
					}
					if err := tab.Load(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("cold", func(b *testing.B) {
				for b.Loop() {
					d, err := vmcore.Open(s.Path(f.Path))
					if err != nil {
						b.Fatal(err)
					}
					tab, err := FromDump(d)
					if err != nil {
						b.Fatal(err)
					}
					if err := tab.Load(); err != nil {
						b.Fatal(err)
					}
					d.Close()
				}
			})
		})
	}
}

func benchTable(b *testing.B) (*Table, []Symbol) {
	s := labdata.Require(b, "basic")
	tab := labTable(b, s)
	var syms []Symbol
	for sym := range tab.All() {
		if sym.Addr >= 0x100000000 {
			syms = append(syms, sym)
		}
	}
	return tab, syms
}

func BenchmarkLookupName(b *testing.B) {
	tab, syms := benchTable(b)
	i := 0
	for b.Loop() {
		if _, err := tab.Lookup(syms[i%len(syms)].Name); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

func BenchmarkLookupAddr(b *testing.B) {
	tab, syms := benchTable(b)
	i := 0
	for b.Loop() {
		if _, err := tab.LookupAddr(syms[i%len(syms)].Addr + 1); err != nil && syms[i%len(syms)].Size > 1 {
			b.Fatal(err)
		}
		i += 7919
	}
}

func BenchmarkLookupNotFound(b *testing.B) {
	tab, _ := benchTable(b)
	for b.Loop() {
		tab.Lookup("schedulx")
	}
}
