package vmcore

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"
)

// TestKcoreLayout builds a /proc/kcore-like core — virtual PT_LOADs for
// text and the direct map with physical addresses, and a vmalloc one
// without (p_paddr = -1) — and reads through it.
func TestKcoreLayout(t *testing.T) {
	k := newSynthKernel(4)
	textV := uint64(startKernel) + k.kaslr
	notes := synthNotes(1, k.vmcoreinfo(), 0, 0)
	segs := []elfSeg{
		{paddr: synthTextPhys, vaddr: textV, filesz: 4 << 20, memsz: 4 << 20},
		{paddr: 0, vaddr: k.pageOffset, filesz: synthMemSize, memsz: synthMemSize},
	}
	b := buildELF(k.mem, notes, segs)
	// A vmalloc segment with no physical address: patch in as a third
	// PT_LOAD reusing the text data.
	b = appendVirtualSeg(b, 0xffffc90000000000, 64*synthPage)
	d, err := openKcoreBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Format() != FormatKcore {
		t.Fatalf("format %v", d.Format())
	}
	as, err := d.Kernel()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := as.ReadVirt(buf, textV+64); err != nil || !bytes.Equal(buf, k.mem[synthTextPhys+64:synthTextPhys+128]) {
		t.Errorf("text read: %v", err)
	}
	if _, err := as.ReadVirt(buf, k.vmalloc+synthPage); !errors.Is(err, ErrNotPresent) {
		t.Errorf("vmalloc hole: %v", err)
	}
}

func appendVirtualSeg(b []byte, vaddr, size uint64) []byte {
	// Rewrite: the simplest is to rebuild the program header table at
	// the end of the file.
	le := leU64
	_ = le
	phoff := int(leU64(b[32:]))
	phnum := int(uint16(b[56]) | uint16(b[57])<<8)
	ph := bytes.Clone(b[phoff : phoff+56*phnum])
	extra := make([]byte, 56)
	putLeU64(extra[0:], ptLoad)
	putLeU64(extra[8:], uint64(64)) // data: anything inside the file
	putLeU64(extra[16:], vaddr)
	putLeU64(extra[24:], noPAddr)
	putLeU64(extra[32:], size)
	putLeU64(extra[40:], size)
	newOff := len(b)
	b = append(b, ph...)
	b = append(b, extra...)
	putLeU64(b[32:], uint64(newOff))
	b[56], b[57] = byte(phnum+1), byte((phnum+1)>>8)
	return b
}

func openKcoreBytes(t *testing.T, b []byte) (*Dump, error) {
	return openKcore(writeTemp(t, "kcore", b))
}

func TestOpenLiveMissing(t *testing.T) {
	_, err := openKcore("/nonexistent/kcore")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
