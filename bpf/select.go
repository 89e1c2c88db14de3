package bpf

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/kinspect/kinspect/objects"
)

// SelectorKind is how bpftool's PROG, MAP or LINK argument names objects.
type SelectorKind uint8

// Selector kinds.
const (
	SelectAll    SelectorKind = iota // no selector: every object
	SelectID                         // "id ID"
	SelectTag                        // "tag TAG" (programs)
	SelectName                       // "name NAME"
	SelectPinned                     // "pinned PATH"
)

// Selector is bpftool's object selector.
type Selector struct {
	Kind SelectorKind
	ID   uint32
	Tag  [8]byte
	Name string
	Path string
}

// String is the selector as bpftool's words: "id 7", "name ki_xdp".
func (s Selector) String() string {
	switch s.Kind {
	case SelectID:
		return fmt.Sprintf("id %d", s.ID)
	case SelectTag:
		return "tag " + hex.EncodeToString(s.Tag[:])
	case SelectName:
		return "name " + s.Name
	case SelectPinned:
		return "pinned " + s.Path
	}
	return "all"
}

// resolvePinned turns a pinned selector into an id selector.
func (s Selector) resolvePinned(p *objects.Program, typ ObjType) (Selector, error) {
	if s.Kind != SelectPinned {
		return s, nil
	}
	id, err := FindPinned(p, s.Path, typ)
	if err != nil {
		return s, err
	}
	return Selector{Kind: SelectID, ID: id}, nil
}

// SelectProgs returns the programs s names, in prog_idr order (several
// programs may share a tag or a name). With s selecting nothing
// (SelectAll) every program is returned; a walk that broke returns what
// it found with the error. Errors wrap objects.ErrNotFound when s names
// nothing.
func SelectProgs(p *objects.Program, s Selector) ([]*Prog, error) {
	s, err := s.resolvePinned(p, ObjProg)
	if err != nil {
		return nil, err
	}
	if s.Kind == SelectID {
		bp, err := ProgByID(p, s.ID)
		if err != nil {
			return nil, err
		}
		return []*Prog{bp}, nil
	}
	var out []*Prog
	for bp, err := range ProgForEach(p) {
		if err != nil {
			if objects.IsDamage(err) {
				continue // noted in the Program's damage log
			}
			return out, err
		}
		switch s.Kind {
		case SelectTag:
			if bp.Tag != s.Tag {
				continue
			}
		case SelectName:
			if bp.FullName() != s.Name {
				continue
			}
		}
		out = append(out, bp)
	}
	if s.Kind != SelectAll && len(out) == 0 {
		return nil, fmt.Errorf("no BPF program with %s: %w", s, objects.ErrNotFound)
	}
	// In ID order, as bpftool lists them: those a damaged prog_idr lost
	// come from bpf_kallsyms after the others.
	slices.SortStableFunc(out, func(a, b *Prog) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// MapShow is one map as bpftool's "map show" reports it: the map, its
// memory use when known, and why it could not be read entirely.
type MapShow struct {
	*Map
	// Memlock is what fdinfo reports as memlock (HasMemlock false when
	// this map type's accounting is not modelled).
	Memlock    uint64 `json:"bytes_memlock"`
	HasMemlock bool   `json:"-"`
	// Err says what of the map could not be read (Map is nil when
	// nothing could).
	Err error `json:"error,omitempty"`
}

// SelectMaps returns the maps s names (id or name; SelectAll for every
// map), in map_idr order. A map that cannot be read is returned with
// its error; a walk that breaks ends the list with an entry holding only
// the error. Errors wrap objects.ErrNotFound when s names nothing, or
// when the kernel has no map_idr.
func SelectMaps(p *objects.Program, s Selector) ([]*MapShow, error) {
	s, err := s.resolvePinned(p, ObjMap)
	if err != nil {
		return nil, err
	}
	var out []*MapShow
	for m, err := range MapForEach(p) {
		if err != nil {
			if m == nil && errors.Is(err, objects.ErrNotFound) {
				return nil, err
			}
			if m == nil && objects.IsDamage(err) {
				continue // noted in the Program's damage log
			}
			out = append(out, &MapShow{Map: m, Err: err})
			if m == nil {
				break
			}
			continue
		}
		if s.Kind == SelectID && m.ID != s.ID || s.Kind == SelectName && m.Name != s.Name {
			continue
		}
		ms := &MapShow{Map: m}
		if ml, err := m.Memlock(); err == nil {
			ms.Memlock, ms.HasMemlock = ml, true
		}
		out = append(out, ms)
	}
	if s.Kind != SelectAll && len(out) == 0 {
		return nil, fmt.Errorf("no map with %s: %w", s, objects.ErrNotFound)
	}
	return out, nil
}

// FindMap returns the first map s names (id, name or pinned path).
// Errors wrap objects.ErrNotFound.
func FindMap(p *objects.Program, s Selector) (*Map, error) {
	s, err := s.resolvePinned(p, ObjMap)
	if err != nil {
		return nil, err
	}
	if s.Kind != SelectID && s.Kind != SelectName {
		return nil, fmt.Errorf("select a map by id or name, not %s: %w", s, objects.ErrNotFound)
	}
	for m, err := range MapForEach(p) {
		if err != nil {
			if m == nil && !objects.IsDamage(err) {
				return nil, err
			}
			continue
		}
		if s.Kind == SelectID && m.ID == s.ID || s.Kind == SelectName && m.Name == s.Name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no map with %s: %w", s, objects.ErrNotFound)
}

// SelectLinks returns the links s names (SelectAll: every link, or an id
// or pinned path), in link_idr order. A walk that breaks returns what it
// found with the error. Errors wrap objects.ErrNotFound when s names
// nothing, or when the kernel has no link_idr.
func SelectLinks(p *objects.Program, s Selector) ([]*Link, error) {
	s, err := s.resolvePinned(p, ObjLink)
	if err != nil {
		return nil, err
	}
	var out []*Link
	for l, err := range LinkForEach(p) {
		if err != nil && l == nil {
			if errors.Is(err, objects.ErrNotFound) {
				return nil, err
			}
			if objects.IsDamage(err) {
				continue // noted in the Program's damage log
			}
			return out, err
		}
		if s.Kind == SelectID && l.ID != s.ID {
			continue
		}
		out = append(out, l)
	}
	if s.Kind == SelectID && len(out) == 0 {
		return nil, fmt.Errorf("no link with id %d: %w", s.ID, objects.ErrNotFound)
	}
	return out, nil
}
