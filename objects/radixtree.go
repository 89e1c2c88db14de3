package objects

import (
	"fmt"
	"iter"
)

// RadixTreeForEach yields the entries of a radix tree (a struct
// radix_tree_root or pointer to one) in index order, as
// radix_tree_for_each_slot. Since 4.20 (f8d5d0cc145c "xarray: Add
// definition of struct xarray") struct radix_tree_root is struct xarray,
// and BTF names it so; the older radix tree (rnode) is not supported.
func RadixTreeForEach(root Value) iter.Seq2[IndexedValue, error] {
	return func(yield func(IndexedValue, error) bool) {
		if _, err := root.Member("xa_head"); err != nil {
			if _, err2 := root.Member("rnode"); err2 == nil {
				yield(IndexedValue{}, fmt.Errorf("radix_tree_for_each: a pre-4.20 radix tree (%s): %w", root.TypeName(), ErrNotSupported))
				return
			}
			yield(IndexedValue{}, fmt.Errorf("radix_tree_for_each: %w", err))
			return
		}
		for e, err := range XArrayForEach(root) {
			if !yield(e, err) || err != nil && !IsDamage(err) {
				return
			}
		}
	}
}
