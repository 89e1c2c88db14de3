package vmcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinspect/kinspect/internal/dumpedit"
	"github.com/kinspect/kinspect/internal/labdata"
)

// captureSegs are the ranges the synthetic captures hold: memory in three
// ranges (LiME writes one per System RAM resource) with a hole at 13 MiB,
// the second range of zeros (AVML leaves such blocks out) and the third
// not page-aligned at its end.
var captureSegs = []dumpedit.Segment{
	{Phys: 0, Off: 0, Size: 8 << 20},
	{Phys: 8 << 20, Off: 8 << 20, Size: 1 << 20},
	{Phys: 9 << 20, Off: 9 << 20, Size: 4<<20 - 100},
	{Phys: 14 << 20, Off: 14 << 20, Size: 2 << 20},
}

// synthCapture writes k's memory as a LiME or AVML capture, with k's
// VMCOREINFO page at infoPhys.
func synthCapture(t testing.TB, k *synthKernel, format string) []byte {
	t.Helper()
	copy(k.mem[infoPhys:], infoPage(k.vmcoreinfo()))
	var b bytes.Buffer
	w := dumpedit.WriteLiME
	if format == "avml" {
		w = dumpedit.WriteAVML
	}
	if err := w(&b, bytes.NewReader(k.mem), captureSegs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// inCapture says whether a physical address is in the capture, and
// whether AVML left its block out (all zeros).
func inCapture(format string, a uint64) bool {
	for i, s := range captureSegs {
		if a >= s.Phys && a < s.Phys+s.Size {
			return !(format == "avml" && i == 1)
		}
	}
	return false
}

// TestCaptureSynthetic opens LiME and AVML captures of a synthetic
// machine: format, ranges, every byte read back at random offsets and
// lengths (across ranges, chunks and holes), and the VMCOREINFO found in
// memory, which makes the kernel's address space.
func TestCaptureSynthetic(t *testing.T) {
	for _, levels := range []int{4, 5} {
		k := newInfoKernel(levels)
		for _, format := range []string{"lime", "avml"} {
			t.Run(fmt.Sprintf("%s/L%d", format, levels), func(t *testing.T) {
				d := openBytes(t, synthCapture(t, k, format))
				if d.Format().String() != format {
					t.Errorf("format %v", d.Format())
				}
				wantComp := CompressNone
				wantRanges := []Range{{0, 13<<20 - 100}, {14 << 20, 2 << 20}}
				if format == "avml" {
					wantComp = CompressSnappy
					wantRanges = []Range{{0, 8 << 20}, {9 << 20, 4<<20 - 100}, {14 << 20, 2 << 20}}
				}
				if d.Compression() != wantComp {
					t.Errorf("compression %v, want %v", d.Compression(), wantComp)
				}
				if rs, err := d.Ranges(); err != nil || fmt.Sprint(rs) != fmt.Sprint(wantRanges) {
					t.Errorf("ranges %v, %v; want %v", rs, err, wantRanges)
				}
				if len(d.CPUs()) != 0 {
					t.Errorf("%d CPUs in a capture", len(d.CPUs()))
				}
				rng := rand.New(rand.NewPCG(1, uint64(levels)))
				for range 3000 {
					a := rng.Uint64N(synthMemSize)
					n := 1 + rng.IntN(3*synthPage)
					if rng.IntN(4) == 0 {
						a &^= synthPage - 1
						n = synthPage
					}
					end := min(a+uint64(n), synthMemSize)
					buf := make([]byte, end-a)
					got, err := d.ReadPhys(buf, a)
					// The bytes up to the first address not captured.
					want := 0
					for want < len(buf) && inCapture(format, a+uint64(want)) {
						want++
					}
					if got != want || !bytes.Equal(buf[:got], k.mem[a:a+uint64(got)]) {
						t.Fatalf("ReadPhys(%d bytes at %#x) = %d, %v; want %d bytes of memory", len(buf), a, got, err, want)
					}
					if want < len(buf) {
						var ae *AddrError
						if !errors.Is(err, ErrNotInDump) || !errors.As(err, &ae) || ae.PAddr != a+uint64(want) {
							t.Fatalf("ReadPhys at %#x: error %v, want ErrNotInDump at %#x", a, err, a+uint64(want))
						}
					}
				}
				if src := d.VMCOREINFOSource(); src != fmt.Sprintf("found in memory at phys %#x", infoPhys) {
					t.Fatalf("VMCOREINFO source %q; problems %v", src, d.Problems())
				}
				as, err := d.Kernel()
				if err != nil {
					t.Fatal(err)
				}
				textV := uint64(startKernel) + k.kaslr
				if pa, err := as.Translate(textV + 0x1234); err != nil || pa != synthTextPhys+0x1234 {
					t.Errorf("Translate(_text+0x1234) = %#x, %v", pa, err)
				}
				if po, err := as.PageOffset(); err != nil || po != k.pageOffset {
					t.Errorf("PageOffset = %#x, %v", po, err)
				}
			})
		}
	}
}

// limeHeader is a LiME range header written from lime.h, for corrupting.
func limeHeader(magic, version uint32, s, e uint64) []byte {
	h := make([]byte, 32)
	binary.LittleEndian.PutUint32(h, magic)
	binary.LittleEndian.PutUint32(h[4:], version)
	binary.LittleEndian.PutUint64(h[8:], s)
	binary.LittleEndian.PutUint64(h[16:], e)
	return h
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// TestCaptureMalformed: damaged captures fail at open with an error
// naming the offset, or, for damage only reading finds, on the read.
func TestCaptureMalformed(t *testing.T) {
	page := bytes.Repeat([]byte("kinspect"), synthPage/8)
	good := cat(limeHeader(limeMagic, 1, 0x1000, 0x1fff), page)
	stream := dumpedit.FrameSnappy(page)
	trailer := func(s []byte) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(len(s))) }
	hdr2 := limeHeader(avmlMagic, 2, 0x1000, 0x1fff)
	badCRC := append([]byte(nil), stream...)
	badCRC[14]++ // the first data chunk's checksum
	for _, tc := range []struct {
		name, open, read string
		b                []byte
	}{
		{name: "short", b: good[:20], open: "at offset 0x0: truncated: 20 of 32 bytes"},
		{name: "magic", b: cat([]byte("XMiL"), good[4:]), open: "unknown magic"},
		{name: "version", b: cat(limeHeader(limeMagic, 2, 0x1000, 0x1fff), page), open: "at offset 0x4: version 2 with magic 0x4c694d45"},
		{name: "reversed", b: cat(limeHeader(limeMagic, 1, 0x2000, 0x1000), page), open: "at offset 0x8: range [0x2000, 0x1000] is empty or reversed"},
		{name: "end-overflow", b: cat(limeHeader(limeMagic, 1, 0, ^uint64(0)), page), open: "empty or reversed"},
		{name: "past-eof", b: cat(limeHeader(limeMagic, 1, 0x1000, 0x3fff), page), open: "LiME range at offset 0x0: [0x1000, 0x3fff]: 12288 bytes at 0x20 run past the end"},
		{name: "overlap", b: cat(good, limeHeader(limeMagic, 1, 0x1800, 0x27ff), page), open: "at offset 0x1020: range [0x1800, 0x2800) overlaps"},
		{name: "second-bad", b: cat(good, limeHeader(0x12345678, 1, 0x3000, 0x3fff), page), open: "LiME header at offset 0x1020: magic 0x12345678"},
		{name: "empty", b: make([]byte, 64), open: "unknown magic"},
		{name: "avml-good", b: cat(hdr2, stream, trailer(stream))},
		{name: "avml-no-id", b: cat(hdr2, stream[10:], trailer(stream[10:])), open: "AVML chunk at offset 0x20: type 0x0: a snappy stream starts with its identifier"},
		{name: "avml-bad-id", b: cat(hdr2, []byte("\xff\x06\x00\x00sNaPpZ"), stream[10:], trailer(stream)), open: "stream identifier chunk of 6 bytes is not"},
		{name: "avml-trailer", b: cat(hdr2, stream, trailer(stream[1:])), open: fmt.Sprintf("AVML range trailer at offset %#x: stream length %d", 32+len(stream), len(stream)-1)},
		{name: "avml-no-trailer", b: cat(hdr2, stream), open: "trailer at offset"},
		{name: "avml-short-stream", b: cat(limeHeader(avmlMagic, 2, 0x1000, 0x2fff), stream, trailer(stream)), open: "stream decoded to 4096 of the range's 8192 bytes: AVML chunk at offset 0x10f"},
		{name: "avml-overrun", b: cat(limeHeader(avmlMagic, 2, 0x1000, 0x17ff), stream, trailer(stream)), open: "overruns the range's 2048 bytes"},
		{name: "avml-unskippable", b: cat(hdr2, stream[:10], []byte{0x02, 0, 0, 0}, stream[10:], trailer(append(stream, 0, 0, 0, 0))), open: "AVML chunk at offset 0x2a: reserved unskippable chunk type 0x2"},
		{name: "avml-skippable", b: cat(hdr2, stream[:10], []byte{0x80, 1, 0, 0, 9, 0xfe, 0, 0, 0}, stream[10:], trailer(append(stream, 0, 0, 0, 0, 0, 0, 0, 0, 0)))},
		{name: "avml-chunk-past-eof", b: cat(hdr2, stream[:10], []byte{0x00, 0xff, 0xff, 0x00}), open: "chunk of type 0x0 and 65535 bytes runs past the end"},
		{name: "avml-crc", b: cat(hdr2, badCRC, trailer(badCRC)), read: "AVML chunk at offset 0x2e: checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newDump(bytes.NewReader(tc.b), int64(len(tc.b)))
			if tc.open != "" {
				if err == nil || !strings.Contains(err.Error(), tc.open) || !errors.Is(err, ErrFormat) && !errors.Is(err, ErrNotSupported) {
					t.Fatalf("open: %v, want an error saying %q", err, tc.open)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, synthPage)
			_, err = d.ReadPhys(buf, 0x1000)
			if tc.read != "" {
				if err == nil || !strings.Contains(err.Error(), tc.read) || !errors.Is(err, ErrFormat) {
					t.Fatalf("read: %v, want an error saying %q", err, tc.read)
				}
				return
			}
			if err != nil || !bytes.Equal(buf, page) {
				t.Fatalf("read: %v", err)
			}
		})
	}
}

// fuzzCapture opens b as a capture and reads what it says it holds.
func fuzzCapture(t *testing.T, b []byte) {
	d, err := newDump(bytes.NewReader(b), int64(len(b)), WithCachePages(64))
	if err != nil {
		if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrNotSupported) {
			t.Fatalf("open error wraps no sentinel: %v", err)
		}
		return
	}
	rs, err := d.Ranges()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3*synthPage)
	for i, r := range rs {
		if i == 8 {
			break
		}
		for _, a := range []uint64{r.Start, r.Start + r.Size/2, r.End() - 1} {
			d.ReadPhys(buf, a)
		}
	}
	d.VMCOREINFO()
	d.Kernel()
}

