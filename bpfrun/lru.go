package bpfrun

import (
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/objects"
)

// The LRU of the LRU hash maps (kernel/bpf/bpf_lru_list.c) on its
// kernel layout: a preallocated map takes each new element from the
// LRU's free lists (bpf_lru_pop_free) and, when they are empty, evicts
// the least recently used elements from the map; deleted and replaced
// elements go back (bpf_lru_push_free). The element a replay takes and
// the elements it evicts are the kernel's, since the lists are the
// dump's, worked on in the overlay.

// enum bpf_lru_list_type (kernel/bpf/bpf_lru_list.h).
const (
	lruActive       = 0
	lruInactive     = 1
	lruFree         = 2
	lruLocalFree    = 3
	lruLocalPending = 4
	lruNrCounts     = 2 // NR_BPF_LRU_LIST_COUNT
	lruLocalOffset  = 3 // BPF_LOCAL_LIST_T_OFFSET

	lruLocalFreeTarget  = 128 // LOCAL_FREE_TARGET
	lruPercpuFreeTarget = 4   // PERCPU_FREE_TARGET

	listPoison1 = 0xdead000000000100 // LIST_POISON1 on x86-64
)

// lruLayout is the offsets of the LRU's structures.
type lruLayout struct {
	htabLRU, htabMap                     int64 // struct bpf_htab
	commonList, localList, percpuList    int64 // struct bpf_lru
	hashOffset, nrScans, percpu          int64
	targetFree                           int64 // noOff before "bpf: Adjust free target to avoid global starvation of LRU map" (6.16, stable backports)
	lists, counts, nextInactive          int64 // struct bpf_lru_list
	locLists, locNextSteal               int64 // struct bpf_lru_locallist
	nodeCPU, nodeType, nodeRef, elemNode int64 // struct bpf_lru_node, htab_elem.lru_node
	headNext, headPrev, headSize         int64 // struct list_head
	err                                  error
}

func (s *Session) lruLayout() *lruLayout {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lruLay != nil {
		return r.lruLay
	}
	p := r.prog
	off := func(typ, path string) int64 {
		o, _, err := p.MemberOffset(typ, path)
		if err != nil {
			return noOff
		}
		return int64(o)
	}
	l := &lruLayout{}
	l.htabLRU, l.htabMap = off("struct bpf_htab", "lru"), off("struct bpf_htab", "map")
	const b = "struct bpf_lru"
	l.commonList, l.localList, l.percpuList = off(b, "common_lru.lru_list"), off(b, "common_lru.local_list"), off(b, "percpu_lru")
	l.hashOffset, l.nrScans, l.percpu = off(b, "hash_offset"), off(b, "nr_scans"), off(b, "percpu")
	l.targetFree = off(b, "target_free")
	const ll = "struct bpf_lru_list"
	l.lists, l.counts, l.nextInactive = off(ll, "lists"), off(ll, "counts"), off(ll, "next_inactive_rotation")
	l.locLists, l.locNextSteal = off("struct bpf_lru_locallist", "lists"), off("struct bpf_lru_locallist", "next_steal")
	const n = "struct bpf_lru_node"
	l.nodeCPU, l.nodeType, l.nodeRef = off(n, "cpu"), off(n, "type"), off(n, "ref")
	l.elemNode = off("struct htab_elem", "lru_node")
	l.headNext, l.headPrev = off("struct list_head", "next"), off("struct list_head", "prev")
	if sz, err := p.SizeofType("struct list_head"); err == nil {
		l.headSize = int64(sz)
	} else {
		l.headSize = noOff
	}
	l.err = need("the LRU of an LRU hash map (struct bpf_lru, bpf_lru_list, bpf_lru_locallist, bpf_lru_node)",
		l.htabLRU, l.htabMap, l.commonList, l.localList, l.percpuList, l.hashOffset, l.nrScans, l.percpu,
		l.lists, l.counts, l.nextInactive, l.locLists, l.locNextSteal, l.nodeCPU, l.nodeType, l.nodeRef,
		l.elemNode, l.headNext, l.headPrev, l.headSize)
	r.lruLay = l
	return l
}

