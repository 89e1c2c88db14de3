package objects

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
)

// engineKernel is a synthetic kernel for the engine's helpers: a struct
// with integers, a bitfield, a name, a pointer array; two possible CPUs
// with a per-CPU counter; an IDR of struct thing.
//
//	struct thing { u32 id; u16 flags: 3, mode: 5; char name[12];
//	               struct thing *next; bool live; u64 vals[3]; };
func engineKernel(t *testing.T) (*Program, *sk.Mem, *sk.BTF, sk.Syms) {
	b := sk.NewBTF()
	thing := b.Decl("thing")
	b.Struct("thing",
		sk.F("id", b.U32),
		sk.Bitfield("flags", b.U16, 32, 3),
		sk.Bitfield("mode", b.U16, 35, 5),
		sk.At(8, "name", b.Array(b.Char, 12)),
		sk.F("next", sk.Ptr(thing)),
		sk.F("live", b.Bool),
		sk.F("vals", b.Array(b.U64, 3)),
		sk.F("label", sk.Ptr(b.Char)))
	b.IDR()
	b.Cpumask()
	b.PerCPU("counter", b.U64)
	m := sk.NewMem()
	syms := sk.Syms{}
	return NewProgram(m, b.Spec(t), syms, WithLimit(1000)), m, b, syms
}

func TestStructReader(t *testing.T) {
	p, m, b, _ := engineKernel(t)
	th := m.New(b.Decl("thing"))
	th.Set("id", 42).Set("flags", 5).Set("mode", 17).Str("name", "widget").Set("next", 0xffff888000001234).Set("live", 1)
	th.Set("vals[2]", 99)
	v, r, err := p.ReadStruct("struct thing", th.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := v.Address(); !ok || a != th.Addr {
		t.Errorf("ReadStruct object at %#x, %v", a, ok)
	}
	if got := []uint64{r.Uint("id"), r.Uint("flags"), r.Uint("mode"), r.Uint("next"), r.Uint("live")}; fmt.Sprint(got) != fmt.Sprint([]uint64{42, 5, 17, 0xffff888000001234, 1}) {
		t.Errorf("Uint: %v", got)
	}
	if s := CString(r.Bytes("name")); s != "widget" {
		t.Errorf("name %q", s)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if x := r.OptUint("no_such"); x != 0 || r.Err() != nil {
		t.Errorf("OptUint of a missing member: %d, %v", x, r.Err())
	}
	if r.Bytes("no_such") != nil {
		t.Errorf("Bytes of a missing member")
	}
	if x := r.Uint("vals"); x != 0 || !errors.Is(r.Err(), ErrType) {
		t.Errorf("Uint of an array: %d, %v", x, r.Err())
	}
	_, r2, _ := p.ReadStruct("struct thing", th.Addr)
	if r2.Uint("no_such"); !errors.Is(r2.Err(), ErrNotFound) {
		t.Errorf("Uint of a missing member: %v", r2.Err())
	}
	if r2.Uint("id") != 0 {
		t.Errorf("Uint after an error reads on")
	}
	// A struct on an absent page: the error names the address.
	m.Drop(0xffff888000700000)
	if _, _, err := p.ReadStruct("struct thing", 0xffff888000700000); err == nil || !strings.Contains(err.Error(), "0xffff888000700000") {
		t.Errorf("ReadStruct of an absent page: %v", err)
	}
	if _, _, err := p.ReadStruct("struct nothing", th.Addr); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadStruct of an unknown type: %v", err)
	}

	// Value accessors on the same object.
	obj, _ := p.ObjectOf("struct thing", th.Addr)
	if x, err := obj.MemberUint("vals[2]"); err != nil || x != 99 {
		t.Errorf("MemberUint(vals[2]) = %d, %v", x, err)
	}
	if x, err := obj.MemberInt("id"); err != nil || x != 42 {
		t.Errorf("MemberInt(id) = %d, %v", x, err)
	}
	if x, err := p.UintAt("struct thing", th.Addr, "mode"); err != nil || x != 17 {
		t.Errorf("UintAt(mode) = %d, %v", x, err)
	}
	if _, err := p.UintAt("struct thing", 0, "mode"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("UintAt(NULL): %v", err)
	}
	live, _ := obj.Member("live")
	if ok, err := live.Bool(); err != nil || !ok {
		t.Errorf("live = %v, %v", ok, err)
	}
	fl, _ := obj.Member("flags")
	if off, width, ok := fl.BitField(); !ok || off != 0 || width != 3 {
		t.Errorf("flags bitfield %d/%d/%v", off, width, ok)
	}
	vals, _ := obj.Member("vals")
	if n, err := vals.Len(); err != nil || n != 3 {
		t.Errorf("len(vals) = %d, %v", n, err)
	}
	if _, err := vals.Index(3); !errors.Is(err, ErrNotFound) {
		t.Errorf("vals[3]: %v", err)
	}
	if _, err := live.Len(); !errors.Is(err, ErrType) {
		t.Errorf("len of a bool: %v", err)
	}
	// A copy of the bytes, not in memory.
	bs, _ := obj.Bytes()
	c := p.ValueOf(obj.Type(), bs)
	if x, err := c.MemberUint("vals[2]"); err != nil || x != 99 {
		t.Errorf("ValueOf: vals[2] = %d, %v", x, err)
	}
	if c.Addr() != 0 || c.Program() != p {
		t.Errorf("ValueOf is at %#x", c.Addr())
	}
	// Casts: the object reinterpreted, a pointer to an integer.
	as, err := obj.Cast("unsigned int")
	if x, _ := as.Uint(); err != nil || x != 42 {
		t.Errorf("(unsigned int)thing = %d, %v", x, err)
	}
	nx, _ := obj.Member("next")
	ul, err := nx.Cast("unsigned long")
	if x, _ := ul.Uint(); err != nil || x != 0xffff888000001234 || ul.Signed() {
		t.Errorf("(unsigned long)next = %#x, %v", x, err)
	}
	if _, err := obj.Cast("struct nothing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cast to an unknown type: %v", err)
	}
	// A char pointer: NULL is named, a string across a page boundary reads.
	lb, _ := obj.Member("label")
	if _, err := lb.CString(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NULL label: %v", err)
	}
	m.String(0xffff888000202ffc, "across")
	th.Set("label", 0xffff888000202ffc)
	if s, err := lb.CString(); err != nil || s != "across" {
		t.Errorf("label %q, %v", s, err)
	}
	if s, err := p.ReadCString(0xffff888000202ffc, 3); err != nil || s != "acr" {
		t.Errorf("ReadCString max 3: %q, %v", s, err)
	}
	m.Drop(0xffff888000203000)
	if s, err := p.ReadCString(0xffff888000202ffc, 64); err == nil || s != "acro" || !strings.Contains(err.Error(), "0xffff888000202ffc") {
		t.Errorf("string running into an absent page: %q, %v", s, err)
	}
	if _, err := live.CString(); !errors.Is(err, ErrType) {
		t.Errorf("CString of a bool: %v", err)
	}
	if n, err := p.SizeofType("struct thing"); err != nil || n != 72 {
		t.Errorf("sizeof(struct thing) = %d, %v", n, err)
	}
}

