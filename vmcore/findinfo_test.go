package vmcore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kinspect/kinspect/internal/dumpedit"
	"github.com/kinspect/kinspect/internal/labdata"
)

// infoPage lays VMCOREINFO text out as the kernel's vmcoreinfo_data: a
// zeroed page with the text at its start.
func infoPage(text string) []byte {
	pg := make([]byte, synthPage)
	copy(pg, text)
	return pg
}

// newInfoKernel is a synthetic machine whose kernel image maps its own
// page-table root, as a real kernel's does (init_top_pgt is kernel data).
func newInfoKernel(levels int) *synthKernel {
	k := newSynthKernel(levels)
	k.mapPage(k.root-k.physBase+startKernelMap, k.root, 12)
	return k
}

// Where the synthetic tests put VMCOREINFO pages.
const (
	infoPhys  = 6 << 20 // the kernel's
	stalePhys = 3 << 20 // a stale copy, found first
)

// elfNoNote is an ELF dump of k without a VMCOREINFO note, with QEMU CPU
// notes (cr3 the first CPU's root) unless cr3 is 0.
func elfNoNote(k *synthKernel, cr3 uint64) []byte {
	cr4 := uint64(0)
	if k.levels == 5 {
		cr4 = cr4LA57
	}
	var notes []byte
	if cr3 != 0 {
		notes = synthNotes(2, "", cr3, cr4)
	}
	return buildELF(k.mem, notes, []elfSeg{{paddr: 0, vaddr: k.pageOffset, filesz: synthMemSize, memsz: synthMemSize}})
}

