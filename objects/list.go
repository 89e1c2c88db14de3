package objects

import (
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/cilium/ebpf/btf"
)

// listLayout is where next and prev sit in struct list_head (or
// hlist_node: next and pprev), from BTF.
type listLayout struct {
	typ  btf.Type
	size int
	next uint32
	prev uint32
}

func (p *Program) listLayout(node, prev string) (listLayout, error) {
	t, err := p.Type(node)
	if err != nil {
		return listLayout{}, err
	}
	n, err := p.FindMember(t, "next")
	if err != nil {
		return listLayout{}, err
	}
	pv, err := p.FindMember(t, prev)
	if err != nil {
		return listLayout{}, err
	}
	sz, _ := btf.Sizeof(t)
	return listLayout{typ: t, size: sz, next: n.BitOff / 8, prev: pv.BitOff / 8}, nil
}

// ObjectAddr returns the address of the object v is or points to.
func ObjectAddr(v Value, what string) (uint64, error) {
	if _, ok := v.underlying().(*btf.Pointer); ok {
		a, err := v.Uint()
		if err == nil && a == 0 {
			err = fmt.Errorf("%s: NULL %s: %w", what, v.TypeName(), ErrCorrupt)
		}
		return a, err
	}
	if !v.lvalue {
		return 0, fmt.Errorf("%s: %s is not an object: %w", what, v, ErrType)
	}
	return v.addr, nil
}

// ListForEach yields each node (a struct list_head object) of the
// circular list headed by head (a struct list_head, or a pointer to one),
// as list_for_each. It checks each node's prev points back, and stops
// with an error naming the address on a NULL or inconsistent pointer, a
// node seen twice, a fault, or more nodes than the Program's limit.
func ListForEach(head Value) iter.Seq2[Value, error] {
	return func(yield func(Value, error) bool) {
		p := head.prog
		h, err := ObjectAddr(head, "list_for_each")
		if err != nil {
			yield(Value{}, err)
			return
		}
		ll, err := p.listLayout("struct list_head", "prev")
		if err != nil {
			yield(Value{}, err)
			return
		}
		g := p.NewGuard(fmt.Sprintf("list at %#x", h))
		buf := make([]byte, ll.size)
		pos := h
		for {
			if err := p.Read(buf, pos); err != nil {
				yield(Value{}, fmt.Errorf("list at %#x: read node %#x: %w", h, pos, err))
				return
			}
			next := binary.LittleEndian.Uint64(buf[ll.next:])
			if next == h {
				return
			}
			if next == 0 {
				yield(Value{}, fmt.Errorf("list at %#x: node %#x has a NULL next: %w", h, pos, ErrCorrupt))
				return
			}
			if err := g.Visit(next); err != nil {
				yield(Value{}, err)
				return
			}
			if err := p.Read(buf, next); err != nil {
				yield(Value{}, fmt.Errorf("list at %#x: read node %#x (next of %#x): %w", h, next, pos, err))
				return
			}
			if back := binary.LittleEndian.Uint64(buf[ll.prev:]); back != pos {
				yield(Value{}, fmt.Errorf("list at %#x: node %#x (next of %#x) has prev %#x: %w", h, next, pos, back, ErrCorrupt))
				return
			}
			if !yield(p.Object(ll.typ, next), nil) {
				return
			}
			pos = next
		}
	}
}

// ListForEachEntry yields the objects of the named type linked through
// their list_head member (a member path) on the list headed by head, as
// list_for_each_entry. See ListForEach for the checks.
func ListForEachEntry(head Value, typeName, member string) iter.Seq2[Value, error] {
	return entries(head.prog, ListForEach(head), typeName, member)
}

// entries turns the embedded nodes a walker yields into the objects of
// the named type that hold them at member, as the kernel's *_entry
// macros do with container_of. The walker's first error ends it.
func entries(p *Program, nodes iter.Seq2[Value, error], typeName, member string) iter.Seq2[Value, error] {
	return func(yield func(Value, error) bool) {
		off, _, err := p.MemberOffset(typeName, member)
		if err != nil {
			yield(Value{}, err)
			return
		}
		t, _ := p.Type(typeName)
		for node, err := range nodes {
			if err != nil {
				yield(Value{}, err)
				return
			}
			if !yield(p.Object(t, node.addr-off), nil) {
				return
			}
		}
	}
}

// ListEmpty says whether the list headed by head is empty.
func ListEmpty(head Value) (bool, error) {
	h, err := ObjectAddr(head, "list_empty")
	if err != nil {
		return false, err
	}
	ll, err := head.prog.listLayout("struct list_head", "prev")
	if err != nil {
		return false, err
	}
	next, err := head.prog.ReadU64(h + uint64(ll.next))
	return next == h, err
}

// HlistForEach yields each node (a struct hlist_node object) of the
// NULL-terminated list headed by head (a struct hlist_head, or a pointer
// to one), as hlist_for_each, checking each node's pprev points back.
func HlistForEach(head Value) iter.Seq2[Value, error] {
	return func(yield func(Value, error) bool) {
		p := head.prog
		h, err := ObjectAddr(head, "hlist_for_each")
		if err != nil {
			yield(Value{}, err)
			return
		}
		ht, err := p.Type("struct hlist_head")
		if err != nil {
			yield(Value{}, err)
			return
		}
		first, err := p.FindMember(ht, "first")
		if err != nil {
			yield(Value{}, err)
			return
		}
		ll, err := p.listLayout("struct hlist_node", "pprev")
		if err != nil {
			yield(Value{}, err)
			return
		}
		g := p.NewGuard(fmt.Sprintf("hlist at %#x", h))
		link := h + uint64(first.BitOff/8) // where the pointer to the node is
		node, err := p.ReadU64(link)
		if err != nil {
			yield(Value{}, fmt.Errorf("hlist at %#x: %w", h, err))
			return
		}
		buf := make([]byte, ll.size)
		for node != 0 {
			if err := g.Visit(node); err != nil {
				yield(Value{}, err)
				return
			}
			if err := p.Read(buf, node); err != nil {
				yield(Value{}, fmt.Errorf("hlist at %#x: read node %#x: %w", h, node, err))
				return
			}
			if pprev := binary.LittleEndian.Uint64(buf[ll.prev:]); pprev != link {
				yield(Value{}, fmt.Errorf("hlist at %#x: node %#x has pprev %#x, want %#x: %w", h, node, pprev, link, ErrCorrupt))
				return
			}
			if !yield(p.Object(ll.typ, node), nil) {
				return
			}
			link = node + uint64(ll.next)
			node = binary.LittleEndian.Uint64(buf[ll.next:])
		}
	}
}

// HlistForEachEntry yields the objects of the named type linked through
// their hlist_node member, as hlist_for_each_entry.
func HlistForEachEntry(head Value, typeName, member string) iter.Seq2[Value, error] {
	return entries(head.prog, HlistForEach(head), typeName, member)
}
