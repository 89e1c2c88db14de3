package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// htabEntries walks struct bpf_htab's buckets (kernel/bpf/hashtab.c):
// each bucket an hlist_nulls of struct htab_elem, whose key follows the
// header and whose value follows the key rounded up to 8 bytes (for a
// per-CPU map the value slot holds the __percpu pointer). LRU maps use
// the same buckets. Buckets are read in chunks, elements one by one.
func (m *Map) htabEntries(yield func(*MapEntry, error) bool, order MapOrder) error {
	p := m.Obj.Program()
	h, err := m.container("struct bpf_htab")
	if err != nil {
		return err
	}
	hb, err := h.Bytes()
	if err != nil {
		return fmt.Errorf("map %d: read struct bpf_htab at %#x: %w", m.ID, h.Addr(), err)
	}
	r := p.StructFrom(h.Type(), hb)
	buckets := r.Uint("buckets")
	nBuckets := r.Uint("n_buckets")
	elemSize := r.Uint("elem_size")
	if r.Err() != nil {
		return fmt.Errorf("map %d: %w", m.ID, r.Err())
	}
	bucketSize, err := p.SizeofType("struct bucket")
	if err != nil {
		return err
	}
	headOff, _, err := p.MemberOffset("struct bucket", "head.first")
	if err != nil {
		return err
	}
	nextOff, _, err := p.MemberOffset("struct htab_elem", "hash_node.next")
	if err != nil {
		return err
	}
	keyOff, _, err := p.MemberOffset("struct htab_elem", "key")
	if err != nil {
		return err
	}
	valOff := keyOff + (uint64(m.KeySize)+7)&^7
	percpu := m.IsPerCPU()
	want := valOff + uint64(m.ValueSize)
	if percpu {
		want = valOff + 8
	}
	if elemSize < want || elemSize > 1<<20 {
		return fmt.Errorf("map %d: htab at %#x: elem_size %d, want at least %d: %w", m.ID, h.Addr(), elemSize, want, objects.ErrCorrupt)
	}
	// n_buckets is roundup_pow_of_two(max_entries), at most 2^31.
	if nBuckets == 0 || nBuckets&(nBuckets-1) != 0 || nBuckets > 2*uint64(max(m.MaxEntries, 1)) || nBuckets > 1<<31 {
		return fmt.Errorf("map %d: htab at %#x: n_buckets %d for max_entries %d: %w", m.ID, h.Addr(), nBuckets, m.MaxEntries, objects.ErrCorrupt)
	}
	var offs []uint64
	if percpu {
		if offs, err = p.PerCPUOffsets(); err != nil {
			return err
		}
	}
	if order != OrderKernel && m.Flags&bpfFNoPrealloc == 0 {
		elems := r.Uint("elems")
		nElems := uint64(m.MaxEntries)
		lru := m.Type == MapTypeLRUHash || m.Type == MapTypeLRUPerCPUHash
		if !percpu && !lru {
			// htab_has_extra_elems: one spare element per possible CPU.
			cpus, err := p.PossibleCPUs()
			if err != nil {
				return err
			}
			nElems += uint64(len(cpus))
		}
		if r.Err() == nil && elems != 0 && (order == OrderMemory || nElems*elemSize > OrderMemoryThreshold) {
			l := htabLayout{buckets: buckets, nBuckets: nBuckets, bucketSize: bucketSize, headOff: headOff,
				elems: elems, nElems: nElems, elemSize: elemSize, nextOff: nextOff, keyOff: keyOff, valOff: valOff}
			return m.htabScan(yield, l, offs)
		}
	}
	// At most max_entries plus one spare element per CPU are linked at a
	// time (extra_elems); anything longer is a cycle or garbage.
	maxElems := uint64(m.MaxEntries) + 8192
	limit := min(maxElems, uint64(p.Limit()))
	const chunk = 4096
	bbuf := make([]byte, chunk*bucketSize)
	ebuf := make([]byte, elemSize)
	e := &MapEntry{}
	var n uint64
	for b0 := uint64(0); b0 < nBuckets; b0 += chunk {
		cnt := min(chunk, nBuckets-b0)
		bb := bbuf[:cnt*bucketSize]
		if err := p.Read(bb, buckets+b0*bucketSize); err != nil {
			return fmt.Errorf("map %d: read buckets %d-%d at %#x: %w", m.ID, b0, b0+cnt-1, buckets+b0*bucketSize, err)
		}
		for i := uint64(0); i < cnt; i++ {
			node := binary.LittleEndian.Uint64(bb[i*bucketSize+headOff:])
			for chain := uint64(0); node&1 == 0; chain++ {
				if node == 0 {
					return fmt.Errorf("map %d: bucket %d: NULL in the chain: %w", m.ID, b0+i, objects.ErrCorrupt)
				}
				n++
				if n > limit {
					if limit < maxElems {
						return fmt.Errorf("map %d: more than %d elements: %w", m.ID, limit, objects.ErrLimit)
					}
					return fmt.Errorf("map %d: bucket %d: more than %d elements in all (a cycle?): %w", m.ID, b0+i, maxElems, objects.ErrCorrupt)
				}
				elem := node - nextOff
				if err := p.Read(ebuf, elem); err != nil {
					return fmt.Errorf("map %d: bucket %d: read element at %#x: %w", m.ID, b0+i, elem, err)
				}
				e.Key = ebuf[keyOff : keyOff+uint64(m.KeySize)]
				e.Err = nil
				e.Addr = elem + valOff
				if percpu {
					e.Value = nil
					m.readPerCPU(e, binary.LittleEndian.Uint64(ebuf[valOff:]), offs)
				} else {
					e.Value = ebuf[valOff : valOff+uint64(m.ValueSize)]
				}
				if !yield(e, nil) {
					return nil
				}
				node = binary.LittleEndian.Uint64(ebuf[nextOff:])
			}
		}
	}
	return nil
}