func openBytes(t testing.TB, b []byte) *Dump {
	t.Helper()
	d, err := newDump(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFindVMCOREINFOSynthetic: a dump without the note finds the page the
// machine holds, skips stale and inconsistent copies, and falls back to
// CR3's page tables when none is right.
func TestFindVMCOREINFOSynthetic(t *testing.T) {
	for _, levels := range []int{4, 5} {
		k := newInfoKernel(levels)
		good := infoPage(k.vmcoreinfo())
		// A copy from a boot with another phys_base: its root is not
		// the page table, its _stext lands elsewhere.
		stale := infoPage(strings.Replace(k.vmcoreinfo(), fmt.Sprintf("NUMBER(phys_base)=%d", int64(k.physBase)), fmt.Sprintf("NUMBER(phys_base)=%d", int64(k.physBase)+2<<20), 1))
		// A second, self-consistent set of page tables (another root,
		// another phys_base) that maps _stext 2 MiB higher: a VMCOREINFO
		// describing it passes its own checks, but QEMU's CR3 (the
		// machine's root) disagrees.
		realRoot := k.root
		realV := realRoot - k.physBase + startKernelMap
		textV := uint64(startKernel) + k.kaslr
		k.root = k.alloc()
		altRoot, altPB := k.root, k.physBase+2<<20
		altV := altRoot - altPB + startKernelMap
		k.mapPage(textV, synthTextPhys+2<<20, 21)
		k.mapPage(altV, altRoot, 12)
		k.root = realRoot
		alt := infoPage(strings.NewReplacer(
			fmt.Sprintf("=%x\n", realV), fmt.Sprintf("=%x\n", altV),
			fmt.Sprintf("NUMBER(phys_base)=%d", int64(k.physBase)), fmt.Sprintf("NUMBER(phys_base)=%d", int64(altPB)),
		).Replace(k.vmcoreinfo()))
		base := append([]byte(nil), k.mem...)

		for _, tc := range []struct {
			name     string
			pages    map[uint64][]byte
			cr3      uint64
			wantAt   uint64 // 0: none found
			wantErr  string // in the problem when none is found
			derived  bool   // KASLR from CR3
			rejected uint64 // a page named as rejected
		}{
			{name: "found", pages: map[uint64][]byte{infoPhys: good}, cr3: realRoot, wantAt: infoPhys},
			{name: "found-without-cpu-notes", pages: map[uint64][]byte{infoPhys: good}, wantAt: infoPhys},
			{name: "stale-skipped", pages: map[uint64][]byte{stalePhys: stale, infoPhys: good}, cr3: realRoot, wantAt: infoPhys},
			{name: "only-stale", pages: map[uint64][]byte{stalePhys: stale}, cr3: realRoot, derived: true, rejected: stalePhys, wantErr: "is a consistent VMCOREINFO"},
			{name: "cr3-disagrees", pages: map[uint64][]byte{stalePhys: alt, infoPhys: good}, cr3: realRoot, wantAt: infoPhys},
			{name: "cr3-disagrees-only", pages: map[uint64][]byte{stalePhys: alt}, cr3: realRoot, derived: true, rejected: stalePhys, wantErr: "CR3"},
			{name: "alt-tables-agree", pages: map[uint64][]byte{stalePhys: alt}, cr3: altRoot, wantAt: stalePhys},
			{name: "none", cr3: realRoot, derived: true, wantErr: `no page begins with "OSRELEASE="`},
			{name: "none-no-cr3", wantErr: `no page begins with "OSRELEASE="`},
		} {
			t.Run(fmt.Sprintf("L%d/%s", levels, tc.name), func(t *testing.T) {
				copy(k.mem, base)
				for at, pg := range tc.pages {
					copy(k.mem[at:], pg)
				}
				d := openBytes(t, elfNoNote(k, tc.cr3))
				vi := d.VMCOREINFO()
				if tc.wantAt != 0 {
					if vi == nil {
						t.Fatalf("not found: %v", d.Problems())
					}
					if src, want := d.VMCOREINFOSource(), fmt.Sprintf("found in memory at phys %#x", tc.wantAt); src != want {
						t.Errorf("source %q, want %q", src, want)
					}
					if vi.OSRelease != "6.1.0-synthetic" || d.Release() != "6.1.0-synthetic" {
						t.Errorf("release %q", d.Release())
					}
					if len(d.Problems()) > 0 {
						t.Errorf("problems: %v", d.Problems())
					}
					as, err := d.Kernel()
					if err != nil {
						t.Fatal(err)
					}
					if as.RootSource != "VMCOREINFO" {
						t.Errorf("root from %s", as.RootSource)
					}
					return
				}
				if vi != nil || d.VMCOREINFOSource() != "" {
					t.Fatalf("found %q in memory, want none", d.VMCOREINFOSource())
				}
				p := d.Problems()
				if len(p) != 1 || !strings.Contains(p[0].Error(), tc.wantErr) || !errors.Is(p[0], ErrNotSupported) {
					t.Fatalf("problems %v, want one saying %q", p, tc.wantErr)
				}
				if tc.rejected != 0 && !strings.Contains(p[0].Error(), fmt.Sprintf("page at phys %#x", tc.rejected)) {
					t.Errorf("problem %v does not name the rejected page %#x", p[0], tc.rejected)
				}
				as, err := d.Kernel()
				if !tc.derived {
					if err == nil || !errors.Is(err, ErrNotSupported) {
						t.Errorf("Kernel() = %v, want ErrNotSupported", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if off, ok := as.KASLROffset(); !ok || off != k.kaslr {
					t.Errorf("KASLR offset %#x, %v from CR3; want %#x", off, ok, k.kaslr)
				}
				if pb, ok := as.PhysBase(); !ok || pb != k.physBase {
					t.Errorf("phys_base %#x, %v from CR3; want %#x", pb, ok, k.physBase)
				}
			})
		}
	}
}

// TestParseInfoPage: what makes a page vmcoreinfo_data.
func TestParseInfoPage(t *testing.T) {
	k := newInfoKernel(4)
	good := k.vmcoreinfo()
	for _, tc := range []struct {
		name string
		page []byte
		want string // "" = parses
	}{
		{"good", infoPage(good), ""},
		{"prefix", infoPage("X" + good), "does not begin"},
		{"full", bytes.Repeat([]byte("OSRELEASE=1\n"), 400)[:synthPage], "not NUL-terminated"},
		{"tail", func() []byte { p := infoPage(good); p[4000] = 1; return p }(), "offset 0xfa0: byte 0x1 after the text"},
		{"no-release", infoPage(strings.Replace(good, "OSRELEASE=6.1.0-synthetic", "OSRELEASE=", 1)), "empty OSRELEASE"},
		{"pagesize", infoPage(strings.Replace(good, "PAGESIZE=4096", "PAGESIZE=8192", 1)), "PAGESIZE 8192"},
		{"no-kerneloffset", infoPage(strings.Replace(good, "KERNELOFFSET=", "XERNELOFFSET=", 1)), "no KERNELOFFSET"},
		{"no-physbase", infoPage(strings.Replace(good, "NUMBER(phys_base)", "NUMBER(phys_bass)", 1)), "no NUMBER(phys_base)"},
		{"no-root", infoPage(strings.NewReplacer("SYMBOL(init_top_pgt)", "SYMBOL(x)", "SYMBOL(swapper_pg_dir)", "SYMBOL(y)").Replace(good)), "no SYMBOL(init_top_pgt)"},
		{"root-outside", infoPage(strings.NewReplacer("SYMBOL(init_top_pgt)=ffff", "SYMBOL(init_top_pgt)=0000", "SYMBOL(swapper_pg_dir)", "SYMBOL(y)").Replace(good)), "outside the kernel text mapping"},
		{"bad-value", infoPage(strings.Replace(good, "PAGESIZE=4096", "PAGESIZE=four", 1)), "bad value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vi, err := parseInfoPage(tc.page)
			if tc.want == "" {
				if err != nil || vi.OSRelease != "6.1.0-synthetic" {
					t.Fatalf("parseInfoPage = %v, %v", vi, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// fuzzInfoImage is a LiME capture of the parts of a synthetic machine the
// VMCOREINFO check reads (page tables, some kernel text), with a page of
// the fuzzer's at infoPhys.
func fuzzInfoImage(k *synthKernel, page []byte) []byte {
	var b bytes.Buffer
	segs := []dumpedit.Segment{
		{Phys: synthTableBase, Off: synthTableBase, Size: 256 * synthPage},
		{Phys: synthTextPhys, Off: synthTextPhys, Size: 16 * synthPage},
	}
	if err := dumpedit.WriteLiME(&b, bytes.NewReader(k.mem), segs); err != nil {
		panic(err)
	}
	pg := make([]byte, synthPage)
	copy(pg, page)
	dumpedit.WriteLiME(&b, bytes.NewReader(pg), []dumpedit.Segment{{Phys: infoPhys, Size: synthPage}})
	return b.Bytes()
}

// FuzzFindVMCOREINFO runs the search over a machine whose candidate page
// the fuzzer writes: it must not panic, and what it accepts must be a
// consistent VMCOREINFO of that machine.
func FuzzFindVMCOREINFO(f *testing.F) {
	k := newInfoKernel(4)
	f.Add([]byte(k.vmcoreinfo()))
	// A real kernel's, from the lab.
	if s, err := labdata.Load("basic"); err == nil {
		if fm, ok := s.Format("elf"); ok {
			if d, err := Open(s.Path(fm.Path)); err == nil {
				var text []byte
				for _, e := range d.VMCOREINFO().Entries {
					text = append(text, e.Key+"="+e.Value+"\n"...)
				}
				f.Add(text)
				d.Close()
			}
		}
	}
	f.Add([]byte("OSRELEASE=x\nPAGESIZE=4096\nKERNELOFFSET=0\nNUMBER(phys_base)=0\nSYMBOL(init_top_pgt)=ffffffff80001000\n"))
	f.Add([]byte("OSRELEASE="))
	f.Fuzz(func(t *testing.T, page []byte) {
		d := openBytes(t, fuzzInfoImage(k, page))
		vi := d.VMCOREINFO()
		if vi == nil {
			if len(d.Problems()) != 1 {
				t.Fatalf("no VMCOREINFO and problems %v", d.Problems())
			}
			return
		}
		if vi.PageSize != synthPage || !vi.HasKernelOffset || d.VMCOREINFOSource() != fmt.Sprintf("found in memory at phys %#x", infoPhys) {
			t.Fatalf("accepted %+v from %s", vi, d.VMCOREINFOSource())
		}
		as, err := d.Kernel()
		if err != nil {
			t.Fatalf("accepted VMCOREINFO, but Kernel(): %v", err)
		}
		st, ok := as.TextStart()
		if _, err := as.Translate(st); !ok || err != nil {
			t.Fatalf("accepted VMCOREINFO, but _stext %#x (%v) does not translate: %v", st, ok, err)
		}
	})
}

// labScenarios are the built scenarios with dumps: the standard ones and,
// where the lab has built them, kdump ones (a kexec capture kernel's
// /proc/vmcore of a crashed 6.1 and 6.12 kernel).
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

// sameEntries compares two VMCOREINFOs line by line. CRASHTIME is left
// out: a kexec crash appends it to the copy the capture kernel gets
// (vmcoreinfo_data_safecopy), not to the page in the crashed kernel's RAM.
func sameEntries(a, b *VMCoreInfo) error {
	strip := func(v *VMCoreInfo) []string {
		var out []string
		for _, e := range v.Entries {
			if e.Key != "CRASHTIME" {
				out = append(out, e.Key+"="+e.Value)
			}
		}
		return out
	}
	x, y := strip(a), strip(b)
	if len(x) != len(y) {
		return fmt.Errorf("%d lines, want %d", len(x), len(y))
	}
	for i := range x {
		if x[i] != y[i] {
			return fmt.Errorf("line %d: %q, want %q", i, x[i], y[i])
		}
	}
	return nil
}

// TestLabFindVMCOREINFO: in every scenario's ELF dumps and a filtered
// kdump one, the page the search finds in memory says what the dump's
// own VMCOREINFO says, and in QEMU's dumps CR3's page tables give the
// KASLR offset and phys_base VMCOREINFO gives.
func TestLabFindVMCOREINFO(t *testing.T) {
	for _, s := range labScenarios(t) {
		for _, f := range s.Formats {
			if f.Layout != "elf" && !strings.HasPrefix(f.Name, "kdump-zlib-d31") {
				continue
			}
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				d, err := Open(s.Path(f.Path))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				note := d.VMCOREINFO()
				if note == nil || d.VMCOREINFOSource() == "" {
					t.Fatalf("no VMCOREINFO of its own (%q)", d.VMCOREINFOSource())
				}
				start := time.Now()
				vi, at, scanned, err := d.searchVMCOREINFO()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("found at phys %#x after %d MiB in %v", at, scanned>>20, time.Since(start))
				if err := sameEntries(vi, note); err != nil {
					t.Errorf("the page in memory differs from the dump's VMCOREINFO: %v", err)
				}
				if f.Producer != "qemu" {
					return
				}
				dk, err := d.kernelFromCR3()
				if err != nil {
					t.Fatal(err)
				}
				pb, _ := note.Number("phys_base")
				if dk.kaslr != note.KernelOffset || dk.physBase != uint64(pb) {
					t.Errorf("from CR3: KASLR offset %#x, phys_base %#x; VMCOREINFO: %#x, %#x", dk.kaslr, dk.physBase, note.KernelOffset, uint64(pb))
				}
			})
		}
	}
}

// BenchmarkFindVMCOREINFO measures the search on the lab's largest ELF
// dump of a 1 GiB guest (a kdump scenario's, else the scale scenario's):
// "search" stops at the kernel's page, "scan-all" reads every page (no
// page matches), the cost of a dump without one.
func BenchmarkFindVMCOREINFO(b *testing.B) {
	var path string
	for _, name := range []string{"kd-bug", "kd612-bug", "scale"} {
		if s, err := labdata.Load(name); err == nil {
			if f, ok := s.Format("elf"); ok {
				path = s.Path(f.Path)
				break
			}
		}
	}
	if path == "" {
		b.Skip("no lab ELF dump of a 1 GiB guest")
	}
	d, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	mem, _ := d.MemorySize()
	b.Logf("%s: %d MiB of memory", path, mem>>20)
	b.Run("search", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, n, err := d.searchVMCOREINFO()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
		}
	})
	b.Run("scan-all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, err := d.scanPages(func([]byte, uint64) bool { return false })
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
		}
	})
}
