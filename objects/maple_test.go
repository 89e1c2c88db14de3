package objects

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
)

// mapleProgram is a Program over memory holding a maple_tree at the
// symbol "tree".
func mapleProgram(t *testing.T) (*Program, *sk.Mem, uint64) {
	t.Helper()
	b := sk.NewBTF()
	b.MapleTree()
	m := sk.NewMem()
	syms := sk.Syms{}
	mt := m.Global(syms, "tree", 16)
	p := NewProgram(m, b.Spec(t), syms, WithLimit(10000))
	if err := p.Decls().Add("struct maple_tree tree"); err != nil {
		t.Fatal(err)
	}
	return p, m, mt
}

func walkMaple(t *testing.T, p *Program) ([]string, error) {
	t.Helper()
	v, err := p.Variable("tree")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for e, err := range MtForEach(v) {
		if err != nil {
			return got, err
		}
		x, _ := e.Entry.Uint()
		got = append(got, fmt.Sprintf("%#x-%#x:%#x", e.First, e.Last, x))
	}
	return got, nil
}

// vmaRanges are n VMA-like ranges of a page or two, with gaps.
func vmaRanges(n int) []sk.MapleRange {
	var out []sk.MapleRange
	a := uint64(0x400000)
	for i := range n {
		size := uint64(0x1000 * (1 + i%2))
		out = append(out, sk.MapleRange{First: a, Last: a + size - 1, Entry: 0xffff888000100000 + uint64(i)*0x100})
		a += size
		if i%3 == 0 {
			a += 0x10000 // a gap
		}
	}
	return out
}

func TestMtForEach(t *testing.T) {
	for _, tc := range []struct {
		n    int
		opts sk.MapleOpts
	}{
		{1, sk.MapleOpts{}},
		{14, sk.MapleOpts{}},
		{15, sk.MapleOpts{}},              // a leaf whose last pivot is its max
		{16, sk.MapleOpts{LeafSlots: 16}}, // full leaves
		{200, sk.MapleOpts{}},             // three levels of arange nodes
		{300, sk.MapleOpts{LeafSlots: 3}}, // deep
		{120, sk.MapleOpts{Range: true}},  // maple_range_64 internal nodes
		{50, sk.MapleOpts{LeafSlots: 15}}, // leaves of 15: end from pivots
		{41, sk.MapleOpts{LeafSlots: 2, Range: true}},
	} {
		t.Run(fmt.Sprintf("%d %+v", tc.n, tc.opts), func(t *testing.T) {
			p, m, mt := mapleProgram(t)
			want := vmaRanges(tc.n)
			m.MapleTree(mt, want, tc.opts)
			got, err := walkMaple(t, p)
			if err != nil {
				t.Fatal(err)
			}
			var ws []string
			for _, w := range want {
				ws = append(ws, fmt.Sprintf("%#x-%#x:%#x", w.First, w.Last, w.Entry))
			}
			if strings.Join(got, " ") != strings.Join(ws, " ") {
				t.Errorf("got  %v\nwant %v", got, ws)
			}
			v, _ := p.Variable("tree")
			for _, w := range []sk.MapleRange{want[0], want[len(want)/2], want[len(want)-1]} {
				e, ok, err := MtreeLoad(v, w.First+(w.Last-w.First)/2)
				if x, _ := e.Entry.Uint(); err != nil || !ok || x != w.Entry || e.First != w.First || e.Last != w.Last {
					t.Errorf("mtree_load(%#x) = %+v %v %v, want %#x", w.First, e, ok, err, w.Entry)
				}
			}
			if _, ok, err := MtreeLoad(v, 0x1000); ok || err != nil {
				t.Errorf("mtree_load in a gap: %v %v", ok, err)
			}
		})
	}
}

func TestMtForEachRoot(t *testing.T) {
	p, m, mt := mapleProgram(t)
	// Empty, then a single entry at index 0 held by the root itself.
	if got, err := walkMaple(t, p); len(got) != 0 || err != nil {
		t.Errorf("empty tree: %v %v", got, err)
	}
	m.U64(mt+8, 0xffff888000001000)
	if got, err := walkMaple(t, p); strings.Join(got, " ") != "0x0-0x0:0xffff888000001000" || err != nil {
		t.Errorf("root entry: %v %v", got, err)
	}
	// XA_ZERO_ENTRY is skipped.
	m.MapleTree(mt, []sk.MapleRange{{First: 0x1000, Last: 0x1fff, Entry: 0x406}, {First: 0x2000, Last: 0x2fff, Entry: 0xffff888000002000}}, sk.MapleOpts{})
	if got, err := walkMaple(t, p); strings.Join(got, " ") != "0x2000-0x2fff:0xffff888000002000" || err != nil {
		t.Errorf("zero entry: %v %v", got, err)
	}
}

func TestMtForEachDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(m *sk.Mem, nodes []uint64, mt uint64)
		want error
		msg  string
	}{
		{"cycle", func(m *sk.Mem, nodes []uint64, mt uint64) {
			root := nodes[len(nodes)-1]
			m.U64(root+8+9*8, root|3<<3|4) // slot[0] of the root is the root
		}, ErrCorrupt, "seen twice"},
		{"unknown type", func(m *sk.Mem, nodes []uint64, mt uint64) {
			root := nodes[len(nodes)-1]
			child, _ := readU64(m, root+8+9*8)
			m.U64(root+8+9*8, child&^0x78|7<<3)
		}, ErrCorrupt, "unknown type 7"},
		{"pivots out of order", func(m *sk.Mem, nodes []uint64, mt uint64) {
			m.U64(nodes[0]+8+8, 0x10) // pivot[1] of the first leaf below pivot[0]
		}, ErrCorrupt, "pivot[1]"},
		{"fault", func(m *sk.Mem, nodes []uint64, mt uint64) {
			m.Drop(nodes[20]) // the page of leaves 16-31
		}, sk.ErrFault, "read node 0x"},
		{"bad end", func(m *sk.Mem, nodes []uint64, mt uint64) {
			root := nodes[len(nodes)-1]
			m.U8(root+240, 40)
		}, ErrCorrupt, "end 40"},
		{"NULL child", func(m *sk.Mem, nodes []uint64, mt uint64) {
			root := nodes[len(nodes)-1]
			m.U64(root+8+9*8+8, 0)
		}, ErrCorrupt, "NULL node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, m, mt := mapleProgram(t)
			nodes := m.MapleTree(mt, vmaRanges(60), sk.MapleOpts{LeafSlots: 4})
			tc.mod(m, nodes, mt)
			_, err := walkMaple(t, p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), fmt.Sprintf("maple tree at %#x", mt)) {
				t.Errorf("error %q lacks %q or the tree's address", err, tc.msg)
			}
		})
	}
}

func readU64(m *sk.Mem, a uint64) (uint64, error) {
	var b [8]byte
	_, err := m.ReadVirt(b[:], a)
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56, err
}
