package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/objects"
)

// BPFMapEntry is one element of a BPF map as the kernel would return it
// to user space (bpf_map_lookup_elem): key and value bytes, or a value per
// possible CPU. For a ring buffer an entry is a pending record, for a
// queue or stack an element (no key), for a perf event array a slot with
// its event.
type BPFMapEntry struct {
	Key []byte
	// Value is the value (nil for a per-CPU map, or when Err is set).
	Value []byte
	// PerCPU holds a per-CPU map's value on each possible CPU, in
	// possible-CPU order (bpftool's "cpu" index).
	PerCPU [][]byte
	// Err is why the value could not be read (the key is known): a page
	// missing from the dump, a NULL pointer.
	Err error
	// Event is a perf_event_array slot's event.
	Event *BPFPerfEvent
	// Record is a ring buffer's record.
	Record *BPFRingBufRecord
}

// BPFPerfEvent is the perf event in a perf_event_array slot (struct
// bpf_event_entry), with the records pending in its ring buffer.
type BPFPerfEvent struct {
	Addr   uint64 // struct perf_event
	CPU    int
	Type   uint32 // attr.type (PERF_TYPE_SOFTWARE: 1)
	Config uint64 // attr.config (PERF_COUNT_SW_BPF_OUTPUT: 10)
	// DataHead and DataTail are the ring buffer's positions
	// (perf_event_mmap_page); Records are the records between them.
	DataHead, DataTail uint64
	Records            []PerfRecord
	// RecordsErr says why the records could not be read.
	RecordsErr error
}

// PerfRecord is a record of a perf ring buffer: its header and, for a
// PERF_RECORD_SAMPLE of a BPF output event, the raw sample.
type PerfRecord struct {
	Type uint32
	Misc uint16
	Size uint16
	Raw  []byte
}

// BPFRingBufRecord is a record of a BPF ring buffer (struct
// bpf_ringbuf_hdr and its sample).
type BPFRingBufRecord struct {
	Pos     uint64 // logical position of the header
	Len     uint32 // sample length, busy and discard bits removed
	PgOff   uint32
	Busy    bool // BPF_RINGBUF_BUSY_BIT: reserved, not yet committed
	Discard bool // BPF_RINGBUF_DISCARD_BIT: discarded
}

// Ring buffer record header bits (include/uapi/linux/bpf.h).
const (
	ringbufBusyBit    = 1 << 31
	ringbufDiscardBit = 1 << 30
	ringbufHdrSize    = 8
)

// BPFRingBuf is a ring buffer map's state (struct bpf_ringbuf).
type BPFRingBuf struct {
	Addr        uint64 // struct bpf_ringbuf
	Size        uint64 // data size: mask + 1
	ConsumerPos uint64
	ProducerPos uint64
	// PendingPos is the oldest uncommitted record's position (6.8+,
	// 56d2c28a1b4c "bpf: Add bpf_ringbuf_reserve/commit ... pending_pos").
	PendingPos    uint64
	HasPendingPos bool
	data          uint64
}

// Entries yields the map's elements in the order bpftool's "map dump"
// shows them (the kernel's get_next_key order): arrays by index, hash
// maps bucket by bucket, an LPM trie in post-order, a stack trace map by
// stack id; a queue or stack in pop order, a ring buffer's pending
// records oldest first. The yielded entry and its slices are reused:
// copy what you keep. Walks are bounded by the map's max_entries (and
// the Program's limit); a corrupt structure ends the walk with an error
// naming the address. Errors wrap ErrNotSupported for a map type this
// does not walk.
func (m *BPFMap) Entries() iter.Seq2[*BPFMapEntry, error] { return m.EntriesIn(OrderAuto) }

// BPFMapOrder chooses the order of a hash map's elements.
type BPFMapOrder int

const (
	// OrderAuto is OrderKernel, except for a preallocated hash map
	// whose elements span more than OrderMemoryThreshold bytes: then
	// OrderMemory, which reads them sequentially.
	OrderAuto BPFMapOrder = iota
	// OrderKernel is bpftool's order (get_next_key's).
	OrderKernel
	// OrderMemory is the order of a preallocated hash map's element
	// array: each page read once, no random access. Other maps ignore it.
	OrderMemory
)

