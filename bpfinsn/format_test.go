package bpfinsn

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// The expected strings follow the kernel's print_bpf_insn formats
// (kernel/bpf/disasm.c) as verifier logs and bpftool show them.
func TestFormat(t *testing.T) {
	ld64 := func(dst, src uint8, lo, hi int32) []Insn {
		return []Insn{{Code: CodeLdImm64, Dst: dst, Src: src, Imm: lo}, {Imm: hi}}
	}
	tests := []struct {
		insns []Insn
		want  string
	}{
		{[]Insn{{Code: 0xb7, Dst: 0, Imm: 0}}, "(b7) r0 = 0"},
		{[]Insn{{Code: 0xb4, Dst: 1, Imm: -1}}, "(b4) w1 = -1"},
		{[]Insn{{Code: 0xbf, Dst: 6, Src: 1}}, "(bf) r6 = r1"},
		{[]Insn{{Code: 0x07, Dst: 2, Imm: -40}}, "(07) r2 += -40"},
		{[]Insn{{Code: 0x1f, Dst: 1, Src: 7}}, "(1f) r1 -= r7"},
		{[]Insn{{Code: 0xc7, Dst: 3, Imm: 32}}, "(c7) r3 s>>= 32"},
		{[]Insn{{Code: 0x87, Dst: 3}}, "(87) r3 = -r3"},
		{[]Insn{{Code: 0x84, Dst: 3}}, "(84) w3 = -w3"},
		{[]Insn{{Code: 0xdc, Dst: 2, Imm: 16}}, "(dc) r2 = be16 r2"},
		{[]Insn{{Code: 0xd4, Dst: 2, Imm: 64}}, "(d4) r2 = le64 r2"},
		{[]Insn{{Code: 0xd7, Dst: 2, Imm: 32}}, "(d7) r2 = bswap32 r2"},
		{[]Insn{{Code: 0xbf, Dst: 2, Src: 3, Off: 8}}, "(bf) r2 = (s8)r3"},
		{[]Insn{{Code: 0x3f, Dst: 2, Src: 3, Off: 1}}, "(3f) r2 s/= r3"},
		{[]Insn{{Code: 0x79, Dst: 8, Src: 6, Off: 8}}, "(79) r8 = *(u64 *)(r6 +8)"},
		{[]Insn{{Code: 0x71, Dst: 1, Src: 7, Off: 12}}, "(71) r1 = *(u8 *)(r7 +12)"},
		{[]Insn{{Code: 0x91, Dst: 1, Src: 7, Off: -2}}, "(91) r1 = *(s8 *)(r7 -2)"},
		{[]Insn{{Code: 0x7b, Dst: 10, Src: 1, Off: -8}}, "(7b) *(u64 *)(r10 -8) = r1"},
		{[]Insn{{Code: 0x62, Dst: 10, Off: -4, Imm: 7}}, "(62) *(u32 *)(r10 -4) = 7"},
		{[]Insn{{Code: 0xdb, Dst: 0, Src: 9}}, "(db) lock *(u64 *)(r0 +0) += r9"},
		{[]Insn{{Code: 0xc3, Dst: 1, Src: 2, Off: 4, Imm: OpOr}}, "(c3) lock *(u32 *)(r1 +4) |= r2"},
		{[]Insn{{Code: 0xdb, Dst: 1, Src: 2, Imm: OpAdd | AtomicFetch}}, "(db) r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)"},
		{[]Insn{{Code: 0xc3, Dst: 1, Src: 2, Imm: AtomicXchg}}, "(c3) r2 = atomic_xchg((u32 *)(r1 +0), r2)"},
		{[]Insn{{Code: 0xdb, Dst: 1, Src: 2, Imm: AtomicCmpXchg}}, "(db) r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)"},
		{[]Insn{{Code: 0xc2, Dst: 1}}, "(c2) nospec"},
		{[]Insn{{Code: 0x30, Imm: 12}}, "(30) r0 = *(u8 *)skb[12]"},
		{[]Insn{{Code: 0x48, Src: 3, Imm: 2}}, "(48) r0 = *(u16 *)skb[r3 + 2]"},
		{ld64(1, 0, 0x50455246, 0x4b495f), "(18) r1 = 0x4b495f50455246"},
		{ld64(3, 0, -1, 0), "(18) r3 = 0xffffffff"},
		{[]Insn{{Code: 0x85, Imm: 1}}, "(85) call bpf_map_lookup_elem#1"},
		{[]Insn{{Code: 0x85, Imm: 12}}, "(85) call bpf_tail_call#12"},
		{[]Insn{{Code: 0x85, Src: PseudoCall, Imm: 37}}, "(85) call pc+37"},
		{[]Insn{{Code: 0x85, Src: PseudoKfuncCall, Imm: 99}}, "(85) call kernel-function#99"},
		{[]Insn{{Code: 0x85, Imm: 201840}}, "(85) call unknown#201840"},
		{[]Insn{{Code: 0x05, Off: -21}}, "(05) goto pc-21"},
		{[]Insn{{Code: 0x06, Imm: 70000}}, "(06) goto pc+70000"},
		{[]Insn{{Code: 0x95}}, "(95) exit"},
		{[]Insn{{Code: 0x35, Dst: 0, Imm: 8, Off: 3}}, "(35) if r0 >= 0x8 goto pc+3"},
		{[]Insn{{Code: 0x55, Dst: 1, Imm: -1, Off: 20}}, "(55) if r1 != 0xffffffff goto pc+20"},
		{[]Insn{{Code: 0x2d, Dst: 1, Src: 8, Off: 22}}, "(2d) if r1 > r8 goto pc+22"},
		{[]Insn{{Code: 0x16, Dst: 1, Imm: 0, Off: 1}}, "(16) if w1 == 0x0 goto pc+1"},
		{[]Insn{{Code: 0xce, Dst: 1, Src: 2, Off: -1}}, "(ce) if w1 s< w2 goto pc-1"},
		{[]Insn{{Code: 0xe5}}, "(e5) if r0 (null) 0x0 goto pc+0"},
		{[]Insn{{Code: 0xa1}}, "BUG_ldx_a1"},
		{[]Insn{{Code: 0x20 | 0x03}}, "BUG_23"},
		{[]Insn{{Code: 0x00}}, "BUG_ld_00"},
	}
	for _, tt := range tests {
		if got := Format(tt.insns, 0); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.insns[0], got, tt.want)
		}
	}
}

