package vmcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestELFSegments(t *testing.T) {
	mem := make([]byte, 64*synthPage)
	for i := range mem {
		mem[i] = byte(i * 7)
	}
	// Two segments with a hole between, the second with an excluded
	// tail (p_memsz > p_filesz, as makedumpfile -E writes).
	segs := []elfSeg{
		{paddr: 0, filesz: 8 * synthPage, memsz: 8 * synthPage},
		{paddr: 16 * synthPage, filesz: 4 * synthPage, memsz: 10 * synthPage},
	}
	b := buildELF(mem, nil, segs)
	ef, err := openELF(bytes.NewReader(b), int64(len(b)), synthPage)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		paddr uint64
		n     int
		want  error
		got   int
	}{
		{0, 100, nil, 100},
		{8*synthPage - 10, 10, nil, 10},
		{8*synthPage - 10, 20, ErrNotInDump, 10},
		{12 * synthPage, 1, ErrNotInDump, 0},
		{16*synthPage + 5, 4*synthPage - 5, nil, 4*synthPage - 5},
		{20*synthPage - 1, 2, ErrPageExcluded, 1},
		{25 * synthPage, 1, ErrPageExcluded, 0},
		{26 * synthPage, 1, ErrNotInDump, 0},
	}
	for _, tt := range tests {
		p := make([]byte, tt.n)
		n, err := ef.readPhys(p, tt.paddr)
		if n != tt.got || !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("readPhys(%#x, %d) = %d, %v; want %d, %v", tt.paddr, tt.n, n, err, tt.got, tt.want)
		}
		if !bytes.Equal(p[:n], mem[tt.paddr:tt.paddr+uint64(n)]) {
			t.Errorf("readPhys(%#x): bytes differ", tt.paddr)
		}
		var ae *AddrError
		if err != nil && (!errors.As(err, &ae) || ae.PAddr != tt.paddr+uint64(n)) {
			t.Errorf("error %v does not name paddr %#x", err, tt.paddr+uint64(n))
		}
	}
	r := ef.ranges()
	if len(r) != 2 || r[1] != (Range{16 * synthPage, 10 * synthPage}) {
		t.Errorf("ranges %v", r)
	}
}

// TestELFExtendedNumbering: e_phnum = PN_XNUM, the count in section 0's
// sh_info, as QEMU writes for many memory blocks.
func TestELFExtendedNumbering(t *testing.T) {
	mem := make([]byte, 4*synthPage)
	b := buildELF(mem, nil, []elfSeg{{paddr: 0, filesz: 4 * synthPage, memsz: 4 * synthPage}})
	sh := make([]byte, 64)
	binary.LittleEndian.PutUint32(sh[44:], 2) // sh_info: 2 program headers
	binary.LittleEndian.PutUint64(b[40:], uint64(len(b)))
	binary.LittleEndian.PutUint16(b[56:], pnXNum)
	b = append(b, sh...)
	ef, err := openELF(bytes.NewReader(b), int64(len(b)), synthPage)
	if err != nil {
		t.Fatal(err)
	}
	if len(ef.loads) != 1 {
		t.Fatalf("%d loads", len(ef.loads))
	}
}