// lru is one map's LRU in the session's memory.
type lru struct {
	s       *Session
	l       *lruLayout
	mi      *mapInfo
	addr    uint64 // struct bpf_lru
	percpu  bool
	nrScans uint32
	// targetFree: the free nodes a CPU's local list takes at once.
	targetFree uint32
	hashOff    int64
}

// lruOf returns the LRU of an LRU hash map.
func (s *Session) lruOf(mi *mapInfo) (*lru, error) {
	l := s.lruLayout()
	if l.err != nil {
		return nil, l.err
	}
	a := mi.addr - uint64(l.htabMap) + uint64(l.htabLRU)
	pc, err := s.m.ReadUint(a+uint64(l.percpu), 1)
	if err != nil {
		return nil, err
	}
	ns, err := s.u32(a + uint64(l.nrScans))
	if err != nil {
		return nil, err
	}
	// How many free nodes a CPU takes from the global list at once: the
	// map's own target_free where the kernel has one (half a CPU's
	// share of the elements, 1 to 128), else LOCAL_FREE_TARGET.
	tf := uint32(lruLocalFreeTarget)
	if l.targetFree != noOff && pc == 0 { // per-CPU lists have none
		if tf, err = s.u32(a + uint64(l.targetFree)); err != nil {
			return nil, err
		}
		if tf == 0 || tf > lruLocalFreeTarget {
			return nil, fmt.Errorf("LRU of map at %#x: target_free %d, want 1..%d: %w", mi.addr, tf, lruLocalFreeTarget, objects.ErrCorrupt)
		}
	}
	ho, err := s.u32(a + uint64(l.hashOffset)) // int hash_offset
	if err != nil {
		return nil, err
	}
	return &lru{s: s, l: l, mi: mi, addr: a, percpu: pc != 0, nrScans: ns, targetFree: tf, hashOff: int64(int32(ho))}, nil
}

// list.h, on list_heads in memory.

func (o *lru) next(h uint64) (uint64, error) { return o.s.u64(h + uint64(o.l.headNext)) }
func (o *lru) prev(h uint64) (uint64, error) { return o.s.u64(h + uint64(o.l.headPrev)) }
func (o *lru) setNext(h, v uint64) error     { return o.s.put64(h+uint64(o.l.headNext), v) }
func (o *lru) setPrev(h, v uint64) error     { return o.s.put64(h+uint64(o.l.headPrev), v) }

// unlink is __list_del_entry.
func (o *lru) unlink(e uint64) error {
	n, err := o.next(e)
	if err != nil {
		return err
	}
	p, err := o.prev(e)
	if err != nil {
		return err
	}
	if err := o.setPrev(n, p); err != nil {
		return err
	}
	return o.setNext(p, n)
}

// listDel is list_del: unlinked and poisoned.
func (o *lru) listDel(e uint64) error {
	if err := o.unlink(e); err != nil {
		return err
	}
	if err := o.setNext(e, listPoison1); err != nil {
		return err
	}
	return o.setPrev(e, listPoison2)
}

// listAdd is list_add: e after head.
func (o *lru) listAdd(e, head uint64) error {
	n, err := o.next(head)
	if err != nil {
		return err
	}
	if err := o.setPrev(n, e); err != nil {
		return err
	}
	if err := o.setNext(e, n); err != nil {
		return err
	}
	if err := o.setPrev(e, head); err != nil {
		return err
	}
	return o.setNext(head, e)
}

// listMove is list_move.
func (o *lru) listMove(e, head uint64) error {
	if err := o.unlink(e); err != nil {
		return err
	}
	return o.listAdd(e, head)
}

