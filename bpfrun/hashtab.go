package bpfrun

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/bpfvm"
)

// The hash maps of kernel/bpf/hashtab.c on their kernel layout: struct
// bpf_htab's buckets, each an hlist_nulls of struct htab_elem (key after
// the header, the value after the key rounded up to 8 bytes, or for a
// per-CPU map the __percpu pointer of the value).

// Update flags (uapi bpf.h).
const (
	bpfAny     = 0
	bpfNoExist = 1
	bpfExist   = 2
	bpfFLock   = 4
)

// Kernel error numbers, negated by bpfvm.Errno.
const (
	eNOENT     = 2
	e2BIG      = 7
	eAGAIN     = 11
	eNOMEM     = 12
	eFAULT     = 14
	eEXIST     = 17
	eINVAL     = 22
	eNOSPC     = 28
	eRANGE     = 34
	eOPNOTSUPP = 95
)

// listPoison2 is LIST_POISON2 on x86-64 (POISON_POINTER_DELTA
// 0xdead000000000000 + 0x122): what hlist_nulls_del_rcu leaves in pprev.
const listPoison2 = 0xdead000000000122

// htabBucket is the address of the bucket of hash, and of its head
// pointer.
func (s *Session) htabBucket(mi *mapInfo, hash uint32) uint64 {
	return mi.buckets + (uint64(hash)&(mi.nBuckets-1))*uint64(s.lay.bucketSize) + uint64(s.lay.bucketHead)
}

// htabFind is lookup_elem_raw: the element of key in its bucket (0 if
// none), with the key's hash.
func (s *Session) htabFind(mi *mapInfo, key []byte) (elem uint64, hash uint32, err error) {
	l := s.lay
	hash = htabHash(key, mi.hashrnd)
	node, err := s.u64(s.htabBucket(mi, hash))
	if err != nil {
		return 0, hash, err
	}
	kb := make([]byte, len(key))
	for n := 0; node&1 == 0; n++ {
		if node == 0 || n > int(mi.max)+8192 {
			return 0, hash, fmt.Errorf("%s: bucket of hash %#x: a NULL or endless chain", mi, hash)
		}
		e := node - uint64(l.elemNext)
		h, err := s.u32(e + uint64(l.elemHash))
		if err != nil {
			return 0, hash, err
		}
		if h == hash {
			if err := s.m.Read(e+uint64(l.elemKey), kb); err != nil {
				return 0, hash, err
			}
			if bytes.Equal(kb, key) {
				return e, hash, nil
			}
		}
		if node, err = s.u64(e + uint64(l.elemNext)); err != nil {
			return 0, hash, err
		}
	}
	return 0, hash, nil
}

// htabElemLookup is __htab_map_lookup_elem: the element (not its value),
// which the verifier's inlined lookups (htab_map_gen_lookup) offset to
// the value themselves.
func (s *Session) htabElemLookup(mapAddr, keyAddr uint64) (uint64, error) {
	mi, err := s.mapOf(mapAddr, "__htab_map_lookup_elem")
	if err != nil {
		return 0, err
	}
	if !mi.hash() {
		return 0, fmt.Errorf("__htab_map_lookup_elem of %s, not a hash map", mi)
	}
	key, err := s.bytes(keyAddr, int(mi.key))
	if err != nil {
		return 0, err
	}
	e, _, err := s.htabFind(mi, key)
	return e, err
}

// htabLookup is htab_map_lookup_elem and its LRU and per-CPU forms: the
// value's address (this CPU's copy for a per-CPU map), NULL if absent; an
// LRU lookup marks the element referenced (bpf_lru_node_set_ref).
func (s *Session) htabLookup(mapAddr, keyAddr uint64) (uint64, error) {
	mi, err := s.mapOf(mapAddr, "htab_map_lookup_elem")
	if err != nil {
		return 0, err
	}
	if !mi.hash() {
		return 0, fmt.Errorf("hash lookup of %s, not a hash map", mi)
	}
	key, err := s.bytes(keyAddr, int(mi.key))
	if err != nil {
		return 0, err
	}
	e, _, err := s.htabFind(mi, key)
	if err != nil || e == 0 {
		return 0, err
	}
	if mi.lru() && s.lay.elemLRURef >= 0 {
		ref := e + uint64(s.lay.elemLRURef)
		if v, err := s.m.ReadUint(ref, 1); err == nil && v == 0 {
			if err := s.m.WriteUint(ref, 1, 1); err != nil {
				return 0, err
			}
		}
	}
	if mi.percpu() {
		pptr, err := s.u64(e + mi.valOff)
		if err != nil {
			return 0, err
		}
		return s.percpuCopy(pptr), nil
	}
	return e + mi.valOff, nil
}

