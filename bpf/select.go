package bpf

import (
	"encoding/hex"
	"fmt"

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
	return out, nil
}