// reverse lists the nodes of a list from its tail to its head
// (list_for_each_entry_safe_reverse takes each one's prev first).
func (o *lru) reverse(head uint64) ([]uint64, error) {
	var out []uint64
	for n, err := o.prev(head); n != head; n, err = o.prev(n) {
		if err != nil {
			return nil, err
		}
		if n == 0 || len(out) > int(o.mi.max)+lruLocalFreeTarget*len(o.s.lay.cpus)+64 {
			return nil, fmt.Errorf("%s: LRU list at %#x: a NULL or endless list", o.mi, head)
		}
		out = append(out, n)
	}
	return out, nil
}

// Node fields (the node's list_head is its first member).

func (o *lru) typ(n uint64) (uint8, error) {
	v, err := o.s.m.ReadUint(n+uint64(o.l.nodeType), 1)
	return uint8(v), err
}
func (o *lru) setType(n uint64, t uint8) error {
	return o.s.m.WriteUint(n+uint64(o.l.nodeType), 1, uint64(t))
}
func (o *lru) ref(n uint64) (bool, error) {
	v, err := o.s.m.ReadUint(n+uint64(o.l.nodeRef), 1)
	return v != 0, err
}

// refList is the list a node goes to when its list is rotated or
// flushed: the active list if it was referenced, else the inactive.
func (o *lru) refList(n uint64) (uint8, error) {
	r, err := o.ref(n)
	if r {
		return lruActive, err
	}
	return lruInactive, err
}
func (o *lru) setRef(n uint64, r bool) error {
	v := uint64(0)
	if r {
		v = 1
	}
	return o.s.m.WriteUint(n+uint64(o.l.nodeRef), 1, v)
}

// list is the struct bpf_lru_list of the common LRU, or of cpu's for a
// per-CPU LRU.
func (o *lru) list(cpu int) (uint64, error) {
	if !o.percpu {
		return o.addr + uint64(o.l.commonList), nil
	}
	p, err := o.s.u64(o.addr + uint64(o.l.percpuList))
	if err != nil {
		return 0, err
	}
	return o.perCPU(p, cpu)
}

// localList is cpu's struct bpf_lru_locallist of the common LRU.
func (o *lru) localList(cpu int) (uint64, error) {
	p, err := o.s.u64(o.addr + uint64(o.l.localList))
	if err != nil {
		return 0, err
	}
	return o.perCPU(p, cpu)
}

func (o *lru) perCPU(p uint64, cpu int) (uint64, error) {
	i, ok := o.s.lay.cpuIndex[cpu]
	if !ok || i >= len(o.s.lay.cpuOffs) {
		return 0, fmt.Errorf("%s: per-CPU LRU lists of CPU %d: the per-CPU offsets are unknown: %w", o.mi, cpu, ErrNotSupported)
	}
	return p + o.s.lay.cpuOffs[i], nil
}

func (o *lru) head(l uint64, t uint8) uint64 {
	return l + uint64(o.l.lists) + uint64(t)*uint64(o.l.headSize)
}
func (o *lru) localHead(loc uint64, t uint8) uint64 {
	return loc + uint64(o.l.locLists) + uint64(t-lruLocalOffset)*uint64(o.l.headSize)
}

func (o *lru) count(l uint64, t uint8, d int) error {
	if t >= lruNrCounts {
		return nil
	}
	a := l + uint64(o.l.counts) + 4*uint64(t)
	v, err := o.s.u32(a)
	if err != nil {
		return err
	}
	return o.s.m.WriteUint(a, 4, uint64(int64(v)+int64(d))&0xffffffff)
}

// fixRotation is the next_inactive_rotation fix-up of a node leaving
// its list.
func (o *lru) fixRotation(l, n uint64) error {
	a := l + uint64(o.l.nextInactive)
	r, err := o.s.u64(a)
	if err != nil || r != n {
		return err
	}
	p, err := o.prev(r)
	if err != nil {
		return err
	}
	return o.s.put64(a, p)
}

// moveIn is __bpf_lru_node_move_in (from a local list).
func (o *lru) moveIn(l, n uint64, t uint8) error {
	if err := o.count(l, t, 1); err != nil {
		return err
	}
	if err := o.setType(n, t); err != nil {
		return err
	}
	if err := o.setRef(n, false); err != nil {
		return err
	}
	return o.listMove(n, o.head(l, t))
}

