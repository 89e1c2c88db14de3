package objects

import (
	"testing"

	"github.com/kinspect/kinspect/internal/synthkernel"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// synthSpec builds BTF with the kernel's list, rbtree and xarray types
// and a test struct:
//
//	struct item { int id; struct list_head node; char name[8];
//	              struct rb_node rb; struct hlist_node hn;
//	              unsigned int flag: 3, mode: 5; enum color color; };
func synthSpec(t testing.TB) *btfload.Spec {
	t.Helper()
	u8 := &btf.Int{Name: "unsigned char", Size: 1}
	ch := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed | btf.Char}
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	ul := &btf.Int{Name: "long unsigned int", Size: 8}
	void := &btf.Pointer{Target: (*btf.Void)(nil)}
	lh := &btf.Struct{Name: "list_head", Size: 16}
	lh.Members = []btf.Member{{Name: "next", Type: &btf.Pointer{Target: lh}}, {Name: "prev", Type: &btf.Pointer{Target: lh}, Offset: 64}}
	hn := &btf.Struct{Name: "hlist_node", Size: 16}
	hn.Members = []btf.Member{{Name: "next", Type: &btf.Pointer{Target: hn}}, {Name: "pprev", Type: &btf.Pointer{Target: &btf.Pointer{Target: hn}}, Offset: 64}}
	hh := &btf.Struct{Name: "hlist_head", Size: 8, Members: []btf.Member{{Name: "first", Type: &btf.Pointer{Target: hn}}}}
	rb := &btf.Struct{Name: "rb_node", Size: 24}
	rb.Members = []btf.Member{{Name: "__rb_parent_color", Type: ul}, {Name: "rb_right", Type: &btf.Pointer{Target: rb}, Offset: 64}, {Name: "rb_left", Type: &btf.Pointer{Target: rb}, Offset: 128}}
	rbr := &btf.Struct{Name: "rb_root", Size: 8, Members: []btf.Member{{Name: "rb_node", Type: &btf.Pointer{Target: rb}}}}
	rbc := &btf.Struct{Name: "rb_root_cached", Size: 16, Members: []btf.Member{{Name: "rb_root", Type: rbr}, {Name: "rb_leftmost", Type: &btf.Pointer{Target: rb}, Offset: 64}}}
	xa := &btf.Struct{Name: "xarray", Size: 16, Members: []btf.Member{{Name: "xa_lock", Type: u32}, {Name: "xa_flags", Type: u32, Offset: 32}, {Name: "xa_head", Type: void, Offset: 64}}}
	xn := &btf.Struct{Name: "xa_node", Size: 24 + 64*8}
	xn.Members = []btf.Member{{Name: "shift", Type: u8}, {Name: "offset", Type: u8, Offset: 8}, {Name: "count", Type: u8, Offset: 16}, {Name: "nr_values", Type: u8, Offset: 24},
		{Name: "parent", Type: &btf.Pointer{Target: xn}, Offset: 64}, {Name: "array", Type: &btf.Pointer{Target: xa}, Offset: 128},
		{Name: "slots", Type: &btf.Array{Index: u32, Type: void, Nelems: 64}, Offset: 192}}
	idr := &btf.Struct{Name: "idr", Size: 24, Members: []btf.Member{{Name: "idr_rt", Type: xa}, {Name: "idr_base", Type: u32, Offset: 128}, {Name: "idr_next", Type: u32, Offset: 160}}}
	color := &btf.Enum{Name: "color", Size: 4, Values: []btf.EnumValue{{Name: "RED", Value: 0}, {Name: "GREEN", Value: 1}}}
	item := &btf.Struct{Name: "item", Size: 96, Members: []btf.Member{
		{Name: "id", Type: i32},
		{Name: "node", Type: lh, Offset: 64},
		{Name: "name", Type: &btf.Array{Index: u32, Type: ch, Nelems: 8}, Offset: 192},
		{Name: "rb", Type: rb, Offset: 256},
		{Name: "hn", Type: hn, Offset: 448},
		{Name: "flag", Type: u32, Offset: 576, BitfieldSize: 3},
		{Name: "mode", Type: u32, Offset: 579, BitfieldSize: 5},
		{Name: "color", Type: color, Offset: 608},
		{Name: "", Type: &btf.Union{Size: 8, Members: []btf.Member{{Name: "u_a", Type: ul}, {Name: "u_b", Type: i32}}}, Offset: 640},
	}}
	ulong := &btf.Typedef{Name: "u64", Type: ul}
	return synthkernel.Spec(t, lh, hh, hn, rb, rbr, rbc, xa, xn, idr, item, ulong, u32, i32, ul)
}

// writeItem writes a struct item at addr.
func writeItem(m *synthkernel.Mem, addr uint64, id int32, name string) {
	m.U32(addr, uint32(id))
	n := make([]byte, 8)
	copy(n, name)
	m.Write(addr+24, n)
}

func synthProgram(t testing.TB) (*Program, *synthkernel.Mem, synthkernel.Syms) {
	m := synthkernel.NewMem()
	syms := synthkernel.Syms{}
	d := btfload.NewDecls()
	for _, s := range []string{"struct list_head head", "struct hlist_head hhead", "struct rb_root_cached tree", "struct xarray xa", "struct idr ids", "struct item one"} {
		if err := d.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return NewProgram(m, synthSpec(t), syms, WithDecls(d), WithLimit(1000)), m, syms
}