// TestNames checks bpftool's callbacks: helper addresses by kallsyms,
// BPF-to-BPF calls by the JIT's symbols, map loads by map ID.
func TestNames(t *testing.T) {
	const base = 0xffffffff810013d0
	syms := map[uint64]string{base + 201840: "__htab_map_lookup_elem", 0xffffffffc0130cbc: "bpf_prog_5139583ea8dc4717_ki_sum_value"}
	p := &Program{
		Insns: []Insn{
			{Code: 0x85, Imm: 201840},
			{Code: 0x85, Imm: 4242},
			{Code: 0x85, Src: PseudoCall, Off: 37, Imm: 1},
			{Code: CodeLdImm64, Dst: 1, Src: PseudoMapFD, Imm: 39}, {},
			{Code: CodeLdImm64, Dst: 2, Src: PseudoMapValue, Imm: 7}, {Imm: 16},
			{Code: CodeLdImm64, Dst: 2, Src: PseudoMapIdxValue, Imm: 2}, {Imm: 4},
			{Code: CodeLdImm64, Dst: 2, Src: PseudoFunc, Imm: -3}, {},
		},
		CallBase:  base,
		FuncAddrs: []uint64{0xffffffffc0130b08, 0xffffffffc0130cbc},
		Syms:      ResolverFunc(func(a uint64) (string, bool) { s, ok := syms[a]; return s, ok }),
	}
	want := map[int]string{
		0: "(85) call __htab_map_lookup_elem#201840",
		1: "(85) call 0xffffffff81002462#4242",
		2: "(85) call pc+37#bpf_prog_5139583ea8dc4717_ki_sum_value",
		3: "(18) r1 = map[id:39]",
		5: "(18) r2 = map[id:7][0]+16",
		7: "(18) r2 = map[idx:2]+4",
		9: "(18) r2 = subprog[-3]",
	}
	for i, w := range want {
		if got := p.InsnText(i); got != w {
			t.Errorf("insn %d: %q, want %q", i, got, w)
		}
	}
	p.FuncAddrs = nil // not JITed: offsets only
	if got := p.InsnText(2); got != "(85) call pc+37" {
		t.Errorf("interpreted pseudo call: %q", got)
	}
}

// TestLineFinder follows libbpf's bpf_prog_linfo__lfind as bpftool
// calls it: records sharing an offset print the last of them, and a
// record is printed again while the skip count lags behind.
func TestLineFinder(t *testing.T) {
	lines := []Line{{InsnOff: 0, Src: "a"}, {InsnOff: 0, Src: "b"}, {InsnOff: 2, Src: "c"}, {InsnOff: 5, Src: "d"}}
	f := &lineFinder{lines: lines}
	var got []string
	for i := 0; i < 7; i++ {
		if l, ok := f.find(i); ok {
			got = append(got, l.Src)
		} else {
			got = append(got, "-")
		}
	}
	if want := "b b c - - d -"; strings.Join(got, " ") != want {
		t.Errorf("lines %q, want %q", strings.Join(got, " "), want)
	}
}

