package btfload

import (
	"errors"
	"testing"
)

func TestIndexMatchesCilium(t *testing.T) {
	s := liveSpec(t)
	ix, err := s.index()
	if err != nil {
		t.Fatal(err)
	}
	// Type IDs start at 1; the index holds types 1..N.
	for _, id := range []int{1, 2, len(ix.entries) / 2, len(ix.entries)} {
		typ, err := s.BTF().TypeByID(uint32ID(id))
		if err != nil {
			t.Fatal(err)
		}
		if got := ix.name(ix.entries[id-1].nameOff); got != typ.TypeName() && typ.TypeName() != "" {
			t.Errorf("type %d: index name %q, cilium %q", id, got, typ.TypeName())
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := []byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}
	if _, err := parseIndex(good, nil); err != nil {
		t.Fatalf("minimal BTF: %v", err)
	}
	for name, b := range map[string][]byte{
		"short":     good[:10],
		"magic":     append([]byte{0, 0}, good[2:]...),
		"strings":   func() []byte { c := append([]byte{}, good...); c[20] = 99; return c }(),
		"hdr_len":   func() []byte { c := append([]byte{}, good...); c[4] = 200; return c }(),
		"truncated": func() []byte { c := append([]byte{}, good...); c[12] = 12; return append(c, make([]byte, 6)...) }(),
	} {
		if _, err := parseIndex(b, nil); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err %v, want ErrFormat", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	if s, err := LoadLive(); err == nil && len(s.Raw()) > 4096 {
		f.Add(s.Raw()[:4096])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseIndex(b, nil)
		if s, err := Parse(b, "fuzz"); err == nil {
			s.Type("struct x")
			s.TypeNames(func(string) {})
		}
	})
}