// smallCaptures are seeds: small LiME and AVML captures of real layouts.
func smallCaptures() [][]byte {
	mem := make([]byte, 3*synthPage)
	for i := range mem {
		mem[i] = byte(i * 7 / 5)
	}
	copy(mem[synthPage:], "OSRELEASE=6.1.0\nPAGESIZE=4096\n")
	segs := []dumpedit.Segment{{Phys: 0x1000, Off: 0, Size: synthPage}, {Phys: 0x5000, Off: synthPage, Size: 2*synthPage - 7}}
	var lime, avml bytes.Buffer
	dumpedit.WriteLiME(&lime, bytes.NewReader(mem), segs)
	dumpedit.WriteAVML(&avml, bytes.NewReader(mem), segs)
	return [][]byte{lime.Bytes(), avml.Bytes()}
}

// FuzzLiME: no capture panics, hangs or allocates what its bytes do not
// back, at open or on reading.
func FuzzLiME(f *testing.F) {
	for _, b := range smallCaptures() {
		f.Add(b)
	}
	f.Add(cat(limeHeader(limeMagic, 1, 0, 0xfff), make([]byte, 4096), limeHeader(limeMagic, 1, 0x800, 0x17ff)))
	f.Fuzz(fuzzCapture)
}

// FuzzAVML fuzzes the snappy stream of one AVML range of n bytes.
func FuzzAVML(f *testing.F) {
	page := bytes.Repeat([]byte("kinspect-avml"), 700)
	f.Add(uint32(len(page)), dumpedit.FrameSnappy(page))
	f.Add(uint32(100), dumpedit.FrameSnappy(make([]byte, 100)))
	f.Add(uint32(0x20000), dumpedit.FrameSnappy(make([]byte, 0x20000)))
	f.Fuzz(func(t *testing.T, n uint32, stream []byte) {
		n = max(n, 1) % (1 << 24)
		b := cat(limeHeader(avmlMagic, 2, 0x100000, 0x100000+uint64(n)-1), stream, binary.LittleEndian.AppendUint64(nil, uint64(len(stream))))
		fuzzCapture(t, b)
	})
}

