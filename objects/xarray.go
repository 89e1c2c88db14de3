package objects

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math/bits"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// IndexedValue is an entry of an xarray, radix tree or IDR.
type IndexedValue struct {
	// Index is the entry's index (for an IDR, its ID).
	Index uint64
	// Value is the entry: a (void *) pointer constant, an object for the
	// ...ForEachEntry walkers, or, for an xarray value entry
	// (xa_is_value), an unsigned long constant holding xa_to_value.
	Value Value
	// IsValue says the entry was a value entry, not a pointer.
	IsValue bool
}

// Internal entries of include/linux/xarray.h.
const (
	xaRetry = 256<<2 | 2 // xa_mk_internal(256): XA_RETRY_ENTRY
	xaZero  = 257<<2 | 2 // xa_mk_internal(257): XA_ZERO_ENTRY
)

func xaIsInternal(e uint64) bool { return e&3 == 2 }
func xaIsNode(e uint64) bool     { return xaIsInternal(e) && e > 4096 }

// xaLayout is struct xa_node's layout from BTF.
type xaLayout struct {
	size       int
	shift      uint32
	parent     uint32
	slots      uint32
	chunk      int // XA_CHUNK_SIZE: the length of slots
	chunkShift int
}

func (p *Program) xaLayout() (xaLayout, error) {
	t, err := p.Type("struct xa_node")
	if err != nil {
		return xaLayout{}, err
	}
	var l xaLayout
	l.size, _ = btf.Sizeof(t)
	for name, dst := range map[string]*uint32{"shift": &l.shift, "parent": &l.parent, "slots": &l.slots} {
		mi, err := p.FindMember(t, name)
		if err != nil {
			return xaLayout{}, err
		}
		*dst = mi.BitOff / 8
		if name == "slots" {
			a, ok := btfload.Underlying(mi.Type).(*btf.Array)
			if !ok || a.Nelems == 0 || a.Nelems&(a.Nelems-1) != 0 {
				return xaLayout{}, fmt.Errorf("struct xa_node.slots is %s, not an array of a power of two: %w", btfload.TypeString(mi.Type), ErrNotSupported)
			}
			l.chunk = int(a.Nelems)
			l.chunkShift = bits.TrailingZeros32(a.Nelems)
		}
	}
	return l, nil
}

// XArrayForEach yields the present entries of an xarray (a struct xarray
// or pointer to one) in index order, as xa_for_each: walking the nodes of
// every level, skipping sibling, retry and zero entries (an IDR's
// reserved IDs). Entries come as (void *) constants, value entries as
// unsigned long constants with IsValue. A node whose parent or shift
// disagrees with where it was found, a node seen twice or a fault is a
// *Damage naming the node, after which the walk goes on with the node's
// siblings (the entries under it are lost); more entries than the
// Program's limit end the walk with ErrLimit.
func XArrayForEach(xa Value) iter.Seq2[IndexedValue, error] {
	return func(yield func(IndexedValue, error) bool) {
		p := xa.prog
		addr, err := ObjectAddr(xa, "xa_for_each")
		if err != nil {
			yield(IndexedValue{}, err)
			return
		}
		obj := p.Object(xa.typ, addr)
		if _, ok := xa.underlying().(*btf.Pointer); ok {
			obj, _ = xa.Deref()
		}
		headV, err := obj.Member("xa_head")
		if err != nil {
			yield(IndexedValue{}, fmt.Errorf("xa_for_each: %w", err))
			return
		}
		head, err := headV.Uint()
		if err != nil {
			yield(IndexedValue{}, err)
			return
		}
		voidp := &btf.Pointer{Target: (*btf.Void)(nil)}
		ulong, _ := p.Type("unsigned long")
		emit := func(idx, e uint64) bool {
			if e&1 == 1 {
				v, _ := p.Constant(ulong, e>>1)
				return yield(IndexedValue{Index: idx, Value: v, IsValue: true}, nil)
			}
			v, _ := p.Constant(voidp, e)
			return yield(IndexedValue{Index: idx, Value: v}, nil)
		}
		if head == 0 {
			return
		}
		if !xaIsNode(head) {
			if !xaIsInternal(head) {
				emit(0, head)
			}
			return
		}
		l, err := p.xaLayout()
		if err != nil {
			yield(IndexedValue{}, err)
			return
		}
		g := p.NewGuard(fmt.Sprintf("xarray at %#x", addr))
		entries := 0
		walkName := fmt.Sprintf("xarray at %#x", addr)
		// damaged yields a node the walk cannot trust and goes on with
		// the next slot of its parent: the entries under it are lost.
		damaged := func(node uint64, expected, found string, err error) bool {
			return yield(IndexedValue{}, &Damage{Walk: walkName, Addr: Hex(node), Object: "struct xa_node",
				Expected: expected, Found: found, Err: err, Recovery: "skipped the node's entries"})
		}
		var walk func(node, parent, base uint64, wantShift int) bool
		walk = func(node, parent, base uint64, wantShift int) bool {
			if err := g.Visit(node); err != nil {
				if errors.Is(err, ErrLimit) {
					return yield(IndexedValue{}, err) && false
				}
				return damaged(node, "a node not seen before", "a node seen before (a cycle)", ErrCorrupt)
			}
			buf := make([]byte, l.size)
			if err := p.Read(buf, node); err != nil {
				return damaged(node, "a readable node", "a fault", err)
			}
			shift := int(buf[l.shift])
			if shift%l.chunkShift != 0 || shift >= 64 || wantShift >= 0 && shift != wantShift {
				return damaged(node, fmt.Sprintf("shift %d", max(wantShift, 0)), fmt.Sprintf("shift %d", shift), ErrCorrupt)
			}
			if par := binary.LittleEndian.Uint64(buf[l.parent:]); par != parent {
				return damaged(node, fmt.Sprintf("parent %#x", parent), fmt.Sprintf("parent %#x", par), ErrCorrupt)
			}
			for i := 0; i < l.chunk; i++ {
				e := binary.LittleEndian.Uint64(buf[int(l.slots)+8*i:])
				if e == 0 {
					continue
				}
				if i > 0 && shift+bits.Len(uint(i)) > 64 {
					if !damaged(node, fmt.Sprintf("slot %d within the index space at shift %d", i, shift), "an index that overflows", ErrCorrupt) {
						return false
					}
					continue
				}
				idx := base + uint64(i)<<shift
				switch {
				case xaIsNode(e):
					if shift == 0 {
						if !damaged(node, fmt.Sprintf("an entry in leaf slot %d", i), fmt.Sprintf("node pointer %#x", e-2), ErrCorrupt) {
							return false
						}
						continue
					}
					if !walk(e-2, node, idx, shift-l.chunkShift) {
						return false
					}
				case e == xaRetry, e == xaZero:
					// A slot being changed, or an IDR's reserved ID.
				case xaIsInternal(e):
					// A sibling entry (xa_is_sibling): part of a multi-index entry.
				default:
					entries++
					if entries > p.limit {
						yield(IndexedValue{}, fmt.Errorf("xarray at %#x: more than %d entries: %w", addr, p.limit, ErrLimit))
						return false
					}
					if !emit(idx, e) {
						return false
					}
				}
			}
			return true
		}
		walk(head-2, 0, 0, -1)
	}
}

