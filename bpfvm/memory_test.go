package bpfvm

import (
	"bytes"
	"errors"
	"testing"
)

func TestOverlay(t *testing.T) {
	base := &fakeMem{base: kernelData, data: make([]byte, 4096+100)}
	for i := range base.data {
		base.data[i] = byte(i)
	}
	m := New(base, Options{})
	// Across the page boundary: one change of 4 bytes.
	if err := m.Write(kernelData+4094, []byte{0xa, 0xb, 0xc, 0xd}); err != nil {
		t.Fatal(err)
	}
	// The same value again: no change.
	if err := m.Write(kernelData+10, []byte{10}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if err := m.Read(kernelData+4093, got); err != nil || !bytes.Equal(got, []byte{0xfd, 0xa, 0xb, 0xc, 0xd, 0x02}) {
		t.Errorf("read back %x, %v", got, err)
	}
	if base.data[4094] != 0xfe {
		t.Errorf("the base was written")
	}
	ch := m.Changes()
	if len(ch) != 1 || ch[0].Addr != kernelData+4094 || !bytes.Equal(ch[0].Before, []byte{0xfe, 0xff, 0, 1}) || !bytes.Equal(ch[0].After, []byte{0xa, 0xb, 0xc, 0xd}) {
		t.Errorf("changes %+v", ch)
	}
	// The second page is readable for its first 100 bytes only.
	if err := m.Read(kernelData+4096+96, got[:4]); err != nil {
		t.Errorf("read of the last readable bytes: %v", err)
	}
	err := m.Read(kernelData+4096+98, got[:4])
	var me *MemError
	if !errors.As(err, &me) || !errors.Is(err, ErrFault) || !errors.Is(err, errUnmapped) || me.Addr != kernelData+4096+98 || me.Size != 4 {
		t.Errorf("read past the readable bytes: %v", err)
	}
	if err := m.Write(kernelData+4096+100, []byte{1}); !errors.Is(err, ErrFault) {
		t.Errorf("write of an unreadable byte: %v", err)
	}
	m.Revert()
	if len(m.Changes()) != 0 {
		t.Errorf("changes after Revert: %+v", m.Changes())
	}
	if err := m.Read(kernelData+4094, got[:2]); err != nil || got[0] != 0xfe || got[1] != 0xff {
		t.Errorf("after Revert: %x %v", got[:2], err)
	}
	// No base memory: every kernel address faults.
	if err := New(nil, Options{}).Read(kernelData, got); !errors.Is(err, ErrFault) {
		t.Errorf("read without a base: %v", err)
	}
}

func TestAlloc(t *testing.T) {
	m := New(nil, Options{})
	a, err := m.Alloc("a", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Alloc("b", 5000, true)
	c, _ := m.Alloc("c", 0, false)
	if a.Addr != AllocBase || b.Addr != AllocBase+2*pageSize || c.Addr != b.Addr+3*pageSize || a.Size() != 10 || b.End() != b.Addr+5000 {
		t.Errorf("regions at %#x %#x %#x", a.Addr, b.Addr, c.Addr)
	}
	if r, ok := m.RegionAt(b.Addr + 4999); !ok || r != b {
		t.Errorf("RegionAt the last byte of b")
	}
	if _, ok := m.RegionAt(b.Addr + 5000); ok {
		t.Errorf("RegionAt after b")
	}
	if err := m.WriteUint(a.Addr+2, 8, 0x0102030405060708); err != nil || a.Bytes()[2] != 8 || a.Bytes()[9] != 1 {
		t.Errorf("write into a: %v %x", err, a.Bytes())
	}
	if err := m.WriteUint(a.Addr+4, 8, 0); !errors.Is(err, ErrFault) {
		t.Errorf("write across a's end: %v", err)
	}
	if err := m.WriteUint(b.Addr, 1, 0); !errors.Is(err, ErrFault) {
		t.Errorf("write to read-only b: %v", err)
	}
	if _, err := m.ReadUint(b.Addr, 4); err != nil {
		t.Errorf("read of read-only b: %v", err)
	}
	if _, err := m.ReadUint(a.Addr+pageSize, 1); !errors.Is(err, ErrFault) {
		t.Errorf("read of the guard: %v", err)
	}
	if _, err := m.Alloc("big", AllocLimit, false); !errors.Is(err, ErrNoMemory) {
		t.Errorf("alloc beyond the limit: %v", err)
	}
	if len(m.Regions()) != 3 {
		t.Errorf("%d regions", len(m.Regions()))
	}
}

func TestStackBounds(t *testing.T) {
	m := New(nil, Options{})
	p := NewProgram("p", prog(exit()), nil)
	m.Start(p)
	// Frame 0 is active, frame 1 is not.
	if err := m.WriteUint(StackBase+StackStride-StackSize, 8, 1); err != nil {
		t.Errorf("write at the stack's bottom: %v", err)
	}
	for _, a := range []uint64{StackBase + StackStride - StackSize - 1, StackBase + 2*StackStride - 8, StackBase + MaxCallFrames*StackStride, FuncBase} {
		if _, err := m.ReadUint(a, 1); !errors.Is(err, ErrFault) {
			t.Errorf("read at %#x: %v", a, err)
		}
	}
	if _, err := m.ReadUint(StackBase+StackStride-4, 8); !errors.Is(err, ErrFault) {
		t.Errorf("read across the stack's top: %v", err)
	}
	if err := m.Read(^uint64(0)-2, make([]byte, 8)); !errors.Is(err, ErrFault) {
		t.Errorf("read wrapping around: %v", err)
	}
}

func TestReadCString(t *testing.T) {
	base := &fakeMem{base: kernelData, data: []byte("0123456789")}
	m := New(base, Options{})
	r, _ := m.Alloc("s", 6, false)
	copy(r.Bytes(), "ab\x00cd\x00")
	cases := []struct {
		addr  uint64
		max   int
		want  string
		found bool
		err   bool
	}{
		{r.Addr, 10, "ab", true, false},
		{r.Addr, 2, "ab", false, false},
		{r.Addr + 3, 10, "cd", true, false},
		{kernelData + 4, 3, "456", false, false},
		{kernelData + 4, 100, "456789", false, true},
		{0, 4, "", false, true},
	}
	for _, c := range cases {
		s, found, err := m.ReadCString(c.addr, c.max)
		if string(s) != c.want || found != c.found || (err != nil) != c.err {
			t.Errorf("ReadCString(%#x, %d) = %q, %v, %v", c.addr, c.max, s, found, err)
		}
	}
}

func TestMapAt(t *testing.T) {
	base := &fakeMem{base: kernelData, data: make([]byte, 4096)}
	m := New(base, Options{})
	// The base's page is never hidden.
	if err := m.MapAt(kernelData+8, 8); !errors.Is(err, ErrFault) {
		t.Errorf("map over the base: %v", err)
	}
	// Beyond the base: two pages, zeroed and writable, never Changes.
	at := uint64(kernelData + 0x10000 + 4090)
	if err := m.MapAt(at, 16); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(at, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 12)
	if err := m.Read(at, got); err != nil || !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0}) {
		t.Errorf("read back %x, %v", got, err)
	}
	if ch := m.Changes(); len(ch) != 0 {
		t.Errorf("changes %+v", ch)
	}
	// Mapping again keeps the contents.
	if err := m.MapAt(at, 4); err != nil {
		t.Fatal(err)
	}
	m.Revert()
	if err := m.Read(at, got[:2]); err != nil || got[0] != 1 {
		t.Errorf("after Revert: %x %v", got[:2], err)
	}
	if err := m.MapAt(0x1000, 8); !errors.Is(err, ErrFault) {
		t.Errorf("map of a user address: %v", err)
	}
	if err := New(base, Options{MaxAlloc: 4096}).MapAt(at, 16); !errors.Is(err, ErrNoMemory) {
		t.Errorf("map beyond MaxAlloc: %v", err)
	}
}
