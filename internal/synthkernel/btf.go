package synthkernel

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// BTF builds kernel-shaped BTF: the kernel's integer types, structs laid
// out as C lays them out (or at the offsets given), enums, typedefs and
// per-CPU variables. The walkers find everything by member name, so a
// struct need declare only the members a walker reads.
//
//	b := synthkernel.NewBTF()
//	task := b.Decl("task_struct") // for pointers to it before it is laid out
//	b.Struct("task_struct", synthkernel.F("pid", b.Int), synthkernel.F("real_parent", synthkernel.Ptr(task)))
//	spec := b.Spec(t)
type BTF struct {
	// The integer types under vmlinux BTF's names.
	Char, U8, S16, U16, U32, Int, S64, U64, Long, ULong, Bool *btf.Int
	// VoidPtr is void *.
	VoidPtr *btf.Pointer

	types   []btf.Type
	structs map[string]*btf.Struct
	others  map[string]btf.Type
	percpu  []btf.VarSecinfo
	pcpuEnd uint32
}

// NewBTF returns a builder holding the integer types, their kernel
// typedefs (u8, s16, u16, u32, s32, u64, s64) and void *.
func NewBTF() *BTF {
	b := &BTF{
		Char:    &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed | btf.Char},
		U8:      &btf.Int{Name: "unsigned char", Size: 1},
		S16:     &btf.Int{Name: "short int", Size: 2, Encoding: btf.Signed},
		U16:     &btf.Int{Name: "short unsigned int", Size: 2},
		U32:     &btf.Int{Name: "unsigned int", Size: 4},
		Int:     &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed},
		S64:     &btf.Int{Name: "long long int", Size: 8, Encoding: btf.Signed},
		U64:     &btf.Int{Name: "long long unsigned int", Size: 8},
		Long:    &btf.Int{Name: "long int", Size: 8, Encoding: btf.Signed},
		ULong:   &btf.Int{Name: "long unsigned int", Size: 8},
		Bool:    &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool},
		VoidPtr: &btf.Pointer{Target: (*btf.Void)(nil)},
		structs: map[string]*btf.Struct{},
		others:  map[string]btf.Type{},
	}
	b.types = append(b.types, b.Char, b.U8, b.S16, b.U16, b.U32, b.Int, b.S64, b.U64, b.Long, b.ULong, b.Bool, b.VoidPtr)
	b.Typedef("u8", b.U8)
	b.Typedef("s16", b.S16)
	b.Typedef("u16", b.U16)
	b.Typedef("u32", b.U32)
	b.Typedef("s32", b.Int)
	b.Typedef("u64", b.U64)
	b.Typedef("s64", b.S64)
	return b
}

// Field is a member to lay out: see F, At and Bitfield.
type Field struct {
	Name   string
	Type   btf.Type
	off    int64 // bytes; -1: the next offset aligned for Type
	bitOff uint32
	bits   uint32
}

// F is a member placed as C places it: after the previous one, aligned
// for its type.
func F(name string, t btf.Type) Field { return Field{Name: name, Type: t, off: -1} }

// At places member name at byte offset off.
func At(off uint32, name string, t btf.Type) Field {
	return Field{Name: name, Type: t, off: int64(off)}
}

// Bitfield places a bitfield of bits bits at bit offset bitOff from the
// struct's start, of integer type t.
func Bitfield(name string, t btf.Type, bitOff, bits uint32) Field {
	return Field{Name: name, Type: t, off: -2, bitOff: bitOff, bits: bits}
}

// Ptr is a pointer to t.
func Ptr(t btf.Type) *btf.Pointer { return &btf.Pointer{Target: t} }

// FuncPtr is a pointer to a function (int (*)(void)).
func (b *BTF) FuncPtr() *btf.Pointer {
	return &btf.Pointer{Target: &btf.FuncProto{Return: b.Int}}
}

// Array is t[n].
func (b *BTF) Array(t btf.Type, n uint32) *btf.Array {
	return &btf.Array{Index: b.U32, Type: t, Nelems: n}
}

// Decl returns the struct called name, creating it empty (to be laid
// out by Struct later) when it does not exist yet.
func (b *BTF) Decl(name string) *btf.Struct {
	if s, ok := b.structs[name]; ok {
		return s
	}
	s := &btf.Struct{Name: name}
	b.structs[name] = s
	b.types = append(b.types, s)
	return s
}

// Has says whether a struct called name has been laid out.
func (b *BTF) Has(name string) bool {
	s, ok := b.structs[name]
	return ok && (len(s.Members) > 0 || s.Size > 0)
}

// Struct lays out the struct called name (the one Decl returned, if
// any) with the given members; its size is the end of the last member
// rounded up to the struct's alignment.
func (b *BTF) Struct(name string, fields ...Field) *btf.Struct {
	s := b.Decl(name)
	s.Members, s.Size = layout(fields)
	return s
}