// XALoad returns the entry at index of an xarray (a struct xarray or a
// pointer to one), as xa_load: a pointer entry as its raw value, a value
// entry (IsValue) with xa_to_value; false when the slot is empty, a
// retry or zero entry. A multi-index entry's sibling slots lead to its
// canonical slot. Errors name the node that could not be read or is
// inconsistent.
func XALoad(xa Value, index uint64) (IndexedValue, bool, error) {
	p := xa.prog
	addr, err := ObjectAddr(xa, "xa_load")
	if err != nil {
		return IndexedValue{}, false, err
	}
	off, _, err := p.MemberOffset("struct xarray", "xa_head")
	if err != nil {
		return IndexedValue{}, false, err
	}
	e, err := p.ReadU64(addr + off)
	if err != nil {
		return IndexedValue{}, false, fmt.Errorf("xarray at %#x: %w", addr, err)
	}
	voidp := &btf.Pointer{Target: (*btf.Void)(nil)}
	if xaIsNode(e) {
		l, err := p.xaLayout()
		if err != nil {
			return IndexedValue{}, false, err
		}
		buf := make([]byte, l.size)
		for depth := 0; xaIsNode(e); depth++ {
			node := e - 2
			if depth > 64/l.chunkShift+1 {
				return IndexedValue{}, false, fmt.Errorf("xarray at %#x: node %#x: deeper than 64-bit indexes: %w", addr, node, ErrCorrupt)
			}
			if err := p.Read(buf, node); err != nil {
				return IndexedValue{}, false, fmt.Errorf("xarray at %#x: read node %#x: %w", addr, node, err)
			}
			shift := int(buf[l.shift])
			if shift%l.chunkShift != 0 || shift >= 64 {
				return IndexedValue{}, false, fmt.Errorf("xarray at %#x: node %#x has shift %d: %w", addr, node, shift, ErrCorrupt)
			}
			if depth == 0 && shift+l.chunkShift < 64 && index>>(shift+l.chunkShift) != 0 {
				return IndexedValue{}, false, nil // past the tree's reach
			}
			offset := int(index>>shift) & (l.chunk - 1)
			e = binary.LittleEndian.Uint64(buf[int(l.slots)+8*offset:])
			if xaIsInternal(e) && e < 256<<2 {
				// A sibling: the entry is in the slot it names.
				sib := int(e >> 2)
				if sib >= l.chunk {
					return IndexedValue{}, false, fmt.Errorf("xarray at %#x: node %#x: sibling %d: %w", addr, node, sib, ErrCorrupt)
				}
				e = binary.LittleEndian.Uint64(buf[int(l.slots)+8*sib:])
			}
			if shift == 0 && xaIsNode(e) {
				return IndexedValue{}, false, fmt.Errorf("xarray at %#x: leaf node %#x points to node %#x: %w", addr, node, e-2, ErrCorrupt)
			}
		}
	} else if index != 0 {
		return IndexedValue{}, false, nil
	}
	switch {
	case e == 0 || xaIsInternal(e):
		return IndexedValue{}, false, nil
	case e&1 == 1:
		ulong, _ := p.Type("unsigned long")
		v, _ := p.Constant(ulong, e>>1)
		return IndexedValue{Index: index, Value: v, IsValue: true}, true, nil
	}
	v, _ := p.Constant(voidp, e)
	return IndexedValue{Index: index, Value: v}, true, nil
}