// OrderMemoryThreshold is the size of a preallocated hash map's element
// array above which OrderAuto reads it in memory order.
const OrderMemoryThreshold = 4 << 20

// EntriesIn is Entries in the given order.
func (m *BPFMap) EntriesIn(order BPFMapOrder) iter.Seq2[*BPFMapEntry, error] {
	return func(yield func(*BPFMapEntry, error) bool) {
		var err error
		switch m.Type {
		case BPFMapTypeHash, BPFMapTypePerCPUHash, BPFMapTypeLRUHash, BPFMapTypeLRUPerCPUHash:
			err = m.htabEntries(yield, order)
		case BPFMapTypeArray, BPFMapTypePerCPUArray:
			err = m.arrayEntries(yield)
		case BPFMapTypeProgArray, BPFMapTypePerfEventArray:
			err = m.fdArrayEntries(yield)
		case BPFMapTypeLPMTrie:
			err = m.lpmEntries(yield)
		case BPFMapTypeStackTrace:
			err = m.stackTraceEntries(yield)
		case BPFMapTypeQueue, BPFMapTypeStack:
			err = m.queueStackEntries(yield)
		case BPFMapTypeRingBuf:
			err = m.ringbufEntries(yield)
		case BPFMapTypeStructOps:
			err = m.structOpsEntries(yield)
		default:
			err = fmt.Errorf("dump of map %d: %s maps: %w", m.ID, m.TypeName, objects.ErrNotSupported)
		}
		if err != nil {
			yield(nil, err)
		}
	}
}

// errStop is returned by a walker when the consumer stopped.
var errStop = fmt.Errorf("stopped")

// stopped turns errStop into nil.
func stopped(err error) error {
	if err == errStop {
		return nil
	}
	return err
}

// readPerCPU fills e.PerCPU with the value at the per-CPU address pptr.
func (m *BPFMap) readPerCPU(e *BPFMapEntry, pptr uint64, offs []uint64) {
	p := m.Obj.Program()
	if cap(e.PerCPU) < len(offs) {
		e.PerCPU = make([][]byte, len(offs))
	}
	e.PerCPU = e.PerCPU[:len(offs)]
	for i, off := range offs {
		if cap(e.PerCPU[i]) < int(m.ValueSize) {
			e.PerCPU[i] = make([]byte, m.ValueSize)
		}
		e.PerCPU[i] = e.PerCPU[i][:m.ValueSize]
		if err := p.Read(e.PerCPU[i], pptr+off); err != nil {
			e.Err = fmt.Errorf("value of cpu %d at %#x: %w", i, pptr+off, err)
			e.PerCPU = nil
			return
		}
	}
}

