package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

func u32b(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }
func u64b(x uint64) []byte { return binary.LittleEndian.AppendUint64(nil, x) }

// entries renders a map's elements as "key=value" in hex, a per-CPU
// value as its CPUs' values joined by "/", an error as "key!".
func entries(t *testing.T, m *Map, order MapOrder) string {
	t.Helper()
	var out []string
	for e, err := range m.EntriesIn(order) {
		if err != nil {
			t.Fatalf("map %d: %v", m.ID, err)
		}
		s := fmt.Sprintf("%x=", e.Key)
		switch {
		case e.Err != nil:
			s += "!"
		case e.PerCPU != nil:
			var vs []string
			for _, v := range e.PerCPU {
				vs = append(vs, fmt.Sprintf("%x", v))
			}
			s += strings.Join(vs, "/")
		default:
			s += fmt.Sprintf("%x", e.Value)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// htab lays out a struct bpf_htab (kernel/bpf/hashtab.c) of n_buckets
// buckets, each head an hlist_nulls_head whose end marker is the
// bucket's index (INIT_HLIST_NULLS_HEAD), and elem_size as
// htab_map_alloc computes it: sizeof(struct htab_elem) + round_up(key,
// 8) + round_up(value, 8), or + sizeof(void *) for a per-CPU map. With
// prealloc, elems is an array of max_entries (+ one per CPU, unless
// per-CPU or LRU) elements.
type htab struct {
	h, m          sk.Obj
	buckets       uint64
	elems         uint64
	elemSize      uint64
	keyOff, nBkts uint64
}

func (k *bpfKernel) htab(id uint32, typ uint64, key, value, maxEntries, nBuckets uint32, prealloc bool) *htab {
	h, m := k.mapIn("bpf_htab", 0, id, typ, key, value, maxEntries, fmt.Sprintf("htab%d", id))
	percpu := typ == MapTypePerCPUHash || typ == MapTypeLRUPerCPUHash
	es := uint64(k.S("htab_elem").Size) + uint64((key+7)&^7)
	if percpu {
		es += 8
	} else {
		es += uint64((value + 7) &^ 7)
	}
	bsz := uint64(k.S("bucket").Size)
	buckets := k.M.AllocPage(bsz * uint64(nBuckets))
	for i := uint64(0); i < uint64(nBuckets); i++ {
		k.M.U64(buckets+i*bsz, i<<1|1)
	}
	h.Set("buckets", buckets).Set("n_buckets", uint64(nBuckets)).Set("elem_size", es)
	ht := &htab{h: h, m: m, buckets: buckets, elemSize: es, keyOff: uint64(k.S("htab_elem").Size), nBkts: uint64(nBuckets)}
	if prealloc {
		n := uint64(maxEntries)
		if !percpu && typ != MapTypeLRUHash {
			n += 2 // htab_has_extra_elems: one per possible CPU
		}
		ht.elems = k.M.AllocPage(n * es)
		h.Set("elems", ht.elems)
	} else {
		m.Set("map_flags", bpfFNoPrealloc)
	}
	return ht
}

// elem writes an element with key and value (or a __percpu pointer) at
// index i of the preallocated array, or allocates it.
func (k *bpfKernel) elem(ht *htab, i int, key []byte, value []byte) uint64 {
	var a uint64
	if ht.elems != 0 {
		a = ht.elems + uint64(i)*ht.elemSize
	} else {
		a = k.M.Alloc(ht.elemSize)
	}
	k.M.Write(a+ht.keyOff, key)
	k.M.Write(a+ht.keyOff+uint64((len(key)+7)&^7), value)
	return a
}

// chain links elems (hash_node at offset 0) into bucket b, first to
// last, with their pprev as hlist_nulls_add_head leaves them.
func (k *bpfKernel) chain(ht *htab, b uint64, elems ...uint64) {
	link := ht.buckets + b*uint64(k.S("bucket").Size)
	for _, e := range elems {
		k.M.U64(link, e)
		k.M.U64(e+8, link)
		link = e
	}
	k.M.U64(link, b<<1|1)
}

func TestHashMaps(t *testing.T) {
	k := newBPF(t)
	// Hash map 10: keys 1 and 3 in bucket 0, key 2 in bucket 2; in the
	// element array, key 2 at index 0, key 1 at 2, key 3 at 5.
	h := k.htab(10, MapTypeHash, 4, 8, 4, 4, true)
	e2 := k.elem(h, 0, u32b(2), u64b(0x2222))
	e1 := k.elem(h, 2, u32b(1), u64b(0x1111))
	e3 := k.elem(h, 5, u32b(3), u64b(0x3333))
	k.chain(h, 0, e1, e3)
	k.chain(h, 2, e2)
	// A free element: its pprev slot holds a freelist link.
	k.M.U64(h.elems+uint64(1)*h.elemSize+8, h.elems+3*h.elemSize+8)
	const countOff = 0x4000 // bpf_map.elem_count, per CPU
	h.m.Set("elem_count", countOff)
	k.M.U64(sk.PerCPUAddr(0, countOff), 2)
	k.M.U64(sk.PerCPUAddr(1, countOff), 1)

	// Per-CPU hash map 11 without prealloc: the value slot holds a
	// __percpu pointer.
	pc := k.htab(11, MapTypePerCPUHash, 4, 4, 8, 8, false)
	const valOff = 0x5000
	for cpu := range 2 {
		k.M.U32(sk.PerCPUAddr(cpu, valOff), uint32(0xa0+cpu))
	}
	pe := k.elem(pc, 0, u32b(7), u64b(valOff))
	k.chain(pc, 5, pe)
	// The element count: the per-CPU counter's sum (count 0, one on
	// CPU 0), not the atomic count, which the map does not use.
	pc.h.Set("count.counter", 5).Set("use_percpu_counter", 1).Set("pcount.counters", 0x5100)
	k.M.U32(sk.PerCPUAddr(0, 0x5100), 1)
	k.M.U32(sk.PerCPUAddr(1, 0x5100), 0)

	// LRU hash map 12 with one element.
	lru := k.htab(12, MapTypeLRUHash, 8, 4, 2, 2, true)
	le := k.elem(lru, 1, u64b(0xfeed), u32b(0xbeef))
	k.chain(lru, 1, le)

	k.idr("map_idr", map[uint64]uint64{10: h.m.Addr, 11: pc.m.Addr, 12: lru.m.Addr})

	m, err := MapByID(k.p, 10)
	if err != nil {
		t.Fatal(err)
	}
	if m.TypeName != "hash" || m.Name != "htab10" || m.KeySize != 4 || m.ValueSize != 8 || m.MaxEntries != 4 || m.IsPerCPU() {
		t.Errorf("map 10: %+v", m)
	}
	if s := entries(t, m, OrderKernel); s != "01000000=1111000000000000 03000000=3333000000000000 02000000=2222000000000000" {
		t.Errorf("kernel order: %s", s)
	}
	if s := entries(t, m, OrderMemory); s != "02000000=2222000000000000 01000000=1111000000000000 03000000=3333000000000000" {
		t.Errorf("memory order: %s", s)
	}
	e, err := m.Lookup(u32b(3))
	if err != nil || fmt.Sprintf("%x", e.Value) != "3333000000000000" {
		t.Errorf("lookup 3: %v, %v", e, err)
	}
	if _, err := m.Lookup(u32b(9)); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("lookup 9: %v", err)
	}
	if _, err := m.Lookup([]byte{1}); !errors.Is(err, objects.ErrType) {
		t.Errorf("lookup of a 1-byte key: %v", err)
	}
	// htab_map_mem_usage, preallocated: the struct, its buckets, the
	// per-CPU lock counters (HASHTAB_MAP_LOCK_COUNT 8), max_entries +
	// one extra element per CPU, and the extra elements' pointers.
	want := uint64(k.S("bpf_htab").Size) + 16*4 + 4*2*8 + 64*(4+2) + 8*2
	if ml, err := m.Memlock(); err != nil || ml != want {
		t.Errorf("memlock %d, %v; want %d", ml, err, want)
	}
	// The kernel counts 4 elements, the array links 3.
	k.M.U64(sk.PerCPUAddr(1, countOff), 2)
	if _, err := sk.WalkErr(m.EntriesIn(OrderMemory)); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", h.elems)) {
		t.Errorf("count mismatch: %v", err)
	}

	m, err = MapByID(k.p, 11)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries(t, m, OrderAuto); s != "07000000=a0000000/a1000000" || !m.IsPerCPU() {
		t.Errorf("per-CPU hash: %s", s)
	}
	// Not preallocated: elements as counted, each with an llist_node,
	// and per-CPU: a pointer and a value per CPU each.
	want = uint64(k.S("bpf_htab").Size) + 16*8 + 4*2*8 + (64+8)*1 + (8+8)*1 + 8*2*1
	if ml, err := m.Memlock(); err != nil || ml != want {
		t.Errorf("per-CPU memlock %d, %v; want %d", ml, err, want)
	}
	// A per-CPU value larger than PCPU_MIN_UNIT_SIZE: the element, with
	// its error, and no read of that size.
	pc.m.Set("value_size", 1<<31)
	big, _ := MapByID(k.p, 11)
	for e, err := range big.Entries() {
		if err != nil || !errors.Is(e.Err, objects.ErrCorrupt) {
			t.Errorf("per-CPU value_size 1<<31: %v, %v", e.Err, err)
		}
	}
	pc.m.Set("value_size", 4)
	// The per-CPU value on an absent page: the element, with its error.
	k.M.U64(pe+48+8, 0x7000)
	for e, err := range m.Entries() {
		if err != nil || e.Err == nil || !strings.Contains(e.Err.Error(), "cpu 0") {
			t.Errorf("absent per-CPU value: %v, %v", e.Err, err)
		}
	}

	m, err = MapByID(k.p, 12)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries(t, m, OrderMemory); s != "edfe000000000000=efbe0000" {
		t.Errorf("LRU: %s", s)
	}
	want = uint64(k.S("bpf_htab").Size) + 16*2 + 4*2*8 + 64*2
	if ml, err := m.Memlock(); err != nil || ml != want {
		t.Errorf("LRU memlock %d, %v; want %d", ml, err, want)
	}
}

func TestHashMapDamage(t *testing.T) {
	k := newBPF(t)
	h := k.htab(10, MapTypeHash, 4, 8, 4, 4, false)
	e1 := k.elem(h, 0, u32b(1), u64b(1))
	e2 := k.elem(h, 0, u32b(2), u64b(2))
	k.chain(h, 1, e1, e2)
	k.idr("map_idr", map[uint64]uint64{10: h.m.Addr})
	m, err := MapByID(k.p, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		do    func()
		want  error
		where string
	}{
		{"cycle", func() { k.M.U64(e2, e1) }, objects.ErrLimit, "map 10"},
		{"NULL", func() { k.M.U64(e2, 0) }, objects.ErrCorrupt, "bucket 1"},
		{"element absent", func() { k.M.U64(e1, 0xffff888077000000) }, sk.ErrFault, "0xffff888077000000"},
		{"buckets absent", func() { k.M.Drop(h.buckets) }, sk.ErrFault, fmt.Sprintf("%#x", h.buckets)},
		{"n_buckets", func() { h.h.Set("n_buckets", 3) }, objects.ErrCorrupt, "n_buckets 3"},
		{"elem_size", func() { h.h.Set("elem_size", 8) }, objects.ErrCorrupt, "elem_size 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.do()
			n, err := sk.WalkErr(m.Entries())
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.where) {
				t.Errorf("after %d: %v", n, err)
			}
		})
	}
}