// hlistAddHead is hlist_nulls_add_head_rcu of the element's node into the
// bucket whose head pointer is at head.
func (s *Session) hlistAddHead(e, head uint64) error {
	l := s.lay
	first, err := s.u64(head)
	if err != nil {
		return err
	}
	n := e + uint64(l.elemNext)
	if err := s.put64(n, first); err != nil {
		return err
	}
	if err := s.put64(e+uint64(l.elemPprev), head); err != nil {
		return err
	}
	if first&1 == 0 {
		if err := s.put64(first-uint64(l.elemNext)+uint64(l.elemPprev), n); err != nil {
			return err
		}
	}
	return s.put64(head, n)
}

// hlistDel is hlist_nulls_del_rcu of the element's node.
func (s *Session) hlistDel(e uint64) error {
	l := s.lay
	next, err := s.u64(e + uint64(l.elemNext))
	if err != nil {
		return err
	}
	pprev, err := s.u64(e + uint64(l.elemPprev))
	if err != nil {
		return err
	}
	if err := s.put64(pprev, next); err != nil {
		return err
	}
	if next&1 == 0 {
		if err := s.put64(next-uint64(l.elemNext)+uint64(l.elemPprev), pprev); err != nil {
			return err
		}
	}
	return s.put64(e+uint64(l.elemPprev), listPoison2)
}

// htabCount counts the map's elements once (the kernel's count is not
// read: maps that use per-CPU counters keep it approximate), then keeps
// the count as the runs add and remove elements.
func (s *Session) htabCount(mi *mapInfo) (int64, error) {
	if mi.count >= 0 {
		return mi.count, nil
	}
	var n int64
	next := make([]byte, 8)
	for b := uint64(0); b < mi.nBuckets; b++ {
		node, err := s.u64(mi.buckets + b*uint64(s.lay.bucketSize) + uint64(s.lay.bucketHead))
		if err != nil {
			return 0, err
		}
		for c := 0; node&1 == 0; c++ {
			if node == 0 || c > int(mi.max)+8192 {
				return 0, fmt.Errorf("%s: bucket %d: a NULL or endless chain", mi, b)
			}
			n++
			if err := s.m.Read(node, next); err != nil {
				return 0, err
			}
			node = binary.LittleEndian.Uint64(next)
		}
	}
	mi.count = n
	return n, nil
}

// htabNewElem allocates an element in the machine's memory with the key,
// its hash and the value (for a per-CPU map, a new per-CPU value holding
// value on this CPU and zeros on the others, as pcpu_init_value does for
// a program's update).
func (s *Session) htabNewElem(mi *mapInfo, key []byte, hash uint32, value []byte) (uint64, error) {
	r, err := s.m.Alloc(fmt.Sprintf("%s element", mi), int(mi.elemSize), false)
	if err != nil {
		return 0, err
	}
	s.grewAny = true
	e := r.Addr
	b := r.Bytes()
	binary.LittleEndian.PutUint32(b[s.lay.elemHash:], hash)
	copy(b[s.lay.elemKey:], key)
	if mi.percpu() {
		pptr, err := s.allocPercpu(uint64(mi.value))
		if err != nil {
			return 0, err
		}
		binary.LittleEndian.PutUint64(b[mi.valOff:], pptr)
		if err := s.m.Write(s.percpuCopy(pptr), value); err != nil {
			return 0, err
		}
		return e, nil
	}
	copy(b[mi.valOff:], value)
	return e, nil
}

