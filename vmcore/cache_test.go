package vmcore

import (
	"bytes"
	"testing"
)

func TestPageCache(t *testing.T) {
	const ps = 16
	c := newPageCache(3, ps)
	page := func(b byte) []byte { return bytes.Repeat([]byte{b}, ps) }
	for i := range 3 {
		c.put(uint64(i), page(byte(i)))
	}
	p := make([]byte, 4)
	if n, ok := c.read(1, 12, p); !ok || n != 4 || p[0] != 1 {
		t.Fatalf("read(1) = %d, %v, %v", n, ok, p)
	}
	// Page 1 was referenced: CLOCK evicts 0, then 2, keeping 1.
	c.put(10, page(10))
	c.put(11, page(11))
	if _, ok := c.read(1, 0, p); !ok {
		t.Error("referenced page evicted")
	}
	if _, ok := c.read(0, 0, p); ok {
		t.Error("page 0 still cached")
	}
	if len(c.index) != 3 {
		t.Errorf("%d pages cached", len(c.index))
	}
	c.reset()
	if _, ok := c.read(1, 0, p); ok {
		t.Error("reset kept a page")
	}
	off := newPageCache(0, ps)
	off.put(1, page(1))
	if _, ok := off.read(1, 0, p); ok {
		t.Error("disabled cache cached")
	}
}