// Union lays out an anonymous (name "") or named union: every member
// at offset 0 unless placed with At.
func (b *BTF) Union(name string, fields ...Field) *btf.Union {
	u := &btf.Union{Name: name}
	var end, al uint32 = 0, 1
	for _, f := range fields {
		off := uint32(0)
		if f.off >= 0 {
			off = uint32(f.off)
		}
		u.Members = append(u.Members, btf.Member{Name: f.Name, Type: f.Type, Offset: btf.Bits(off * 8)})
		end = max(end, off+sizeof(f.Type))
		al = max(al, alignof(f.Type))
	}
	u.Size = (end + al - 1) / al * al
	if name != "" {
		b.types = append(b.types, u)
		b.others["union "+name] = u
	}
	return u
}

// AnonStruct lays out a struct without a name, for a member.
func AnonStruct(fields ...Field) *btf.Struct {
	s := &btf.Struct{}
	s.Members, s.Size = layout(fields)
	return s
}

func layout(fields []Field) ([]btf.Member, uint32) {
	var ms []btf.Member
	var end, al uint32 = 0, 1
	for _, f := range fields {
		a, n := alignof(f.Type), sizeof(f.Type)
		switch {
		case f.off == -2:
			ms = append(ms, btf.Member{Name: f.Name, Type: f.Type, Offset: btf.Bits(f.bitOff), BitfieldSize: btf.Bits(f.bits)})
			unit := f.bitOff / 8 / n * n
			end = max(end, unit+n)
		default:
			off := uint32(f.off)
			if f.off < 0 {
				off = (end + a - 1) / a * a
			}
			ms = append(ms, btf.Member{Name: f.Name, Type: f.Type, Offset: btf.Bits(off * 8)})
			end = max(end, off+n)
		}
		al = max(al, a)
	}
	return ms, (end + al - 1) / al * al
}

func sizeof(t btf.Type) uint32 {
	n, err := btf.Sizeof(t)
	if err != nil {
		panic(fmt.Sprintf("synthkernel: size of %v: %v", t, err))
	}
	return uint32(n)
}

func alignof(t btf.Type) uint32 {
	switch u := t.(type) {
	case *btf.Int:
		return max(1, min(u.Size, 8))
	case *btf.Enum:
		return max(1, u.Size)
	case *btf.Pointer:
		return 8
	case *btf.Array:
		return alignof(u.Type)
	case *btf.Typedef:
		return alignof(u.Type)
	case *btf.Const:
		return alignof(u.Type)
	case *btf.Volatile:
		return alignof(u.Type)
	case *btf.Struct:
		return membersAlign(u.Members)
	case *btf.Union:
		return membersAlign(u.Members)
	}
	return 1
}

func membersAlign(ms []btf.Member) uint32 {
	a := uint32(1)
	for _, m := range ms {
		a = max(a, alignof(m.Type))
	}
	return a
}

// EV is an enumerator.
func EV(name string, v uint64) btf.EnumValue { return btf.EnumValue{Name: name, Value: v} }

// Enum adds a 4-byte enum.
func (b *BTF) Enum(name string, values ...btf.EnumValue) *btf.Enum {
	e := &btf.Enum{Name: name, Size: 4, Values: values}
	b.types = append(b.types, e)
	b.others["enum "+name] = e
	return e
}

// Typedef adds a typedef.
func (b *BTF) Typedef(name string, t btf.Type) *btf.Typedef {
	td := &btf.Typedef{Name: name, Type: t}
	b.types = append(b.types, td)
	b.others[name] = td
	return td
}

// Named returns an enum ("enum x"), union ("union x") or typedef added
// before.
func (b *BTF) Named(name string) btf.Type {
	t, ok := b.others[name]
	if !ok {
		panic("synthkernel: no type " + name)
	}
	return t
}

// Add adds types (and what they refer to) to the BTF.
func (b *BTF) Add(types ...btf.Type) { b.types = append(b.types, types...) }

// PerCPU declares a per-CPU variable of type t in the DATASEC
// .data..percpu at the next offset aligned to 64 bytes, which it
// returns: the variable's symbol value (per-CPU symbols are
// section-relative).
func (b *BTF) PerCPU(name string, t btf.Type) uint32 {
	off := (b.pcpuEnd + 63) &^ 63
	n := sizeof(t)
	b.percpu = append(b.percpu, btf.VarSecinfo{Type: &btf.Var{Name: name, Type: t, Linkage: btf.GlobalVar}, Offset: off, Size: n})
	b.pcpuEnd = off + n
	return off
}

// Spec marshals the types into BTF and parses it as vmlinux's.
func (b *BTF) Spec(tb testing.TB) *btfload.Spec {
	tb.Helper()
	types := b.types
	if len(b.percpu) > 0 {
		types = append(types[:len(types):len(types)], &btf.Datasec{Name: btfload.PerCPUSection, Size: b.pcpuEnd, Vars: b.percpu})
	}
	return Spec(tb, types...)
}

