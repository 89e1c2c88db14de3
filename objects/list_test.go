package objects

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/synthkernel"
)

// buildList links items at addrs into a list headed at head (item.node at +8).
func buildList(m *synthkernel.Mem, head uint64, addrs []uint64) {
	nodes := []uint64{head}
	for i, a := range addrs {
		writeItem(m, a, int32(i+1), "it")
		nodes = append(nodes, a+8)
	}
	for i, n := range nodes {
		m.U64(n, nodes[(i+1)%len(nodes)])
		m.U64(n+8, nodes[(i+len(nodes)-1)%len(nodes)])
	}
}

func TestListForEachEntry(t *testing.T) {
	p, m, syms := synthProgram(t)
	syms["head"] = 0x1000
	addrs := []uint64{0x2000, 0x3000, 0x2100, 0x5008}
	buildList(m, 0x1000, addrs)
	head, err := p.Variable("head")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for it, err := range ListForEachEntry(head, "struct item", "node") {
		if err != nil {
			t.Fatal(err)
		}
		id, err := it.Path("id")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := id.Int()
		ids = append(ids, n)
		if a, _ := it.Address(); a != addrs[len(ids)-1] {
			t.Errorf("entry %d at %#x, want %#x", len(ids), a, addrs[len(ids)-1])
		}
	}
	if len(ids) != 4 || ids[3] != 4 {
		t.Errorf("ids %v", ids)
	}
	if empty, err := ListEmpty(head); err != nil || empty {
		t.Errorf("ListEmpty = %v, %v", empty, err)
	}
}

// TestListCorrupt breaks the list head, 0x2008, 0x3008, 0x4008 and
// checks what the walk yields: the nodes (by address) and each *Damage
// (as "D" and the link's address) in order, the rest recovered by the
// backward walk.
func TestListCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(m *synthkernel.Mem)
		want   string
		msg    string // in the first damage's text
	}{
		// 0x3008.next → 0x2008 and 0x2008.prev → 0x3008: the head's link
		// to 0x2008 is not pointed back at, and walking back from the
		// head stops at 0x4008, whose prev 0x3008 does not point at it.
		{"cycle", func(m *synthkernel.Mem) { m.U64(0x3008, 0x2008); m.U64(0x2008+8, 0x3008) },
			"D0x1000 0x4008 D0x4008", "its prev 0x3008"},
		{"cycle, prevs consistent", func(m *synthkernel.Mem) { m.U64(0x3008, 0x2008) },
			"0x2008 0x3008 D0x3008 0x4008", "0x2008, seen before (a cycle)"},
		{"null next", func(m *synthkernel.Mem) { m.U64(0x3008, 0) },
			"0x2008 0x3008 D0x3008 0x4008", "found NULL"},
		// 0x3008's prev is garbage: the forward walk cannot trust 0x3008,
		// the backward walk reaches it from 0x4008 and stops there.
		{"bad prev", func(m *synthkernel.Mem) { m.U64(0x3008+8, 0xdead) },
			"0x2008 D0x2008 0x3008 0x4008", "its prev 0xdead"},
		{"fault", func(m *synthkernel.Mem) { m.U64(0x3008, 0x9990008) },
			"0x2008 0x3008 D0x3008 0x4008", "found 0x9990008"},
		{"both directions", func(m *synthkernel.Mem) { m.U64(0x2008, 0x9990008); m.U64(0x4008+8, 0x9990008) },
			"0x2008 D0x2008 0x4008 D0x4008", "walked the list backward from its head: 1 more nodes (the nodes between the two breaks are lost)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, m, syms := synthProgram(t)
			syms["head"] = 0x1000
			buildList(m, 0x1000, []uint64{0x2000, 0x3000, 0x4000})
			tc.break_(m)
			head, _ := p.Variable("head")
			var got []string
			var first error
			for v, err := range ListForEach(head) {
				if len(got) > 100 {
					t.Fatal("no end")
				}
				if err != nil {
					d := AsDamage(err)
					if d == nil {
						t.Fatalf("error %v, want a *Damage", err)
					}
					if !errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), "not mapped") && !strings.Contains(err.Error(), "0x999") {
						t.Errorf("damage %v has no cause", err)
					}
					if first == nil {
						first = err
					}
					got = append(got, fmt.Sprintf("D%#x", uint64(d.Addr)))
					continue
				}
				a, _ := v.Address()
				got = append(got, fmt.Sprintf("%#x", a))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("walk %s, want %s", g, tc.want)
			}
			if first == nil || !strings.Contains(first.Error(), tc.msg) {
				t.Errorf("damage %v, want it to say %q", first, tc.msg)
			}
		})
	}
}

func TestListLimit(t *testing.T) {
	p, m, syms := synthProgram(t)
	syms["head"] = 0x1000
	var addrs []uint64
	for i := range 1500 {
		addrs = append(addrs, 0x100000+uint64(i)*0x100)
	}
	buildList(m, 0x1000, addrs)
	head, _ := p.Variable("head")
	var got error
	for _, err := range ListForEach(head) {
		if err != nil {
			got = err
		}
	}
	if !errors.Is(got, ErrLimit) {
		t.Errorf("err %v, want ErrLimit", got)
	}
}

func TestHlistForEachEntry(t *testing.T) {
	p, m, syms := synthProgram(t)
	syms["hhead"] = 0x1000
	// items at 0x2000, 0x3000; hn at +56.
	writeItem(m, 0x2000, 1, "a")
	writeItem(m, 0x3000, 2, "b")
	m.U64(0x1000, 0x2000+56)
	m.U64(0x2000+56, 0x3000+56)
	m.U64(0x2000+64, 0x1000)
	m.U64(0x3000+56, 0)
	m.U64(0x3000+64, 0x2000+56)
	h, _ := p.Variable("hhead")
	var names []string
	for it, err := range HlistForEachEntry(h, "struct item", "hn") {
		if err != nil {
			t.Fatal(err)
		}
		n, _ := it.Member("name")
		s, _ := n.CString()
		names = append(names, s)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("names %v", names)
	}
	m.U64(0x3000+56, 0x2000+56) // cycle
	m.U64(0x2000+64, 0x3000+56)
	var got error
	for _, err := range HlistForEach(h) {
		got = err
	}
	if !errors.Is(got, ErrCorrupt) {
		t.Errorf("cyclic hlist: %v", got)
	}
}
