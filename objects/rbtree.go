package objects

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	"github.com/cilium/ebpf/btf"
)

// maxRBDepth bounds the depth of a red-black tree: 2·log2(n+1) for any
// n a 64-bit kernel can hold is below it.
const maxRBDepth = 128

// RBTreeForEach yields the nodes (struct rb_node objects) of a red-black
// tree in order, leftmost first. root is a struct rb_root or struct
// rb_root_cached, or a pointer to one. A child seen before (a cycle), a
// tree deeper than any red-black tree can be or an unreadable child is a
// *Damage naming its parent, after which the walk goes on without that
// subtree; more nodes than the Program's limit end the walk.
func RBTreeForEach(root Value) iter.Seq2[Value, error] {
	return func(yield func(Value, error) bool) {
		p := root.prog
		obj := root
		if _, ok := root.underlying().(*btf.Pointer); ok {
			d, err := root.Deref()
			if err != nil {
				yield(Value{}, fmt.Errorf("rbtree_for_each: %w", err))
				return
			}
			obj = d
		}
		if s, ok := obj.underlying().(*btf.Struct); ok && s.Name == "rb_root_cached" {
			r, err := obj.Member("rb_root")
			if err != nil {
				yield(Value{}, err)
				return
			}
			obj = r
		}
		if s, ok := obj.underlying().(*btf.Struct); !ok || s.Name != "rb_root" {
			yield(Value{}, fmt.Errorf("rbtree_for_each: %s is not a struct rb_root: %w", obj.TypeName(), ErrType))
			return
		}
		top, err := obj.Member("rb_node")
		if err != nil {
			yield(Value{}, err)
			return
		}
		node, err := top.Uint()
		if err != nil {
			yield(Value{}, err)
			return
		}
		nt, err := p.Type("struct rb_node")
		if err != nil {
			yield(Value{}, err)
			return
		}
		left, err := p.FindMember(nt, "rb_left")
		if err != nil {
			yield(Value{}, err)
			return
		}
		right, err := p.FindMember(nt, "rb_right")
		if err != nil {
			yield(Value{}, err)
			return
		}
		size, _ := btf.Sizeof(nt)
		g := p.NewGuard(fmt.Sprintf("rbtree at %#x", obj.addr))
		buf := make([]byte, size)
		type frame struct{ node, right uint64 }
		var stack []frame
		walk := fmt.Sprintf("rbtree at %#x", obj.addr)
		// push descends left from n. A node it cannot trust is a *Damage:
		// the subtree under it is lost, the rest of the tree is not.
		push := func(n, parent uint64) error {
			for n != 0 {
				if err := g.Visit(n); err != nil {
					if errors.Is(err, ErrLimit) {
						return err
					}
					return &Damage{Walk: walk, Addr: Hex(parent), Object: "struct rb_node", Expected: "a child not seen before",
						Found: fmt.Sprintf("%#x, seen before (a cycle)", n), Err: ErrCorrupt, Recovery: "skipped the subtree"}
				}
				if len(stack) >= maxRBDepth {
					return &Damage{Walk: walk, Addr: Hex(n), Object: "struct rb_node", Expected: fmt.Sprintf("a tree at most %d deep", maxRBDepth),
						Found: "a deeper one", Err: ErrCorrupt, Recovery: "skipped the subtree"}
				}
				if err := p.Read(buf, n); err != nil {
					return &Damage{Walk: walk, Addr: Hex(parent), Object: "struct rb_node", Expected: "a readable child",
						Found: fmt.Sprintf("%#x", n), Err: err, Recovery: "skipped the subtree"}
				}
				stack = append(stack, frame{n, binary.LittleEndian.Uint64(buf[right.BitOff/8:])})
				parent, n = n, binary.LittleEndian.Uint64(buf[left.BitOff/8:])
			}
			return nil
		}
		step := func(n, parent uint64) bool {
			err := push(n, parent)
			if err == nil {
				return true
			}
			return yield(Value{}, err) && IsDamage(err)
		}
		if !step(node, obj.addr) {
			return
		}
		for len(stack) > 0 {
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !yield(p.Object(nt, f.node), nil) {
				return
			}
			if !step(f.right, f.node) {
				return
			}
		}
	}
}

// RBTreeForEachEntry yields, in order, the objects of the named type
// whose rb_node member (a member path) is in the tree, as
// rbtree_postorder_for_each_entry_safe does but in order.
func RBTreeForEachEntry(root Value, typeName, member string) iter.Seq2[Value, error] {
	return entries(root.prog, RBTreeForEach(root), typeName, member)
}
