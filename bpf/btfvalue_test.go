package bpf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// tokens renders a TokenWriter's calls compactly, as bpftool's JSON.
type tokens struct {
	b   strings.Builder
	sep []bool // per level: something written
}

func (w *tokens) comma() {
	if n := len(w.sep); n > 0 {
		if w.sep[n-1] {
			w.b.WriteByte(',')
		}
		w.sep[n-1] = true
	}
}
func (w *tokens) BeginObject()    { w.comma(); w.b.WriteByte('{'); w.sep = append(w.sep, false) }
func (w *tokens) EndObject()      { w.b.WriteByte('}'); w.sep = w.sep[:len(w.sep)-1] }
func (w *tokens) BeginArray()     { w.comma(); w.b.WriteByte('['); w.sep = append(w.sep, false) }
func (w *tokens) EndArray()       { w.b.WriteByte(']'); w.sep = w.sep[:len(w.sep)-1] }
func (w *tokens) Name(n string)   { w.comma(); fmt.Fprintf(&w.b, "%q:", n); w.sep[len(w.sep)-1] = false }
func (w *tokens) String(s string) { w.comma(); fmt.Fprintf(&w.b, "%q", s) }
func (w *tokens) Raw(tok string)  { w.comma(); w.b.WriteString(tok) }

// TestDumpBTFValue follows bpftool's btf_dumper rules (btf_dumper.c) on
// hand-made types; the lab tests compare whole maps with bpftool's own
// output.
func TestDumpBTFValue(t *testing.T) {
	u8 := &btf.Int{Name: "unsigned char", Size: 1}
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed}
	cchar := &btf.Int{Name: "char", Size: 1, Encoding: btf.Char}
	s32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	u64 := &btf.Int{Name: "unsigned long long", Size: 8}
	boolT := &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}
	i128 := &btf.Int{Name: "__int128 unsigned", Size: 16}
	enum := &btf.Enum{Name: "e", Size: 4, Values: []btf.EnumValue{{Name: "A", Value: 1}, {Name: "NEG", Value: uint64(0xffffffff)}}, Signed: true}
	for _, tc := range []struct {
		name string
		t    btf.Type
		data []byte
		want string
	}{
		{"u64", u64, []byte{0x10, 0x27, 0, 0, 0, 0, 0, 0}, "10000"},
		{"s32 negative", s32, []byte{0xfe, 0xff, 0xff, 0xff}, "-2"},
		{"typedef", &btf.Typedef{Name: "__u8", Type: u8}, []byte{200}, "200"},
		{"bool", boolT, []byte{1}, "true"},
		{"char encoding", cchar, []byte{'x'}, `"x"`},
		{"char unprintable", cchar, []byte{1}, `"\u0001"`},
		{"string", &btf.Array{Type: char, Nelems: 8}, []byte("ki\x00zzzzz"), `"ki"`},
		{"char array without NUL", &btf.Array{Type: char, Nelems: 2}, []byte("ab"), "[97,98]"},
		{"u8 array", &btf.Array{Type: u8, Nelems: 3}, []byte{10, 1, 2}, "[10,1,2]"},
		{"enum", enum, []byte{1, 0, 0, 0}, `"A"`},
		{"enum negative", enum, []byte{0xff, 0xff, 0xff, 0xff}, `"NEG"`},
		{"enum unknown", enum, []byte{7, 0, 0, 0}, "7"},
		{"pointer", &btf.Pointer{Target: u8}, []byte{0, 0x10, 0, 0, 0, 0, 0, 0}, "4096"},
		{"int128", i128, append([]byte{1}, make([]byte, 15)...), `"0x1"`},
		{"struct with bitfields", &btf.Struct{Name: "s", Size: 4, Members: []btf.Member{
			{Name: "a", Type: s32, Offset: 0, BitfieldSize: 3},
			{Name: "b", Type: s32, Offset: 3, BitfieldSize: 5},
			{Name: "c", Type: u8, Offset: 8},
		}}, []byte{0x2d, 7, 0, 0}, `{"a":"0x5","b":"0x5","c":7}`},
		{"union", &btf.Union{Name: "u", Size: 4, Members: []btf.Member{{Name: "x", Type: s32}, {Name: "y", Type: u8}}}, []byte{1, 0, 0, 0}, `{"x":1,"y":1}`},
	} {
		var w tokens
		if err := DumpBTFValue(&w, tc.t, tc.data, false); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := w.b.String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	var w tokens
	if err := DumpBTFValue(&w, u64, []byte{1, 2}, false); err == nil {
		t.Error("short data: no error")
	}
}