// Raw marshals types into raw BTF (header, types, strings), as the
// kernel keeps a BTF object's data.
func Raw(tb testing.TB, types ...btf.Type) []byte {
	tb.Helper()
	bb, err := btf.NewBuilder(types, nil)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := bb.Marshal(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// The kernel's containers, as include/linux/types.h,
// include/linux/rbtree_types.h, include/linux/xarray.h and
// include/linux/idr.h define them. Each is laid out once.

// ListHead is struct list_head { struct list_head *next, *prev; }.
func (b *BTF) ListHead() *btf.Struct {
	if !b.Has("list_head") {
		lh := b.Decl("list_head")
		b.Struct("list_head", F("next", Ptr(lh)), F("prev", Ptr(lh)))
	}
	return b.structs["list_head"]
}

// HlistNode is struct hlist_node { struct hlist_node *next, **pprev; }.
func (b *BTF) HlistNode() *btf.Struct {
	if !b.Has("hlist_node") {
		hn := b.Decl("hlist_node")
		b.Struct("hlist_node", F("next", Ptr(hn)), F("pprev", Ptr(Ptr(hn))))
	}
	return b.structs["hlist_node"]
}

// HlistHead is struct hlist_head { struct hlist_node *first; }.
func (b *BTF) HlistHead() *btf.Struct {
	if !b.Has("hlist_head") {
		b.Struct("hlist_head", F("first", Ptr(b.HlistNode())))
	}
	return b.structs["hlist_head"]
}

// RBNode is struct rb_node { unsigned long __rb_parent_color; struct
// rb_node *rb_right, *rb_left; }.
func (b *BTF) RBNode() *btf.Struct {
	if !b.Has("rb_node") {
		n := b.Decl("rb_node")
		b.Struct("rb_node", F("__rb_parent_color", b.ULong), F("rb_right", Ptr(n)), F("rb_left", Ptr(n)))
	}
	return b.structs["rb_node"]
}

// RBRoot is struct rb_root { struct rb_node *rb_node; }.
func (b *BTF) RBRoot() *btf.Struct {
	if !b.Has("rb_root") {
		b.Struct("rb_root", F("rb_node", Ptr(b.RBNode())))
	}
	return b.structs["rb_root"]
}

// XArray is struct xarray { spinlock_t xa_lock; gfp_t xa_flags; void
// *xa_head; } (the lock as an unsigned int).
func (b *BTF) XArray() *btf.Struct {
	if !b.Has("xarray") {
		b.Struct("xarray", F("xa_lock", b.U32), F("xa_flags", b.U32), F("xa_head", b.VoidPtr))
	}
	return b.structs["xarray"]
}

// XANode is struct xa_node: shift, offset, count, nr_values, parent,
// array, a 16-byte union (private_list / rcu_head), slots[64], with
// CONFIG_BASE_SMALL=0's XA_CHUNK_SHIFT of 6.
func (b *BTF) XANode() *btf.Struct {
	if !b.Has("xa_node") {
		n := b.Decl("xa_node")
		b.Struct("xa_node", F("shift", b.U8), F("offset", b.U8), F("count", b.U8), F("nr_values", b.U8),
			F("parent", Ptr(n)), F("array", Ptr(b.XArray())),
			F("", b.Union("", F("private_list", b.ListHead()))),
			F("slots", b.Array(b.VoidPtr, 64)))
	}
	return b.structs["xa_node"]
}

// IDR is struct idr { struct radix_tree_root idr_rt; unsigned int
// idr_base, idr_next; }, the radix tree root being struct xarray (4.20+).
func (b *BTF) IDR() *btf.Struct {
	if !b.Has("idr") {
		b.XANode()
		b.Struct("idr", F("idr_rt", b.XArray()), F("idr_base", b.U32), F("idr_next", b.U32))
	}
	return b.structs["idr"]
}

// Atomic is atomic_t, a typedef of struct { int counter; }.
func (b *BTF) Atomic() btf.Type {
	if t, ok := b.others["atomic_t"]; ok {
		return t
	}
	return b.Typedef("atomic_t", AnonStruct(F("counter", b.Int)))
}

// AtomicLong is atomic_long_t (atomic64_t), struct { s64 counter; }.
func (b *BTF) AtomicLong() btf.Type {
	if t, ok := b.others["atomic_long_t"]; ok {
		return t
	}
	a64 := b.Typedef("atomic64_t", AnonStruct(F("counter", b.S64)))
	return b.Typedef("atomic_long_t", a64)
}

// Refcount is refcount_t, struct refcount_struct { atomic_t refs; }.
func (b *BTF) Refcount() btf.Type {
	if t, ok := b.others["refcount_t"]; ok {
		return t
	}
	return b.Typedef("refcount_t", b.Struct("refcount_struct", F("refs", b.Atomic())))
}

// Cpumask is struct cpumask { unsigned long bits[1]; } (NR_CPUS <= 64).
func (b *BTF) Cpumask() *btf.Struct {
	if !b.Has("cpumask") {
		b.Struct("cpumask", F("bits", b.Array(b.ULong, 1)))
	}
	return b.structs["cpumask"]
}
