package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// arrayEntries walks struct bpf_array (kernel/bpf/arraymap.c): values
// inline at value[i * elem_size], or for a per-CPU array pptrs[i], a
// __percpu pointer to each value. Every index up to max_entries is an
// element.
func (m *Map) arrayEntries(yield func(*MapEntry, error) bool) error {
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
	// array_map_alloc_check refuses values larger than KMALLOC_MAX_SIZE.
	if es < want || es > kmallocMaxSize || uint64(m.ValueSize) > kmallocMaxSize {
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
	e := &MapEntry{Key: make([]byte, 4)}
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
			e.Addr = base + (i0+i)*es
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

// kmallocMaxSize is x86-64's KMALLOC_MAX_SIZE (4 MiB).
const kmallocMaxSize = 4 << 20

// fdArrayEntries walks a prog_array or perf_event_array: struct
// bpf_array's ptrs[i], a struct bpf_prog (whose id user space reads as
// the value) or a struct bpf_event_entry; NULL slots are not elements.
func (m *Map) fdArrayEntries(yield func(*MapEntry, error) bool) error {
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
	e := &MapEntry{}
	for i := uint64(0); i < n; i++ {
		ptr, err := p.ReadU64(arr.Addr() + base + 8*i)
		if err != nil {
			return fmt.Errorf("map %d: slot %d at %#x: %w", m.ID, i, arr.Addr()+base+8*i, err)
		}
		if ptr == 0 {
			continue
		}
		*e = MapEntry{Key: binary.LittleEndian.AppendUint32(nil, uint32(i))}
		if m.Type == MapTypeProgArray {
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