// moveToFree is __bpf_lru_node_move_to_free.
func (o *lru) moveToFree(l, n, freeList uint64, t uint8) error {
	if err := o.fixRotation(l, n); err != nil {
		return err
	}
	cur, err := o.typ(n)
	if err != nil {
		return err
	}
	if err := o.count(l, cur, -1); err != nil {
		return err
	}
	if err := o.setType(n, t); err != nil {
		return err
	}
	return o.listMove(n, freeList)
}

// move is __bpf_lru_node_move.
func (o *lru) move(l, n uint64, t uint8) error {
	cur, err := o.typ(n)
	if err != nil {
		return err
	}
	if cur != t {
		if err := o.count(l, cur, -1); err != nil {
			return err
		}
		if err := o.count(l, t, 1); err != nil {
			return err
		}
		if err := o.setType(n, t); err != nil {
			return err
		}
	}
	if err := o.setRef(n, false); err != nil {
		return err
	}
	if err := o.fixRotation(l, n); err != nil {
		return err
	}
	return o.listMove(n, o.head(l, t))
}

// delFromHtab is htab_lru_map_delete_node: the node's element leaves
// its bucket, if it is there.
func (o *lru) delFromHtab(n uint64) (bool, error) {
	s, mi := o.s, o.mi
	e := n - uint64(o.l.elemNode)
	hash, err := s.u32(e + uint64(s.lay.elemHash))
	if err != nil {
		return false, err
	}
	node, err := s.u64(s.htabBucket(mi, hash))
	if err != nil {
		return false, err
	}
	for c := 0; node&1 == 0; c++ {
		if node == 0 || c > int(mi.max)+8192 {
			return false, fmt.Errorf("%s: bucket of hash %#x: a NULL or endless chain", mi, hash)
		}
		el := node - uint64(s.lay.elemNext)
		if el == e {
			if err := s.hlistDel(e); err != nil {
				return false, err
			}
			if mi.count > 0 {
				mi.count--
			}
			return true, nil
		}
		if node, err = s.u64(el + uint64(s.lay.elemNext)); err != nil {
			return false, err
		}
	}
	return false, nil
}

// rotateActive is __bpf_lru_list_rotate_active.
func (o *lru) rotateActive(l uint64) error {
	active := o.head(l, lruActive)
	first, err := o.next(active)
	if err != nil {
		return err
	}
	nodes, err := o.reverse(active)
	if err != nil {
		return err
	}
	i := uint32(0)
	for _, n := range nodes {
		t, err := o.refList(n)
		if err != nil {
			return err
		}
		if err := o.move(l, n, t); err != nil {
			return err
		}
		if i++; i == o.nrScans || n == first {
			break
		}
	}
	return nil
}

// rotateInactive is __bpf_lru_list_rotate_inactive.
func (o *lru) rotateInactive(l uint64) error {
	inactive := o.head(l, lruInactive)
	if nx, err := o.next(inactive); err != nil || nx == inactive {
		return err
	}
	rot, err := o.s.u64(l + uint64(o.l.nextInactive))
	if err != nil {
		return err
	}
	last, err := o.next(rot)
	if err != nil {
		return err
	}
	if last == inactive {
		if last, err = o.next(last); err != nil {
			return err
		}
	}
	cur, next := rot, inactive
	for i := uint32(0); i < o.nrScans; {
		if cur == inactive {
			if cur, err = o.prev(cur); err != nil {
				return err
			}
			continue
		}
		if next, err = o.prev(cur); err != nil {
			return err
		}
		r, err := o.ref(cur)
		if err != nil {
			return err
		}
		if r {
			if err := o.move(l, cur, lruActive); err != nil {
				return err
			}
		}
		if cur == last {
			break
		}
		cur = next
		i++
	}
	return o.s.put64(l+uint64(o.l.nextInactive), next)
}