func TestArrayMaps(t *testing.T) {
	k := newBPF(t)
	// Array 20: three 4-byte values, elem_size round_up(4, 8).
	arr, m20 := k.mapIn("bpf_array", 3*8, 20, MapTypeArray, 4, 4, 3, "arr")
	arr.Set("elem_size", 8)
	for i := range 3 {
		k.M.U32(arr.At("value")+uint64(8*i), uint32(0x100+i))
	}
	// Array 21: 1000 values of 8 bytes on pages of their own; a page of
	// them absent.
	big := k.M.Obj(k.S("bpf_array"), k.M.AllocPage(uint64(k.S("bpf_array").Size)+1000*8))
	m21 := big.Member("map").Set("id", 21).Set("map_type", MapTypeArray).Set("key_size", 4).Set("value_size", 8).Set("max_entries", 1000).Set("map_flags", bpfFMmapable)
	big.Set("elem_size", 8)
	for i := range 1000 {
		k.M.U64(big.At("value")+uint64(8*i), uint64(i))
	}
	gone := (big.At("value") + 8*700) &^ 4095
	k.M.Drop(gone)
	// Per-CPU array 22: pptrs[i], a value per CPU.
	pa, m22 := k.mapIn("bpf_array", 2*8, 22, MapTypePerCPUArray, 4, 4, 2, "pcpu")
	pa.Set("elem_size", 8)
	for i := range 2 {
		off := uint64(0x6000 + 0x10*i)
		k.M.U64(pa.At("pptrs")+uint64(8*i), off)
		for cpu := range 2 {
			k.M.U32(sk.PerCPUAddr(cpu, uint32(off)), uint32(0x10*i+cpu))
		}
	}
	// Prog array 23 bound to socket filters, program 1 in slot 1.
	prog, aux := k.prog(1, 1, "p", nil)
	_ = aux
	pra, m23 := k.mapIn("bpf_array", 4*8, 23, MapTypeProgArray, 4, 4, 4, "jmp")
	pra.Set("elem_size", 8)
	k.M.U64(pra.At("ptrs")+8, prog.Addr)
	m23.Set("owner", k.New("bpf_map_owner").Set("type", 1).Set("jited", 1).Addr)
	k.idr("map_idr", map[uint64]uint64{20: m20.Addr, 21: m21.Addr, 22: m22.Addr, 23: m23.Addr})

	m, err := MapByID(k.p, 20)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries(t, m, OrderAuto); s != "00000000=00010000 01000000=01010000 02000000=02010000" {
		t.Errorf("array: %s", s)
	}
	// array_map_mem_usage: the struct and the values.
	if ml, err := m.Memlock(); err != nil || ml != uint64(k.S("bpf_array").Size)+3*8 {
		t.Errorf("array memlock %d, %v", ml, err)
	}
	e, err := m.Lookup(u32b(1))
	if err != nil || fmt.Sprintf("%x", e.Value) != "01010000" {
		t.Errorf("lookup 1: %v, %v", e, err)
	}

	m, err = MapByID(k.p, 21)
	if err != nil {
		t.Fatal(err)
	}
	var bad, good, wantBad int
	for i := range uint64(1000) {
		if (big.At("value")+8*i)&^4095 == gone {
			wantBad++
		}
	}
	for e, err := range m.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		i := binary.LittleEndian.Uint32(e.Key)
		at := big.At("value") + 8*uint64(i)
		if at&^4095 == gone {
			bad++
			if e.Err == nil || !strings.Contains(e.Err.Error(), fmt.Sprintf("%#x", at)) {
				t.Errorf("element %d on the absent page: %v", i, e.Err)
			}
		} else if e.Err != nil || binary.LittleEndian.Uint64(e.Value) != uint64(i) {
			t.Errorf("element %d: %x, %v", i, e.Value, e.Err)
		} else {
			good++
		}
	}
	if bad != wantBad || wantBad == 0 || good != 1000-wantBad {
		t.Errorf("%d elements read, %d on the absent page", good, bad)
	}
	// BPF_F_MMAPABLE: both parts page-aligned.
	if ml, err := m.Memlock(); err != nil || ml != 4096+8192 {
		t.Errorf("mmapable memlock %d, %v", ml, err)
	}

	// A value larger than KMALLOC_MAX_SIZE is refused before it sizes
	// a read.
	arr.Set("elem_size", 1<<29)
	m20.Set("value_size", 1<<29)
	m, _ = MapByID(k.p, 20)
	if _, err := sk.WalkErr(m.Entries()); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), "elem_size 536870912") {
		t.Errorf("elem_size 1<<29: %v", err)
	}

	m, err = MapByID(k.p, 22)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries(t, m, OrderAuto); s != "00000000=00000000/01000000 01000000=10000000/11000000" {
		t.Errorf("per-CPU array: %s", s)
	}
	if ml, err := m.Memlock(); err != nil || ml != uint64(k.S("bpf_array").Size)+2*8+2*8*2 {
		t.Errorf("per-CPU array memlock %d, %v", ml, err)
	}

	m, err = MapByID(k.p, 23)
	if err != nil {
		t.Fatal(err)
	}
	if m.Owner == nil || *m.Owner != (MapOwner{ProgType: 1, ProgTypeName: "socket_filter", Jited: true}) {
		t.Errorf("owner %+v", m.Owner)
	}
	if s := entries(t, m, OrderAuto); s != "01000000=01000000" {
		t.Errorf("prog array: %s", s)
	}
	// The program's aux on an absent page: the slot with its error.
	prog.Set("aux", 0xffff888077000000)
	if s := entries(t, m, OrderAuto); s != "01000000=!" {
		t.Errorf("prog array with an absent program: %s", s)
	}
}

