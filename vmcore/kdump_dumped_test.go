package vmcore

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestAnyDumped(t *testing.T) {
	mem := make([]byte, 200*synthPage)
	b := buildKdump(t, mem, kdumpOpts{excluded: func(pfn uint64) bool { return !slices.Contains([]uint64{5, 64, 130}, pfn) }})
	k, err := openKdump(bytes.NewReader(b), int64(len(b)), int64(len(b)), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lo, hi uint64
		want   bool
	}{
		{0, 5, false}, {0, 6, true}, {5, 6, true}, {6, 64, false}, {6, 65, true},
		{65, 130, false}, {65, 131, true}, {131, 200, false}, {131, 1 << 20, false}, {128, 192, true},
	} {
		if got, ok := k.anyDumped(c.lo, c.hi); !ok || got != c.want {
			t.Errorf("anyDumped(%d, %d) = %v, %v; want %v", c.lo, c.hi, got, ok, c.want)
		}
	}
}

// TestKdumpBitmapChunks reads a 1 GiB machine's bitmaps, 8 chunks of
// 32768 pfns, dumped at the bottom and top only (and max_mapnr not a
// multiple of 64): pages, excluded pages, anyDumped across chunks, the
// ranges and the memory size, and that only the chunks needed are read.
func TestKdumpBitmapChunks(t *testing.T) {
	const mem = 1<<30 - 3*synthPage
	p := filepath.Join(t.TempDir(), "kdump")
	top := writeSparseKdump(t, p, mem, 40000, 300) // the low run crosses a chunk
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	k := d.kd
	page := make([]byte, synthPage)
	for _, c := range []struct {
		pfn  uint64
		want error
	}{{0, nil}, {32767, nil}, {32768, nil}, {39999, nil}, {40000, ErrPageExcluded}, {100000, ErrPageExcluded},
		{top - 300, ErrPageExcluded}, {top - 299, nil}, {top, nil}, {top + 1, ErrNotInDump}} {
		err := k.readPage(c.pfn, page)
		if !errors.Is(err, c.want) || (c.want == nil && leU64(page) != c.pfn) {
			t.Errorf("pfn %#x: %v (page holds %#x), want %v", c.pfn, err, leU64(page), c.want)
		}
	}
	if k.ndumps != 40300 {
		t.Errorf("ndumps = %d, want 40300", k.ndumps)
	}
	for _, c := range []struct{ lo, hi uint64 }{{40000, top - 299}, {40000, top - 298}, {39999, 50000}, {100000, 200000}} {
		want := c.lo < 40000 || c.hi > top-299
		if got, ok := k.anyDumped(c.lo, c.hi); !ok || got != want {
			t.Errorf("anyDumped(%d, %d) = %v, %v; want %v", c.lo, c.hi, got, ok, want)
		}
	}
	// 8 chunks: the pages above read chunks 0, 1, 3 and 7 of either bitmap.
	if n := len(k.chunks); n > 8 {
		t.Errorf("%d bitmap chunks read", n)
	}
	rs, err := d.Ranges()
	if err != nil || len(rs) != 1 || rs[0].Start != 0 || rs[0].Size != mem {
		t.Errorf("Ranges() = %v, %v; want one of %#x bytes", rs, err, uint64(mem))
	}
	if n, err := d.MemorySize(); err != nil || n != mem {
		t.Errorf("MemorySize() = %d, %v; want %d", n, err, uint64(mem))
	}
}