// htabEntries walks struct bpf_htab's buckets (kernel/bpf/hashtab.c):
// each bucket an hlist_nulls of struct htab_elem, whose key follows the
// header and whose value follows the key rounded up to 8 bytes (for a
// per-CPU map the value slot holds the __percpu pointer). LRU maps use
// the same buckets. Buckets are read in chunks, elements one by one.
func (m *BPFMap) htabEntries(yield func(*BPFMapEntry, error) bool, order BPFMapOrder) error {
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
		lru := m.Type == BPFMapTypeLRUHash || m.Type == BPFMapTypeLRUPerCPUHash
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
	e := &BPFMapEntry{}
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
func (m *BPFMap) htabScan(yield func(*BPFMapEntry, error) bool, l htabLayout, offs []uint64) error {
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
	e := &BPFMapEntry{}
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
func (m *BPFMap) elemCount() (uint64, bool) {
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

// arrayEntries walks struct bpf_array (kernel/bpf/arraymap.c): values
// inline at value[i * elem_size], or for a per-CPU array pptrs[i], a
// __percpu pointer to each value. Every index up to max_entries is an
// element.
func (m *BPFMap) arrayEntries(yield func(*BPFMapEntry, error) bool) error {
	p := m.Obj.Program()
	arr, err := m.container("struct bpf_array")
	if err != nil {
		return err
	}
	es, err := arr.MemberUint("elem_size")
	if err != nil {
		return err
	}
	percpu := m.IsPerCPU()
	want := uint64(m.ValueSize)
	if percpu {
		want = 8
		es = 8 // pptrs[]
	}
	if es < want || es > 1<<30 {
		return fmt.Errorf("map %d: array at %#x: elem_size %d for value_size %d: %w", m.ID, arr.Addr(), es, m.ValueSize, objects.ErrCorrupt)
	}
	member := "value"
	if percpu {
		member = "pptrs"
	}
	base, _, err := p.MemberOffset("struct bpf_array", member)
	if err != nil {
		return err
	}
	base += arr.Addr()
	var offs []uint64
	if percpu {
		if offs, err = p.PerCPUOffsets(); err != nil {
			return err
		}
	}
	n := uint64(m.MaxEntries)
	if n > uint64(p.Limit()) {
		return fmt.Errorf("map %d: %d entries: more than %d: %w", m.ID, n, p.Limit(), objects.ErrLimit)
	}
	// Read up to 64 KiB of values at a time.
	per := max(uint64(1), (64<<10)/es)
	buf := make([]byte, per*es)
	e := &BPFMapEntry{Key: make([]byte, 4)}
	for i0 := uint64(0); i0 < n; i0 += per {
		cnt := min(per, n-i0)
		chunk := buf[:cnt*es]
		rerr := p.Read(chunk, base+i0*es)
		for i := uint64(0); i < cnt; i++ {
			binary.LittleEndian.PutUint32(e.Key, uint32(i0+i))
			e.Key = e.Key[:4]
			if m.KeySize < 4 {
				e.Key = e.Key[:m.KeySize]
			}
			e.Err, e.Value, e.PerCPU = nil, nil, e.PerCPU[:0]
			v := chunk[i*es : i*es+want]
			if rerr != nil {
				// Retry the one element: a fault may be in another.
				if err := p.Read(v, base+(i0+i)*es); err != nil {
					e.Err = fmt.Errorf("element %d at %#x: %w", i0+i, base+(i0+i)*es, err)
				}
			}
			if e.Err == nil {
				if percpu {
					m.readPerCPU(e, binary.LittleEndian.Uint64(v), offs)
				} else {
					e.Value = v
				}
			}
			if !yield(e, nil) {
				return nil
			}
		}
	}
	return nil
}

// fdArrayEntries walks a prog_array or perf_event_array: struct
// bpf_array's ptrs[i], a struct bpf_prog (whose id user space reads as
// the value) or a struct bpf_event_entry; NULL slots are not elements.
func (m *BPFMap) fdArrayEntries(yield func(*BPFMapEntry, error) bool) error {
	p := m.Obj.Program()
	arr, err := m.container("struct bpf_array")
	if err != nil {
		return err
	}
	base, _, err := p.MemberOffset("struct bpf_array", "ptrs")
	if err != nil {
		return err
	}
	n := uint64(m.MaxEntries)
	if n > uint64(p.Limit()) {
		return fmt.Errorf("map %d: %d entries: more than %d: %w", m.ID, n, p.Limit(), objects.ErrLimit)
	}
	e := &BPFMapEntry{}
	for i := uint64(0); i < n; i++ {
		ptr, err := p.ReadU64(arr.Addr() + base + 8*i)
		if err != nil {
			return fmt.Errorf("map %d: slot %d at %#x: %w", m.ID, i, arr.Addr()+base+8*i, err)
		}
		if ptr == 0 {
			continue
		}
		*e = BPFMapEntry{Key: binary.LittleEndian.AppendUint32(nil, uint32(i))}
		if m.Type == BPFMapTypeProgArray {
			prog, err := p.ObjectOf("struct bpf_prog", ptr)
			if err != nil {
				return err
			}
			idv, err := prog.Path("aux->id")
			var id uint64
			if err == nil {
				id, err = idv.Uint()
			}
			if err != nil {
				e.Err = fmt.Errorf("program at %#x in slot %d: %w", ptr, i, err)
			} else {
				e.Value = binary.LittleEndian.AppendUint32(nil, uint32(id))
			}
		} else {
			ev, err := m.perfEvent(ptr)
			if err != nil {
				e.Err = fmt.Errorf("slot %d: %w", i, err)
			}
			e.Event = ev
		}
		if !yield(e, nil) {
			return nil
		}
	}
	return nil
}

// maxPerfRecords bounds the records read from one perf ring buffer.
const maxPerfRecords = 1 << 16

// perfEvent reads the perf event of a struct bpf_event_entry and the
// records pending in its ring buffer (struct perf_buffer,
// kernel/events/internal.h: data_pages[] of nr_pages pages, positions in
// the user page).
func (m *BPFMap) perfEvent(entry uint64) (*BPFPerfEvent, error) {
	p := m.Obj.Program()
	ee, err := p.ObjectOf("struct bpf_event_entry", entry)
	if err != nil {
		return nil, err
	}
	evp, err := ee.Member("event")
	if err != nil {
		return nil, err
	}
	ev, err := evp.Deref()
	if err != nil {
		return nil, fmt.Errorf("event entry at %#x: %w", entry, err)
	}
	out := &BPFPerfEvent{Addr: ev.Addr()}
	cpu, err := ev.MemberUint("cpu")
	if err != nil {
		return nil, err
	}
	out.CPU = int(int32(cpu))
	attr, err := ev.Member("attr")
	if err != nil {
		return nil, err
	}
	t, err := attr.MemberUint("type")
	if err != nil {
		return nil, err
	}
	out.Type = uint32(t)
	if out.Config, err = attr.MemberUint("config"); err != nil {
		return nil, err
	}
	out.RecordsErr = out.readRecords(p, ev)
	return out, nil
}

func (out *BPFPerfEvent) readRecords(p *objects.Program, ev objects.Value) error {
	rbp, err := ev.Member("rb")
	if err != nil {
		return err
	}
	if a, _ := rbp.Uint(); a == 0 {
		return nil // not mmapped: no buffer
	}
	rb, err := rbp.Deref()
	if err != nil {
		return err
	}
	np, err := rb.MemberUint("nr_pages")
	if err != nil {
		return err
	}
	order := uint64(0)
	if o, err := rb.MemberUint("page_order"); err == nil { // CONFIG_PERF_USE_VMALLOC
		order = o
	}
	up, err := rb.Member("user_page")
	if err != nil {
		return err
	}
	if out.DataHead, err = up.MemberUint("data_head"); err != nil {
		return err
	}
	if out.DataTail, err = up.MemberUint("data_tail"); err != nil {
		return err
	}
	pageSize := uint64(4096) << order
	size := np * pageSize
	if np == 0 || np > 1<<20 || np&(np-1) != 0 {
		return fmt.Errorf("perf buffer at %#x: nr_pages %d: %w", rb.Addr(), np, objects.ErrCorrupt)
	}
	if out.DataHead < out.DataTail || out.DataHead-out.DataTail > size {
		return fmt.Errorf("perf buffer at %#x: head %d, tail %d for %d bytes: %w", rb.Addr(), out.DataHead, out.DataTail, size, objects.ErrCorrupt)
	}
	pagesOff, _, err := p.MemberOffset("struct perf_buffer", "data_pages")
	if err != nil {
		return err
	}
	// read copies n bytes at logical position pos, across pages.
	read := func(b []byte, pos uint64) error {
		for len(b) > 0 {
			off := pos % size
			pg := off / pageSize
			in := off % pageSize
			pa, err := p.ReadU64(rb.Addr() + pagesOff + 8*pg)
			if err != nil {
				return err
			}
			k := min(uint64(len(b)), pageSize-in)
			if err := p.Read(b[:k], pa+in); err != nil {
				return err
			}
			b, pos = b[k:], pos+k
		}
		return nil
	}
	for pos := out.DataTail; pos < out.DataHead; {
		if len(out.Records) >= maxPerfRecords {
			return fmt.Errorf("perf buffer at %#x: more than %d records: %w", rb.Addr(), maxPerfRecords, objects.ErrLimit)
		}
		var h [8]byte
		if err := read(h[:], pos); err != nil {
			return err
		}
		r := PerfRecord{Type: binary.LittleEndian.Uint32(h[:]), Misc: binary.LittleEndian.Uint16(h[4:]), Size: binary.LittleEndian.Uint16(h[6:])}
		if r.Size < 8 || pos+uint64(r.Size) > out.DataHead {
			return fmt.Errorf("perf buffer at %#x: record at %d has size %d: %w", rb.Addr(), pos, r.Size, objects.ErrCorrupt)
		}
		body := make([]byte, r.Size-8)
		if err := read(body, pos+8); err != nil {
			return err
		}
		// PERF_RECORD_SAMPLE (9) with PERF_SAMPLE_RAW: u32 size, data.
		if r.Type == 9 && len(body) >= 4 {
			if n := binary.LittleEndian.Uint32(body); int(n) <= len(body)-4 {
				r.Raw = body[4 : 4+n]
			}
		}
		out.Records = append(out.Records, r)
		pos += uint64(r.Size)
	}
	return nil
}

// lpmEntries walks struct lpm_trie (kernel/bpf/lpm_trie.c) in post-order,
// child[0] before child[1] before the node, as trie_get_next_key does;
// intermediate nodes (LPM_TREE_NODE_FLAG_IM) are not entries. A key is
// the node's prefixlen (u32) and data_size bytes of data; the value
// follows the data.
func (m *BPFMap) lpmEntries(yield func(*BPFMapEntry, error) bool) error {
	p := m.Obj.Program()
	tr, err := m.container("struct lpm_trie")
	if err != nil {
		return err
	}
	root, err := tr.MemberUint("root")
	if err != nil {
		return err
	}
	ds, err := tr.MemberUint("data_size")
	if err != nil {
		return err
	}
	if ds+4 != uint64(m.KeySize) {
		return fmt.Errorf("map %d: lpm trie at %#x: data_size %d for key_size %d: %w", m.ID, tr.Addr(), ds, m.KeySize, objects.ErrCorrupt)
	}
	childOff, _, err := p.MemberOffset("struct lpm_trie_node", "child")
	if err != nil {
		return err
	}
	plOff, _, err := p.MemberOffset("struct lpm_trie_node", "prefixlen")
	if err != nil {
		return err
	}
	flOff, _, err := p.MemberOffset("struct lpm_trie_node", "flags")
	if err != nil {
		return err
	}
	dataOff, _, err := p.MemberOffset("struct lpm_trie_node", "data")
	if err != nil {
		return err
	}
	nodeSize := dataOff + ds + uint64(m.ValueSize)
	g := p.NewGuard(fmt.Sprintf("map %d: lpm trie at %#x", m.ID, tr.Addr()))
	e := &BPFMapEntry{Key: make([]byte, m.KeySize)}
	var walk func(node uint64, depth int) error
	walk = func(node uint64, depth int) error {
		if node == 0 {
			return nil
		}
		if depth > 8*int(ds)+2 {
			return fmt.Errorf("map %d: lpm trie deeper than %d bits at node %#x: %w", m.ID, 8*ds, node, objects.ErrCorrupt)
		}
		if err := g.Visit(node); err != nil {
			return err
		}
		buf := make([]byte, nodeSize)
		if err := p.Read(buf, node); err != nil {
			return fmt.Errorf("map %d: read trie node %#x: %w", m.ID, node, err)
		}
		for c := uint64(0); c < 2; c++ {
			if err := walk(binary.LittleEndian.Uint64(buf[childOff+8*c:]), depth+1); err != nil {
				return err
			}
		}
		if binary.LittleEndian.Uint32(buf[flOff:])&1 != 0 { // LPM_TREE_NODE_FLAG_IM
			return nil
		}
		copy(e.Key, buf[plOff:plOff+4])
		copy(e.Key[4:], buf[dataOff:dataOff+ds])
		e.Value = buf[dataOff+ds : nodeSize]
		if !yield(e, nil) {
			return errStop
		}
		return nil
	}
	return stopped(walk(root, 0))
}

// stackTraceEntries walks struct bpf_stack_map (kernel/bpf/stackmap.c):
// buckets[id] points to a struct stack_map_bucket of nr frames (u64
// addresses, or struct bpf_stack_build_id with BPF_F_STACK_BUILD_ID);
// the value is the frames, zero-padded to value_size.
func (m *BPFMap) stackTraceEntries(yield func(*BPFMapEntry, error) bool) error {
	p := m.Obj.Program()
	sm, err := m.container("struct bpf_stack_map")
	if err != nil {
		return err
	}
	nb, err := sm.MemberUint("n_buckets")
	if err != nil {
		return err
	}
	if nb > 2*uint64(max(m.MaxEntries, 1)) || nb > uint64(p.Limit()) {
		return fmt.Errorf("map %d: stack map at %#x: n_buckets %d for max_entries %d: %w", m.ID, sm.Addr(), nb, m.MaxEntries, objects.ErrCorrupt)
	}
	bOff, _, err := p.MemberOffset("struct bpf_stack_map", "buckets")
	if err != nil {
		return err
	}
	nrOff, _, err := p.MemberOffset("struct stack_map_bucket", "nr")
	if err != nil {
		return err
	}
	dataOff, _, err := p.MemberOffset("struct stack_map_bucket", "data")
	if err != nil {
		return err
	}
	frame := uint64(8)
	if m.Flags&bpfFStackBuildID != 0 {
		if frame, err = p.SizeofType("struct bpf_stack_build_id"); err != nil {
			return err
		}
	}
	ptrs := make([]byte, 8*nb)
	if err := p.Read(ptrs, sm.Addr()+bOff); err != nil {
		return fmt.Errorf("map %d: read %d buckets at %#x: %w", m.ID, nb, sm.Addr()+bOff, err)
	}
	e := &BPFMapEntry{Key: make([]byte, 4), Value: make([]byte, m.ValueSize)}
	for id := uint64(0); id < nb; id++ {
		b := binary.LittleEndian.Uint64(ptrs[8*id:])
		if b == 0 {
			continue
		}
		binary.LittleEndian.PutUint32(e.Key, uint32(id))
		e.Err = nil
		e.Value = e.Value[:m.ValueSize]
		clear(e.Value)
		var nrb [4]byte
		if err := p.Read(nrb[:], b+nrOff); err != nil {
			e.Err = fmt.Errorf("stack %d at %#x: %w", id, b, err)
		} else if n := uint64(binary.LittleEndian.Uint32(nrb[:])) * frame; n > uint64(m.ValueSize) {
			e.Err = fmt.Errorf("stack %d at %#x: %d frames do not fit value_size %d: %w", id, b, n/frame, m.ValueSize, objects.ErrCorrupt)
		} else if err := p.Read(e.Value[:n], b+dataOff); err != nil {
			e.Err = fmt.Errorf("stack %d at %#x: %w", id, b, err)
		}
		if e.Err != nil {
			e.Value = nil
		}
		if !yield(e, nil) {
			return nil
		}
	}
	return nil
}

// queueStackEntries walks struct bpf_queue_stack
// (kernel/bpf/queue_stack_maps.c): elements[size * value_size], size =
// max_entries + 1, filled at head and, for a queue, taken at tail; a
// stack is taken at head - 1. Elements come in pop order.
func (m *BPFMap) queueStackEntries(yield func(*BPFMapEntry, error) bool) error {
	p := m.Obj.Program()
	qs, err := m.container("struct bpf_queue_stack")
	if err != nil {
		return err
	}
	b, err := qs.Bytes()
	if err != nil {
		return err
	}
	r := p.StructFrom(qs.Type(), b)
	head, tail, size := r.Uint("head"), r.Uint("tail"), r.Uint("size")
	if r.Err() != nil {
		return r.Err()
	}
	if size != uint64(m.MaxEntries)+1 || head >= size || tail >= size {
		return fmt.Errorf("map %d: queue at %#x: head %d, tail %d, size %d for max_entries %d: %w", m.ID, qs.Addr(), head, tail, size, m.MaxEntries, objects.ErrCorrupt)
	}
	elOff, _, err := p.MemberOffset("struct bpf_queue_stack", "elements")
	if err != nil {
		return err
	}
	vs := uint64(m.ValueSize)
	e := &BPFMapEntry{Value: make([]byte, vs)}
	n := (head + size - tail) % size
	for k := uint64(0); k < n; k++ {
		i := (tail + k) % size
		if m.Type == BPFMapTypeStack {
			i = (head + size - 1 - k) % size
		}
		e.Err = nil
		e.Value = e.Value[:vs]
		if err := p.Read(e.Value, qs.Addr()+elOff+i*vs); err != nil {
			e.Err, e.Value = fmt.Errorf("element %d at %#x: %w", i, qs.Addr()+elOff+i*vs, err), nil
		}
		if !yield(e, nil) {
			return nil
		}
	}
	return nil
}

// RingBuf reads a ring buffer map's state. Errors wrap ErrType for a map
// of another type.
func (m *BPFMap) RingBuf() (*BPFRingBuf, error) {
	if m.Type != BPFMapTypeRingBuf {
		return nil, fmt.Errorf("map %d is a %s map, not a ringbuf: %w", m.ID, m.TypeName, objects.ErrType)
	}
	p := m.Obj.Program()
	rbm, err := m.container("struct bpf_ringbuf_map")
	if err != nil {
		return nil, err
	}
	rbp, err := rbm.Member("rb")
	if err != nil {
		return nil, err
	}
	rb, err := rbp.Deref()
	if err != nil {
		return nil, fmt.Errorf("map %d: %w", m.ID, err)
	}
	out := &BPFRingBuf{Addr: rb.Addr()}
	mask, err := rb.MemberUint("mask")
	if err != nil {
		return nil, err
	}
	out.Size = mask + 1
	if out.Size&mask != 0 || out.Size != uint64(m.MaxEntries) {
		return nil, fmt.Errorf("map %d: ring buffer at %#x: mask %#x for max_entries %d: %w", m.ID, rb.Addr(), mask, m.MaxEntries, objects.ErrCorrupt)
	}
	if out.ConsumerPos, err = rb.MemberUint("consumer_pos"); err != nil {
		return nil, err
	}
	if out.ProducerPos, err = rb.MemberUint("producer_pos"); err != nil {
		return nil, err
	}
	if pp, err := rb.MemberUint("pending_pos"); err == nil {
		out.PendingPos, out.HasPendingPos = pp, true
	}
	dOff, _, err := p.MemberOffset("struct bpf_ringbuf", "data")
	if err != nil {
		return nil, err
	}
	out.data = rb.Addr() + dOff
	return out, nil
}

// ringbufEntries yields the records between consumer_pos and
// producer_pos: each a struct bpf_ringbuf_hdr (len with the busy and
// discard bits, pg_off) and len bytes of sample, 8-byte aligned. The data
// pages are mapped twice in a row, so a record that wraps reads straight.
func (m *BPFMap) ringbufEntries(yield func(*BPFMapEntry, error) bool) error {
	p := m.Obj.Program()
	rb, err := m.RingBuf()
	if err != nil {
		return err
	}
	if rb.ProducerPos < rb.ConsumerPos || rb.ProducerPos-rb.ConsumerPos > rb.Size {
		return fmt.Errorf("map %d: ring buffer at %#x: consumer %d, producer %d for %d bytes: %w", m.ID, rb.Addr, rb.ConsumerPos, rb.ProducerPos, rb.Size, objects.ErrCorrupt)
	}
	e := &BPFMapEntry{}
	for pos := rb.ConsumerPos; pos < rb.ProducerPos; {
		var h [ringbufHdrSize]byte
		at := rb.data + pos&(rb.Size-1)
		if err := p.Read(h[:], at); err != nil {
			return fmt.Errorf("map %d: record header at %d (%#x): %w", m.ID, pos, at, err)
		}
		l := binary.LittleEndian.Uint32(h[:])
		rec := &BPFRingBufRecord{Pos: pos, Len: l &^ (ringbufBusyBit | ringbufDiscardBit),
			PgOff: binary.LittleEndian.Uint32(h[4:]), Busy: l&ringbufBusyBit != 0, Discard: l&ringbufDiscardBit != 0}
		total := (uint64(rec.Len) + ringbufHdrSize + 7) &^ 7
		if pos+total > rb.ProducerPos {
			return fmt.Errorf("map %d: record at %d (%#x) of %d bytes runs past the producer position %d: %w", m.ID, pos, at, rec.Len, rb.ProducerPos, objects.ErrCorrupt)
		}
		*e = BPFMapEntry{Record: rec, Value: make([]byte, rec.Len)}
		if err := p.Read(e.Value, at+ringbufHdrSize); err != nil {
			e.Value, e.Err = nil, fmt.Errorf("record at %d: %w", pos, err)
		}
		if !yield(e, nil) {
			return nil
		}
		pos += total
	}
	return nil
}

// Lookup returns the element with the given key, as bpf_map_lookup_elem
// would, by walking the map. Errors wrap ErrNotFound for a missing key
// and ErrType for a key of the wrong size or a keyless map.
func (m *BPFMap) Lookup(key []byte) (*BPFMapEntry, error) {
	switch m.Type {
	case BPFMapTypeQueue, BPFMapTypeStack, BPFMapTypeRingBuf:
		return nil, fmt.Errorf("map %d: a %s map has no keys: %w", m.ID, m.TypeName, objects.ErrType)
	}
	if len(key) != int(m.KeySize) {
		return nil, fmt.Errorf("map %d: key of %d bytes, want %d: %w", m.ID, len(key), m.KeySize, objects.ErrType)
	}
	if m.Type == BPFMapTypeLPMTrie {
		return m.lpmLookup(key)
	}
	for e, err := range m.Entries() {
		if err != nil {
			return nil, err
		}
		if bytes.Equal(e.Key, key) {
			return cloneEntry(e), nil
		}
	}
	return nil, fmt.Errorf("map %d: no element with key % x: %w", m.ID, key, objects.ErrNotFound)
}

// lpmLookup finds the longest prefix matching key, as trie_lookup_elem.
func (m *BPFMap) lpmLookup(key []byte) (*BPFMapEntry, error) {
	plen := binary.LittleEndian.Uint32(key)
	var best *BPFMapEntry
	bestLen := -1
	for e, err := range m.Entries() {
		if err != nil {
			return nil, err
		}
		el := binary.LittleEndian.Uint32(e.Key)
		if el > plen || int(el) <= bestLen || !prefixMatch(e.Key[4:], key[4:], el) {
			continue
		}
		best, bestLen = cloneEntry(e), int(el)
	}
	if best == nil {
		return nil, fmt.Errorf("map %d: no prefix matches key % x: %w", m.ID, key, objects.ErrNotFound)
	}
	return best, nil
}

func prefixMatch(a, b []byte, n uint32) bool {
	for i := uint32(0); i < n; i++ {
		if i/8 >= uint32(len(a)) || i/8 >= uint32(len(b)) {
			return false
		}
		mask := byte(0x80 >> (i % 8))
		if a[i/8]&mask != b[i/8]&mask {
			return false
		}
	}
	return true
}

func cloneEntry(e *BPFMapEntry) *BPFMapEntry {
	c := *e
	c.Key = bytes.Clone(e.Key)
	c.Value = bytes.Clone(e.Value)
	if e.PerCPU != nil {
		c.PerCPU = make([][]byte, len(e.PerCPU))
		for i, v := range e.PerCPU {
			c.PerCPU[i] = bytes.Clone(v)
		}
	}
	return &c
}

// KeyValueTypes returns the map's BTF types of key and value, looked up
// in spec, its BTF object's types (see BTFObject.Spec); nil when the map
// has none. A struct_ops map's value type is vmlinux's. Errors wrap
// ErrCorrupt for a type id the BTF lacks.
func (m *BPFMap) KeyValueTypes(spec *btf.Spec, vmlinux *btf.Spec) (key, value btf.Type, err error) {
	if spec != nil && m.BTFKeyTypeID != 0 {
		if key, err = spec.TypeByID(btf.TypeID(m.BTFKeyTypeID)); err != nil {
			return nil, nil, fmt.Errorf("map %d: key type %d: %v: %w", m.ID, m.BTFKeyTypeID, err, objects.ErrCorrupt)
		}
	}
	switch {
	case m.BTFVmlinuxValueTypeID != 0 && vmlinux != nil:
		if value, err = vmlinux.TypeByID(btf.TypeID(m.BTFVmlinuxValueTypeID)); err != nil {
			return nil, nil, fmt.Errorf("map %d: vmlinux value type %d: %v: %w", m.ID, m.BTFVmlinuxValueTypeID, err, objects.ErrCorrupt)
		}
	case spec != nil && m.BTFValueTypeID != 0:
		if value, err = spec.TypeByID(btf.TypeID(m.BTFValueTypeID)); err != nil {
			return nil, nil, fmt.Errorf("map %d: value type %d: %v: %w", m.ID, m.BTFValueTypeID, err, objects.ErrCorrupt)
		}
	}
	return key, value, nil
}

// structOpsEntries yields a struct_ops map's one element: key 0 and the
// value bpf_struct_ops_map_sys_lookup_elem returns (BPFStructOps.Value).
func (m *BPFMap) structOpsEntries(yield func(*BPFMapEntry, error) bool) error {
	s, err := NewBPFStructOps(m)
	if err != nil {
		return err
	}
	yield(&BPFMapEntry{Key: make([]byte, m.KeySize), Value: s.Value, Err: s.ValueErr}, nil)
	return nil
}