// htabLayout is where a hash map's parts are.
type htabLayout struct {
	buckets, nBuckets, bucketSize, headOff uint64
	elems, nElems, elemSize                uint64
	nextOff, keyOff, valOff                uint64
}

// htabScan reads a preallocated hash map's element array (htab->elems,
// prealloc_init) in address order, a chunk at a time, and yields the
// elements linked into a bucket. An element's hash_node.pprev tells: a
// linked one points at its bucket's head or at the next pointer of the
// element before it; a free one holds, in the same word, its freelist
// link (another element's fnode, 8 bytes in) or NULL, and an unlinked
// one LIST_POISON2. Where the kernel counts elements (bpf_map.elem_count,
// 6.6+ and stable backports) the total is checked against the count.
func (m *Map) htabScan(yield func(*MapEntry, error) bool, l htabLayout, offs []uint64) error {
	p := m.Obj.Program()
	pprevOff, _, err := p.MemberOffset("struct htab_elem", "hash_node.pprev")
	if err != nil {
		return err
	}
	if l.nElems > uint64(p.Limit()) {
		return fmt.Errorf("map %d: %d elements: more than %d: %w", m.ID, l.nElems, p.Limit(), objects.ErrLimit)
	}
	bucketsEnd := l.buckets + l.nBuckets*l.bucketSize
	elemsEnd := l.elems + l.nElems*l.elemSize
	linked := func(pprev uint64) bool {
		switch {
		case pprev >= l.buckets && pprev < bucketsEnd:
			return (pprev-l.buckets)%l.bucketSize == l.headOff
		case pprev >= l.elems && pprev < elemsEnd:
			return (pprev-l.elems)%l.elemSize == l.nextOff
		}
		return false
	}
	per := max(1, (1<<20)/l.elemSize)
	buf := make([]byte, per*l.elemSize)
	e := &MapEntry{}
	percpu := offs != nil
	var n uint64
	for i0 := uint64(0); i0 < l.nElems; i0 += per {
		cnt := min(per, l.nElems-i0)
		chunk := buf[:cnt*l.elemSize]
		at := l.elems + i0*l.elemSize
		if err := p.Read(chunk, at); err != nil {
			return fmt.Errorf("map %d: read elements %d-%d at %#x: %w", m.ID, i0, i0+cnt-1, at, err)
		}
		for i := uint64(0); i < cnt; i++ {
			el := chunk[i*l.elemSize : (i+1)*l.elemSize]
			if !linked(binary.LittleEndian.Uint64(el[pprevOff:])) {
				continue
			}
			n++
			e.Key = el[l.keyOff : l.keyOff+uint64(m.KeySize)]
			e.Err = nil
			e.Addr = at + i*l.elemSize + l.valOff
			if percpu {
				e.Value = nil
				m.readPerCPU(e, binary.LittleEndian.Uint64(el[l.valOff:]), offs)
			} else {
				e.Value = el[l.valOff : l.valOff+uint64(m.ValueSize)]
			}
			if !yield(e, nil) {
				return nil
			}
		}
	}
	if want, ok := m.elemCount(); ok && want != n {
		return fmt.Errorf("map %d: found %d linked elements in the element array at %#x, but the kernel counts %d: %w", m.ID, n, l.elems, want, objects.ErrCorrupt)
	}
	return nil
}

// elemCount sums bpf_map.elem_count, the per-CPU element count (6.6+,
// 25954730461a "bpf: make preloaded map iterators to display map
// elements count"); false when the kernel has none.
func (m *Map) elemCount() (uint64, bool) {
	p := m.Obj.Program()
	ec, err := m.Obj.Member("elem_count")
	if err != nil {
		return 0, false
	}
	if a, err := ec.Uint(); err != nil || a == 0 {
		return 0, false
	}
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return 0, false
	}
	var sum int64
	for _, c := range cpus {
		v, err := p.PerCPU(ec, c)
		if err != nil {
			return 0, false
		}
		x, err := v.Int()
		if err != nil {
			return 0, false
		}
		sum += x
	}
	return uint64(max(sum, 0)), true
}
