package objects

import (
	"encoding/binary"
	"errors"
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
// as list_for_each, checking that each node's prev points back.
//
// A crashed kernel's lists break. Where a link is NULL, unreadable, not
// pointed back at, or leads to a node seen before (a cycle), the walk
// yields a *Damage naming the link, then walks the list backward from
// its head, along the prev pointers (each checked against next), to
// recover the nodes past the break, and yields them in list order. A
// second break on the way back is a second *Damage; the nodes between
// the two are lost. Other errors (an unreadable head, a missing type,
// more nodes than the Program's limit) end the walk. It never loops.
func ListForEach(head Value) iter.Seq2[Value, error] {
	return listForEach(head, nil)
}

// listForEach is ListForEach, naming the object that holds each damaged
// node with container (nil: none).
func listForEach(head Value, container func(node uint64) string) iter.Seq2[Value, error] {
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
		w := &listWalk{p: p, ll: ll, head: h, walk: fmt.Sprintf("list at %#x", h), container: container,
			seen: map[uint64]bool{}, buf: make([]byte, ll.size)}
		headNext, headPrev, err := w.read(h)
		if err != nil {
			yield(Value{}, fmt.Errorf("list at %#x: read the head: %w", h, err))
			return
		}
		// Forward, along next.
		pos, next := h, headNext
		var broke *Damage
		for next != h {
			n, d := w.step(pos, next, "next", "prev")
			if d != nil {
				broke, w.brokeFrom, w.brokeTo = d, pos, next
				break
			}
			if len(w.seen) > p.limit {
				yield(Value{}, fmt.Errorf("list at %#x: more than %d nodes: %w", h, p.limit, ErrLimit))
				return
			}
			if !yield(p.Object(ll.typ, next), nil) {
				return
			}
			pos, next = next, n
		}
		if broke == nil {
			return
		}
		// Backward from the head, along prev, to where the forward walk
		// stopped.
		var back []uint64
		var second *Damage
		pos, prev := h, headPrev
		for prev != h && !w.seen[prev] {
			pp, d := w.step(pos, prev, "prev", "next")
			if d != nil {
				// The break seen from its other side is the same damage.
				if pos != w.brokeTo && prev != w.brokeFrom {
					second = d
				}
				break
			}
			if len(w.seen) > p.limit {
				break
			}
			back = append(back, prev)
			pos, prev = prev, pp
		}
		broke.Recovery = fmt.Sprintf("walked the list backward from its head: %d more nodes", len(back))
		if second != nil {
			broke.Recovery += " (the nodes between the two breaks are lost)"
		}
		if !yield(Value{}, broke) {
			return
		}
		for i := len(back) - 1; i >= 0; i-- {
			if !yield(p.Object(ll.typ, back[i]), nil) {
				return
			}
		}
		if second != nil {
			second.Recovery = "the break seen walking backward"
			yield(Value{}, second)
		}
	}
}

// listWalk follows one list, in either direction.
type listWalk struct {
	p         *Program
	ll        listLayout
	head      uint64
	walk      string
	container func(node uint64) string
	seen      map[uint64]bool
	buf       []byte
	// brokeFrom and brokeTo are the link the forward walk could not
	// follow.
	brokeFrom, brokeTo uint64
}

// read returns a node's next and prev.
func (w *listWalk) read(node uint64) (next, prev uint64, err error) {
	if err := w.p.Read(w.buf, node); err != nil {
		return 0, 0, err
	}
	return binary.LittleEndian.Uint64(w.buf[w.ll.next:]), binary.LittleEndian.Uint64(w.buf[w.ll.prev:]), nil
}

// step follows the link named fwd (next or prev) from pos to to, and
// checks to's link named back points at pos. It returns to's onward
// link (its fwd), or the damage.
func (w *listWalk) step(pos, to uint64, fwd, back string) (uint64, *Damage) {
	damage := func(addr uint64, expected, found string, err error) *Damage {
		d := &Damage{Walk: w.walk, Addr: Hex(addr), Expected: expected, Found: found, Err: err}
		if w.container != nil && addr != w.head {
			d.Object = w.container(addr)
		}
		return d
	}
	switch {
	case to == 0:
		return 0, damage(pos, fwd+" pointing at a list node", "NULL", ErrCorrupt)
	case w.seen[to]:
		return 0, damage(pos, fwd+" pointing at a node not seen before", fmt.Sprintf("%#x, seen before (a cycle)", to), ErrCorrupt)
	}
	n, pv, err := w.read(to)
	if err != nil {
		found := fmt.Sprintf("%#x", to)
		if w.container != nil && to != w.head {
			// The unreadable node's container is what is lost.
			found += " (" + w.container(to) + ")"
		}
		return 0, damage(pos, fwd+" pointing at a readable list node", found, err)
	}
	if fwd == "prev" {
		n, pv = pv, n
	}
	if pv != pos {
		return 0, damage(pos, fmt.Sprintf("%s %#x whose %s points back", fwd, to, back), fmt.Sprintf("its %s %#x", back, pv), ErrCorrupt)
	}
	w.seen[to] = true
	return n, nil
}