// rotate is __bpf_lru_list_rotate.
func (o *lru) rotate(l uint64) error {
	ina, err := o.s.u32(l + uint64(o.l.counts) + 4*lruInactive)
	if err != nil {
		return err
	}
	act, err := o.s.u32(l + uint64(o.l.counts) + 4*lruActive)
	if err != nil {
		return err
	}
	if ina < act {
		if err := o.rotateActive(l); err != nil {
			return err
		}
	}
	return o.rotateInactive(l)
}

// shrink is __bpf_lru_list_shrink: evicts up to target elements onto
// freeList.
func (o *lru) shrink(l uint64, target uint32, freeList uint64, t uint8) (uint32, error) {
	inactive := o.head(l, lruInactive)
	nodes, err := o.reverse(inactive)
	if err != nil {
		return 0, err
	}
	var done, i uint32
	for _, n := range nodes {
		r, err := o.ref(n)
		if err != nil {
			return done, err
		}
		if r {
			if err := o.move(l, n, lruActive); err != nil {
				return done, err
			}
		} else if ok, err := o.delFromHtab(n); err != nil {
			return done, err
		} else if ok {
			if err := o.moveToFree(l, n, freeList, t); err != nil {
				return done, err
			}
			if done++; done == target {
				break
			}
		}
		if i++; i == o.nrScans {
			break
		}
	}
	if done > 0 {
		return done, nil
	}
	// A forced shrink, ignoring the references.
	force := inactive
	if nx, err := o.next(inactive); err != nil {
		return 0, err
	} else if nx == inactive {
		force = o.head(l, lruActive)
	}
	if nodes, err = o.reverse(force); err != nil {
		return 0, err
	}
	for _, n := range nodes {
		if ok, err := o.delFromHtab(n); err != nil {
			return 0, err
		} else if ok {
			return 1, o.moveToFree(l, n, freeList, t)
		}
	}
	return 0, nil
}

// setHash writes the element's hash through the LRU's hash_offset.
func (o *lru) setHash(n uint64, hash uint32) error {
	return o.s.m.WriteUint(uint64(int64(n)+o.hashOff), 4, uint64(hash))
}

// popFree is bpf_lru_pop_free on the session's CPU: a free node (0 if
// none), after evicting what makes room.
func (o *lru) popFree(hash uint32) (uint64, error) {
	cpu := o.s.opts.CPU
	if o.percpu {
		return o.percpuPopFree(cpu, hash)
	}
	loc, err := o.localList(cpu)
	if err != nil {
		return 0, err
	}
	n, err := o.localPopFree(loc)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		if err := o.popFreeToLocal(loc); err != nil {
			return 0, err
		}
		if n, err = o.localPopFree(loc); err != nil {
			return 0, err
		}
	}
	if n != 0 {
		return n, o.addPending(loc, cpu, n, hash)
	}
	// Steal from the CPUs' local lists, from next_steal on.
	first, err := o.s.m.ReadUint(loc+uint64(o.l.locNextSteal), 2)
	if err != nil {
		return 0, err
	}
	steal := int(first)
	for {
		sl, err := o.localList(steal)
		if err != nil {
			return 0, err
		}
		if n, err = o.localPopFree(sl); err != nil {
			return 0, err
		}
		if n == 0 {
			if n, err = o.localPopPending(sl); err != nil {
				return 0, err
			}
		}
		steal = o.nextCPU(steal)
		if n != 0 || steal == int(first) {
			break
		}
	}
	if err := o.s.m.WriteUint(loc+uint64(o.l.locNextSteal), 2, uint64(steal)); err != nil {
		return 0, err
	}
	if n != 0 {
		return n, o.addPending(loc, cpu, n, hash)
	}
	return 0, nil
}

// nextCPU is get_next_cpu: the next possible CPU, wrapping.
func (o *lru) nextCPU(cpu int) int {
	cpus := append([]int(nil), o.s.lay.cpus...)
	sort.Ints(cpus)
	for _, c := range cpus {
		if c > cpu {
			return c
		}
	}
	if len(cpus) == 0 {
		return 0
	}
	return cpus[0]
}