func TestPerfEventArray(t *testing.T) {
	k := newBPF(t)
	pea, m := k.mapIn("bpf_array", 2*8, 24, MapTypePerfEventArray, 4, 4, 2, "events")
	pea.Set("elem_size", 8)
	// A perf buffer of two pages (not contiguous), its records from
	// 8 bytes before the end of the first page: a PERF_RECORD_SAMPLE
	// with PERF_SAMPLE_RAW (u32 size, then the data), its header at the
	// end of page 0, and a PERF_RECORD_LOST (2).
	pg0, pg1 := k.M.AllocPage(4096), k.M.AllocPage(4096)
	k.M.AllocPage(4096)
	rb := k.M.Obj(k.S("perf_buffer"), k.M.Alloc(uint64(k.S("perf_buffer").Size)+16))
	up := k.New("perf_event_mmap_page").Set("data_tail", 4088).Set("data_head", 4088+24+24)
	rb.Set("nr_pages", 2).Set("user_page", up.Addr)
	k.M.U64(rb.At("data_pages"), pg0)
	k.M.U64(rb.At("data_pages")+8, pg1)
	rec := func(typ uint32, body []byte) []byte {
		h := binary.LittleEndian.AppendUint32(nil, typ)
		h = binary.LittleEndian.AppendUint16(h, 0)
		return append(binary.LittleEndian.AppendUint16(h, uint16(8+len(body))), body...)
	}
	stream := append(rec(9, append(u32b(12), "hello, perf!"...)), rec(2, append(u64b(7), u64b(3)...))...)
	k.M.Write(pg0+4088, stream[:8])
	k.M.Write(pg1, stream[8:])
	ev := k.New("perf_event").Set("attr.type", 1).Set("attr.config", 10).Set("cpu", 1).Set("rb", rb.Addr)
	entry := k.New("bpf_event_entry").Set("event", ev.Addr)
	k.M.U64(pea.At("ptrs")+8, entry.Addr)
	k.idr("map_idr", map[uint64]uint64{24: m.Addr})

	mp, err := MapByID(k.p, 24)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for e, err := range mp.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		n++
		ev := e.Event
		if fmt.Sprintf("%x", e.Key) != "01000000" || ev == nil || ev.CPU != 1 || ev.Type != 1 || ev.Config != 10 || ev.RecordsErr != nil ||
			ev.DataTail != 4088 || ev.DataHead != 4136 || len(ev.Records) != 2 {
			t.Fatalf("slot %x: %+v", e.Key, ev)
		}
		if r := ev.Records[0]; r.Type != 9 || r.Size != 24 || string(r.Raw) != "hello, perf!" {
			t.Errorf("sample %+v", r)
		}
		if r := ev.Records[1]; r.Type != 2 || r.Size != 24 || r.Raw != nil {
			t.Errorf("lost %+v", r)
		}
	}
	if n != 1 {
		t.Errorf("%d slots", n)
	}
	if ml, err := mp.Memlock(); err != nil || ml != uint64(k.S("bpf_array").Size)+2*8 {
		t.Errorf("memlock %d, %v", ml, err)
	}
	// Damage: a record running past the head, a head before the tail,
	// pages that are no power of two.
	for _, tc := range []struct {
		do   func()
		want string
	}{
		{func() { up.Set("data_head", 4088+20) }, "size 24"},
		{func() { up.Set("data_head", 10) }, "head 10, tail 4088"},
		{func() { rb.Set("nr_pages", 3) }, "nr_pages 3"},
	} {
		tc.do()
		for e, err := range mp.Entries() {
			if err != nil || !errors.Is(e.Event.RecordsErr, objects.ErrCorrupt) || !strings.Contains(e.Event.RecordsErr.Error(), tc.want) {
				t.Errorf("want %q: %v, %v", tc.want, e.Event.RecordsErr, err)
			}
		}
		up.Set("data_head", 4136)
		rb.Set("nr_pages", 2)
	}
}

