package vmcore

// Tests on the lab's real dumps: every format of every built scenario,
// checked against the guest's truth and against each other.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// truthSym is one line of the truth's /proc/kallsyms.
type truthSym struct {
	addr   uint64
	typ    byte
	name   string
	module string
}

func readTruthKallsyms(t testing.TB, s *labdata.Scenario) []truthSym {
	t.Helper()
	f, err := os.Open(s.Path("truth/kallsyms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []truthSym
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			continue
		}
		ts := truthSym{addr: a, typ: fs[1][0], name: fs[2]}
		if len(fs) > 3 {
			ts.module = strings.Trim(fs[3], "[]")
		}
		out = append(out, ts)
	}
	if a, ok := symAddr(out, "_text"); !ok || a == 0 {
		t.Fatalf("%s: no symbol addresses (kallsyms read without root?)", s.Path("truth/kallsyms.txt"))
	}
	return out
}

func symAddr(syms []truthSym, name string) (uint64, bool) {
	for _, s := range syms {
		if s.name == name && s.module == "" {
			return s.addr, true
		}
	}
	return 0, false
}

func readUname(t testing.TB, s *labdata.Scenario) string {
	b, err := os.ReadFile(s.Path("truth/uname.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

type labDump struct {
	f labdata.Format
	d *Dump
}

func openLabDumps(t *testing.T, s *labdata.Scenario) []labDump {
	t.Helper()
	var out []labDump
	for _, f := range s.Formats {
		d, err := Open(s.Path(f.Path))
		if err != nil {
			t.Errorf("%s: %v", f.Name, err)
			continue
		}
		t.Cleanup(func() { d.Close() })
		out = append(out, labDump{f, d})
	}
	if len(out) == 0 {
		t.Fatal("no dump opened")
	}
	return out
}

// TestLabMetadata: every format says the same of the kernel, and what it
// says matches the truth.
func TestLabMetadata(t *testing.T) {
	for _, s := range labdata.Built(t) {
		t.Run(s.Scenario, func(t *testing.T) {
			uname := readUname(t, s)
			syms := readTruthKallsyms(t, s)
			text, ok := symAddr(syms, "_text")
			if !ok {
				t.Fatal("no _text in the truth's kallsyms")
			}
			var ref *labDump
			for _, ld := range openLabDumps(t, s) {
				t.Run(ld.f.Name, func(t *testing.T) {
					d := ld.d
					if want := map[string]Format{"elf": FormatELF, "kdump": FormatKdump, "kdump-flat": FormatKdumpFlat}[ld.f.Layout]; d.Format() != want {
						t.Errorf("format %v, manifest says %s", d.Format(), ld.f.Layout)
					}
					if ld.f.Layout != "elf" && d.Compression().String() != ld.f.Compression {
						t.Errorf("compression %v, manifest says %s", d.Compression(), ld.f.Compression)
					}
					if ld.f.Producer == "makedumpfile" && ld.f.Layout != "elf" && d.DumpLevel() != ld.f.DumpLevel {
						t.Errorf("dump level %d, manifest says %d", d.DumpLevel(), ld.f.DumpLevel)
					}
					if p := d.Problems(); len(p) > 0 {
						t.Errorf("problems: %v", p)
					}
					if d.Release() != uname {
						t.Errorf("release %q, truth %q", d.Release(), uname)
					}
					vi := d.VMCOREINFO()
					if vi == nil {
						t.Fatal("no VMCOREINFO")
					}
					if !vi.HasKernelOffset || startKernel+vi.KernelOffset != text {
						t.Errorf("KERNELOFFSET %#x: _text would be %#x; truth %#x", vi.KernelOffset, startKernel+vi.KernelOffset, text)
					}
					for _, name := range []string{"init_uts_ns", "swapper_pg_dir", "_stext"} {
						a, ok := vi.Symbol(name)
						if want, ok2 := symAddr(syms, name); ok2 && (!ok || a != want) {
							t.Errorf("SYMBOL(%s) = %#x, truth %#x", name, a, want)
						}
					}
					if len(d.CPUs()) != s.CPUs {
						t.Errorf("%d CPUs, manifest says %d", len(d.CPUs()), s.CPUs)
					}
					as, err := d.Kernel()
					if err != nil {
						t.Fatal(err)
					}
					wantLevels := 4
					if s.LA57 {
						wantLevels = 5
					}
					if as.Levels() != wantLevels {
						t.Errorf("%d page-table levels, want %d", as.Levels(), wantLevels)
					}
					// page_offset_base's value, read through the dump at the
					// truth's address, equals what the page tables say.
					if pob, ok := symAddr(syms, "page_offset_base"); ok {
						v, err := as.ReadUint64(pob)
						po, err2 := as.PageOffset()
						if err != nil || err2 != nil || v != po {
							t.Errorf("page_offset_base = %#x (%v); PageOffset() = %#x (%v)", v, err, po, err2)
						}
					}
					// The kernel's uts name, read from memory, is the truth's.
					if a, ok := vi.Symbol("init_uts_ns"); ok {
						off, _ := vi.Offset("uts_namespace", "name")
						b := make([]byte, 65*6)
						if _, err := as.ReadVirt(b, a+off); err != nil {
							t.Errorf("reading init_uts_ns: %v", err)
						} else if rel := cString(b[65*2 : 65*3]); rel != uname {
							t.Errorf("init_uts_ns release %q, truth %q", rel, uname)
						}
					}
					if ref == nil {
						ref = &ld
						return
					}
					compareMeta(t, ref.d, d)
				})
			}
		})
	}
}

// compareMeta checks that two dumps of one guest agree on what info shows.
func compareMeta(t *testing.T, a, b *Dump) {
	t.Helper()
	ka, _ := a.Kernel()
	kb, _ := b.Kernel()
	ma, err := ka.MemorySize()
	mb, err2 := kb.MemorySize()
	if err != nil || err2 != nil || ma != mb {
		t.Errorf("kernel memory %d (%v), first format %d (%v)", mb, err2, ma, err)
	}
	if a.VMCOREINFO().BuildID != b.VMCOREINFO().BuildID {
		t.Errorf("build id %s, first format %s", b.VMCOREINFO().BuildID, a.VMCOREINFO().BuildID)
	}
	ca, cb := a.CPUs(), b.CPUs()
	for i := range min(len(ca), len(cb)) {
		if ca[i].Regs != cb[i].Regs || ca[i].PID != cb[i].PID {
			t.Errorf("CPU %d: registers differ from the first format", i)
		}
	}
	pa, _ := ka.PageOffset()
	pb, _ := kb.PageOffset()
	if ka.Root() != kb.Root() || pa != pb {
		t.Errorf("root %#x page offset %#x; first format %#x %#x", kb.Root(), pb, ka.Root(), pa)
	}
}

// labAddresses chooses the kernel virtual addresses to compare: kernel
// text, rodata and data symbols, module text (vmalloc'd), per-CPU
// variables of each CPU, each CPU's stack (vmap'd), and random direct-map
// addresses across the dump's memory.
func labAddresses(t *testing.T, s *labdata.Scenario, ref *Dump) map[string][]uint64 {
	syms := readTruthKallsyms(t, s)
	as, err := ref.Kernel()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(len(syms)), 42))
	out := map[string][]uint64{}
	pick := func(class string, ok func(truthSym) bool, n int) {
		var c []uint64
		for _, s := range syms {
			if ok(s) {
				c = append(c, s.addr)
			}
		}
		rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		out[class] = c[:min(n, len(c))]
	}
	// Kernel image symbols, but not the init sections: freed after boot,
	// so dumps filtered with -d 16 (free pages) rightly leave them out.
	initBegin, _ := symAddr(syms, "__init_begin")
	initEnd, _ := symAddr(syms, "__init_end")
	kernel := func(s truthSym) bool {
		return s.module == "" && s.addr >= startKernelMap && !(s.addr >= initBegin && s.addr < initEnd)
	}
	pick("text", func(s truthSym) bool { return kernel(s) && (s.typ == 'T' || s.typ == 't') }, 300)
	pick("rodata", func(s truthSym) bool { return kernel(s) && (s.typ == 'R' || s.typ == 'r') }, 200)
	pick("data", func(s truthSym) bool {
		return kernel(s) && (s.typ == 'D' || s.typ == 'd' || s.typ == 'B' || s.typ == 'b')
	}, 200)
	pick("module", func(s truthSym) bool { return s.module != "" && (s.typ == 'T' || s.typ == 't') }, 100)
	// Per-CPU: __per_cpu_offset[cpu] + the variable's offset.
	if pco, ok := symAddr(syms, "__per_cpu_offset"); ok {
		var vars []uint64
		for _, sy := range syms {
			if sy.module == "" && sy.addr < 0x40000 && sy.addr > 0 && (sy.typ == 'D' || sy.typ == 'd' || sy.typ == 'V' || sy.typ == 'A' || sy.typ == 'b' || sy.typ == 'B') {
				vars = append(vars, sy.addr)
			}
		}
		for cpu := range len(ref.CPUs()) {
			base, err := as.ReadUint64(pco + uint64(cpu)*8)
			if err != nil {
				t.Fatalf("__per_cpu_offset[%d]: %v", cpu, err)
			}
			for i := 0; i < 50 && i < len(vars); i++ {
				out["percpu"] = append(out["percpu"], base+vars[rng.IntN(len(vars))])
			}
		}
	}
	for _, c := range ref.CPUs() {
		for i := range uint64(8) {
			out["stack"] = append(out["stack"], c.Regs.RSP&^4095-i*4096)
		}
	}
	po, err := as.PageOffset()
	if err != nil {
		t.Fatal(err)
	}
	// Direct-map addresses in the kernel's memory: the ranges of a
	// makedumpfile kdump (its 1st bitmap is RAM with struct pages; QEMU's
	// ELF also holds VGA memory and firmware, which the direct map lacks).
	ranges, _ := ref.Ranges()
	if f, ok := s.Format("kdump-zlib"); ok {
		if d, err := Open(s.Path(f.Path)); err == nil {
			ranges, _ = d.Ranges()
			d.Close()
		}
	}
	if ram := iomemRAM(t, s); len(ram) > 0 {
		// The guest's own word: the kernel direct-maps its System RAM
		// (of which a kdump lacks the capture kernel's reservation).
		var both []Range
		for _, a := range ranges {
			for _, b := range ram {
				lo, hi := max(a.Start, b.Start), min(a.End(), b.End())
				if hi > lo {
					both = append(both, Range{Start: lo, Size: hi - lo})
				}
			}
		}
		ranges = both
	}
	var total uint64
	for _, r := range ranges {
		total += r.Size
	}
	for range 400 {
		x := rng.Uint64N(total)
		for _, r := range ranges {
			if x < r.Size {
				out["direct"] = append(out["direct"], po+r.Start+x&^7)
				break
			}
			x -= r.Size
		}
	}
	n := 0
	for _, v := range out {
		n += len(v)
	}
	if n < 1000 {
		t.Fatalf("only %d addresses", n)
	}
	return out
}

// TestLabReadAddresses reads the same kernel virtual addresses from every
// format: identical bytes where the page is present; ErrPageExcluded only
// in filtered dumps, and there only for pages the filter may drop.
func TestLabReadAddresses(t *testing.T) {
	for _, s := range labdata.Built(t) {
		t.Run(s.Scenario, func(t *testing.T) {
			var dumps []labDump
			var ref *Dump
			for _, ld := range openLabDumps(t, s) {
				if _, err := ld.d.Kernel(); err != nil {
					t.Errorf("%s: %v", ld.f.Name, err)
					continue
				}
				dumps = append(dumps, ld)
				if ld.f.Name == "elf" {
					ref = ld.d
				}
			}
			if ref == nil {
				t.Fatal("no elf format")
			}
			refAS, _ := ref.Kernel()
			addrs := labAddresses(t, s, ref)
			classes := make([]string, 0, len(addrs))
			for c := range addrs {
				classes = append(classes, c)
			}
			sort.Strings(classes)
			const n = 64
			excluded := map[string]map[uint64]bool{} // format -> pfns
			for _, ld := range dumps {
				excluded[ld.f.Name] = map[uint64]bool{}
			}
			for _, class := range classes {
				t.Run(class, func(t *testing.T) {
					fails := 0
					for _, va := range addrs[class] {
						want := make([]byte, n)
						_, err := refAS.ReadVirt(want, va)
						if err != nil {
							if class == "direct" || class == "text" || class == "rodata" {
								t.Errorf("elf: %#x: %v", va, err)
							}
							continue
						}
						pa, _ := refAS.Translate(va)
						for _, ld := range dumps {
							as, err := ld.d.Kernel()
							if err != nil {
								t.Fatalf("%s: %v", ld.f.Name, err)
							}
							got := make([]byte, n)
							_, err = as.ReadVirt(got, va)
							switch {
							case err == nil:
								if !bytes.Equal(got, want) {
									t.Errorf("%s: %#x (paddr %#x): bytes differ from elf", ld.f.Name, va, pa)
									fails++
								}
							case errors.Is(err, ErrPageExcluded) && ld.f.DumpLevel > 0:
								var ae *AddrError
								errors.As(err, &ae)
								pfn, _ := ae.PFN()
								excluded[ld.f.Name][pfn] = true
								if ld.f.DumpLevel == 1 && (ld.f.Layout != "elf" || !allZeroPage(t, ref, pfn)) {
									t.Errorf("%s (dump level 1): %#x excluded but page %#x is not a zero page of an ELF dump", ld.f.Name, va, pfn)
								}
								if class == "text" || class == "rodata" {
									t.Errorf("%s: kernel %s excluded: %v", ld.f.Name, class, err)
								}
							default:
								t.Errorf("%s: %#x: %v", ld.f.Name, va, err)
								fails++
							}
							if fails > 10 {
								t.Fatal("too many failures")
							}
						}
					}
				})
			}
			// The two makedumpfile -d 31 kdumps exclude the same pages.
			// makedumpfile -E keeps short excluded runs but also drops
			// zero pages, which kdump files keep as one shared zero page
			// (write_kdump_pages_cyclic vs exclude_zero_pages_cyclic): so
			// what it excludes is a subset of theirs plus zero pages.
			a, e := excluded["kdump-zlib-d31"], excluded["elf-d31"]
			for _, ld := range dumps {
				if ld.f.Layout == "elf" || ld.f.DumpLevel != 31 || ld.f.Name == "kdump-zlib-d31" {
					continue
				}
				if b := excluded[ld.f.Name]; fmt.Sprint(sortedKeys(a)) != fmt.Sprint(sortedKeys(b)) {
					t.Errorf("-d 31 kdumps exclude different pages: kdump-zlib-d31 %d, %s %d", len(a), ld.f.Name, len(b))
				}
			}
			for pfn := range e {
				if !a[pfn] && !allZeroPage(t, ref, pfn) {
					t.Errorf("elf-d31 excludes pfn %#x, kdump-zlib-d31 does not, and it is not a zero page", pfn)
				}
			}
			t.Logf("excluded among the chosen addresses: d31 %d pages, elf-d31 %d", len(a), len(e))
		})
	}
}

func allZeroPage(t *testing.T, d *Dump, pfn uint64) bool {
	p := make([]byte, d.PageSize())
	if _, err := d.ReadPhys(p, pfn*uint64(d.PageSize())); err != nil {
		t.Fatalf("elf: pfn %#x: %v", pfn, err)
	}
	return allZero(p)
}

func sortedKeys(m map[uint64]bool) []uint64 {
	var k []uint64
	for x := range m {
		k = append(k, x)
	}
	sort.Slice(k, func(i, j int) bool { return k[i] < k[j] })
	return k
}

// TestLabPhysicalExclusion walks every page of the filtered and level-1
// dumps against the full ELF: a page reads identically or is excluded. At
// dump level 1 (zero pages) a kdump file excludes nothing — makedumpfile
// keeps zero pages as one shared copy — and an ELF file exactly the zero
// pages.
func TestLabPhysicalExclusion(t *testing.T) {
	if testing.Short() {
		t.Skip("reads every page")
	}
	s := labdata.Require(t, "basic")
	dumps := openLabDumps(t, s)
	var ref *Dump
	for _, ld := range dumps {
		if ld.f.Name == "elf" {
			ref = ld.d
		}
	}
	ps := uint64(ref.PageSize())
	want := make([]byte, ps)
	got := make([]byte, ps)
	for _, ld := range dumps {
		if ld.f.DumpLevel == 0 && ld.f.Name != "kdump-lzo" {
			continue
		}
		t.Run(ld.f.Name, func(t *testing.T) {
			var nexcl, nzero int
			// The dump's own ranges: makedumpfile keeps only memory with
			// struct pages of QEMU's ELF ranges.
			ranges, err := ld.d.Ranges()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range ranges {
				for pa := r.Start; pa < r.End(); pa += ps {
					if _, err := ref.ReadPhys(want, pa); err != nil {
						t.Fatalf("elf: %v", err)
					}
					zero := allZero(want)
					_, err := ld.d.ReadPhys(got, pa)
					switch {
					case err == nil:
						if !bytes.Equal(got, want) {
							t.Fatalf("paddr %#x differs", pa)
						}
						if ld.f.DumpLevel == 1 && zero && ld.f.Layout == "elf" {
							t.Fatalf("paddr %#x: zero page kept in an ELF dump at dump level 1", pa)
						}
					case errors.Is(err, ErrPageExcluded) && ld.f.DumpLevel > 0:
						nexcl++
						if zero {
							nzero++
						}
						if ld.f.DumpLevel == 1 && (!zero || ld.f.Layout != "elf") {
							t.Fatalf("paddr %#x: page excluded at dump level 1 (zero: %v)", pa, zero)
						}
					default:
						t.Fatalf("paddr %#x: %v", pa, err)
					}
				}
			}
			t.Logf("%d pages excluded (%d zero)", nexcl, nzero)
		})
	}
}

// iomemRAM reads the System RAM ranges of the guest's /proc/iomem
// (truth/proc/iomem.txt), whole pages; none where the truth lacks it.
func iomemRAM(t *testing.T, s *labdata.Scenario) []Range {
	b, err := os.ReadFile(s.Path("truth/proc/iomem.txt"))
	if err != nil {
		return nil
	}
	var out []Range
	for _, line := range strings.Split(string(b), "\n") {
		span, name, ok := strings.Cut(line, " : ")
		if !ok || strings.HasPrefix(span, " ") || strings.TrimSpace(name) != "System RAM" {
			continue
		}
		lo, hi, _ := strings.Cut(span, "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("iomem: %q", line)
		}
		a = (a + 4095) &^ 4095
		e = (e + 1) &^ 4095
		if e > a {
			out = append(out, Range{Start: a, Size: e - a})
		}
	}
	return out
}
