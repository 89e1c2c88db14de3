package bpfrun

import (
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// TestLabHashBuckets: every element of every hash map of the lab's dumps
// is where htab_map_hash puts its key (the kernel's jhash2 of the key
// with the map's hashrnd, stored in the element's hash), as the replay's
// lookups and inserts assume.
func TestLabHashBuckets(t *testing.T) {
	for name, k := range labkernel.All(t, "elf") {
		t.Run(name, func(t *testing.T) {
			r := FromKernel(k)
			s, err := r.NewSession(Options{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m, err := range bpf.MapForEach(k.Program()) {
				if err != nil {
					t.Fatal(err)
				}
				if m.MaxEntries > 4096 {
					continue // ki_big_hash of the scale scenario: a million elements
				}
				a, _ := m.Obj.Address()
				mi, err := s.mapAt(a)
				if err != nil || !mi.hash() {
					continue
				}
				for e, err := range m.EntriesIn(bpf.OrderKernel) {
					if err != nil {
						t.Fatal(err)
					}
					el, _, err := s.htabFind(mi, e.Key)
					if err != nil || el == 0 {
						t.Errorf("map %d %s: key % x not found in its bucket: %v", m.ID, m.Name, e.Key, err)
					}
					n++
				}
			}
			if n == 0 {
				t.Error("no hash map element")
			}
		})
	}
}
