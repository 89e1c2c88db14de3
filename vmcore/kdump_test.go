package vmcore

import (
	"bytes"
	"errors"
	"math/bits"
	"testing"
)

// TestKdumpRank checks the descriptor index (rank of the 2nd bitmap)
// against a plain count, over a bitmap with irregular holes.
func TestKdumpRank(t *testing.T) {
	k := newSynthKernel(4)
	excl := func(pfn uint64) bool { return bits.OnesCount64(pfn*0x9e3779b97f4a7c15)%3 == 0 }
	b := buildKdump(t, k.mem, kdumpOpts{comp: CompressNone, excluded: excl})
	kf, err := openKdump(bytes.NewReader(b), int64(len(b)), int64(len(b)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := kf.loadBitmaps(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for pfn := uint64(0); pfn < kf.maxMapnr; pfn++ {
		if !excl(pfn) {
			if got, dumped, err := kf.descIndex(pfn); got != n || !dumped || err != nil {
				t.Fatalf("descIndex(%#x) = %d, %v, %v; want %d, true", pfn, got, dumped, err, n)
			}
			n++
		}
	}
	if kf.ndumps != n {
		t.Errorf("ndumps = %d, want %d", kf.ndumps, n)
	}
	page := make([]byte, synthPage)
	for _, pfn := range []uint64{0, 1, 2, 3, 100, 4095} {
		err := kf.readPage(pfn, page)
		if excl(pfn) != errors.Is(err, ErrPageExcluded) || (!excl(pfn) && !bytes.Equal(page, k.mem[pfn*synthPage:(pfn+1)*synthPage])) {
			t.Errorf("pfn %d: %v", pfn, err)
		}
	}
	if err := kf.readPage(kf.maxMapnr, page); !errors.Is(err, ErrNotInDump) {
		t.Errorf("beyond max_mapnr: %v", err)
	}
}

// TestKdumpOpenIsLazy: Open reads no bitmap and no page.
func TestKdumpOpenIsLazy(t *testing.T) {
	k := newSynthKernel(4)
	b := buildKdump(t, k.mem, kdumpOpts{comp: CompressZlib, notes: synthNotes(2, k.vmcoreinfo(), k.root, 0)})
	r := &countingReader{r: bytes.NewReader(b)}
	d, err := newDump(r, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if r.n > 3*synthPage {
		t.Errorf("open read %d bytes", r.n)
	}
	if d.kd.rank != nil {
		t.Error("bitmaps loaded at open")
	}
}

type countingReader struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += n
	return n, err
}

// FuzzKdumpHeader's seeds are whole small dumps (tens of KiB): run it with a short
// minimization, or the fuzzer spends its time minimizing each new input:
//
//	go test -run XXX -fuzz ^FuzzKdumpHeader$ -fuzzminimizetime 50x ./vmcore
func FuzzKdumpHeader(f *testing.F) {
	k := newSynthKernel(4)
	small := k.mem[:256*synthPage]
	notes := synthNotes(1, "OSRELEASE=x\nPAGESIZE=4096\n", 0x1000, 0)
	for _, c := range []Compression{CompressZlib, CompressLZO, CompressNone} {
		b := buildKdump(f, small, kdumpOpts{comp: c, notes: notes, excluded: excludedPFN})
		f.Add(b[:min(len(b), 1<<15)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := newDump(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrNotSupported) {
				t.Fatal(err)
			}
			return
		}
		d.MemorySize()
		d.Ranges()
		page := make([]byte, 2*synthPage)
		for _, pa := range []uint64{0, synthPage, 7 * synthPage, 100*synthPage - 5} {
			if _, err := d.ReadPhys(page, pa); err != nil && !errors.Is(err, ErrFormat) && !errors.Is(err, ErrPageExcluded) && !errors.Is(err, ErrNotInDump) && !errors.Is(err, ErrNotSupported) {
				t.Fatalf("ReadPhys: %v", err)
			}
		}
		if as, err := d.Kernel(); err == nil {
			as.ReadVirt(page, 0xffffffff81000000)
		}
	})
}
