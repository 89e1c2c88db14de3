package kallsyms

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// symsFor drops the per-CPU symbols at low addresses for encodings that
// cannot hold them (they are in the image from 6.15).
func symsFor(enc Encoding) []synthSym {
	syms := synthSyms()
	if enc == EncodingAbsolutePercpu || enc == EncodingAbsolute {
		return syms
	}
	return slices.DeleteFunc(syms, func(s synthSym) bool { return isPercpu(s.addr) })
}

func TestDecodeEncodings(t *testing.T) {
	tests := []struct {
		name      string
		opts      synthOptions
		wantIndex string
	}{
		{"absolute", synthOptions{enc: EncodingAbsolute}, "sorted"},
		{"absolute-percpu 6.1", synthOptions{enc: EncodingAbsolutePercpu}, "sorted"},
		{"absolute-percpu 6.2", synthOptions{enc: EncodingAbsolutePercpu, layout: layout62}, "kallsyms_seqs_of_names"},
		{"absolute-percpu 6.2-rc seqs u32", synthOptions{enc: EncodingAbsolutePercpu, layout: layout62, seqWidth: 4}, "kallsyms_seqs_of_names"},
		{"absolute-percpu 6.10", synthOptions{enc: EncodingAbsolutePercpu, layout: layout610}, "kallsyms_seqs_of_names"},
		{"relative 6.15", synthOptions{enc: EncodingRelative, layout: layout610}, "kallsyms_seqs_of_names"},
		{"relative no seqs", synthOptions{enc: EncodingRelative}, "sorted"},
		{"place-relative", synthOptions{enc: EncodingPlaceRelative, layout: layout610}, "kallsyms_seqs_of_names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := buildSynth(symsFor(tt.opts.enc), tt.opts)
			tab, err := Decode(st.mem, st.loc)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := tab.Info()
			if info.Encoding != tt.opts.enc {
				t.Errorf("encoding %v, want %v", info.Encoding, tt.opts.enc)
			}
			if !strings.HasPrefix(info.NameIndex, tt.wantIndex) {
				t.Errorf("name index %q, want %q", info.NameIndex, tt.wantIndex)
			}
			if info.BigNames != 1 {
				t.Errorf("%d two-byte lengths, want 1", info.BigNames)
			}
			var got []synthSym
			for s := range tab.All() {
				got = append(got, synthSym{s.Name, s.Type, s.Addr})
			}
			if !slices.Equal(got, st.syms) {
				t.Errorf("decoded\n%v\nwant\n%v", got, st.syms)
			}
			checkLookups(t, tab, st.syms)
		})
	}
}

// checkLookups looks every symbol up both ways.
func checkLookups(t *testing.T, tab *Table, syms []synthSym) {
	t.Helper()
	for _, s := range syms {
		found, err := tab.Lookup(s.name)
		if err != nil {
			t.Errorf("Lookup(%q): %v", s.name, err)
			continue
		}
		if !slices.ContainsFunc(found, func(f Symbol) bool { return f.Addr == s.addr && f.Type == s.typ }) {
			t.Errorf("Lookup(%q) = %v, want one at %#x", s.name, found, s.addr)
		}
		if isPercpu(s.addr) {
			continue
		}
		l, err := tab.LookupAddr(s.addr)
		if err != nil {
			t.Errorf("LookupAddr(%#x): %v", s.addr, err)
			continue
		}
		if l.Addr != s.addr || l.Offset != 0 {
			t.Errorf("LookupAddr(%#x) = %v at %#x", s.addr, l, l.Addr)
		}
	}
}

func TestDecodeChecksKnown(t *testing.T) {
	st := buildSynth(synthSyms(), synthOptions{enc: EncodingAbsolutePercpu})
	st.loc.Known = map[string]uint64{"init_uts_ns": 0xffffffff82a12340, "_stext": 0xffffffff81000000, "not_in_kallsyms": 1}
	tab, err := Decode(st.mem, st.loc)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := tab.Info(); info.Checked != 2 {
		t.Errorf("checked %d symbols, want 2", info.Checked)
	}
	st.loc.Known = map[string]uint64{"init_uts_ns": 0xffffffff82a12340, "jiffies": 0xffff888001234000}
	tab, err = Decode(st.mem, st.loc)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := tab.Info(); info.Checked != 1 || !slices.Equal(info.Disagreed, []string{"jiffies"}) {
		t.Errorf("checked %d, disagreed %q; want 1, [jiffies]", info.Checked, info.Disagreed)
	}
	st.loc.Known = map[string]uint64{"init_uts_ns": 0xffffffff82a12348}
	_, err = Decode(st.mem, st.loc)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "init_uts_ns") {
		t.Errorf("wrong known address: err = %v, want ErrFormat naming init_uts_ns", err)
	}
}