// htabUpdate is htab_map_update_elem, htab_lru_map_update_elem and the
// per-CPU forms as a program calls them (the value of this CPU).
func (s *Session) htabUpdate(mapAddr, keyAddr, valueAddr, flags uint64) (uint64, error) {
	mi, err := s.mapOf(mapAddr, "htab_map_update_elem")
	if err != nil {
		return 0, err
	}
	if !mi.hash() {
		return 0, fmt.Errorf("hash update of %s, not a hash map", mi)
	}
	if flags&^bpfFLock > bpfExist {
		return bpfvm.Errno(eINVAL), nil
	}
	key, err := s.bytes(keyAddr, int(mi.key))
	if err != nil {
		return 0, err
	}
	value, err := s.bytes(valueAddr, int(mi.value))
	if err != nil {
		return 0, err
	}
	if mi.lru() && s.lruLayout().err == nil {
		return s.htabLRUUpdate(mi, key, value, flags)
	}
	old, hash, err := s.htabFind(mi, key)
	if err != nil {
		return 0, err
	}
	// check_flags.
	switch f := flags &^ bpfFLock; {
	case old != 0 && f == bpfNoExist:
		return bpfvm.Errno(eEXIST), nil
	case old == 0 && f == bpfExist:
		return bpfvm.Errno(eNOENT), nil
	}
	if mi.percpu() && old != 0 {
		// Updated in place (pcpu_copy_value of this CPU); an LRU's
		// element is marked referenced.
		if mi.lru() && s.lay.elemLRURef >= 0 {
			if err := s.m.WriteUint(old+uint64(s.lay.elemLRURef), 1, 1); err != nil {
				return 0, err
			}
		}
		pptr, err := s.u64(old + mi.valOff)
		if err != nil {
			return 0, err
		}
		return 0, s.m.Write(s.percpuCopy(pptr), value)
	}
	if old == 0 {
		n, err := s.htabCount(mi)
		if err != nil {
			return 0, err
		}
		if n >= int64(mi.max) {
			if mi.lru() {
				return 0, fmt.Errorf("%s is full (%d elements): the LRU eviction that would make room is not replayed", mi, n)
			}
			return bpfvm.Errno(e2BIG), nil
		}
	}
	e, err := s.htabNewElem(mi, key, hash, value)
	if err != nil {
		return 0, err
	}
	// The new element goes first in the bucket, the old one (if any)
	// leaves it.
	if err := s.hlistAddHead(e, s.htabBucket(mi, hash)); err != nil {
		return 0, err
	}
	if old != 0 {
		if mi.lru() && s.lay.elemLRURef >= 0 {
			if err := s.m.WriteUint(e+uint64(s.lay.elemLRURef), 1, 1); err != nil {
				return 0, err
			}
		}
		return 0, s.hlistDel(old)
	}
	mi.count++
	return 0, nil
}

// htabDelete is htab_map_delete_elem and htab_lru_map_delete_elem (and
// the per-CPU maps', the same).
func (s *Session) htabDelete(mapAddr, keyAddr uint64) (uint64, error) {
	mi, err := s.mapOf(mapAddr, "htab_map_delete_elem")
	if err != nil {
		return 0, err
	}
	if !mi.hash() {
		return 0, fmt.Errorf("hash delete of %s, not a hash map", mi)
	}
	key, err := s.bytes(keyAddr, int(mi.key))
	if err != nil {
		return 0, err
	}
	e, _, err := s.htabFind(mi, key)
	if err != nil {
		return 0, err
	}
	if e == 0 {
		return bpfvm.Errno(eNOENT), nil
	}
	if _, err := s.htabCount(mi); err != nil {
		return 0, err
	}
	if err := s.hlistDel(e); err != nil {
		return 0, err
	}
	mi.count--
	if mi.lru() && s.lruLayout().err == nil {
		// htab_lru_push_free: the element goes back to the LRU.
		o, err := s.lruOf(mi)
		if err != nil {
			return 0, err
		}
		return 0, o.pushFree(e + uint64(o.l.elemNode))
	}
	return 0, nil
}
