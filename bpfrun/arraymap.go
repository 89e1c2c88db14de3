package bpfrun

import (
	"fmt"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfvm"
)

// The arrays of kernel/bpf/arraymap.c on their kernel layout: struct
// bpf_array's values inline (value[index * elem_size]), or for a per-CPU
// array the __percpu pointer of each (pptrs[index]).

// arrayIndex reads the 32-bit index a key holds.
func (s *Session) arrayIndex(keyAddr uint64) (uint32, error) { return s.u32(keyAddr) }

// arrayLookup is array_map_lookup_elem and percpu_array_map_lookup_elem:
// the value's address (this CPU's copy), NULL past max_entries.
func (s *Session) arrayLookup(mapAddr, keyAddr uint64) (uint64, error) {
	mi, err := s.mapOf(mapAddr, "array_map_lookup_elem")
	if err != nil {
		return 0, err
	}
	if mi.typ != bpf.MapTypeArray && mi.typ != bpf.MapTypePerCPUArray {
		return 0, fmt.Errorf("array lookup of %s, not an array", mi)
	}
	i, err := s.arrayIndex(keyAddr)
	if err != nil {
		return 0, err
	}
	if i >= mi.max {
		return 0, nil
	}
	at := mi.arrBase + uint64(uint64(i)&mi.arrMask)*mi.arrElem
	if mi.typ == bpf.MapTypePerCPUArray {
		pptr, err := s.u64(at)
		if err != nil {
			return 0, err
		}
		return s.percpuCopy(pptr), nil
	}
	return at, nil
}

// arrayUpdate is array_map_update_elem as a program calls it: this CPU's
// copy for a per-CPU array.
func (s *Session) arrayUpdate(mapAddr, keyAddr, valueAddr, flags uint64) (uint64, error) {
	mi, err := s.mapOf(mapAddr, "array_map_update_elem")
	if err != nil {
		return 0, err
	}
	if flags&^bpfFLock > bpfExist {
		return bpfvm.Errno(eINVAL), nil
	}
	i, err := s.arrayIndex(keyAddr)
	if err != nil {
		return 0, err
	}
	if i >= mi.max {
		return bpfvm.Errno(e2BIG), nil
	}
	if flags&^bpfFLock == bpfNoExist {
		return bpfvm.Errno(eEXIST), nil
	}
	value, err := s.bytes(valueAddr, int(mi.value))
	if err != nil {
		return 0, err
	}
	at := mi.arrBase + uint64(uint64(i)&mi.arrMask)*mi.arrElem
	if mi.typ == bpf.MapTypePerCPUArray {
		pptr, err := s.u64(at)
		if err != nil {
			return 0, err
		}
		at = s.percpuCopy(pptr)
	}
	return 0, s.m.Write(at, value)
}

// arrayDelete is array_map_delete_elem: arrays have no deletion.
func (s *Session) arrayDelete(uint64, uint64) (uint64, error) { return bpfvm.Errno(eINVAL), nil }

// slotPtr reads slot index of a prog_array or perf_event_array
// (array->ptrs[index]); inRange is index < max_entries.
func (s *Session) slotPtr(mi *mapInfo, index uint32) (ptr uint64, inRange bool, err error) {
	if index >= mi.max {
		return 0, false, nil
	}
	ptr, err = s.u64(mi.arrBase + 8*uint64(index))
	return ptr, true, err
}

// tailCall is the TailCaller: the program in slot index of the
// prog_array at mapAddr, loaded from the dump.
func (s *Session) tailCall(m *bpfvm.Machine, mapAddr uint64, index uint32) (*bpfvm.Program, bool, error) {
	mi, err := s.mapAt(mapAddr)
	if err != nil {
		return nil, false, err
	}
	s.useMap(mapAddr)
	if mi.typ != bpf.MapTypeProgArray {
		return nil, false, fmt.Errorf("tail call through %s, not a prog_array", mi)
	}
	ptr, in, err := s.slotPtr(mi, index)
	if err != nil || ptr == 0 {
		return nil, in, err
	}
	p, err := s.r.LoadAt(ptr)
	if err != nil {
		return nil, in, fmt.Errorf("tail call target at %#x in slot %d of %s: %w", ptr, index, mi, err)
	}
	s.ran(p)
	return p.VM, in, nil
}

// ran records a program the runs ran, with its maps.
func (s *Session) ran(p *Prog) {
	if _, ok := s.progs[p.Addr]; ok {
		return
	}
	s.progs[p.Addr] = p
	maps, err := p.UsedMaps()
	if err != nil {
		s.mapErrs = append(s.mapErrs, err)
		return
	}
	for _, m := range maps {
		s.useMap(m.Addr)
	}
}

// progOf finds a loaded program by its bpfvm program.
func (s *Session) progOf(vp *bpfvm.Program) *Prog {
	for _, p := range s.progs {
		if p.VM == vp {
			return p
		}
	}
	return nil
}