// TestLabCaptures converts lab ELF dumps (6.1, 6.1 with 5-level paging,
// 6.12) to LiME and AVML captures and opens them: no notes, so their
// VMCOREINFO is the page found in memory, which must say what the ELF's
// note says; pages read the same as the ELF's (AVML's left-out blocks
// were zeros there); the kernel's address space is the same.
func TestLabCaptures(t *testing.T) {
	for _, name := range []string{"basic", "la57", "k612"} {
		s := labdata.Require(t, name)
		f, ok := s.Format("elf")
		if !ok {
			continue
		}
		ref, err := Open(s.Path(f.Path))
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		refAS, err := ref.Kernel()
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"lime", "avml"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), format)
				start := time.Now()
				convert := dumpedit.ELFToLiME
				if format == "avml" {
					convert = dumpedit.ELFToAVML
				}
				if err := convert(s.Path(f.Path), path); err != nil {
					t.Fatal(err)
				}
				st, _ := os.Stat(path)
				t.Logf("converted in %v: %d MiB", time.Since(start), st.Size()>>20)
				start = time.Now()
				d, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				t.Logf("opened in %v", time.Since(start))
				if d.Format().String() != format {
					t.Errorf("format %v", d.Format())
				}
				start = time.Now()
				vi := d.VMCOREINFO()
				if vi == nil {
					t.Fatalf("no VMCOREINFO found: %v", d.Problems())
				}
				t.Logf("VMCOREINFO %s, in %v", d.VMCOREINFOSource(), time.Since(start))
				if err := sameEntries(vi, ref.VMCOREINFO()); err != nil {
					t.Errorf("VMCOREINFO differs from the ELF note's: %v", err)
				}
				as, err := d.Kernel()
				if err != nil {
					t.Fatal(err)
				}
				if as.Root() != refAS.Root() || as.Levels() != refAS.Levels() {
					t.Errorf("root %#x, %d levels; ELF: %#x, %d", as.Root(), as.Levels(), refAS.Root(), refAS.Levels())
				}
				po, err := as.PageOffset()
				if rpo, _ := refAS.PageOffset(); err != nil || po != rpo {
					t.Errorf("page offset %#x (%v), ELF %#x", po, err, rpo)
				}
				rs, _ := ref.Ranges()
				rng := rand.New(rand.NewPCG(7, 11))
				want, got := make([]byte, synthPage), make([]byte, synthPage)
				var absent int
				for range 4000 {
					r := rs[rng.IntN(len(rs))]
					a := (r.Start + rng.Uint64N(r.Size)) &^ (synthPage - 1)
					if _, err := ref.ReadPhys(want, a); err != nil {
						continue
					}
					_, err := d.ReadPhys(got, a)
					if format == "avml" && errors.Is(err, ErrNotInDump) {
						absent++
						if !allZero(want) {
							t.Fatalf("page %#x: not in the AVML capture, but not zeros in the ELF dump", a)
						}
						continue
					}
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("page %#x differs from the ELF dump's (%v)", a, err)
					}
				}
				t.Logf("4000 pages compared, %d in blocks AVML left out", absent)
			})
		}
	}
}