// A plain relative table whose offsets look negative (it cannot happen
// in a real kernel, but the known symbols must win over the heuristic).
func TestDecodeKnownChoosesEncoding(t *testing.T) {
	syms := []synthSym{
		{"_text", 'T', 0xffffffff00000000},
		{"far", 'T', 0xffffffff90000000},
		{"_end", 'B', 0xffffffff90001000},
	}
	st := buildSynth(syms, synthOptions{enc: EncodingRelative})
	st.loc.Known = map[string]uint64{"far": 0xffffffff90000000}
	tab, err := Decode(st.mem, st.loc)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := tab.Info(); info.Encoding != EncodingRelative {
		t.Errorf("encoding %v, want relative", info.Encoding)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := func() *synthTable { return buildSynth(synthSyms(), synthOptions{enc: EncodingAbsolutePercpu}) }
	put32 := func(st *synthTable, addr uint64, v uint32) {
		binary.LittleEndian.PutUint32(st.blob[addr-st.base:], v)
	}
	tests := []struct {
		name   string
		mutate func(st *synthTable)
		is     error
		substr string
	}{
		{"no locations", func(st *synthTable) { st.loc.Names = 0 }, ErrNotSupported, "incomplete"},
		{"zero symbols", func(st *synthTable) { put32(st, st.loc.NumSyms, 0) }, ErrFormat, "kallsyms_num_syms at 0x"},
		{"too many symbols", func(st *synthTable) { put32(st, st.loc.NumSyms, 1<<30) }, ErrFormat, "1073741824 symbols"},
		{"more symbols than names", func(st *synthTable) { put32(st, st.loc.NumSyms, 1<<20) }, nil, "kallsyms_names["},
		{"zero length", func(st *synthTable) { st.blob[st.loc.Names-st.base] = 0 }, ErrFormat, "kallsyms_names[0] at 0x"},
		{"type only", func(st *synthTable) { st.blob[st.loc.Names-st.base] = 1 }, ErrFormat, "want a type and a name"},
		{"token unterminated", func(st *synthTable) {
			binary.LittleEndian.PutUint16(st.blob[st.loc.TokenIndex-st.base+2*'_':], 0xfff0)
		}, nil, "kallsyms_token_table[95]"},
		{"marker", func(st *synthTable) { put32(st, st.loc.Markers, 7) }, ErrFormat, "kallsyms_markers[0]"},
		{"unmapped names", func(st *synthTable) { st.loc.Names = 0x1000 }, nil, "read kallsyms_names[0] at 0x1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := good()
			tt.mutate(st)
			_, err := Decode(st.mem, st.loc)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("err = %v, want it to say %q", err, tt.substr)
			}
		})
	}
}

// The lazy table reports the decoding error on every lookup.
func TestFromMemoryLazy(t *testing.T) {
	st := buildSynth(synthSyms(), synthOptions{enc: EncodingAbsolutePercpu})
	reads := 0
	mem := readCounter{st.mem, &reads}
	tab := FromMemory(mem, st.loc)
	if reads != 0 {
		t.Fatalf("FromMemory read memory %d times", reads)
	}
	if _, err := tab.Lookup("schedule"); err != nil {
		t.Fatal(err)
	}
	n := reads
	if _, err := tab.LookupAddr(0xffffffff81e6a2c8); err != nil {
		t.Fatal(err)
	}
	if reads != n {
		t.Errorf("second lookup read memory again")
	}
	st.loc.NumSyms = 0x10
	bad := FromMemory(st.mem, st.loc)
	for range 2 {
		if _, err := bad.Lookup("schedule"); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("lookup on undecodable table: err = %v", err)
		}
	}
}

type readCounter struct {
	m Memory
	n *int
}

func (r readCounter) ReadVirt(p []byte, a uint64) (int, error) { *r.n++; return r.m.ReadVirt(p, a) }

// FuzzDecode feeds the decoder corrupt tables: the fuzzer mutates the
// memory of a valid synthetic table, whose locations stay put.
func FuzzDecode(f *testing.F) {
	for _, o := range []synthOptions{
		{enc: EncodingAbsolutePercpu},
		{enc: EncodingAbsolutePercpu, layout: layout62},
		{enc: EncodingRelative, layout: layout610},
		{enc: EncodingAbsolute},
		{enc: EncodingPlaceRelative, layout: layout610},
	} {
		st := buildSynth(symsFor(o.enc), o)
		f.Add(st.blob, uint8(o.enc), uint8(o.layout))
	}
	built := map[synthOptions]*synthTable{}
	f.Fuzz(func(t *testing.T, blob []byte, enc, layout uint8) {
		o := synthOptions{enc: Encoding(enc%4) + EncodingAbsolute, layout: synthLayout(layout % 3)}
		st := built[o]
		if st == nil {
			st = buildSynth(symsFor(o.enc), o)
			built[o] = st
		}
		mem := &fakeMem{segs: []fakeSeg{{st.base, blob}}}
		tab, err := Decode(mem, st.loc)
		if err != nil {
			return
		}
		for s := range tab.All() {
			if _, err := tab.Lookup(s.Name); err != nil {
				t.Fatalf("Lookup(%q) of a listed symbol: %v", s.Name, err)
			}
			tab.LookupAddr(s.Addr)
		}
	})
}

func TestEncodingString(t *testing.T) {
	for _, tt := range []struct {
		e    Encoding
		want string
	}{
		{EncodingText, "text"},
		{EncodingAbsolute, "absolute"},
		{EncodingAbsolutePercpu, "relative, absolute per-cpu"},
		{EncodingRelative, "relative"},
		{EncodingPlaceRelative, "place-relative"},
		{Encoding(42), "Encoding(42)"},
	} {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("%d: %q, want %q", int(tt.e), got, tt.want)
		}
	}
}
