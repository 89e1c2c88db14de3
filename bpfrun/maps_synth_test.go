package bpfrun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/bpfvm"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
)

// The map operations on synthetic maps laid out as the kernel lays them
// out: every expectation comes from what the test wrote and the kernel's
// semantics of the operation (kernel/bpf/hashtab.c, arraymap.c,
// lpm_trie.c).

// op is a session that calls one kernel function at a time with
// arguments in the machine's memory.
type op struct {
	t  *testing.T
	k  *synth
	r  *Replayer
	s  *Session
	mp uint64
}

func newOp(t *testing.T, k *synth, mapAddr uint64) *op {
	r := k.replayer()
	s, err := r.NewSession(Options{CPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &op{t: t, k: k, r: r, s: s, mp: mapAddr}
}

// buf allocates b in the machine's memory.
func (o *op) buf(b []byte) uint64 {
	reg, err := o.s.m.Alloc("arg", max(len(b), 1), false)
	if err != nil {
		o.t.Fatal(err)
	}
	copy(reg.Bytes(), b)
	return reg.Addr
}

// call runs fn(map, key, value, flags) in a program and returns R0.
func (o *op) call(fn string, key, value []byte, flags int32) uint64 {
	o.t.Helper()
	insns := prog(ld64(r1, o.mp), ld64(r2, o.buf(key)), ld64(r3, o.buf(value)), mov(r4, flags), call(fn), exit())
	p := o.k.load(o.r, 1, insns, o.mp)
	o.s.ran(p)
	ret, err := o.s.m.Exec(p.VM)
	if err != nil {
		o.t.Fatalf("%s: %v", fn, err)
	}
	return ret
}

// read reads n bytes at addr through the session.
func (o *op) read(addr uint64, n int) []byte {
	o.t.Helper()
	b := make([]byte, n)
	if err := o.s.m.Read(addr, b); err != nil {
		o.t.Fatal(err)
	}
	return b
}

// changes renders the session's map changes as "key:before>after".
func (o *op) changes() string {
	o.t.Helper()
	ch, err := o.s.MapChanges()
	if err != nil {
		o.t.Fatal(err)
	}
	var out []string
	for _, c := range ch {
		h := func(x *HexBytes) string {
			if x == nil {
				return "-"
			}
			return fmt.Sprintf("%x", []byte(*x))
		}
		out = append(out, fmt.Sprintf("%x:%s>%s", []byte(c.Key), h(c.Before), h(c.After)))
	}
	return strings.Join(out, " ")
}

// dump lists the map's entries in memory as the bpf walkers see them
// through the session, "key=value".
func (o *op) dump() string {
	o.t.Helper()
	st, err := entries(o.s.View(), o.mp)
	if err != nil {
		o.t.Fatal(err)
	}
	var out []string
	for _, k := range st.keys {
		out = append(out, fmt.Sprintf("%x=%x", k, st.vals[k]))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func errno(e int) uint64 { return bpfvm.Errno(e) }

func TestHashMap(t *testing.T) {
	k := newSynth(t)
	h := k.Htab(7, bpf.MapTypeHash, 4, 8, 3, 4, 0x1234, k.Ops("htab_map_lookup_elem", "htab_map_update_elem", "htab_map_delete_elem"))
	e1 := k.Add(h, sk.LE32(1), htabHash(sk.LE32(1), 0x1234), sk.LE64(0x11))
	k.Add(h, sk.LE32(2), htabHash(sk.LE32(2), 0x1234), sk.LE64(0x22))
	o := newOp(t, k, h.M.Addr)

	// A lookup returns the value's kernel address: the element's, after
	// the key rounded up to 8 bytes.
	if got, want := o.call("htab_map_lookup_elem", sk.LE32(1), nil, 0), e1+h.KeyOff+8; got != want {
		t.Errorf("lookup of 1: %#x, want %#x", got, want)
	}
	// The verifier's inlined form calls __htab_map_lookup_elem for the
	// element itself.
	if got := o.call("__htab_map_lookup_elem", sk.LE32(1), nil, 0); got != e1 {
		t.Errorf("__htab_map_lookup_elem of 1: %#x, want %#x", got, e1)
	}
	if got := o.call("htab_map_lookup_elem", sk.LE32(9), nil, 0); got != 0 {
		t.Errorf("lookup of a missing key: %#x", got)
	}
	// The generic helper dispatches through the map's ops.
	if got := o.call("bpf_map_lookup_elem", sk.LE32(2), nil, 0); got == 0 || !bytes.Equal(o.read(got, 8), sk.LE64(0x22)) {
		t.Errorf("bpf_map_lookup_elem of 2: %#x", got)
	}
	// check_flags, then a new element and a replacement.
	for _, c := range []struct {
		key   uint32
		value uint64
		flags int32
		want  uint64
	}{
		{1, 0x111, bpfNoExist, errno(eEXIST)},
		{3, 0x33, bpfExist, errno(eNOENT)},
		{3, 0x33, bpfNoExist, 0},
		{1, 0x111, bpfExist, 0},
		{4, 0x44, bpfAny, errno(e2BIG)}, // max_entries 3
		{4, 0x44, 9, errno(eINVAL)},
	} {
		if got := o.call("htab_map_update_elem", sk.LE32(c.key), sk.LE64(c.value), c.flags); got != c.want {
			t.Errorf("update %d flags %d: %#x, want %#x", c.key, c.flags, got, c.want)
		}
	}
	// Later lookups find the new element in the real buckets.
	if got := o.call("htab_map_lookup_elem", sk.LE32(3), nil, 0); got == 0 || !bytes.Equal(o.read(got, 8), sk.LE64(0x33)) {
		t.Errorf("lookup of the new key 3: %#x", got)
	}
	if got := o.call("htab_map_delete_elem", sk.LE32(2), nil, 0); got != 0 {
		t.Errorf("delete of 2: %#x", got)
	}
	if got := o.call("bpf_map_delete_elem", sk.LE32(2), nil, 0); got != errno(eNOENT) {
		t.Errorf("second delete of 2: %#x", got)
	}
	// Deleting made room.
	if got := o.call("bpf_map_update_elem", sk.LE32(4), sk.LE64(0x44), bpfAny); got != 0 {
		t.Errorf("update of 4 after a delete: %#x", got)
	}
	if got, want := o.dump(), "01000000=1101000000000000 03000000=3300000000000000 04000000=4400000000000000"; got != want {
		t.Errorf("walkers over the overlay:\n got %s\nwant %s", got, want)
	}
	if got, want := o.changes(), "01000000:1100000000000000>1101000000000000 03000000:->3300000000000000 04000000:->4400000000000000 02000000:2200000000000000>-"; got != want {
		t.Errorf("changes:\n got %s\nwant %s", got, want)
	}
	// The dump itself is untouched.
	if got := fmt.Sprintf("%x", readMem(t, k, e1+h.KeyOff+8, 8)); got != "1100000000000000" {
		t.Errorf("the dump's value changed: %s", got)
	}
}

func readMem(t *testing.T, k *synth, addr uint64, n int) []byte {
	b := make([]byte, n)
	if _, err := k.M.ReadVirt(b, addr); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPerCPUHash(t *testing.T) {
	k := newSynth(t)
	h := k.Htab(8, bpf.MapTypePerCPUHash, 4, 4, 8, 2, 7, 0)
	const pcpu = 0x6000
	for cpu := range 2 {
		k.M.U32(sk.PerCPUAddr(cpu, pcpu), uint32(0xa0+cpu))
	}
	k.Add(h, sk.LE32(5), htabHash(sk.LE32(5), 7), sk.LE64(pcpu))
	o := newOp(t, k, h.M.Addr)
	// CPU 1's copy.
	if got := o.call("htab_percpu_map_lookup_elem", sk.LE32(5), nil, 0); got != sk.PerCPUAddr(1, pcpu) {
		t.Errorf("per-CPU lookup: %#x, want CPU 1's %#x", got, sk.PerCPUAddr(1, pcpu))
	}
	// An update of an existing key changes this CPU's value in place; a
	// new key gets the value on this CPU and zeros on the others.
	if got := o.call("htab_percpu_map_update_elem", sk.LE32(5), sk.LE32(0xb1), bpfAny); got != 0 {
		t.Errorf("update of 5: %#x", got)
	}
	if got := o.call("htab_percpu_map_update_elem", sk.LE32(6), sk.LE32(0xc1), bpfAny); got != 0 {
		t.Errorf("update of 6: %#x", got)
	}
	v := o.call("htab_percpu_map_lookup_elem", sk.LE32(6), nil, 0)
	if v == 0 || !bytes.Equal(o.read(v, 4), sk.LE32(0xc1)) {
		t.Errorf("lookup of the new key 6: %#x", v)
	}
	// Each CPU's value rounded up to 8 bytes, CPU 0 first.
	if got, want := o.changes(), "06000000:->0000000000000000c100000000000000 05000000:a000000000000000a100000000000000>a000000000000000b100000000000000"; got != want {
		t.Errorf("changes:\n got %s\nwant %s", got, want)
	}
}

func TestLRUHash(t *testing.T) {
	k := newSynth(t)
	h := k.Htab(9, bpf.MapTypeLRUHash, 4, 8, 2, 2, 3, 0)
	e := k.Add(h, sk.LE32(1), htabHash(sk.LE32(1), 3), sk.LE64(0x5001))
	o := newOp(t, k, h.M.Addr)
	ref := e + uint64(o.s.lay.elemLRURef)
	if got := o.call("htab_lru_map_lookup_elem", sk.LE32(1), nil, 0); got != e+h.KeyOff+8 {
		t.Errorf("lookup: %#x", got)
	}
	// bpf_lru_node_set_ref.
	if b := o.read(ref, 1); b[0] != 1 {
		t.Errorf("the element is not marked referenced: %d", b[0])
	}
	if got := o.call("htab_lru_map_update_elem", sk.LE32(2), sk.LE64(0x5004), bpfAny); got != 0 {
		t.Errorf("update of 2: %#x", got)
	}
	// The LRU is full: the eviction is not replayed, and says so.
	insns := prog(ld64(r1, o.mp), ld64(r2, o.buf(sk.LE32(3))), ld64(r3, o.buf(sk.LE64(9))), mov(r4, 0), call("htab_lru_map_update_elem"), exit())
	p := k.load(o.r, 1, insns, o.mp)
	if _, err := o.s.m.Exec(p.VM); !errors.Is(err, bpfvm.ErrHelper) || !strings.Contains(err.Error(), "LRU eviction") {
		t.Errorf("update of a full LRU map: %v", err)
	}
	// The reference bit is not a change of the map's entries.
	if got, want := o.changes(), "02000000:->0450000000000000"; got != want {
		t.Errorf("changes: %s, want %s", got, want)
	}
}

func TestArrays(t *testing.T) {
	k := newSynth(t)
	a, values := k.Array(10, bpf.MapTypeArray, 8, 3, k.Ops("array_map_lookup_elem", "array_map_update_elem", "array_map_delete_elem"))
	for i := range 3 {
		k.M.U64(values+8*uint64(i), uint64(0x1000+i))
	}
	o := newOp(t, k, a.Member("map").Addr)
	if got := o.call("array_map_lookup_elem", sk.LE32(2), nil, 0); got != values+16 {
		t.Errorf("lookup of 2: %#x, want %#x", got, values+16)
	}
	if got := o.call("array_map_lookup_elem", sk.LE32(3), nil, 0); got != 0 {
		t.Errorf("lookup past max_entries: %#x", got)
	}
	for _, c := range []struct {
		i     uint32
		flags int32
		want  uint64
	}{{1, bpfAny, 0}, {1, bpfNoExist, errno(eEXIST)}, {3, bpfAny, errno(e2BIG)}, {0, 3, errno(eINVAL)}} {
		if got := o.call("array_map_update_elem", sk.LE32(c.i), sk.LE64(0x77), c.flags); got != c.want {
			t.Errorf("update %d flags %d: %#x, want %#x", c.i, c.flags, got, c.want)
		}
	}
	if got := o.call("bpf_map_delete_elem", sk.LE32(1), nil, 0); got != errno(eINVAL) {
		t.Errorf("delete: %#x", got)
	}
	if got, want := o.changes(), "01000000:0110000000000000>7700000000000000"; got != want {
		t.Errorf("changes: %s, want %s", got, want)
	}

	// A per-CPU array: pptrs, CPU 1's copy.
	k2 := newSynth(t)
	pa, pptrs := k2.Array(11, bpf.MapTypePerCPUArray, 4, 2, 0)
	for i := range 2 {
		k2.M.U64(pptrs+8*uint64(i), uint64(0x7000+0x10*i))
		for cpu := range 2 {
			k2.M.U32(sk.PerCPUAddr(cpu, uint32(0x7000+0x10*i)), uint32(0xa000+0x10*i+cpu))
		}
	}
	o2 := newOp(t, k2, pa.Member("map").Addr)
	if got := o2.call("percpu_array_map_lookup_elem", sk.LE32(1), nil, 0); got != sk.PerCPUAddr(1, 0x7010) {
		t.Errorf("per-CPU lookup of 1: %#x", got)
	}
	if got := o2.call("array_map_update_elem", sk.LE32(1), sk.LE32(0xbeef), bpfAny); got != 0 {
		t.Errorf("per-CPU update: %#x", got)
	}
	if got, want := o2.changes(), "01000000:10a0000000000000 11a0000000000000>10a0000000000000efbe000000000000"; strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(want, " ", "") {
		t.Errorf("changes: %s, want %s", got, want)
	}
}

// lpmKey is a struct bpf_lpm_trie_key of an IPv4 prefix.
func lpmKey(prefix uint32, a, b, c, d byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, prefix), a, b, c, d)
}

func TestLPMTrie(t *testing.T) {
	k := newSynth(t)
	tr := k.Trie(12, 4, 4, 8, k.Ops("trie_lookup_elem", "trie_update_elem", "trie_delete_elem"))
	o := newOp(t, k, tr.Member("map").Addr)
	// Built by the update itself, then checked against a longest-prefix
	// match done by hand.
	prefixes := []struct {
		key []byte
		val uint32
	}{
		{lpmKey(0, 0, 0, 0, 0), 1}, {lpmKey(8, 10, 0, 0, 0), 2}, {lpmKey(16, 10, 1, 0, 0), 3},
		{lpmKey(24, 10, 1, 2, 0), 4}, {lpmKey(12, 172, 16, 0, 0), 5}, {lpmKey(16, 192, 168, 0, 0), 6},
		{lpmKey(32, 192, 168, 7, 42), 7},
	}
	for _, p := range prefixes {
		if got := o.call("trie_update_elem", p.key, sk.LE32(p.val), bpfAny); got != 0 {
			t.Fatalf("update %x: %#x", p.key, got)
		}
	}
	lookup := func(a, b, c, d byte) uint32 {
		v := o.call("trie_lookup_elem", lpmKey(32, a, b, c, d), nil, 0)
		if v == 0 {
			return 0
		}
		return binary.LittleEndian.Uint32(o.read(v, 4))
	}
	for _, c := range []struct {
		addr [4]byte
		want uint32
	}{
		{[4]byte{10, 1, 2, 3}, 4}, {[4]byte{10, 1, 3, 3}, 3}, {[4]byte{10, 2, 0, 1}, 2}, {[4]byte{172, 20, 0, 1}, 5},
		{[4]byte{172, 32, 0, 1}, 1}, {[4]byte{192, 168, 7, 42}, 7}, {[4]byte{192, 168, 7, 43}, 6}, {[4]byte{8, 8, 8, 8}, 1},
	} {
		if got := lookup(c.addr[0], c.addr[1], c.addr[2], c.addr[3]); got != c.want {
			t.Errorf("lookup %v: %d, want %d", c.addr, got, c.want)
		}
	}
	if got := o.call("trie_delete_elem", lpmKey(16, 10, 1, 0, 0), nil, 0); got != 0 {
		t.Errorf("delete 10.1/16: %#x", got)
	}
	if got := o.call("trie_delete_elem", lpmKey(16, 10, 1, 0, 0), nil, 0); got != errno(eNOENT) {
		t.Errorf("second delete: %#x", got)
	}
	if got := lookup(10, 1, 3, 3); got != 2 {
		t.Errorf("lookup 10.1.3.3 after the delete: %d, want 2", got)
	}
	if got := o.call("trie_update_elem", lpmKey(33, 1, 1, 1, 1), sk.LE32(9), bpfAny); got != errno(eINVAL) {
		t.Errorf("a prefix longer than the key: %#x", got)
	}
	// The trie's walker (post-order) sees what the lookups saw.
	if got, want := o.dump(), "0000000000000000=01000000 080000000a000000=02000000 0c000000ac100000=05000000 10000000c0a80000=06000000 180000000a010200=04000000 20000000c0a8072a=07000000"; got != want {
		t.Errorf("walkers:\n got %s\nwant %s", got, want)
	}
	if n, _ := o.s.trieEntries(o.s.maps[o.mp], 0); n != 6 {
		t.Errorf("n_entries %d, want 6", n)
	}
}

func TestTailCall(t *testing.T) {
	k := newSynth(t)
	pa, slots := k.Array(13, bpf.MapTypeProgArray, 4, 2, 0)
	r := k.replayer()
	target := k.Prog(200, 1, "target", bpfinsn.Encode(prog(mov(r0, 42), exit())))
	k.M.U64(slots, target.Addr)
	mp := pa.Member("map").Addr
	for _, c := range []struct {
		slot int32
		want uint64
	}{{0, 42}, {1, 1}, {2, 1}} {
		insns := prog(ld64(r2, mp), mov(r3, c.slot), tailCall(), mov(r0, 1), exit())
		p := k.load(r, 1, insns, mp)
		s, err := r.NewSession(Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.m.Exec(p.VM); err != nil || got != c.want {
			t.Errorf("tail call to slot %d: %d, %v; want %d", c.slot, got, err, c.want)
		}
	}
}

func TestUnimplementedHelper(t *testing.T) {
	k := newSynth(t)
	r := k.replayer()
	p := k.load(r, 1, prog(mov(r1, 0), call("bpf_skb_vlan_push"), exit()))
	s, err := r.NewSession(Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.m.Exec(p.VM)
	var xe *bpfvm.ExecError
	if !errors.As(err, &xe) || !errors.Is(err, bpfvm.ErrUnknownHelper) || xe.Insn != 1 || !strings.Contains(err.Error(), "bpf_skb_vlan_push") {
		t.Errorf("a call without an implementation: %v", err)
	}
}
