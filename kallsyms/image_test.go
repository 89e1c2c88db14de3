package kallsyms

import (
	"slices"
	"testing"
)

func buildImage(syms []synthSym) *image {
	b := newBuilder(len(syms))
	for _, s := range syms {
		b.add([]byte(s.name), s.addr, s.typ)
	}
	im := b.done()
	im.finish()
	return im
}

func TestImageUnsorted(t *testing.T) {
	im := buildImage([]synthSym{
		{"c", 't', 0xffffffff81003000},
		{"_text", 'T', 0xffffffff81000000},
		{"b", 't', 0xffffffff81002000},
		{"a", 't', 0xffffffff81001000},
		{"b", 't', 0xffffffff81000800},
	})
	if im.byAddr == nil {
		t.Fatal("no address order for an unsorted table")
	}
	tests := []struct {
		addr uint64
		want string
		ok   bool
	}{
		{0xffffffff81000000, "_text+0x0/0x800", true},
		{0xffffffff81000900, "b+0x100/0x800", true},
		{0xffffffff81001fff, "a+0xfff/0x1000", true},
		{0xffffffff81003000, "c+0x0", true},
		{0xffffffff81003001, "", false},
		{0xffffffff80ffffff, "", false},
	}
	for _, tt := range tests {
		l, ok := im.locate(tt.addr)
		if ok != tt.ok || (ok && l.String() != tt.want) {
			t.Errorf("locate(%#x) = %v, %v; want %s, %v", tt.addr, l, ok, tt.want, tt.ok)
		}
	}
	var addrs []uint64
	for _, i := range im.lookup("b") {
		addrs = append(addrs, im.addrs[i])
	}
	if !slices.Equal(addrs, []uint64{0xffffffff81000800, 0xffffffff81002000}) {
		t.Errorf("lookup(b) at %#x, want by address", addrs)
	}
}

func TestImageSizes(t *testing.T) {
	im := buildImage([]synthSym{
		{"__per_cpu_start", 'A', 0},
		{"cpu_number", 'A', 0x1f000},
		{"__per_cpu_end", 'A', 0x2c000},
		{"_text", 'T', 0xffffffff81000000},
		{"startup_64", 'T', 0xffffffff81000000},
		{"f", 'T', 0xffffffff81000100},
	})
	tests := []struct {
		name string
		size uint64
	}{
		{"__per_cpu_start", 0x1f000},
		{"cpu_number", 0xd000},
		{"__per_cpu_end", 0}, // not to _text
		{"_text", 0x100},
		{"startup_64", 0x100},
		{"f", 0},
	}
	for _, tt := range tests {
		if got := im.symbol(im.first(tt.name)).Size; got != tt.size {
			t.Errorf("size of %s = %#x, want %#x", tt.name, got, tt.size)
		}
	}
	if im.lo != 0xffffffff81000000 || im.hi != 0xffffffff81000100 {
		t.Errorf("range %#x-%#x", im.lo, im.hi)
	}
}
