package main

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// writeRawKdump writes a minimal uncompressed kdump file as makedumpfile
// lays it out, with the given pages dumped; nil pages share one zero page.
func writeRawKdump(t *testing.T, path string, pages map[uint64][]byte) {
	const bs = 4096
	le := binary.LittleEndian
	hdr := make([]byte, bs)
	copy(hdr, "KDUMP   ")
	le.PutUint32(hdr[8:], 6)               // header_version
	le.PutUint32(hdr[kdhBlockSize:], bs)   // block_size
	le.PutUint32(hdr[kdhSubHdrSize:], 1)   // sub_hdr_size
	le.PutUint32(hdr[kdhBitmapBlocks:], 2) // one block per bitmap
	sub := make([]byte, bs)
	le.PutUint64(sub[kshMaxMapnr64:], 64)
	bm := make([]byte, 2*bs)
	var pfns []uint64
	for pfn := uint64(0); pfn < 64; pfn++ {
		if _, ok := pages[pfn]; ok {
			pfns = append(pfns, pfn)
			bm[pfn/8] |= 1 << (pfn % 8)
			bm[bs+pfn/8] |= 1 << (pfn % 8)
		}
	}
	descOff := int64(4 * bs)
	dataOff := descOff + int64(24*len(pfns))
	var descs, data bytes.Buffer
	zero := dataOff
	data.Write(make([]byte, bs))
	for _, pfn := range pfns {
		d := make([]byte, 24)
		le.PutUint32(d[8:], bs)
		if p := pages[pfn]; p == nil {
			le.PutUint64(d, uint64(zero))
		} else {
			le.PutUint64(d, uint64(dataOff+int64(data.Len())))
			data.Write(p)
		}
		descs.Write(d)
	}
	var f bytes.Buffer
	f.Write(hdr)
	f.Write(sub)
	f.Write(bm)
	f.Write(descs.Bytes())
	f.Write(data.Bytes())
	if err := os.WriteFile(path, f.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRecompressKdump(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	random := make([]byte, 4096)
	rnd.Read(random)
	text := bytes.Repeat([]byte("kinspect page "), 300)[:4096]
	pages := map[uint64][]byte{0: random, 1: nil, 3: text, 7: nil, 63: random}
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	writeRawKdump(t, raw, pages)

	for _, tt := range []struct {
		comp string
		flag uint32
		dec  func([]byte) ([]byte, error)
	}{
		{"zstd", 0x20, func(b []byte) ([]byte, error) {
			d, _ := zstd.NewReader(nil)
			return d.DecodeAll(b, nil)
		}},
		{"snappy", 0x4, func(b []byte) ([]byte, error) { return snappy.Decode(nil, b) }},
	} {
		t.Run(tt.comp, func(t *testing.T) {
			out := filepath.Join(dir, tt.comp)
			if err := recompressKdump(raw, out, tt.comp); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			le := binary.LittleEndian
			if st := le.Uint32(b[kdhStatus:]); st&tt.flag == 0 {
				t.Errorf("header status %#x lacks %#x", st, tt.flag)
			}
			pfns := []uint64{0, 1, 3, 7, 63}
			offsets := map[uint64]uint64{}
			for i, pfn := range pfns {
				d := b[4*4096+24*i:]
				off, size, flags := le.Uint64(d), le.Uint32(d[8:]), le.Uint32(d[12:])
				offsets[pfn] = off
				got := b[off : off+uint64(size)]
				if flags&tt.flag != 0 {
					if got, err = tt.dec(got); err != nil {
						t.Fatalf("pfn %d: %v", pfn, err)
					}
				} else if flags != 0 {
					t.Fatalf("pfn %d: flags %#x", pfn, flags)
				}
				want := pages[pfn]
				if want == nil {
					want = make([]byte, 4096)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("pfn %d: page differs after recompression", pfn)
				}
				if pfn == 3 && flags == 0 {
					t.Errorf("pfn 3: a compressible page was stored raw")
				}
				if pfn == 0 && flags != 0 {
					t.Errorf("pfn 0: random data stored compressed (flags %#x)", flags)
				}
			}
			if offsets[1] != offsets[7] {
				t.Errorf("zero pages no longer share data: %#x and %#x", offsets[1], offsets[7])
			}
		})
	}
}

func TestRecompressRejects(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, bytes.Repeat([]byte{0}, 8192), 0o644)
	if err := recompressKdump(bad, filepath.Join(dir, "out"), "zstd"); err == nil {
		t.Error("no error for a file without the KDUMP signature")
	}
	if err := recompressKdump(filepath.Join(dir, "missing"), filepath.Join(dir, "out"), "zstd"); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestVersionLess(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		less bool
	}{
		{"linux-image-6.1.0-9-amd64", "linux-image-6.1.0-56-amd64", true},
		{"linux-image-6.1.0-56-amd64", "linux-image-6.1.0-9-amd64", false},
		{"linux-image-6.12.9+deb12-amd64", "linux-image-6.12.117+deb12-amd64", true},
		{"linux-image-6.12.117+deb12-amd64", "linux-image-6.12.117+deb12-amd64", false},
	} {
		if got := versionLess(tt.a, tt.b); got != tt.less {
			t.Errorf("versionLess(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}
