package bpfrun

import (
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpfvm"
)

// mapOf decodes the map a helper was given and marks it used.
func (s *Session) mapOf(addr uint64, what string) (*mapInfo, error) {
	if addr == 0 {
		return nil, fmt.Errorf("%s of a NULL map", what)
	}
	mi, err := s.mapAt(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.useMap(addr)
	return mi, nil
}

// mapHelpers are the Go implementations of the map operations, by the
// kernel function's name: what the verifier calls directly (the ops of
// the map, fixup_bpf_calls) or from an inlined lookup.
func (s *Session) mapHelpers() map[string]bpfvm.HelperFunc {
	lookup := func(f func(m, k uint64) (uint64, error)) bpfvm.HelperFunc {
		return func(_ *bpfvm.Machine, a [5]uint64) (uint64, error) { return f(a[0], a[1]) }
	}
	update := func(f func(m, k, v, fl uint64) (uint64, error)) bpfvm.HelperFunc {
		return func(_ *bpfvm.Machine, a [5]uint64) (uint64, error) { return f(a[0], a[1], a[2], a[3]) }
	}
	h := map[string]bpfvm.HelperFunc{
		"__htab_map_lookup_elem":          lookup(s.htabElemLookup),
		"htab_map_lookup_elem":            lookup(s.htabLookup),
		"htab_lru_map_lookup_elem":        lookup(s.htabLookup),
		"htab_percpu_map_lookup_elem":     lookup(s.htabLookup),
		"htab_lru_percpu_map_lookup_elem": lookup(s.htabLookup),
		"htab_map_update_elem":            update(s.htabUpdate),
		"htab_lru_map_update_elem":        update(s.htabUpdate),
		"htab_percpu_map_update_elem":     update(s.htabUpdate),
		"htab_lru_percpu_map_update_elem": update(s.htabUpdate),
		"htab_map_delete_elem":            lookup(s.htabDelete),
		"htab_lru_map_delete_elem":        lookup(s.htabDelete),
		"htab_of_map_lookup_elem":         lookup(s.innerMap(s.htabLookup)),
		"array_map_lookup_elem":           lookup(s.arrayLookup),
		"percpu_array_map_lookup_elem":    lookup(s.arrayLookup),
		"array_map_update_elem":           update(s.arrayUpdate),
		"array_map_delete_elem":           lookup(s.arrayDelete),
		"array_of_map_lookup_elem":        lookup(s.innerMap(s.arrayLookupAny)),
		"trie_lookup_elem":                lookup(s.trieLookup),
		"trie_update_elem":                update(s.trieUpdate),
		"trie_delete_elem":                lookup(s.trieDelete),
	}
	return h
}

// arrayLookupAny is array_map_lookup_elem for an array of maps (whose
// type is not an array's).
func (s *Session) arrayLookupAny(mapAddr, keyAddr uint64) (uint64, error) {
	mi, err := s.mapOf(mapAddr, "array_of_map_lookup_elem")
	if err != nil {
		return 0, err
	}
	i, err := s.arrayIndex(keyAddr)
	if err != nil || i >= mi.max {
		return 0, err
	}
	return mi.arrBase + uint64(uint64(i)&mi.arrMask)*mi.arrElem, nil
}

// innerMap is the lookup of a map of maps: the inner map's address held
// in the value slot.
func (s *Session) innerMap(f func(m, k uint64) (uint64, error)) func(m, k uint64) (uint64, error) {
	return func(m, k uint64) (uint64, error) {
		v, err := f(m, k)
		if err != nil || v == 0 {
			return 0, err
		}
		return s.u64(v)
	}
}

// generic is bpf_map_lookup_elem and its kin as the kernel runs them when
// the verifier left the helper call: through the map's ops.
func (s *Session) generic(name string, op func(*mapInfo) string, h map[string]bpfvm.HelperFunc) bpfvm.HelperFunc {
	return func(m *bpfvm.Machine, a [5]uint64) (uint64, error) {
		mi, err := s.mapOf(a[0], name)
		if err != nil {
			return 0, err
		}
		fn := op(mi)
		impl, ok := h[fn]
		if !ok {
			if fn == "" {
				fn = "(none)"
			}
			return 0, fmt.Errorf("%s of %s: its operation %s has no implementation", name, mi, fn)
		}
		return impl(m, a)
	}
}

// registry is the session's helpers: bpfvm's standard ones, the map
// operations, the packet helpers and the output helpers with the
// kernel's checks.
func (s *Session) registry() *bpfvm.Registry {
	reg := bpfvm.StandardHelpers().Clone()
	h := s.mapHelpers()
	for n, f := range h {
		reg.Register(n, f)
	}
	reg.Register("bpf_map_lookup_elem", s.generic("bpf_map_lookup_elem", func(mi *mapInfo) string { return mi.opsLookup }, h))
	reg.Register("bpf_map_update_elem", s.generic("bpf_map_update_elem", func(mi *mapInfo) string { return mi.opsUpdate }, h))
	reg.Register("bpf_map_delete_elem", s.generic("bpf_map_delete_elem", func(mi *mapInfo) string { return mi.opsDelete }, h))
	for n, f := range s.packetHelpers() {
		reg.Register(n, f)
	}
	for n, f := range s.outputHelpers() {
		reg.Register(n, f)
	}
	return reg
}

// Helpers lists the kernel functions a session implements, sorted.
func (r *Replayer) Helpers() []string {
	s := &Session{r: r}
	names := s.registry().Names()
	sort.Strings(names)
	return names
}