func TestLPMTrie(t *testing.T) {
	k := newBPF(t)
	// An IPv4 trie (data_size 4): an intermediate node 10.0.0.0/8 with
	// 10.0.0.0/16 (value 1) and 10.128.0.0/9 (value 2) below it.
	tr, m := k.mapIn("lpm_trie", 0, 30, MapTypeLPMTrie, 8, 4, 16, "routes")
	tr.Set("data_size", 4).Set("n_entries", 2).Set("max_prefixlen", 32)
	node := func(plen uint32, ip [4]byte, im bool, value uint32) sk.Obj {
		n := k.M.Obj(k.S("lpm_trie_node"), k.M.Alloc(uint64(k.S("lpm_trie_node").Size)+8))
		n.Set("prefixlen", uint64(plen))
		if im {
			n.Set("flags", 1) // LPM_TREE_NODE_FLAG_IM
		}
		k.M.Write(n.At("data"), ip[:])
		k.M.U32(n.At("data")+4, value)
		return n
	}
	a := node(16, [4]byte{10, 0, 0, 0}, false, 1)
	b := node(9, [4]byte{10, 128, 0, 0}, false, 2)
	root := node(8, [4]byte{10, 0, 0, 0}, true, 0)
	root.Set("child[0]", a.Addr).Set("child[1]", b.Addr)
	tr.Set("root", root.Addr)
	k.idr("map_idr", map[uint64]uint64{30: m.Addr})
	mp, err := MapByID(k.p, 30)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries(t, mp, OrderAuto); s != "100000000a000000=01000000 090000000a800000=02000000" {
		t.Errorf("trie: %s", s)
	}
	key := func(plen uint32, ip ...byte) []byte { return append(u32b(plen), ip...) }
	for _, tc := range []struct {
		key  []byte
		want string
	}{
		{key(32, 10, 0, 5, 5), "01000000"},
		{key(32, 10, 200, 1, 1), "02000000"},
		{key(12, 10, 0, 0, 0), ""}, // shorter than every entry
		{key(32, 11, 0, 0, 1), ""},
	} {
		e, err := mp.Lookup(tc.key)
		if tc.want == "" {
			if !errors.Is(err, objects.ErrNotFound) {
				t.Errorf("lookup %x: %v, %v", tc.key, e, err)
			}
		} else if err != nil || fmt.Sprintf("%x", e.Value) != tc.want {
			t.Errorf("lookup %x: %v, %v; want %s", tc.key, e, err, tc.want)
		}
	}
	// trie_mem_usage: (node + data_size + value_size) per entry.
	if ml, err := mp.Memlock(); err != nil || ml != (uint64(k.S("lpm_trie_node").Size)+4+4)*2 {
		t.Errorf("memlock %d, %v", ml, err)
	}
	// A child pointing back at the root: a cycle, named.
	b.Set("child[0]", root.Addr)
	if _, err := sk.WalkErr(mp.Entries()); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", root.Addr)) {
		t.Errorf("cyclic trie: %v", err)
	}
	b.Set("child[0]", 0xffff888077000000)
	if _, err := sk.WalkErr(mp.Entries()); !errors.Is(err, sk.ErrFault) || !strings.Contains(err.Error(), "0xffff888077000000") {
		t.Errorf("absent node: %v", err)
	}
	tr.Set("data_size", 16)
	if _, err := sk.WalkErr(mp.Entries()); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("data_size 16 for key_size 8: %v", err)
	}
	// A data_size past LPM_DATA_SIZE_MAX, even with a key_size to match,
	// is refused before it sizes a read.
	tr.Set("data_size", 0x7ffffffc)
	m.Set("key_size", 0x80000000)
	mp, _ = MapByID(k.p, 30)
	if _, err := sk.WalkErr(mp.Entries()); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), "data_size 2147483644") {
		t.Errorf("data_size 0x7ffffffc: %v", err)
	}
}

