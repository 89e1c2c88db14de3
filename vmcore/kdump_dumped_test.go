package vmcore

import "testing"

func TestAnyDumped(t *testing.T) {
	k := &kdumpFile{maxMapnr: 200}
	k.bmOnce.Do(func() {}) // the bitmaps below stand for the file's
	k.dumped = make([]uint64, 4)
	for _, pfn := range []uint64{5, 64, 130} {
		k.dumped[pfn/64] |= 1 << (pfn % 64)
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
