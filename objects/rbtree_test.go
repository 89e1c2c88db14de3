package objects

import (
	"errors"
	"testing"
)

func TestRBTreeForEachEntry(t *testing.T) {
	p, m, syms := synthProgram(t)
	syms["tree"] = 0x1000
	// item.rb at +32: rb_right +8, rb_left +16.
	//        2
	//      1   4
	//         3  5
	items := map[int32]uint64{1: 0x2000, 2: 0x3000, 3: 0x4000, 4: 0x5000, 5: 0x6000}
	for id, a := range items {
		writeItem(m, a, id, "x")
	}
	link := func(parent int32, left, right int32) {
		if left != 0 {
			m.U64(items[parent]+32+16, items[left]+32)
		}
		if right != 0 {
			m.U64(items[parent]+32+8, items[right]+32)
		}
	}
	link(2, 1, 4)
	link(4, 3, 5)
	m.U64(0x1000, items[2]+32)
	tree, _ := p.Variable("tree")
	var ids []int64
	for it, err := range RBTreeForEachEntry(tree, "struct item", "rb") {
		if err != nil {
			t.Fatal(err)
		}
		v, _ := it.Member("id")
		n, _ := v.Int()
		ids = append(ids, n)
	}
	if len(ids) != 5 {
		t.Fatalf("ids %v", ids)
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Errorf("ids %v not in order", ids)
		}
	}
	// A cycle: 5's left points back to 2.
	m.U64(items[5]+32+16, items[2]+32)
	var got error
	n := 0
	for _, err := range RBTreeForEach(tree) {
		if err != nil {
			got = err
			continue
		}
		n++
	}
	if !errors.Is(got, ErrCorrupt) || !IsDamage(got) {
		t.Errorf("cyclic tree: %v", got)
	}
	if n != 5 {
		t.Errorf("cyclic tree: %d nodes, want the 5 (the cycle skipped)", n)
	}
}