func TestReadPointers(t *testing.T) {
	p, m, _, _ := engineKernel(t)
	a := m.Alloc(24)
	m.U64(a, 1)
	m.U64(a+8, 2)
	m.U64(a+16, 3)
	if got, err := p.ReadPointers(a, 3); err != nil || fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("ReadPointers = %v, %v", got, err)
	}
	if _, err := p.ReadPointers(0, 3); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadPointers(NULL): %v", err)
	}
	if _, err := p.ReadPointers(0xffff888000900000, 1); !errors.Is(err, sk.ErrFault) {
		t.Errorf("ReadPointers of an absent page: %v", err)
	}
	if p.Types() == nil || p.Decls() == nil || p.Limit() != 1000 || p.Memory() != m {
		t.Errorf("Program accessors")
	}
}

func TestPerCPU(t *testing.T) {
	p, _, _, _ := engineKernel(t)
	// No nr_cpu_ids symbol yet.
	if _, err := p.PossibleCPUs(); !errors.Is(err, ErrNotFound) {
		t.Errorf("PossibleCPUs without nr_cpu_ids: %v", err)
	}
	p, m, _, syms := engineKernel(t)
	// CPUs 0 and 2 possible (mask 0b101), nr_cpu_ids 3;
	// __per_cpu_offset[cpu] = 0xffff888070000000 + cpu<<20.
	syms["nr_cpu_ids"] = 0xffffffff82000000
	syms["__cpu_possible_mask"] = 0xffffffff82000040
	syms["__per_cpu_offset"] = 0xffffffff82001000
	syms["counter"] = 0x40 // a per-CPU symbol is section-relative
	m.U32(0xffffffff82000000, 3)
	m.U64(0xffffffff82000040, 0b101)
	for cpu := uint64(0); cpu < 3; cpu++ {
		m.U64(0xffffffff82001000+8*cpu, 0xffff888070000000+cpu<<20)
		m.U64(0xffff888070000000+cpu<<20+0x40, 100+cpu)
	}
	cpus, err := p.PossibleCPUs()
	if err != nil || fmt.Sprint(cpus) != "[0 2]" {
		t.Fatalf("PossibleCPUs = %v, %v", cpus, err)
	}
	offs, err := p.PerCPUOffsets()
	if err != nil || fmt.Sprintf("%x", offs) != "[ffff888070000000 ffff888070200000]" {
		t.Errorf("PerCPUOffsets = %x, %v", offs, err)
	}
	v, err := p.Variable("counter")
	if err != nil || !v.IsPerCPU() {
		t.Fatalf("counter: %v (per-CPU %v)", err, v.IsPerCPU())
	}
	for _, cpu := range cpus {
		c, err := p.PerCPU(v, cpu)
		x, _ := c.Uint()
		if err != nil || x != 100+uint64(cpu) {
			t.Errorf("per_cpu(counter, %d) = %d, %v", cpu, x, err)
		}
	}
	// A __percpu pointer: per_cpu_ptr.
	ptr := p.Pointer(v.Type(), 0x40)
	if c, err := p.PerCPU(ptr, 2); err != nil || c.Addr() != 0xffff888070200040 {
		t.Errorf("per_cpu_ptr(0x40, 2) at %#x, %v", c.Addr(), err)
	}
	if _, err := p.PerCPUOffset(3); !errors.Is(err, ErrNotFound) {
		t.Errorf("CPU 3 of 3: %v", err)
	}
	one, _ := p.Constant(v.Type(), 1)
	if _, err := p.PerCPU(one, 0); !errors.Is(err, ErrType) {
		t.Errorf("per_cpu of a constant: %v", err)
	}
	// An empty possible mask falls back to 0..nr_cpu_ids-1.
	m.U64(0xffffffff82000040, 0)
	if cpus, err := p.PossibleCPUs(); err != nil || fmt.Sprint(cpus) != "[0 1 2]" {
		t.Errorf("PossibleCPUs with an empty mask = %v, %v", cpus, err)
	}
}

