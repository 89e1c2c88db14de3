package vmcore

import (
	"bytes"
	"testing"
)

func TestDecompressPage(t *testing.T) {
	k := newSynthKernel(4)
	periodic := k.mem[9<<20 : 9<<20+synthPage]
	for _, c := range []Compression{CompressZlib, CompressLZO, CompressSnappy, CompressZstd} {
		t.Run(c.String(), func(t *testing.T) {
			comp := compressPage(t, c, periodic)
			dst := make([]byte, synthPage)
			if err := decompressPage(c, dst, comp); err != nil || !bytes.Equal(dst, periodic) {
				t.Fatalf("round trip: %v", err)
			}
			// Wrong output size: a page of 4 KiB into an 8 KiB buffer,
			// and into 2 KiB.
			if err := decompressPage(c, make([]byte, 2*synthPage), comp); err == nil {
				t.Error("short output accepted")
			}
			if err := decompressPage(c, make([]byte, synthPage/2), comp); err == nil {
				t.Error("long output accepted")
			}
			for cut := 1; cut < len(comp); cut += 1 + len(comp)/20 {
				if err := decompressPage(c, dst, comp[:cut]); err == nil {
					t.Errorf("truncated to %d bytes accepted", cut)
				}
			}
		})
	}
	if err := decompressPage(Compression(99), nil, nil); err == nil {
		t.Error("unknown compression accepted")
	}
}

// FuzzLZO runs the LZO1X decoder (github.com/anchore/go-lzo) on arbitrary
// input: it must neither panic nor write past the page.
func FuzzLZO(f *testing.F) {
	k := newSynthKernel(4)
	f.Add(lzoLiteralCopy(k.mem[9<<20 : 9<<20+synthPage]))
	f.Add(lzoLiteralCopy(make([]byte, synthPage)))
	f.Add([]byte{0x11, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		dst := make([]byte, synthPage+64)
		n, err := lzoUnguarded(b, dst[:synthPage])
		if err == nil && n > synthPage {
			t.Fatalf("wrote %d bytes", n)
		}
		for _, c := range dst[synthPage:] {
			if c != 0 {
				t.Fatal("wrote past the page")
			}
		}
	})
}

// lzoUnguarded calls the decoder without the recover in
// lzoDecompress, so that the fuzzer sees a panic.
func lzoUnguarded(src, dst []byte) (int, error) { return lzoDecompressRaw(src, dst) }

func FuzzDecompressPage(f *testing.F) {
	k := newSynthKernel(4)
	periodic := k.mem[9<<20 : 9<<20+synthPage]
	for c := CompressZlib; c <= CompressZstd; c++ {
		f.Add(uint8(c), compressPage(f, c, periodic))
	}
	f.Fuzz(func(t *testing.T, c uint8, b []byte) {
		dst := make([]byte, synthPage)
		decompressPage(Compression(c%5), dst, b)
	})
}