// localPopFree is __local_list_pop_free.
func (o *lru) localPopFree(loc uint64) (uint64, error) {
	h := o.localHead(loc, lruLocalFree)
	n, err := o.next(h)
	if err != nil || n == h {
		return 0, err
	}
	return n, o.listDel(n)
}

// localPopPending is __local_list_pop_pending.
func (o *lru) localPopPending(loc uint64) (uint64, error) {
	h := o.localHead(loc, lruLocalPending)
	for _, force := range []bool{false, true} {
		nodes, err := o.reverse(h)
		if err != nil {
			return 0, err
		}
		for _, n := range nodes {
			r, err := o.ref(n)
			if err != nil {
				return 0, err
			}
			if r && !force {
				continue
			}
			ok, err := o.delFromHtab(n)
			if err != nil {
				return 0, err
			}
			if ok {
				return n, o.listDel(n)
			}
		}
	}
	return 0, nil
}

// addPending is __local_list_add_pending.
func (o *lru) addPending(loc uint64, cpu int, n uint64, hash uint32) error {
	if err := o.setHash(n, hash); err != nil {
		return err
	}
	if err := o.s.m.WriteUint(n+uint64(o.l.nodeCPU), 2, uint64(cpu)); err != nil {
		return err
	}
	if err := o.setType(n, lruLocalPending); err != nil {
		return err
	}
	if err := o.setRef(n, false); err != nil {
		return err
	}
	return o.listAdd(n, o.localHead(loc, lruLocalPending))
}

// popFreeToLocal is bpf_lru_list_pop_free_to_local.
func (o *lru) popFreeToLocal(loc uint64) error {
	l, err := o.list(0)
	if err != nil {
		return err
	}
	// __local_list_flush.
	pending, err := o.reverse(o.localHead(loc, lruLocalPending))
	if err != nil {
		return err
	}
	for _, n := range pending {
		t, err := o.refList(n)
		if err != nil {
			return err
		}
		if err := o.moveIn(l, n, t); err != nil {
			return err
		}
	}
	if err := o.rotate(l); err != nil {
		return err
	}
	free := o.localHead(loc, lruLocalFree)
	nfree := uint32(0)
	fh := o.head(l, lruFree)
	for n, err := o.next(fh); n != fh && nfree < o.targetFree; {
		if err != nil {
			return err
		}
		nx, err := o.next(n)
		if err != nil {
			return err
		}
		if err := o.moveToFree(l, n, free, lruLocalFree); err != nil {
			return err
		}
		nfree++
		n = nx
	}
	if nfree < o.targetFree {
		if _, err := o.shrink(l, o.targetFree-nfree, free, lruLocalFree); err != nil {
			return err
		}
	}
	return nil
}

// percpuPopFree is bpf_percpu_lru_pop_free.
func (o *lru) percpuPopFree(cpu int, hash uint32) (uint64, error) {
	l, err := o.list(cpu)
	if err != nil {
		return 0, err
	}
	if err := o.rotate(l); err != nil {
		return 0, err
	}
	fh := o.head(l, lruFree)
	n, err := o.next(fh)
	if err != nil {
		return 0, err
	}
	if n == fh {
		if _, err := o.shrink(l, lruPercpuFreeTarget, fh, lruFree); err != nil {
			return 0, err
		}
		if n, err = o.next(fh); err != nil {
			return 0, err
		}
	}
	if n == fh {
		return 0, nil
	}
	if err := o.setHash(n, hash); err != nil {
		return 0, err
	}
	if err := o.setRef(n, false); err != nil {
		return 0, err
	}
	return n, o.move(l, n, lruInactive)
}

