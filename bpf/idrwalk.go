package bpf

import (
	"fmt"
	"iter"

	"github.com/kinspect/kinspect/objects"
)

// idrWalk yields the objects of one of the BPF IDRs (prog_idr, map_idr,
// link_idr, btf_idr), each read by read from its entry, in ID order.
//
// It degrades rather than stops: a damaged IDR node, an object that
// cannot be read at all, or one whose ID disagrees with its slot is a
// *objects.Damage (noted in the Program's damage log), and the walk goes
// on. read may return an object with an error (partly read): both are
// yielded. damaged, when given, is told the walk met damage, before the
// walk ends, so the caller can look in a second index.
func idrWalk[T any](p *objects.Program, idrName, typeName string, read func(objects.Value) (*T, error), id func(*T) uint32) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		idr, err := p.Variable(idrName)
		if err != nil {
			yield(nil, fmt.Errorf("%s: %w", idrName, err))
			return
		}
		for e, err := range objects.IDRForEachEntry(idr, typeName) {
			if err != nil {
				if d := p.DamageOf(err, idrName); d != nil {
					if !yield(nil, d) {
						return
					}
					continue
				}
				yield(nil, fmt.Errorf("%s: %w", idrName, err))
				return
			}
			obj, err := read(e.Value)
			damaged := func(expected, found string, cause error) bool {
				return yield(nil, p.NoteDamage(&objects.Damage{Walk: idrName, Addr: objects.Hex(e.Value.Addr()),
					Object: fmt.Sprintf("%s of id %d", typeName, e.Index), Expected: expected, Found: found, Err: cause}))
			}
			switch {
			case obj == nil:
				if err == nil {
					continue // not an object yet (a link being set up)
				}
				if !damaged("a readable object", "", err) {
					return
				}
			case uint64(id(obj)) != e.Index:
				if !damaged(fmt.Sprintf("id %d", e.Index), fmt.Sprintf("id %d", id(obj)), objects.ErrCorrupt) {
					return
				}
			default:
				if !yield(obj, err) {
					return
				}
			}
		}
	}
}
