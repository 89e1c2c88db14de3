package synthkernel

import "sort"

// AllocBase is where Alloc starts handing out memory: the direct map
// (page_offset_base of x86-64 with 4-level paging).
const AllocBase = 0xffff888100000000

// Alloc returns zeroed memory of size bytes, 64-byte aligned, as
// kmalloc would; successive calls never overlap.
func (m *Mem) Alloc(size uint64) uint64 {
	if m.next == 0 {
		m.next = AllocBase
	}
	a := m.next
	m.next = (a + max(size, 1) + 63) &^ 63
	m.Write(a, make([]byte, size))
	return a
}

// List links the struct list_heads at nodes into the circular list
// headed by the list_head at head (include/linux/list.h: next at 0,
// prev at 8).
func (m *Mem) List(head uint64, nodes ...uint64) {
	all := append([]uint64{head}, nodes...)
	for i, n := range all {
		m.U64(n, all[(i+1)%len(all)])
		m.U64(n+8, all[(i+len(all)-1)%len(all)])
	}
}

// Hlist links the struct hlist_nodes at nodes (next at 0, pprev at 8)
// into the list headed by the struct hlist_head at head (first at 0).
func (m *Mem) Hlist(head uint64, nodes ...uint64) {
	link := head
	for _, n := range nodes {
		m.U64(link, n)
		m.U64(n+8, link)
		link = n
	}
	m.U64(link, 0)
}

// RBTree makes the struct rb_nodes at nodes, in order, a balanced tree
// rooted at the struct rb_root at root (include/linux/rbtree_types.h:
// __rb_parent_color at 0, rb_right at 8, rb_left at 16; every node
// black, which a walker does not check).
func (m *Mem) RBTree(root uint64, nodes ...uint64) {
	var build func(ns []uint64, parent uint64) uint64
	build = func(ns []uint64, parent uint64) uint64 {
		if len(ns) == 0 {
			return 0
		}
		mid := len(ns) / 2
		n := ns[mid]
		m.U64(n, parent|1) // RB_BLACK
		m.U64(n+16, build(ns[:mid], n))
		m.U64(n+8, build(ns[mid+1:], n))
		return n
	}
	m.U64(root, build(nodes, 0))
}

// The layout of struct xa_node as BTF.XANode declares it.
const (
	xaNodeShift  = 0
	xaNodeParent = 8
	xaNodeSlots  = 40
	xaChunkShift = 6
)

// XArray fills the struct xarray at xa (xa_head at 8) with entries
// (index → entry, each a pointer with its low two bits clear, or a
// value entry made with XAValue), in nodes it allocates: as few levels
// as the highest index needs, each xa_node with its shift, offset and
// parent set. No entries leave xa_head NULL.
func (m *Mem) XArray(xa uint64, entries map[uint64]uint64) {
	if len(entries) == 0 {
		m.U64(xa+8, 0)
		return
	}
	var maxIdx uint64
	for i := range entries {
		maxIdx = max(maxIdx, i)
	}
	shift := 0
	for shift+xaChunkShift < 64 && maxIdx>>(shift+xaChunkShift) != 0 {
		shift += xaChunkShift
	}
	idx := make([]uint64, 0, len(entries))
	for i := range entries {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	var build func(shift int, base, parent uint64, offset int, idx []uint64) uint64
	build = func(shift int, base, parent uint64, offset int, idx []uint64) uint64 {
		n := m.Alloc(xaNodeSlots + 64*8)
		m.U8(n+xaNodeShift, uint8(shift))
		m.U8(n+1, uint8(offset))
		m.U64(n+xaNodeParent, parent)
		m.U64(n+16, xa)
		count := 0
		for slot := 0; slot < 64 && len(idx) > 0; slot++ {
			lo := base + uint64(slot)<<shift
			end := lo + uint64(1)<<shift
			if end < lo {
				end = ^uint64(0)
			}
			var in []uint64
			for len(idx) > 0 && idx[0] >= lo && (idx[0] < end || end == ^uint64(0)) {
				in, idx = append(in, idx[0]), idx[1:]
			}
			if len(in) == 0 {
				continue
			}
			count++
			if shift == 0 {
				m.U64(n+xaNodeSlots+8*uint64(slot), entries[in[0]])
				continue
			}
			child := build(shift-xaChunkShift, lo, n, slot, in)
			m.U64(n+xaNodeSlots+8*uint64(slot), child|2)
		}
		m.U8(n+2, uint8(count))
		return n
	}
	m.U64(xa+8, build(shift, 0, 0, 0, idx)|2)
}

// XAValue is xa_mk_value(v): a value entry.
func XAValue(v uint64) uint64 { return v<<1 | 1 }

// IDR fills the struct idr at idr (idr_rt at 0, idr_base at 16) with
// entries by ID, idr_base 0 (DEFINE_IDR).
func (m *Mem) IDR(idr uint64, entries map[uint64]uint64) {
	m.U32(idr+16, 0)
	m.XArray(idr, entries)
}

// GlobalBase is where Global places variables: the kernel image's data.
const GlobalBase = 0xffffffff82000000

// Global allocates a zeroed global variable of size bytes in the
// kernel image and names it in syms.
func (m *Mem) Global(syms Syms, name string, size uint64) uint64 {
	if m.stat == 0 {
		m.stat = GlobalBase
	}
	a := m.stat
	m.stat = (a + max(size, 1) + 63) &^ 63
	m.Write(a, make([]byte, size))
	syms[name] = a
	return a
}

// Where each CPU's per-CPU area is: __per_cpu_offset[cpu] is
// PerCPUBase + cpu*PerCPUStride.
const (
	PerCPUBase   = 0xffff888070000000
	PerCPUStride = 1 << 20
)

// PerCPUAddr is CPU cpu's copy of the per-CPU variable at section
// offset off (BTF.PerCPU's answer).
func PerCPUAddr(cpu int, off uint32) uint64 {
	return PerCPUBase + uint64(cpu)*PerCPUStride + uint64(off)
}

// CPUs makes n CPUs, all possible: nr_cpu_ids, __cpu_possible_mask (a
// struct cpumask, BTF.Cpumask) and __per_cpu_offset, named in syms.
func (m *Mem) CPUs(syms Syms, n int) {
	m.U32(m.Global(syms, "nr_cpu_ids", 4), uint32(n))
	m.U64(m.Global(syms, "__cpu_possible_mask", 8), uint64(1)<<n-1)
	offs := m.Global(syms, "__per_cpu_offset", 8*uint64(n))
	for cpu := range n {
		m.U64(offs+8*uint64(cpu), PerCPUBase+uint64(cpu)*PerCPUStride)
	}
}

// AllocPage is Alloc on pages of its own, shared with no other object:
// for a test that drops them.
func (m *Mem) AllocPage(size uint64) uint64 {
	if m.next == 0 {
		m.next = AllocBase
	}
	m.next = (m.next + 4095) &^ 4095
	a := m.Alloc(size)
	m.next = (m.next + 4095) &^ 4095
	return a
}
