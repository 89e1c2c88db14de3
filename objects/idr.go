package objects

import (
	"fmt"
	"iter"
)

// IDRForEach yields the entries of an IDR (a struct idr or pointer to
// one) in ID order, as idr_for_each_entry: the xarray idr_rt (an IDR is a
// radix tree, and a radix tree an xarray, since 4.20) with idr_base added
// to each index. Entries are (void *) constants. A damaged node is a
// *Damage, after which the walk goes on (see XArrayForEach).
func IDRForEach(idr Value) iter.Seq2[IndexedValue, error] {
	return func(yield func(IndexedValue, error) bool) {
		rt, err := idr.Member("idr_rt")
		if err != nil {
			yield(IndexedValue{}, fmt.Errorf("idr_for_each: %w", err))
			return
		}
		var base uint64
		// idr_base: 4.16+ (6ce711f27500 "idr: Make 1-based IDRs more efficient").
		if b, err := idr.Member("idr_base"); err == nil {
			if base, err = b.Uint(); err != nil {
				yield(IndexedValue{}, err)
				return
			}
		}
		for e, err := range RadixTreeForEach(rt) {
			if err != nil {
				if !yield(IndexedValue{}, err) || !IsDamage(err) {
					return
				}
				continue
			}
			e.Index += base
			if !yield(e, nil) {
				return
			}
		}
	}
}

// IDRForEachEntry yields the IDR's entries as objects of the named type
// (each entry a pointer to one), with their IDs.
func IDRForEachEntry(idr Value, typeName string) iter.Seq2[IndexedValue, error] {
	return func(yield func(IndexedValue, error) bool) {
		t, err := idr.prog.Type(typeName)
		if err != nil {
			yield(IndexedValue{}, err)
			return
		}
		for e, err := range IDRForEach(idr) {
			if err != nil {
				if !yield(IndexedValue{}, err) || !IsDamage(err) {
					return
				}
				continue
			}
			if e.IsValue {
				// An IDR of objects holds pointers only: a value entry
				// is a damaged slot.
				v, _ := e.Value.Uint()
				if !yield(IndexedValue{}, &Damage{Walk: fmt.Sprintf("idr at %#x", idr.addr), Addr: Hex(idr.addr),
					Expected: "a pointer to " + typeName + fmt.Sprintf(" at index %d", e.Index),
					Found:    fmt.Sprintf("a value entry %#x", v<<1|1), Err: ErrCorrupt}) {
					return
				}
				continue
			}
			a, _ := e.Value.Uint()
			e.Value = idr.prog.Object(t, a)
			if !yield(e, nil) {
				return
			}
		}
	}
}
