package vmcore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// flatStream writes records (offset, data) as a flattened file.
func flatStream(recs []flatRec) []byte {
	var out bytes.Buffer
	fh := make([]byte, flatHeaderSize)
	copy(fh, flatSignature)
	binary.BigEndian.PutUint64(fh[16:], flatTypeFlat)
	binary.BigEndian.PutUint64(fh[24:], flatVersion)
	out.Write(fh)
	for _, r := range recs {
		binary.Write(&out, binary.BigEndian, [2]int64{r.off, int64(len(r.data))})
		out.Write(r.data)
	}
	binary.Write(&out, binary.BigEndian, [2]int64{-1, -1})
	return out.Bytes()
}

type flatRec struct {
	off  int64
	data []byte
}

// rearrange is makedumpfile -R: write each record at its offset, in
// order, into a sparse file.
func rearrange(recs []flatRec) []byte {
	var out []byte
	for _, r := range recs {
		if end := int(r.off) + len(r.data); end > len(out) {
			out = append(out, make([]byte, end-len(out))...)
		}
		copy(out[r.off:], r.data)
	}
	return out
}

func TestFlatIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tests := []struct {
		name string
		recs []flatRec
	}{
		{"in order", []flatRec{{0, []byte("hello")}, {5, []byte(" world")}}},
		{"out of order with hole", []flatRec{{100, []byte("tail")}, {0, []byte("head")}}},
		{"overwrite", []flatRec{{0, []byte("aaaaaaaaaa")}, {3, []byte("BBB")}, {0, []byte("c")}}},
		{"nested overwrites", []flatRec{{2, []byte("xxxx")}, {0, []byte("0123456789")}, {4, []byte("YY")}}},
	}
	var random []flatRec
	for range 300 {
		n := 1 + rng.IntN(40)
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		random = append(random, flatRec{int64(rng.IntN(500)), d})
	}
	tests = append(tests, struct {
		name string
		recs []flatRec
	}{"random overlaps", random})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := flatStream(tt.recs)
			ff, err := openFlat(bytes.NewReader(stream), int64(len(stream)))
			if err != nil {
				t.Fatal(err)
			}
			want := rearrange(tt.recs)
			if ff.size != int64(len(want)) || ff.records != len(tt.recs) {
				t.Fatalf("size %d records %d; want %d, %d", ff.size, ff.records, len(want), len(tt.recs))
			}
			for off := 0; off < len(want); off++ {
				for _, n := range []int{1, 7, len(want) - off} {
					if off+n > len(want) {
						continue
					}
					got := make([]byte, n)
					k, err := ff.ReadAt(got, int64(off))
					if k != n || err != nil || !bytes.Equal(got, want[off:off+n]) {
						t.Fatalf("ReadAt(%d, %d) = %d, %v: %q, want %q", n, off, k, err, got, want[off:off+n])
					}
				}
			}
			if _, err := ff.ReadAt(make([]byte, 1), int64(len(want))); err != io.EOF {
				t.Errorf("read past the end: %v", err)
			}
		})
	}
}

// FuzzFlattenedIndex's seeds are whole small dumps (tens of KiB): run it with a short
// minimization, or the fuzzer spends its time minimizing each new input:
//
//	go test -run XXX -fuzz ^FuzzFlattenedIndex$ -fuzzminimizetime 50x ./vmcore
func FuzzFlattenedIndex(f *testing.F) {
	k := newSynthKernel(4)
	f.Add(buildKdump(f, k.mem[:1<<20], kdumpOpts{comp: CompressZlib, flat: true, shuffle: true, overwrite: true, chunk: 3000})[:1<<16])
	f.Add(flatStream([]flatRec{{0, []byte("abc")}, {1, []byte("z")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ff, err := openFlat(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatal(err)
			}
			return
		}
		if ff.size > int64(len(b))*(1<<20) && len(ff.extents) == 0 {
			t.Fatal("size without extents")
		}
		buf := make([]byte, 64)
		ff.ReadAt(buf, 0)
		ff.ReadAt(buf, ff.size-1)
	})
}
