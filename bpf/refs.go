package bpf

import (
	"fmt"
	"path"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// What bpftool's "show -f" and "--pids" add to an object: its pinned
// paths (common.c build_pinned_obj_table) and the processes holding an
// fd to it (pids.c), and the "pinned PATH" selector
// (open_obj_pinned_any).

// Pins are the pinned paths of the objects of one kind.
type Pins struct {
	m idHashmap
	// Errs are the pins that could not be read (left out).
	Errs []error
}

// PinsOf walks the bpffs mounts for the pins of kind typ, as
// build_pinned_obj_table does.
func PinsOf(p *objects.Program, typ ObjType) *Pins {
	t := &Pins{}
	for pin, err := range PinForEach(p) {
		if err != nil {
			t.Errs = append(t.Errs, err)
			continue
		}
		if pin.Type == typ {
			t.m.add(pin.ID, pin.Path)
		}
	}
	return t
}

// Paths returns object id's pinned paths in the order bpftool prints
// them (its hashmap's).
func (t *Pins) Paths(id uint32) []string {
	if t == nil {
		return nil
	}
	return t.m.get(id)
}

// Len is the number of pins (bpftool prints "pinned": [] for every object
// when any object of the kind is pinned).
func (t *Pins) Len() int {
	if t == nil {
		return 0
	}
	return t.m.size
}

// idHashmap is libbpf's hashmap (tools/lib/bpf/hashmap.c) as bpftool
// keys it by object ID (hash_fn_for_key_as_id) and fills it with
// hashmap__append: the order in which hashmap__for_each_key_entry gives
// the entries of one ID depends on every insertion and resize before,
// so the insertions are replayed to list paths in bpftool's order.
type idHashmap struct {
	buckets []*idEntry
	capBits uint
	size    int
}

type idEntry struct {
	key   uint32
	value string
	next  *idEntry
}

// hashBits is libbpf's hash_bits on LP64.
func hashBits(h uint64, bits uint) uint64 {
	if bits == 0 {
		return 0
	}
	return (h * 11400714819323198485) >> (64 - bits)
}

// add is hashmap__append: grow when empty or over 75% full (rehashing
// bucket by bucket, each entry pushed at the head of its new bucket),
// then push the entry at the head of its bucket.
func (m *idHashmap) add(key uint32, value string) {
	if len(m.buckets) == 0 || (m.size+1)*4/3 > len(m.buckets) {
		bits := max(m.capBits+1, 2)
		nb := make([]*idEntry, 1<<bits)
		for _, e := range m.buckets {
			for e != nil {
				next := e.next
				h := hashBits(uint64(e.key), bits)
				e.next, nb[h] = nb[h], e
				e = next
			}
		}
		m.buckets, m.capBits = nb, bits
	}
	h := hashBits(uint64(key), m.capBits)
	m.buckets[h] = &idEntry{key: key, value: value, next: m.buckets[h]}
	m.size++
}

// get is hashmap__for_each_key_entry: the values of key in bucket order.
func (m *idHashmap) get(key uint32) []string {
	if m == nil || len(m.buckets) == 0 {
		return nil
	}
	var out []string
	for e := m.buckets[hashBits(uint64(key), m.capBits)]; e != nil; e = e.next {
		if e.key == key {
			out = append(out, e.value)
		}
	}
	return out
}

// Holder is a process holding an fd to an object: its thread group ID
// and its leader's comm.
type Holder struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// ObjHolders are an object's holders, in pid_iter's order, with a
// perf_event link's cookie.
type ObjHolders struct {
	Holders   []Holder
	Cookie    uint64
	HasCookie bool
}

// Holders are the holders of each object of one kind.
type Holders struct {
	m map[uint32]*ObjHolders
	// Errs are the fds that could not be read (left out).
	Errs []error
}

// HoldersOf walks every task's fds for objects of kind typ, as bpftool's
// build_obj_refs_table reads pid_iter's records and add_ref keeps them:
// one entry per process and object, in the order met, the first record's
// cookie.
func HoldersOf(p *objects.Program, typ ObjType) *Holders {
	t := &Holders{m: map[uint32]*ObjHolders{}}
	for f, err := range FileForEach(p) {
		if err != nil {
			t.Errs = append(t.Errs, err)
			continue
		}
		if f.Type != typ {
			continue
		}
		r := t.m[f.ID]
		if r == nil {
			r = &ObjHolders{Cookie: f.Cookie, HasCookie: f.HasCookie}
			t.m[f.ID] = r
		}
		dup := false
		for _, x := range r.Holders {
			dup = dup || x.PID == f.PID
		}
		if !dup {
			r.Holders = append(r.Holders, Holder{PID: f.PID, Comm: f.Comm})
		}
	}
	return t
}

// Of returns object id's holders (nil when none, or t is nil).
func (t *Holders) Of(id uint32) *ObjHolders {
	if t == nil {
		return nil
	}
	return t.m[id]
}

// FindPinned returns the ID of the object of kind typ pinned at p, as
// bpftool's "pinned PATH" opens it (open_obj_pinned_any), with its
// errors: p must name a pinned file of a bpffs mount exactly, as an
// absolute path (symbolic links are not followed; a dump has no working
// directory). Errors wrap objects.ErrNotFound.
func FindPinned(prog *objects.Program, p string, typ ObjType) (uint32, error) {
	if !path.IsAbs(p) {
		return 0, fmt.Errorf("bpf obj get (%s): a dump has no working directory: give an absolute path: %w", p, objects.ErrNotFound)
	}
	clean := path.Clean(p)
	for pin, err := range PinForEach(prog) {
		if err != nil {
			return 0, fmt.Errorf("bpf obj get (%s): %w", p, err)
		}
		if pin.Path != clean {
			continue
		}
		if pin.Type != typ {
			return 0, fmt.Errorf("incorrect object type: %s", pin.Type)
		}
		return pin.ID, nil
	}
	for m, err := range FSMountForEach(prog) {
		if err != nil {
			return 0, fmt.Errorf("bpf obj get (%s): %w", p, err)
		}
		if clean == m.Path || strings.HasPrefix(clean, strings.TrimSuffix(m.Path, "/")+"/") {
			return 0, fmt.Errorf("bpf obj get (%s): no pinned object there: %w", p, objects.ErrNotFound)
		}
	}
	return 0, fmt.Errorf("bpf obj get (%s): directory not in bpf file system (bpffs): %w", p, objects.ErrNotFound)
}