// FuzzDumpBTFValue: arbitrary value bytes never panic the dumper.
func FuzzDumpBTFValue(f *testing.F) {
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed}
	s32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	typ := &btf.Struct{Name: "v", Size: 28, Members: []btf.Member{
		{Name: "n", Type: &btf.Array{Type: char, Nelems: 8}},
		{Name: "b", Type: s32, Offset: 64, BitfieldSize: 7},
		{Name: "e", Type: &btf.Enum{Name: "e", Size: 4, Values: []btf.EnumValue{{Name: "A", Value: 1}}}, Offset: 96},
		{Name: "p", Type: &btf.Pointer{Target: char}, Offset: 128},
		{Name: "x", Type: &btf.Int{Name: "x", Size: 16}, Offset: 192},
	}}
	f.Add([]byte("ki_entry\x01\x02\x03\x04\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var w tokens
		DumpBTFValue(&w, typ, data, false)
		DumpBTFValue(&w, typ, data, true)
	})
}

// TestDumpBTFValueFuncPtr: with ProgName (bpftool's prog_id_as_func_ptr)
// a function pointer holding a program id prints as the function's
// signature and the program; plain pointers print as bpftool's %p.
func TestDumpBTFValueFuncPtr(t *testing.T) {
	u32 := &btf.Typedef{Name: "u32", Type: &btf.Int{Name: "unsigned int", Size: 4}}
	sock := &btf.Struct{Name: "sock"}
	ret := &btf.FuncProto{Return: u32, Params: []btf.FuncParam{{Type: &btf.Pointer{Target: sock}}}}
	void2 := &btf.FuncProto{Return: (*btf.Void)(nil), Params: []btf.FuncParam{
		{Type: &btf.Pointer{Target: &btf.Const{Type: sock}}}, {Type: u32}, {Name: "n", Type: u32}}}
	typ := &btf.Struct{Name: "ops", Size: 32, Members: []btf.Member{
		{Name: "a", Type: &btf.Pointer{Target: ret}},
		{Name: "b", Type: &btf.Pointer{Target: void2}, Offset: 64},
		{Name: "c", Type: &btf.Pointer{Target: ret}, Offset: 128},
		{Name: "owner", Type: &btf.Pointer{Target: sock}, Offset: 192},
	}}
	data := []byte{7, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0}
	names := func(id uint32) (string, bool) { return "ki_a", id == 7 }
	for _, tc := range []struct {
		o    BTFDumpOptions
		want string
	}{
		{BTFDumpOptions{Plain: true, ProgName: names}, `{"a":"u32 (struct sock *) ki_a/prog_id:7","b":"void (const struct sock *, u32, u32 n) <unknown_prog_name>/prog_id:9","c":"u32 (struct sock *) 0","owner":0x10}`},
		{BTFDumpOptions{Plain: true}, `{"a":0x7,"b":0x9,"c":(nil),"owner":0x10}`},
		{BTFDumpOptions{}, `{"a":7,"b":9,"c":0,"owner":16}`},
	} {
		var w tokens
		if err := DumpBTFValueWith(&w, typ, data, tc.o); err != nil {
			t.Fatal(err)
		}
		if got := w.b.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