func TestStackQueueRingbuf(t *testing.T) {
	k := newBPF(t)
	// Stack trace map 31: three frames per value, buckets 1 (two frames)
	// and 3 (five frames claimed: more than value_size holds).
	sm, m31 := k.mapIn("bpf_stack_map", 4*8, 31, MapTypeStackTrace, 4, 24, 4, "stacks")
	sm.Set("n_buckets", 4)
	b1 := k.M.Obj(k.S("stack_map_bucket"), k.M.Alloc(uint64(k.S("stack_map_bucket").Size)+24)).Set("nr", 2)
	k.M.U64(b1.At("data"), 0xffffffff81001000)
	k.M.U64(b1.At("data")+8, 0xffffffff81002000)
	b3 := k.New("stack_map_bucket").Set("nr", 5)
	k.M.U64(sm.At("buckets")+8, b1.Addr)
	k.M.U64(sm.At("buckets")+24, b3.Addr)
	// Queue 32 and stack 33 of three 4-byte values (size 4): the queue
	// holds slots 3 and 0 (tail 3, head 1), the stack slots 0 and 1.
	q, m32 := k.mapIn("bpf_queue_stack", 16, 32, MapTypeQueue, 0, 4, 3, "q")
	q.Set("head", 1).Set("tail", 3).Set("size", 4)
	s, m33 := k.mapIn("bpf_queue_stack", 16, 33, MapTypeStack, 0, 4, 3, "s")
	s.Set("head", 2).Set("tail", 0).Set("size", 4)
	for i := range 4 {
		k.M.U32(q.At("elements")+uint64(4*i), uint32(0x40+i))
		k.M.U32(s.At("elements")+uint64(4*i), uint32(0x50+i))
	}
	// Ring buffer 34 of 4096 bytes, its data mapped twice in a row: a
	// record of 20 bytes that wraps, then a discarded one of 5.
	rbm, m34 := k.mapIn("bpf_ringbuf_map", 0, 34, MapTypeRingBuf, 0, 0, 4096, "rb")
	rb := k.M.Obj(k.S("bpf_ringbuf"), k.M.AllocPage(uint64(k.S("bpf_ringbuf").Size)+2*4096))
	rb.Set("mask", 4095).Set("nr_pages", 4).Set("consumer_pos", 8192+4080).Set("producer_pos", 8192+4080+32+16).Set("pending_pos", 8192+4128)
	rbm.Set("rb", rb.Addr)
	data := make([]byte, 4096)
	binary.LittleEndian.PutUint32(data[4080:], 20)
	binary.LittleEndian.PutUint32(data[4084:], 3)
	copy(data[4088:], "0123456789abcdefghij")
	copy(data, "89abcdefghij")
	binary.LittleEndian.PutUint32(data[16:], 5|1<<30)
	copy(data[24:], "gone!")
	k.M.Write(rb.At("data"), data)
	k.M.Write(rb.At("data")+4096, data)
	k.idr("map_idr", map[uint64]uint64{31: m31.Addr, 32: m32.Addr, 33: m33.Addr, 34: m34.Addr})

	mp, err := MapByID(k.p, 31)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries(t, mp, OrderAuto); s != "01000000=00100081ffffffff00200081ffffffff0000000000000000 03000000=!" {
		t.Errorf("stack traces: %s", s)
	}
	// stack_map_mem_usage: the struct, a pointer per bucket, a bucket
	// and a value per entry.
	if ml, err := mp.Memlock(); err != nil || ml != uint64(k.S("bpf_stack_map").Size)+4*8+4*(uint64(k.S("stack_map_bucket").Size)+24) {
		t.Errorf("stack memlock %d, %v", ml, err)
	}
	for id, want := range map[uint32]string{32: "=43000000 =40000000", 33: "=51000000 =50000000"} {
		mp, err := MapByID(k.p, id)
		if err != nil {
			t.Fatal(err)
		}
		if s := entries(t, mp, OrderAuto); s != want {
			t.Errorf("map %d: %s, want %s", id, s, want)
		}
		if _, err := mp.Lookup(nil); !errors.Is(err, objects.ErrType) {
			t.Errorf("lookup in a %s: %v", mp.TypeName, err)
		}
		// queue_stack_map_mem_usage: the struct and max_entries + 1 values.
		if ml, err := mp.Memlock(); err != nil || ml != uint64(k.S("bpf_queue_stack").Size)+4*4 {
			t.Errorf("map %d memlock %d, %v", id, ml, err)
		}
	}
	q.Set("head", 9)
	mp, _ = MapByID(k.p, 32)
	if _, err := sk.WalkErr(mp.Entries()); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", q.Addr)) {
		t.Errorf("head past size: %v", err)
	}

	mp, err = MapByID(k.p, 34)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mp.RingBuf()
	if err != nil || r.Size != 4096 || r.ConsumerPos != 8192+4080 || r.PendingPos == nil || *r.PendingPos != 8192+4128 || uint64(r.Addr) != rb.Addr {
		t.Errorf("ring buffer %+v, %v", r, err)
	}
	var recs []string
	for e, err := range mp.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, fmt.Sprintf("%d:%d:%d:%v:%s", e.Record.Pos, e.Record.Len, e.Record.PgOff, e.Record.Discard, e.Value))
	}
	if s := strings.Join(recs, " "); s != "12272:20:3:false:0123456789abcdefghij 12304:5:0:true:gone!" {
		t.Errorf("records %s", s)
	}
	// ringbuf_map_mem_usage: the struct, nr_pages pages, and a page
	// pointer per meta page (RINGBUF_NR_META_PAGES: 3) and two per data
	// page.
	if ml, err := mp.Memlock(); err != nil || ml != uint64(k.S("bpf_ringbuf_map").Size)+4*4096+(3+2)*8 {
		t.Errorf("ringbuf memlock %d, %v", ml, err)
	}
	rb.Set("producer_pos", 8192+4080+20)
	if _, err := sk.WalkErr(mp.Entries()); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("a record past the producer: %v", err)
	}
	rb.Set("mask", 4094)
	if _, err := mp.RingBuf(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("mask 4094: %v", err)
	}
	m31v, _ := MapByID(k.p, 31)
	if _, err := m31v.RingBuf(); !errors.Is(err, objects.ErrType) {
		t.Errorf("RingBuf of a stack map: %v", err)
	}
}