// pushFree is bpf_lru_push_free.
func (o *lru) pushFree(n uint64) error {
	t, err := o.typ(n)
	if err != nil {
		return err
	}
	if o.percpu {
		c, err := o.s.m.ReadUint(n+uint64(o.l.nodeCPU), 2)
		if err != nil {
			return err
		}
		l, err := o.list(int(c))
		if err != nil {
			return err
		}
		return o.move(l, n, lruFree)
	}
	if t == lruFree || t == lruLocalFree {
		return nil // the kernel's WARN_ON_ONCE
	}
	if t == lruLocalPending {
		c, err := o.s.m.ReadUint(n+uint64(o.l.nodeCPU), 2)
		if err != nil {
			return err
		}
		loc, err := o.localList(int(c))
		if err != nil {
			return err
		}
		if err := o.setType(n, lruLocalFree); err != nil {
			return err
		}
		if err := o.setRef(n, false); err != nil {
			return err
		}
		return o.listMove(n, o.localHead(loc, lruLocalFree))
	}
	l, err := o.list(0)
	if err != nil {
		return err
	}
	return o.move(l, n, lruFree)
}

// htabLRUUpdate is htab_lru_map_update_elem and
// __htab_lru_percpu_map_update_elem as a program calls them: the new
// element is taken from the LRU before the flags are checked (evicting
// what makes room), and the replaced or unused element goes back.
func (s *Session) htabLRUUpdate(mi *mapInfo, key, value []byte, flags uint64) (uint64, error) {
	o, err := s.lruOf(mi)
	if err != nil {
		return 0, err
	}
	if _, err := s.htabCount(mi); err != nil {
		return 0, err
	}
	hash := htabHash(key, mi.hashrnd)
	f := flags &^ bpfFLock
	var n uint64
	if !mi.percpu() || f != bpfExist {
		if n, err = o.popFree(hash); err != nil {
			return 0, err
		}
		if n == 0 {
			return bpfvm.Errno(eNOMEM), nil
		}
		e := n - uint64(o.l.elemNode)
		if err := s.m.Write(e+uint64(s.lay.elemKey), key); err != nil {
			return 0, err
		}
		if !mi.percpu() {
			if err := s.m.Write(e+mi.valOff, value); err != nil {
				return 0, err
			}
		}
	}
	old, _, err := s.htabFind(mi, key)
	if err != nil {
		return 0, err
	}
	var errno uint64
	switch {
	case old != 0 && f == bpfNoExist:
		errno = bpfvm.Errno(eEXIST)
	case old == 0 && f == bpfExist:
		errno = bpfvm.Errno(eNOENT)
	}
	if errno != 0 {
		if n != 0 {
			return errno, o.pushFree(n)
		}
		return errno, nil
	}
	if mi.percpu() {
		if old != 0 {
			if err := o.setRef(old+uint64(o.l.elemNode), true); err != nil {
				return 0, err
			}
			pptr, err := s.u64(old + mi.valOff)
			if err != nil {
				return 0, err
			}
			if err := s.m.Write(s.percpuCopy(pptr), value); err != nil {
				return 0, err
			}
			if n != 0 {
				return 0, o.pushFree(n)
			}
			return 0, nil
		}
		// pcpu_init_value: this CPU's value, zeros on the others.
		e := n - uint64(o.l.elemNode)
		pptr, err := s.u64(e + mi.valOff)
		if err != nil {
			return 0, err
		}
		size := (uint64(mi.value) + 7) &^ 7
		for _, off := range s.lay.cpuOffs {
			if err := s.m.Write(pptr+off, make([]byte, size)); err != nil {
				return 0, err
			}
		}
		if err := s.m.Write(s.percpuCopy(pptr), value); err != nil {
			return 0, err
		}
		if err := s.hlistAddHead(e, s.htabBucket(mi, hash)); err != nil {
			return 0, err
		}
		mi.count++
		return 0, nil
	}
	e := n - uint64(o.l.elemNode)
	if err := s.hlistAddHead(e, s.htabBucket(mi, hash)); err != nil {
		return 0, err
	}
	if old == 0 {
		mi.count++
		return 0, nil
	}
	if err := o.setRef(n, true); err != nil {
		return 0, err
	}
	if err := s.hlistDel(old); err != nil {
		return 0, err
	}
	return 0, o.pushFree(old + uint64(o.l.elemNode))
}