// ListForEachEntry yields the objects of the named type linked through
// their list_head member (a member path) on the list headed by head, as
// list_for_each_entry. See ListForEach for the checks and the recovery
// of a broken list; a *Damage names the object holding the node.
func ListForEachEntry(head Value, typeName, member string) iter.Seq2[Value, error] {
	p := head.prog
	off, _, err := p.MemberOffset(typeName, member)
	if err != nil {
		return func(yield func(Value, error) bool) { yield(Value{}, err) }
	}
	name := func(node uint64) string { return fmt.Sprintf("%s %#x", typeName, node-off) }
	return entries(p, listForEach(head, name), typeName, member)
}

// entries turns the embedded nodes a walker yields into the objects of
// the named type that hold them at member, as the kernel's *_entry
// macros do with container_of. A *Damage is passed on and the walk goes
// on; another error ends it.
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
				if !yield(Value{}, err) || !IsDamage(err) {
					return
				}
				continue
			}
			if !yield(p.Object(t, node.addr-off), nil) {
				return
			}
		}
	}
}

// ListForEachEntryFrom yields the other objects of the named type on
// the circular list that entry (one of them) is linked on through its
// list_head member, when the list's head cannot be walked from: the
// head lives in a damaged or missing object, but the entries are still
// linked to each other. It follows next from entry, then prev from
// entry, each way until the head (at address head, never read) or a
// link it cannot trust; those end a direction quietly, as the walk
// expects to meet the damage that made it necessary. It never loops.
func ListForEachEntryFrom(entry Value, head uint64, typeName, member string) iter.Seq2[Value, error] {
	return func(yield func(Value, error) bool) {
		p := entry.prog
		start, err := ObjectAddr(entry, "list_for_each_entry_from")
		if err != nil {
			yield(Value{}, err)
			return
		}
		off, _, err := p.MemberOffset(typeName, member)
		if err != nil {
			yield(Value{}, err)
			return
		}
		ll, err := p.listLayout("struct list_head", "prev")
		if err != nil {
			yield(Value{}, err)
			return
		}
		t, _ := p.Type(typeName)
		node := start + off
		w := &listWalk{p: p, ll: ll, head: head, seen: map[uint64]bool{node: true}, buf: make([]byte, ll.size)}
		next, prev, err := w.read(node)
		if err != nil {
			yield(Value{}, err)
			return
		}
		for _, dir := range []struct {
			first     uint64
			fwd, back string
		}{{next, "next", "prev"}, {prev, "prev", "next"}} {
			pos, to := node, dir.first
			for to != head && to != node && len(w.seen) <= p.limit {
				onward, d := w.step(pos, to, dir.fwd, dir.back)
				if d != nil {
					break
				}
				if !yield(p.Object(t, to-off), nil) {
					return
				}
				pos, to = to, onward
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
// A link to a node seen before, unreadable or not pointed back at is a
// *Damage naming the link's address, and the end of the walk.
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
		walk := fmt.Sprintf("hlist at %#x", h)
		// A NULL-terminated list cannot be walked back: past a damaged
		// link nothing is reachable.
		damaged := func(expected, found string, err error) {
			yield(Value{}, &Damage{Walk: walk, Addr: Hex(link), Expected: expected, Found: found, Err: err,
				Recovery: "the rest of the chain is lost"})
		}
		for node != 0 {
			if err := g.Visit(node); err != nil {
				if errors.Is(err, ErrLimit) {
					yield(Value{}, err)
				} else {
					damaged("a link to a node not seen before", fmt.Sprintf("%#x, seen before (a cycle)", node), ErrCorrupt)
				}
				return
			}
			if err := p.Read(buf, node); err != nil {
				damaged("a link to a readable node", fmt.Sprintf("%#x", node), err)
				return
			}
			if pprev := binary.LittleEndian.Uint64(buf[ll.prev:]); pprev != link {
				damaged(fmt.Sprintf("a link to a node whose pprev is %#x", link), fmt.Sprintf("%#x with pprev %#x", node, pprev), ErrCorrupt)
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