func TestMapInfoAndBTF(t *testing.T) {
	k := newBPF(t)
	key := &btf.Int{Name: "u32", Size: 4}
	val := &btf.Struct{Name: "val", Size: 8, Members: []btf.Member{{Name: "x", Type: &btf.Int{Name: "u64", Size: 8}}}}
	raw, valID := rawBTF(t, "val", key, val)
	_, keyID := rawBTF(t, "u32", key, val)
	bt := k.btfObj(7, "", raw)
	_, m := k.mapIn("bpf_htab", 0, 40, 19, 4, 8, 1, "storage") // cgroup_storage, its deprecated alias first in the enum
	m.Set("btf", bt.Addr).Set("btf_key_type_id", uint64(keyID)).Set("btf_value_type_id", uint64(valID)).Set("map_flags", 0x18).Set("map_extra", 7).Set("frozen", 1)
	_, m41 := k.mapIn("bpf_htab", 0, 41, 99, 4, 8, 1, "future")
	k.idr("map_idr", map[uint64]uint64{40: m.Addr, 41: m41.Addr})
	k.idr("btf_idr", map[uint64]uint64{7: bt.Addr})

	mp, err := MapByID(k.p, 40)
	if err != nil {
		t.Fatal(err)
	}
	if mp.TypeName != "cgroup_storage" || mp.BTFID != 7 || !mp.Frozen || mp.MapExtra != 7 {
		t.Errorf("map 40: %+v", mp)
	}
	info, err := mp.Info()
	if err != nil {
		t.Fatal(err)
	}
	iv := k.p.ValueOf(info.Type, info.Data)
	for name, want := range map[string]uint64{"type": 19, "id": 40, "key_size": 4, "value_size": 8, "max_entries": 1, "map_flags": 0x18,
		"btf_id": 7, "btf_key_type_id": uint64(keyID), "btf_value_type_id": uint64(valID), "map_extra": 7, "ifindex": 0} {
		if x, err := iv.MemberUint(name); err != nil || x != want {
			t.Errorf("bpf_map_info.%s = %d, %v; want %d", name, x, err, want)
		}
	}
	if n, _ := iv.Member("name"); true {
		if s, err := n.CString(); err != nil || s != "storage" {
			t.Errorf("bpf_map_info.name = %q, %v", s, err)
		}
	}
	o, err := BTFByID(k.p, 7)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := o.Spec()
	if err != nil {
		t.Fatal(err)
	}
	kt, vt, err := mp.KeyValueTypes(spec.BTF(), nil)
	if err != nil || kt.TypeName() != "u32" || vt.TypeName() != "val" {
		t.Errorf("key and value types %v, %v, %v", kt, vt, err)
	}
	mp.BTFValueTypeID = 99
	if _, _, err := mp.KeyValueTypes(spec.BTF(), nil); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("value type 99: %v", err)
	}
	mp, err = MapByID(k.p, 41)
	if err != nil {
		t.Fatal(err)
	}
	if mp.TypeName != "99" {
		t.Errorf("an unknown type is named %q", mp.TypeName)
	}
	if _, err := sk.WalkErr(mp.Entries()); !errors.Is(err, objects.ErrNotSupported) {
		t.Errorf("entries of type 99: %v", err)
	}
	if _, err := mp.Memlock(); !errors.Is(err, objects.ErrNotSupported) {
		t.Errorf("memlock of type 99: %v", err)
	}
	// A map's BTF on an absent page: kept in BTFErr, and Info fails.
	m.Set("btf", 0xffff888077000000)
	mp, err = MapByID(k.p, 40)
	if err != nil || !errors.Is(mp.BTFErr, sk.ErrFault) {
		t.Fatalf("BTF on an absent page: %v, %v", mp.BTFErr, err)
	}
	if _, err := mp.Info(); !errors.Is(err, sk.ErrFault) {
		t.Errorf("Info: %v", err)
	}
	// The map itself on an absent page, in the IDR.
	k.idr("map_idr", map[uint64]uint64{40: 0xffff888077000000, 41: m41.Addr})
	var errs []error
	for _, err := range MapForEach(k.p) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], sk.ErrFault) || !strings.Contains(errs[0].Error(), "0xffff888077000000") {
		t.Errorf("map on an absent page: %v", errs)
	}
}