func TestWriteText(t *testing.T) {
	p := &Program{
		Insns: []Insn{{Code: 0xb7, Dst: 1, Imm: 6}, {Code: CodeLdImm64, Dst: 1, Imm: 1}, {Imm: 2}, {Code: 0x95}},
		Funcs: []Func{{InsnOff: 0, Proto: "int f(void * ctx)"}},
		Lines: []Line{{InsnOff: 0, Src: "  int f(void *ctx)", File: "f.c", LineNum: 3, LineCol: 5}, {InsnOff: 3, NoSrc: true}},
	}
	var b bytes.Buffer
	if err := p.WriteText(&b, TextOptions{Opcodes: true, Linum: true}); err != nil {
		t.Fatal(err)
	}
	want := `int f(void * ctx):
; int f(void *ctx) [file:f.c line_num:3 line_col:5]
   0: (b7) r1 = 6
       b7 01 00 00 06 00 00 00
   1: (18) r1 = 0x200000001
       18 01 00 00 01 00 00 00 00 00 00 00 02 00 00 00
   3: (95) exit
       95 00 00 00 00 00 00 00
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestGraphEscape(t *testing.T) {
	if got := graphEscape("(35) if r0 >= 0x8 goto pc+3"); got != "(35) if r0 \\>= 0x8 goto pc+3\\l\\\n" {
		t.Errorf("%q", got)
	}
	long := strings.Repeat("x", 70)
	if got := graphEscape(long); got != strings.Repeat("x", 63) {
		t.Errorf("a line past 63 bytes is cut and loses its newline, as bpftool's 64-byte buffer: %q", got)
	}
}

func TestDecode(t *testing.T) {
	if _, err := Decode(make([]byte, 9)); err == nil {
		t.Error("9 bytes decoded")
	}
	raw := []byte{0x18, 0x21, 0xfe, 0xff, 0x78, 0x56, 0x34, 0x12}
	in, err := Decode(raw)
	if err != nil || in[0] != (Insn{Code: 0x18, Dst: 1, Src: 2, Off: -2, Imm: 0x12345678}) {
		t.Fatalf("%+v, %v", in, err)
	}
	if !bytes.Equal(Encode(in), raw) {
		t.Error("Encode(Decode(b)) != b")
	}
}

// TestPrepareDump follows bpf_insn_prepare_dump: tail calls and
// internal codes restored, map addresses replaced by IDs.
func TestPrepareDump(t *testing.T) {
	in := []Insn{
		{Code: ClassJMP | OpTailCall},
		{Code: ClassJMP | OpCallArgs, Imm: 5},
		{Code: ClassLDX | SizeDW | ModeProbeMem, Dst: 1, Src: 2},
		{Code: CodeLdImm64, Dst: 1, Imm: lo(0xffff8e9099012400)}, {Imm: hi(0xffff8e9099012400)},
		{Code: CodeLdImm64, Dst: 1, Imm: lo(0xffff8e9088000010)}, {Imm: hi(0xffff8e9088000010)},
		{Code: CodeLdImm64, Dst: 1, Imm: 5}, {},
	}
	maps := []MapRef{{Addr: 0xffff8e9099012400, ID: 39}, {Addr: 0xffff8e9088000000, ID: 7, Direct: true, ValueAddr: 0xffff8e9088000000, ValueSize: 64}}
	out := PrepareDump(in, maps)
	want := []Insn{
		{Code: CodeCall, Imm: HelperTailCall},
		{Code: CodeCall, Imm: 5},
		{Code: ClassLDX | SizeDW | ModeMEM, Dst: 1, Src: 2},
		{Code: CodeLdImm64, Dst: 1, Src: PseudoMapFD, Imm: 39}, {},
		{Code: CodeLdImm64, Dst: 1, Src: PseudoMapValue, Imm: 7}, {Imm: 16},
		{Code: CodeLdImm64, Dst: 1, Imm: 5}, {},
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("insn %d: %+v, want %+v", i, out[i], want[i])
		}
	}
	if in[0].Code != ClassJMP|OpTailCall {
		t.Error("PrepareDump modified its input")
	}
}

// TestTag checks bpf_prog_calc_tag's masking: map loads' immediates do
// not change the tag, other immediates do.
func TestTag(t *testing.T) {
	a := []Insn{{Code: CodeLdImm64, Dst: 1, Src: PseudoMapFD, Imm: 3}, {Imm: 0}, {Code: 0xb7}, {Code: 0x95}}
	b := append([]Insn(nil), a...)
	b[0].Imm, b[1].Imm = 99, 7
	if Tag(a) != Tag(b) {
		t.Error("map fd changed the tag")
	}
	b[2].Imm = 1
	if Tag(a) == Tag(b) {
		t.Error("an immediate did not change the tag")
	}
}

func lo(x uint64) int32 { return int32(uint32(x)) }
func hi(x uint64) int32 { return int32(uint32(x >> 32)) }

// BenchmarkWriteText renders the lab programs' xlated instructions
// (from bpftool's opcodes dumps) as bpftool's text; b.N counts programs.
func BenchmarkWriteText(b *testing.B) {
	var progs []*Program
	for _, raw := range labOpcodes(b) {
		insns, err := Decode(raw)
		if err == nil {
			progs = append(progs, &Program{Insns: insns, CallBase: 0xffffffff81000000,
				Syms: ResolverFunc(func(uint64) (string, bool) { return "helper", true })})
		}
	}
	if len(progs) == 0 {
		b.Skip("no lab programs")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		progs[i%len(progs)].WriteText(io.Discard, TextOptions{})
	}
}
