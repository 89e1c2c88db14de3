package bpfrun

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/objects"
)

// MapChange is a map entry the runs changed: its key, and its value
// before (nil: the entry did not exist) and after (nil: deleted). A
// per-CPU map's value is every possible CPU's, each rounded up to 8
// bytes, as BPF_MAP_LOOKUP_ELEM returns it to user space.
type MapChange struct {
	MapID   uint32    `json:"map_id"`
	MapName string    `json:"map_name"`
	MapType string    `json:"map_type"`
	Key     HexBytes  `json:"key"`
	Before  *HexBytes `json:"before"`
	After   *HexBytes `json:"after"`
}

// mapState is a map's entries: keys in walk order, values by key.
type mapState struct {
	keys []string
	vals map[string][]byte
}

// walkable says the map's entries are keys and values MapChanges
// compares.
func (mi *mapInfo) walkable() bool {
	switch mi.typ {
	case bpf.MapTypeHash, bpf.MapTypePerCPUHash, bpf.MapTypeLRUHash, bpf.MapTypeLRUPerCPUHash,
		bpf.MapTypeArray, bpf.MapTypePerCPUArray, bpf.MapTypeLPMTrie:
		return true
	}
	return false
}

// entries walks the map at addr in memory p with the bpf package's
// walkers.
func entries(p *objects.Program, addr uint64) (*mapState, error) {
	v, err := p.ObjectOf("struct bpf_map", addr)
	if err != nil {
		return nil, err
	}
	m, err := bpf.NewMap(v)
	if err != nil {
		return nil, err
	}
	st := &mapState{vals: map[string][]byte{}}
	for e, err := range m.EntriesIn(bpf.OrderKernel) {
		if err != nil {
			return nil, err
		}
		if e.Err != nil {
			return nil, fmt.Errorf("map %d: key % x: %w", m.ID, e.Key, e.Err)
		}
		k := string(e.Key)
		var val []byte
		if e.PerCPU != nil {
			for _, pv := range e.PerCPU {
				val = append(val, pv...)
				val = append(val, make([]byte, (8-len(pv)%8)%8)...)
			}
		} else {
			val = bytes.Clone(e.Value)
		}
		if _, dup := st.vals[k]; !dup {
			st.keys = append(st.keys, k)
		}
		st.vals[k] = val
	}
	return st, nil
}

// ErrMapChangesUnknown marks MapChanges's error when a program run has
// maps that cannot be read: what it changed there is unknown.
var ErrMapChangesUnknown = errors.New("map changes unknown")

// MapChanges compares every map the session's runs used with the dump:
// the bpf package's walkers over the dump and over the session's View.
// Maps that are not keys and values (ring buffers, perf event arrays,
// prog_arrays) are not compared; their outputs are Result.Outputs.
func (s *Session) MapChanges() ([]MapChange, error) {
	changes := s.m.Changes()
	if len(changes) == 0 && !s.grewAny {
		return nil, nil
	}
	var infos []*mapInfo
	for a := range s.used {
		mi, err := s.mapAt(a)
		if err != nil {
			return nil, err
		}
		if mi.walkable() {
			infos = append(infos, mi)
		}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].model.ID < infos[j].model.ID })
	var out []MapChange
	var errs []error
	for _, mi := range infos {
		if mi.typ == bpf.MapTypeArray && !s.grewAny && !overlaps(changes, mi.arrBase, mi.arrBase+uint64(mi.max)*mi.arrElem) {
			continue
		}
		before, err := s.before(mi)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		after, err := entries(s.View(), mi.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s after the runs: %w", mi, err))
			continue
		}
		mk := func(k string, b, a []byte, hasB, hasA bool) MapChange {
			c := MapChange{MapID: mi.model.ID, MapName: mi.model.Name, MapType: mi.model.TypeName, Key: HexBytes(k)}
			if hasB {
				h := HexBytes(b)
				c.Before = &h
			}
			if hasA {
				h := HexBytes(a)
				c.After = &h
			}
			return c
		}
		for _, k := range after.keys {
			b, had := before.vals[k]
			a := after.vals[k]
			if !had || !bytes.Equal(a, b) {
				out = append(out, mk(k, b, a, had, true))
			}
		}
		for _, k := range before.keys {
			if _, ok := after.vals[k]; !ok {
				out = append(out, mk(k, before.vals[k], nil, true, false))
			}
		}
	}
	// A program whose used maps cannot be read (their array on a page
	// the dump lacks) may have changed maps MapChanges does not know.
	for _, err := range s.mapErrs {
		errs = append(errs, fmt.Errorf("%w: a program's maps cannot be read: %w", ErrMapChangesUnknown, err))
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("map changes: %w", errors.Join(errs...))
	}
	return out, nil
}

// before is the map's entries in the dump, read once per session.
func (s *Session) before(mi *mapInfo) (*mapState, error) {
	if mi.dump == nil {
		st, err := entries(s.r.prog, mi.addr)
		if err != nil {
			return nil, fmt.Errorf("%s in the dump: %w", mi, err)
		}
		mi.dump = st
	}
	return mi.dump, nil
}

func overlaps(changes []bpfvm.Change, lo, hi uint64) bool {
	for _, c := range changes {
		if c.Addr < hi && c.Addr+uint64(len(c.After)) > lo {
			return true
		}
	}
	return false
}
