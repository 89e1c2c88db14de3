package bpf

import (
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// queueStackEntries walks struct bpf_queue_stack
// (kernel/bpf/queue_stack_maps.c): elements[size * value_size], size =
// max_entries + 1, filled at head and, for a queue, taken at tail; a
// stack is taken at head - 1. Elements come in pop order.
func (m *Map) queueStackEntries(yield func(*MapEntry, error) bool) error {
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
	e := &MapEntry{Value: make([]byte, vs)}
	n := (head + size - tail) % size
	for k := uint64(0); k < n; k++ {
		i := (tail + k) % size
		if m.Type == MapTypeStack {
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
