package objects

import (
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// Walkers of include/linux/maple_tree.h (lib/maple_tree.c), the
// B-tree of ranges that keeps a process's VMAs since 6.1 (d4af56c5c7c6
// "mm: start tracking VMAs with maple tree").

// MapleEntry is an entry of a maple tree: the range [First, Last] (both
// inclusive) maps to Entry, a (void *) constant.
type MapleEntry struct {
	First, Last uint64
	Entry       Value
}

// The encoding of a maple tree's node pointers (maple_tree.h,
// maple_tree.c): a node is 256-byte aligned; an encoded node (struct
// maple_enode *) holds the node's type in bits 3-6; the root pointer has
// MAPLE_ROOT_NODE (bit 1) set, so that xa_is_node tells a node from an
// entry stored at index 0 alone.
const (
	mapleNodeMask      = 255 // MAPLE_NODE_MASK
	mapleEnodeTypeShft = 3   // MAPLE_ENODE_TYPE_SHIFT
	mapleEnodeTypeMask = 15  // MAPLE_ENODE_TYPE_MASK
	mapleMaxDepth      = 64  // far more levels than 2^64 indexes need
)

// The node types of enum maple_type, unchanged since 6.1.
const (
	mapleDense    = 0
	mapleLeaf64   = 1
	mapleRange64  = 2
	mapleARange64 = 3
)

// mapleKind is where one node type keeps its pivots, slots and
// metadata's end in struct maple_node.
type mapleKind struct {
	pivots, nPivots uint32 // offset of pivot[] and its length
	slots, nSlots   uint32 // offset of slot[] and its length
	metaEnd         uint32 // offset of meta.end
}

// mapleLayout is struct maple_node's layout from BTF.
type mapleLayout struct {
	size   int
	dense  mapleKind // slot[] of the node itself
	rng    mapleKind // mr64: maple_leaf_64 and maple_range_64
	arange mapleKind // ma64: maple_arange_64
}

func (p *Program) mapleLayout() (mapleLayout, error) {
	v, err := p.Memo("maple_node layout", func() (any, error) {
		var l mapleLayout
		t, err := p.Type("struct maple_node")
		if err != nil {
			return l, err
		}
		l.size, _ = btf.Sizeof(t)
		kind := func(prefix string, pivots bool) (mapleKind, error) {
			var k mapleKind
			arr := func(path string) (uint32, uint32, error) {
				off, at, err := p.MemberOffset("struct maple_node", path)
				if err != nil {
					return 0, 0, err
				}
				a, ok := btfload.Underlying(at).(*btf.Array)
				if !ok || a.Nelems == 0 {
					return 0, 0, fmt.Errorf("struct maple_node.%s is %s, not an array: %w", path, btfload.TypeString(at), ErrNotSupported)
				}
				return uint32(off), a.Nelems, nil
			}
			var err error
			if k.slots, k.nSlots, err = arr(prefix + "slot"); err != nil {
				return k, err
			}
			if !pivots {
				return k, nil
			}
			if k.pivots, k.nPivots, err = arr(prefix + "pivot"); err != nil {
				return k, err
			}
			if k.nPivots+1 != k.nSlots {
				return k, fmt.Errorf("struct maple_node.%s: %d pivots for %d slots: %w", prefix, k.nPivots, k.nSlots, ErrNotSupported)
			}
			off, _, err := p.MemberOffset("struct maple_node", prefix+"meta.end")
			k.metaEnd = uint32(off)
			return k, err
		}
		if l.dense, err = kind("", false); err != nil {
			return l, err
		}
		if l.rng, err = kind("mr64.", true); err != nil {
			return l, err
		}
		l.arange, err = kind("ma64.", true)
		return l, err
	})
	if err != nil {
		return mapleLayout{}, err
	}
	return v.(mapleLayout), nil
}

// MtForEach yields the entries of a maple tree (a struct maple_tree or
// a pointer to one) in index order, as mt_for_each: each with its range.
// Zero entries (XA_ZERO_ENTRY, reserved ranges) are skipped, as the
// normal API does. A node of an unknown type, pivots out of order or
// outside their parent's range, a node seen twice, a tree deeper than
// any real one, a fault, or more nodes than the Program's limit stop the
// walk with an error naming the address.
func MtForEach(mt Value) iter.Seq2[MapleEntry, error] {
	return func(yield func(MapleEntry, error) bool) {
		p := mt.prog
		addr, err := ObjectAddr(mt, "mt_for_each")
		if err != nil {
			yield(MapleEntry{}, err)
			return
		}
		off, _, err := p.MemberOffset("struct maple_tree", "ma_root")
		if err != nil {
			yield(MapleEntry{}, err)
			return
		}
		root, err := p.ReadU64(addr + off)
		if err != nil {
			yield(MapleEntry{}, fmt.Errorf("maple tree at %#x: %w", addr, err))
			return
		}
		voidp := &btf.Pointer{Target: (*btf.Void)(nil)}
		if !xaIsNode(root) {
			// An empty tree, or a single entry at index 0.
			if root != 0 && root != xaZero {
				yield(MapleEntry{First: 0, Last: 0, Entry: p.Pointer(voidp.Target, root)}, nil)
			}
			return
		}
		l, err := p.mapleLayout()
		if err != nil {
			yield(MapleEntry{}, fmt.Errorf("maple tree at %#x: %w", addr, err))
			return
		}
		w := mapleWalk{p: p, l: l, tree: addr, g: p.NewGuard(fmt.Sprintf("maple tree at %#x", addr)),
			voidp: voidp, yield: yield}
		w.node(root, 0, ^uint64(0), 0)
	}
}

type mapleWalk struct {
	p     *Program
	l     mapleLayout
	tree  uint64
	g     *Guard
	bufs  [][]byte
	voidp *btf.Pointer
	yield func(MapleEntry, error) bool
	done  bool
}

func (w *mapleWalk) fail(err error) {
	if !w.done {
		w.done = true
		w.yield(MapleEntry{}, err)
	}
}

// node walks the subtree of the encoded node enode, which covers
// [min, max]; it returns false once the walk is over.
func (w *mapleWalk) node(enode, min, max uint64, depth int) bool {
	if w.done {
		return false
	}
	node := enode &^ mapleNodeMask
	typ := (enode >> mapleEnodeTypeShft) & mapleEnodeTypeMask
	if depth > mapleMaxDepth {
		w.fail(fmt.Errorf("maple tree at %#x: node %#x is deeper than %d levels: %w", w.tree, node, mapleMaxDepth, ErrCorrupt))
		return false
	}
	if node == 0 {
		w.fail(fmt.Errorf("maple tree at %#x: NULL node (encoded %#x) for [%#x, %#x]: %w", w.tree, enode, min, max, ErrCorrupt))
		return false
	}
	if err := w.g.Visit(node); err != nil {
		w.fail(err)
		return false
	}
	// A buffer per level: a node's bytes outlive its children's reads.
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, w.l.size))
	}
	b := w.bufs[depth]
	if err := w.p.Read(b, node); err != nil {
		w.fail(fmt.Errorf("maple tree at %#x: read node %#x: %w", w.tree, node, err))
		return false
	}
	slot := func(k mapleKind, i uint32) uint64 { return binary.LittleEndian.Uint64(b[k.slots+8*i:]) }
	var k mapleKind
	switch typ {
	case mapleDense:
		k = w.l.dense
		for i := uint32(0); i < k.nSlots && min+uint64(i) <= max; i++ {
			if e := slot(k, i); e != 0 && e != xaZero {
				if !w.emit(min+uint64(i), min+uint64(i), e) {
					return false
				}
			}
			if min+uint64(i) == max {
				break
			}
		}
		return true
	case mapleLeaf64, mapleRange64:
		k = w.l.rng
	case mapleARange64:
		k = w.l.arange
	default:
		w.fail(fmt.Errorf("maple tree at %#x: node %#x (encoded %#x) has unknown type %d: %w", w.tree, node, enode, typ, ErrCorrupt))
		return false
	}
	pivot := func(i uint32) uint64 { return binary.LittleEndian.Uint64(b[k.pivots+8*i:]) }
	// ma_data_end: the offset of the last slot in use.
	var end uint32
	last := pivot(k.nPivots - 1)
	switch {
	case typ == mapleARange64 || last == 0:
		end = uint32(b[k.metaEnd])
	case last == max:
		end = k.nPivots - 1
	default:
		end = k.nPivots
	}
	if end >= k.nSlots {
		w.fail(fmt.Errorf("maple tree at %#x: node %#x: end %d past its %d slots: %w", w.tree, node, end, k.nSlots, ErrCorrupt))
		return false
	}
	leaf := typ < mapleRange64
	prev := min
	for i := uint32(0); i <= end; i++ {
		hi := max
		if i < end {
			hi = pivot(i)
			if hi < prev || hi > max {
				w.fail(fmt.Errorf("maple tree at %#x: node %#x: pivot[%d] %#x outside [%#x, %#x]: %w", w.tree, node, i, hi, prev, max, ErrCorrupt))
				return false
			}
		}
		e := slot(k, i)
		if leaf {
			if e != 0 && e != xaZero && !w.emit(prev, hi, e) {
				return false
			}
		} else if !w.node(e, prev, hi, depth+1) {
			return false
		}
		if hi == max {
			break
		}
		prev = hi + 1
	}
	return true
}

func (w *mapleWalk) emit(first, last, e uint64) bool {
	if !w.yield(MapleEntry{First: first, Last: last, Entry: w.p.Pointer(w.voidp.Target, e)}, nil) {
		w.done = true
		return false
	}
	return true
}

// MtreeLoad returns the entry at index of a maple tree (a struct
// maple_tree or a pointer to one), as mtree_load: the entry whose range
// holds index, a (void *) constant; false when none does.
func MtreeLoad(mt Value, index uint64) (MapleEntry, bool, error) {
	for e, err := range MtForEach(mt) {
		if err != nil {
			return MapleEntry{}, false, err
		}
		if e.First <= index && index <= e.Last {
			return e, true, nil
		}
		if e.First > index {
			break
		}
	}
	return MapleEntry{}, false, nil
}
