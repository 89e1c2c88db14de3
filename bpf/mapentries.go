package bpf

import (
	"bytes"
	"fmt"
	"iter"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/objects"
)

// MapEntry is one element of a BPF map as the kernel would return it
// to user space (bpf_map_lookup_elem): key and value bytes, or a value per
// possible CPU. For a ring buffer an entry is a pending record, for a
// queue or stack an element (no key), for a perf event array a slot with
// its event.
type MapEntry struct {
	Key []byte `json:"key"`
	// Value is the value (nil for a per-CPU map, or when Err is set).
	Value []byte `json:"value,omitempty"`
	// PerCPU holds a per-CPU map's value on each possible CPU, in
	// possible-CPU order (bpftool's "cpu" index).
	PerCPU [][]byte `json:"values,omitempty"`
	// Err is why the value could not be read (the key is known): a page
	// missing from the dump, a NULL pointer.
	Err error `json:"error,omitempty"`
	// Event is a perf_event_array slot's event.
	Event *PerfEvent `json:"event,omitempty"`
	// Record is a ring buffer's record.
	Record *RingBufRecord `json:"record,omitempty"`
	// Addr is where the value is in kernel memory, for an array's and a
	// hash map's elements (0 where not known).
	Addr uint64 `json:"-"`
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
func (m *Map) Entries() iter.Seq2[*MapEntry, error] { return m.EntriesIn(OrderAuto) }

// MapOrder chooses the order of a hash map's elements.
type MapOrder int

const (
	// OrderAuto is OrderKernel, except for a preallocated hash map
	// whose elements span more than OrderMemoryThreshold bytes: then
	// OrderMemory, which reads them sequentially.
	OrderAuto MapOrder = iota
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
func (m *Map) EntriesIn(order MapOrder) iter.Seq2[*MapEntry, error] {
	return func(yield func(*MapEntry, error) bool) {
		var err error
		switch m.Type {
		case MapTypeHash, MapTypePerCPUHash, MapTypeLRUHash, MapTypeLRUPerCPUHash:
			err = m.htabEntries(yield, order)
		case MapTypeArray, MapTypePerCPUArray:
			err = m.arrayEntries(yield)
		case MapTypeProgArray, MapTypePerfEventArray:
			err = m.fdArrayEntries(yield)
		case MapTypeLPMTrie:
			err = m.lpmEntries(yield)
		case MapTypeStackTrace:
			err = m.stackTraceEntries(yield)
		case MapTypeQueue, MapTypeStack:
			err = m.queueStackEntries(yield)
		case MapTypeRingBuf:
			err = m.ringbufEntries(yield)
		case MapTypeStructOps:
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

// pcpuMinUnitSize is PCPU_MIN_UNIT_SIZE (32 KiB), the largest value of
// a per-CPU map.
const pcpuMinUnitSize = 32 << 10

// readPerCPU fills e.PerCPU with the value at the per-CPU address pptr.
func (m *Map) readPerCPU(e *MapEntry, pptr uint64, offs []uint64) {
	p := m.Obj.Program()
	if m.ValueSize > pcpuMinUnitSize {
		// The per-CPU maps refuse larger values (PCPU_MIN_UNIT_SIZE).
		e.Err = fmt.Errorf("per-CPU value_size %d: %w", m.ValueSize, objects.ErrCorrupt)
		e.PerCPU = nil
		return
	}
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

// Lookup returns the element with the given key, as bpf_map_lookup_elem
// would, by walking the map. Errors wrap ErrNotFound for a missing key
// and ErrType for a key of the wrong size or a keyless map.
func (m *Map) Lookup(key []byte) (*MapEntry, error) {
	switch m.Type {
	case MapTypeQueue, MapTypeStack, MapTypeRingBuf:
		return nil, fmt.Errorf("map %d: a %s map has no keys: %w", m.ID, m.TypeName, objects.ErrType)
	}
	if len(key) != int(m.KeySize) {
		return nil, fmt.Errorf("map %d: key of %d bytes, want %d: %w", m.ID, len(key), m.KeySize, objects.ErrType)
	}
	if m.Type == MapTypeLPMTrie {
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

func cloneEntry(e *MapEntry) *MapEntry {
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
// in spec, its BTF object's types (see BTF.Spec); nil when the map
// has none. A struct_ops map's value type is vmlinux's. Errors wrap
// ErrCorrupt for a type id the BTF lacks.
func (m *Map) KeyValueTypes(spec *btf.Spec, vmlinux *btf.Spec) (key, value btf.Type, err error) {
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
