package kallsyms

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinspect/kinspect/internal/dumpedit"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/vmcore"
)

// shapeText is where the synthetic kernels' text is, before the gap to
// .rodata that the search skips.
const shapeText = 0xffffffff81000000

// shapeSyms are symsFor(enc) with every digit in some name (a real kernel
// has them all: "x86_64", "ext4", "sha256", ...) and, unless few, enough
// functions for three markers.
func shapeSyms(enc Encoding, few bool) []synthSym {
	syms := append(symsFor(enc), synthSym{"digits_0123456789", 'T', 0xffffffff81003000})
	for i := range 600 {
		if few {
			break
		}
		syms = append(syms, synthSym{fmt.Sprintf("gen_func_%d", i*7919%10007), 't', 0xffffffff81004000 + uint64(i)*0x40})
	}
	return syms
}

// shapeMemory is a synthetic kernel: text (random bytes, with a decoy run
// of digits), unmapped memory, then the tables built with o.
func shapeMemory(o synthOptions) (*synthTable, *fakeMem) {
	return shapeMemorySyms(o, shapeSyms(o.enc, false))
}

func shapeMemorySyms(o synthOptions, syms []synthSym) (*synthTable, *fakeMem) {
	st := buildSynth(syms, o)
	text := make([]byte, 96<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range text {
		text[i] = byte(r.UintN(256))
	}
	// A decoy: a digit run that is no token table.
	copy(text[5000:], "\x000\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00")
	m := &fakeMem{}
	m.add(shapeText, text)
	m.add(st.base, st.blob)
	return st, m
}

var shapeLayouts = []struct {
	name string
	opts synthOptions
}{
	{"4.6-6.1 absolute-percpu", synthOptions{enc: EncodingAbsolutePercpu}},
	{"4.6-6.1 relative", synthOptions{enc: EncodingRelative}},
	{"absolute", synthOptions{enc: EncodingAbsolute}},
	{"before 4.20 absolute", synthOptions{enc: EncodingAbsolute, wide: true}},
	{"before 4.20 absolute-percpu", synthOptions{enc: EncodingAbsolutePercpu, wide: true}},
	{"6.2-6.9", synthOptions{enc: EncodingAbsolutePercpu, layout: layout62}},
	{"6.2-rc seqs u32", synthOptions{enc: EncodingAbsolutePercpu, layout: layout62, seqWidth: 4}},
	{"6.10 absolute", synthOptions{enc: EncodingAbsolute, layout: layout610}},
	{"6.10-6.14", synthOptions{enc: EncodingAbsolutePercpu, layout: layout610}},
	{"6.15", synthOptions{enc: EncodingRelative, layout: layout610}},
	{"place-relative", synthOptions{enc: EncodingPlaceRelative, layout: layout610}},
}

// TestFindLocationsSynthetic: in every layout scripts/kallsyms has
// written, the search finds the tables where the builder put them, past
// the decoy and the unmapped gap, and they decode to the symbols.
func TestFindLocationsSynthetic(t *testing.T) {
	for _, tc := range shapeLayouts {
		t.Run(tc.name, func(t *testing.T) {
			st, mem := shapeMemory(tc.opts)
			known := map[string]uint64{"init_uts_ns": 0xffffffff82a12340}
			loc, err := FindLocations(mem, shapeText, DefaultSearchSize, known)
			if err != nil {
				t.Fatal(err)
			}
			want := st.loc
			want.Known = known
			want.Markers = st.markers
			if tc.opts.wide {
				want.Markers = 0
			}
			if tc.opts.layout == layout62 {
				want.SeqsOfNames = st.seqs
			}
			if fmt.Sprint(loc) != fmt.Sprint(want) {
				t.Fatalf("found\n%+v\nwant\n%+v", loc, want)
			}
			tab, err := Decode(mem, loc)
			if err != nil {
				t.Fatal(err)
			}
			var got []synthSym
			for s := range tab.All() {
				got = append(got, synthSym{s.Name, s.Type, s.Addr})
			}
			if !slices.Equal(got, st.syms) {
				t.Errorf("decoded\n%v\nwant\n%v", got, st.syms)
			}
		})
	}
}

// TestFindLocationsDamaged: what is not the kallsyms tables is not taken
// for them, and the error says why.
func TestFindLocationsDamaged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(st *synthTable)
		want   string
	}{
		{"no-digits", func(st *synthTable) {
			i := int(st.loc.TokenTable - st.base)
			for j := i; j < int(st.loc.TokenIndex-st.base); j++ {
				if st.blob[j] == '5' {
					st.blob[j] = 'x'
				}
			}
		}, "1 candidate token tables"},
		{"token-index", func(st *synthTable) { st.blob[st.loc.TokenIndex-st.base+2*0x41]++ }, "token index at"},
		{"token-index-0", func(st *synthTable) { st.blob[st.loc.TokenIndex-st.base] = 1 }, "index[0] 1"},
		{"markers", func(st *synthTable) { st.blob[st.markers-st.base] = 1 }, "no kallsyms_markers before the token table"},
		{"num_syms", func(st *synthTable) { st.blob[st.loc.NumSyms-st.base+4] = 1 }, "no kallsyms_num_syms"},
		{"names", func(st *synthTable) { st.blob[st.loc.Names-st.base] = 0 }, "entry of 0 token codes"},
		{"offsets", func(st *synthTable) {
			o := st.loc.Offsets - st.base + 4*uint64(len(st.syms)-1)
			copy(st.blob[o:], []byte{0xff, 0xff, 0xff, 0x7f})
		}, "no symbol addresses in order"},
		{"relative_base", func(st *synthTable) { st.blob[st.loc.RelativeBase-st.base+7] = 0 }, "is not a kernel address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, mem := shapeMemory(synthOptions{enc: EncodingAbsolutePercpu})
			tc.damage(st)
			_, err := FindLocations(mem, shapeText, DefaultSearchSize, nil)
			if err == nil || !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// FuzzFindLocations searches synthetic kernels whose tables the fuzzer
// changes: no panic or hang, and what is found decodes or fails cleanly.
// The kernels are small (a few dozen symbols), for speed; still, inputs
// are KiBs, which Go's fuzzer minimizes in quadratic time: run it with
// -fuzzminimizetime=2s.
func FuzzFindLocations(f *testing.F) {
	small := func(i uint8) *synthTable {
		o := shapeLayouts[i].opts
		st, _ := shapeMemorySyms(o, shapeSyms(o.enc, true))
		return st
	}
	for i := range shapeLayouts {
		f.Add(small(uint8(i)).blob, uint8(i))
	}
	built := map[uint8]*synthTable{}
	f.Fuzz(func(t *testing.T, blob []byte, layout uint8) {
		layout %= uint8(len(shapeLayouts))
		st := built[layout]
		if st == nil {
			st = small(layout)
			built[layout] = st
		}
		mem := &fakeMem{}
		mem.add(st.base, blob)
		// From the tables' start: the text and the gap before them are
		// TestFindLocationsSynthetic's.
		loc, err := FindLocations(mem, st.base, 1<<20, nil)
		if err != nil {
			if !errors.Is(err, ErrNotSupported) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		end := st.base + uint64(len(blob))
		for _, a := range []uint64{loc.NumSyms, loc.Names, loc.TokenTable, loc.TokenIndex} {
			if a < st.base || a >= end {
				t.Fatalf("found %+v outside the memory [%#x, %#x)", loc, st.base, end)
			}
		}
		if tab, err := Decode(mem, loc); err == nil {
			for s := range tab.All() {
				tab.LookupAddr(s.Addr)
			}
		}
	})
}

// labScenarios are the built scenarios with dumps, and the kdump ones the
// lab has built.
func labScenarios(t testing.TB) []*labdata.Scenario {
	var out []*labdata.Scenario
	for _, s := range labdata.Built(t) {
		if !s.Live {
			out = append(out, s)
		}
	}
	for _, name := range []string{"kd-bug", "kd612-bug"} {
		if s, err := labdata.Load(name); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// TestLabFindLocations: on every dump of every scenario, the tables found
// by their shape are where VMCOREINFO says they are.
func TestLabFindLocations(t *testing.T) {
	for _, s := range labScenarios(t) {
		for _, f := range s.Formats {
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				d, err := vmcore.Open(s.Path(f.Path))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				want, err := LocationsFromVMCOREINFO(d.VMCOREINFO())
				if err != nil {
					t.Fatal(err)
				}
				k, err := d.Kernel()
				if err != nil {
					t.Fatal(err)
				}
				start, ok := k.TextStart()
				if !ok {
					t.Fatal("no text address")
				}
				t0 := time.Now()
				got, err := FindLocations(k, start, DefaultSearchSize, want.Known)
				if err != nil {
					if why := s.Misfiltered(f); why != "" {
						t.Skipf("%v (%s)", err, why)
					}
					t.Fatal(err)
				}
				t.Logf("found in %v: token table %#x, markers %#x, seqs %#x", time.Since(t0), got.TokenTable, got.Markers, got.SeqsOfNames)
				// VMCOREINFO gives neither markers nor seqs.
				got.Markers, got.SeqsOfNames = 0, 0
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("found\n%+v\nVMCOREINFO\n%+v", got, want)
				}
			})
		}
	}
}

// TestLabWithoutKallsymsLines: copies of lab dumps whose VMCOREINFO lost
// its SYMBOL(kallsyms_*) lines, as before 6.0, give FromDump the table
// the guest's /proc/kallsyms lists, found by shape: an ELF dump and a
// kdump file of a 6.1 and a 6.12 kernel.
func TestLabWithoutKallsymsLines(t *testing.T) {
	for _, tc := range []struct{ scenario, format string }{
		{"basic", "elf"}, {"basic", "kdump-zlib"}, {"k612", "kdump-zlib"},
	} {
		t.Run(tc.scenario+"/"+tc.format, func(t *testing.T) {
			s := labdata.Require(t, tc.scenario)
			f, ok := s.Format(tc.format)
			if !ok {
				t.Skipf("no %s dump", tc.format)
			}
			path := filepath.Join(t.TempDir(), "dump")
			n, err := dumpedit.WithoutKallsymsLines(s.Path(f.Path), path)
			if err != nil {
				t.Fatal(err)
			}
			d, err := vmcore.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := LocationsFromVMCOREINFO(d.VMCOREINFO()); !errors.Is(err, ErrNotSupported) {
				t.Fatalf("%d lines removed, but VMCOREINFO still locates the tables (%v)", n, err)
			}
			tab, err := FromDump(d)
			if err != nil {
				t.Fatal(err)
			}
			info, err := tab.Info()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(info.Located, "by shape") {
				t.Errorf("located %q", info.Located)
			}
			checkLabInfo(t, s, info)
			want, _ := truthVmlinux(t, s)
			slices.SortFunc(want, compareTriples)
			var got []Symbol
			for sym := range tab.All() {
				sym.Size = 0
				got = append(got, sym)
			}
			slices.SortFunc(got, compareTriples)
			diff := diffSymbols(got, want)
			t.Logf("%d lines removed; %d symbols decoded, %d in /proc/kallsyms, %d differ; %s", n, len(got), len(want), len(diff), info.Located)
			for i, d := range diff {
				if i == 20 {
					break
				}
				t.Error(d)
			}
		})
	}
}

// BenchmarkFindLocations measures the search on the basic scenario's ELF
// dump (pages read from the file) and its zlib kdump (pages decompressed
// on the way).
func BenchmarkFindLocations(b *testing.B) {
	s := labdata.Require(b, "basic")
	for _, format := range []string{"elf", "kdump-zlib"} {
		f, ok := s.Format(format)
		if !ok {
			continue
		}
		b.Run(format, func(b *testing.B) {
			d, err := vmcore.Open(s.Path(f.Path), vmcore.WithCachePages(0))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			k, err := d.Kernel()
			if err != nil {
				b.Fatal(err)
			}
			start, _ := k.TextStart()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FindLocations(k, start, DefaultSearchSize, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
