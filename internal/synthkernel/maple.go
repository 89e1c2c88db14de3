package synthkernel

// Maple trees (include/linux/maple_tree.h, 6.1+): the types and a
// builder of real trees, leaves and internal nodes laid out as
// lib/maple_tree.c leaves them.

// MapleTree declares struct maple_tree and struct maple_node of a 64-bit
// kernel (MAPLE_NODE_SLOTS 31, MAPLE_RANGE64_SLOTS 16,
// MAPLE_ARANGE64_SLOTS 10) and returns struct maple_tree.
func (b *BTF) MapleTree() {
	if b.Has("maple_tree") {
		return
	}
	meta := b.Struct("maple_metadata", F("end", b.U8), F("gap", b.U8))
	pnode := Ptr(b.Decl("maple_pnode"))
	b.Struct("maple_range_64",
		F("parent", pnode),
		F("pivot", b.Array(b.ULong, 15)),
		F("", b.Union("",
			F("slot", b.Array(b.VoidPtr, 16)),
			F("", AnonStruct(F("pad", b.Array(b.VoidPtr, 15)), F("meta", meta))))))
	b.Struct("maple_arange_64",
		F("parent", pnode),
		F("pivot", b.Array(b.ULong, 9)),
		F("slot", b.Array(b.VoidPtr, 10)),
		F("gap", b.Array(b.ULong, 10)),
		F("meta", meta))
	b.Enum("maple_type", EV("maple_dense", 0), EV("maple_leaf_64", 1), EV("maple_range_64", 2), EV("maple_arange_64", 3))
	b.Struct("maple_node", F("", b.Union("",
		F("", AnonStruct(F("parent", pnode), F("slot", b.Array(b.VoidPtr, 31)))),
		F("mr64", b.Decl("maple_range_64")),
		F("ma64", b.Decl("maple_arange_64")))))
	b.Struct("maple_tree", F("ma_lock", b.U32), F("ma_flags", b.U32), F("ma_root", b.VoidPtr))
}

// MapleRange is an entry of a maple tree over [First, Last].
type MapleRange struct {
	First, Last, Entry uint64
}

// The node types of enum maple_type.
const (
	MapleLeaf64   = 1
	MapleRange64  = 2
	MapleARange64 = 3
)

// MapleOpts shapes a tree MapleTree builds.
type MapleOpts struct {
	// LeafSlots is the most slots a leaf uses (1-16; 0: 16), to make
	// deeper trees from few entries.
	LeafSlots int
	// Range: internal nodes are maple_range_64 (16 slots), not the
	// maple_arange_64 (10 slots) of an allocation tree such as mm_mt.
	Range bool
}

// MapleTree fills the struct maple_tree at mt (ma_root at 8) with
// entries (sorted, not overlapping): the gaps between them become NULL
// slots, as the kernel stores them; leaves are maple_leaf_64 nodes,
// each ending its pivots with meta.end where it has room to spare;
// internal nodes are maple_arange_64 (or maple_range_64) nodes; nodes
// are 256-byte aligned and encoded with their type, the root with
// MAPLE_ROOT_NODE. It returns the nodes' addresses, leaves first.
func (m *Mem) MapleTree(mt uint64, entries []MapleRange, o MapleOpts) []uint64 {
	leafSlots := o.LeafSlots
	if leafSlots <= 0 || leafSlots > 16 {
		leafSlots = 16
	}
	type span struct{ first, last, entry uint64 }
	// The whole index space, gaps as NULL entries.
	var all []span
	next := uint64(0)
	for _, e := range entries {
		if e.First > next {
			all = append(all, span{next, e.First - 1, 0})
		}
		all = append(all, span{e.First, e.Last, e.Entry})
		next = e.Last + 1
	}
	if next != 0 || len(entries) == 0 {
		all = append(all, span{next, ^uint64(0), 0})
	}
	node := func() uint64 {
		m.next = (max(m.next, AllocBase) + 255) &^ 255
		return m.Alloc(256)
	}
	var nodes []uint64
	// A node of type typ holding children (min..max each), pivots at 8,
	// slots after them.
	write := func(typ int, kids []span) uint64 {
		n := node()
		nodes = append(nodes, n)
		npiv, slots, metaEnd := 15, uint64(8+15*8), uint64(8+15*8+15*8)
		if typ == MapleARange64 {
			npiv, slots, metaEnd = 9, 8+9*8, 8+9*8+10*8+10*8
		}
		for i, k := range kids {
			if i < npiv {
				m.U64(n+8+8*uint64(i), k.last)
			}
			m.U64(n+slots+8*uint64(i), k.entry)
		}
		// A node whose last pivot is unused (or always, an arange
		// node) records the offset of its last slot in its metadata.
		if typ == MapleARange64 || len(kids) < npiv {
			m.U8(n+metaEnd, uint8(len(kids)-1))
		}
		return n
	}
	enc := func(n uint64, typ int) uint64 { return n | uint64(typ)<<3 | 4 }
	var level []span
	for len(all) > 0 {
		k := min(leafSlots, len(all))
		kids := all[:k]
		all = all[k:]
		n := write(MapleLeaf64, kids)
		level = append(level, span{kids[0].first, kids[len(kids)-1].last, enc(n, MapleLeaf64)})
	}
	typ, fan := MapleARange64, 10
	if o.Range {
		typ, fan = MapleRange64, 16
	}
	for len(level) > 1 {
		var up []span
		for len(level) > 0 {
			k := min(fan, len(level))
			kids := level[:k]
			level = level[k:]
			n := write(typ, kids)
			up = append(up, span{kids[0].first, kids[len(kids)-1].last, enc(n, typ)})
		}
		level = up
	}
	m.U64(mt+8, level[0].entry|2)
	return nodes
}