// TestAVMLZeroBlocks: AVML (src/image.rs) splits a range into 16 MiB
// blocks from its start and leaves out the blocks that are all zeros. A
// hole that can only be such blocks (after a whole 16 MiB block, a
// multiple of 16 MiB long) reads as zeros; a hole after a shorter block
// (a range's last) or of another length is memory the capture lacks.
func TestAVMLZeroBlocks(t *testing.T) {
	const mib = 1 << 20
	mem := make([]byte, 128*mib)
	fill := func(from, to int) {
		for i := from; i < to; i += 4096 {
			copy(mem[i:], "kinspect")
		}
	}
	// Range A: 60 MiB at 1 MiB, blocks at 1, 17, 33 and 49 MiB: 17 and
	// 33 zero, 49 a 12 MiB block. Range B: 16 MiB at 77 MiB, 16 MiB after
	// A's short last block. Range C: 16 MiB at 94 MiB, 1 MiB after B.
	// Range D: 1 MiB at 112 MiB, 2 MiB after C.
	fill(1*mib, 17*mib)
	fill(49*mib, 61*mib)
	fill(77*mib, 93*mib)
	fill(94*mib, 110*mib)
	fill(112*mib, 113*mib)
	segs := []dumpedit.Segment{
		{Phys: 1 * mib, Off: 1 * mib, Size: 60 * mib},
		{Phys: 77 * mib, Off: 77 * mib, Size: 16 * mib},
		{Phys: 94 * mib, Off: 94 * mib, Size: 16 * mib},
		{Phys: 112 * mib, Off: 112 * mib, Size: 1 * mib},
	}
	var b bytes.Buffer
	if err := dumpedit.WriteAVML(&b, bytes.NewReader(mem), segs); err != nil {
		t.Fatal(err)
	}
	d := openBytes(t, b.Bytes())
	want := []Range{{1 * mib, 60 * mib}, {77 * mib, 16 * mib}, {94 * mib, 16 * mib}, {112 * mib, 1 * mib}}
	if rs, err := d.Ranges(); err != nil || fmt.Sprint(rs) != fmt.Sprint(want) {
		t.Errorf("ranges %v, %v; want %v", rs, err, want)
	}
	for _, tc := range []struct {
		addr uint64
		ok   bool
	}{
		{1 * mib, true}, {17 * mib, true}, {33*mib + 4096, true}, {49*mib - 8, true}, {60*mib + 4096, true},
		{61 * mib, false}, {70 * mib, false}, // after A's short last block
		{93 * mib, false},  // 1 MiB between B and C
		{110 * mib, false}, // 2 MiB between C and D
		{113 * mib, false}, // past the last
	} {
		buf := make([]byte, 16)
		n, err := d.ReadPhys(buf, tc.addr)
		if tc.ok {
			if err != nil || n != len(buf) || !bytes.Equal(buf, mem[tc.addr:tc.addr+16]) {
				t.Errorf("ReadPhys(%#x) = %d, %v: % x, want % x", tc.addr, n, err, buf, mem[tc.addr:tc.addr+16])
			}
		} else if !errors.Is(err, ErrNotInDump) {
			t.Errorf("ReadPhys(%#x) = %d, %v; want ErrNotInDump", tc.addr, n, err)
		}
	}
	// A read across a block and a zero hole.
	buf := make([]byte, 8192)
	if n, err := d.ReadPhys(buf, 17*mib-4096); err != nil || n != len(buf) || !bytes.Equal(buf, mem[17*mib-4096:17*mib+4096]) {
		t.Errorf("ReadPhys across a block and a hole: %d, %v", n, err)
	}
}