func TestIDRBuilder(t *testing.T) {
	p, m, b, syms := engineKernel(t)
	thing := b.Decl("thing")
	// IDs spread over three levels of xa_node (shift 12, 6, 0).
	ids := []uint64{1, 2, 63, 64, 4095, 4096}
	entries := map[uint64]uint64{}
	for _, id := range ids {
		o := m.New(thing).Set("id", id)
		entries[id] = o.Addr
	}
	idr := m.New(b.IDR())
	m.Alloc(4096) // the nodes on pages of their own
	m.IDR(idr.Addr, entries)
	syms["things"] = idr.Addr
	d := p.Decls()
	if err := d.Add("struct idr things"); err != nil {
		t.Fatal(err)
	}
	v, err := p.Variable("things")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for e, err := range IDRForEachEntry(v, "struct thing") {
		if err != nil {
			t.Fatal(err)
		}
		id, err := e.Value.MemberUint("id")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d=%d", e.Index, id))
	}
	if s := strings.Join(got, " "); s != "1=1 2=2 63=63 64=64 4095=4095 4096=4096" {
		t.Errorf("IDR entries %s", s)
	}
	// Stopping early is honoured.
	n := 0
	for range IDRForEachEntry(v, "struct thing") {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break after %d", n)
	}
	if _, err := sk.WalkErr(IDRForEachEntry(v, "struct nothing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("IDR of an unknown type: %v", err)
	}
	// The page of the root node gone: the walk names the node.
	head, _ := p.ReadU64(idr.Addr + 8)
	m.Drop(head - 2)
	if _, err := sk.WalkErr(IDRForEachEntry(v, "struct thing")); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%#x", head-2)) {
		t.Errorf("absent root node: %v", err)
	}
}

func TestHexAndProbe(t *testing.T) {
	h := Hex(0xffffffff81000000)
	if b, err := h.MarshalText(); err != nil || string(b) != "0xffffffff81000000" {
		t.Errorf("MarshalText %s, %v", b, err)
	}
	j, err := json.Marshal(struct{ A *Hex }{HexPtr(0x10)})
	if err != nil || string(j) != `{"A":"0x10"}` {
		t.Errorf("JSON %s, %v", j, err)
	}
	var back struct{ A Hex }
	if err := json.Unmarshal([]byte(`{"A":"0x1f"}`), &back); err != nil || back.A != 0x1f {
		t.Errorf("unmarshal %v, %v", back.A, err)
	}
	if err := back.A.UnmarshalText([]byte("zz")); err == nil {
		t.Errorf("unmarshal of zz")
	}
	p, _, _, _ := engineKernel(t)
	calls := 0
	f := func() bool { calls++; return true }
	first, second := p.Probe("x", f), p.Probe("x", f)
	if !first || !second || calls != 1 {
		t.Errorf("Probe asked %d times", calls)
	}
	if _, err := p.Symbol("nothing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Symbol: %v", err)
	}
	np := NewProgram(nil, p.Types(), nil)
	if _, err := np.Symbol("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no symbols: %v", err)
	}
	if err := np.Read(make([]byte, 1), 0x1000); !errors.Is(err, ErrNoMemory) {
		t.Errorf("no memory: %v", err)
	}
}

func TestEnumerator(t *testing.T) {
	p, _, _ := synthProgram(t)
	for name, want := range map[string]uint64{"RED": 0, "GREEN": 1} {
		if got, err := p.Enumerator(name); err != nil || got != want {
			t.Errorf("%s = %d %v, want %d", name, got, err, want)
		}
	}
	if _, err := p.Enumerator("PURPLE"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PURPLE: %v", err)
	}
}
