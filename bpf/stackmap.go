package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// stackTraceEntries walks struct bpf_stack_map (kernel/bpf/stackmap.c):
// buckets[id] points to a struct stack_map_bucket of nr frames (u64
// addresses, or struct bpf_stack_build_id with BPF_F_STACK_BUILD_ID);
// the value is the frames, zero-padded to value_size.
func (m *Map) stackTraceEntries(yield func(*MapEntry, error) bool) error {
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
	e := &MapEntry{Key: make([]byte, 4), Value: make([]byte, m.ValueSize)}
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
