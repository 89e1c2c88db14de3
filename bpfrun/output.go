package bpfrun

import (
	"fmt"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfvm"
)

// The output helpers with the kernel's checks against the dump's maps:
// a perf event array's slot must hold a BPF output event on the run's
// CPU, a ring buffer must have room (records the dump holds, unread,
// count). The records are collected (bpfvm.Machine.Outputs), not written
// to the buffers.

const (
	perfIndexMask   = 0xffffffff    // BPF_F_INDEX_MASK
	perfCurrentCPU  = 0xffffffff    // BPF_F_CURRENT_CPU
	perfCtxLenMask  = 0xfffff << 32 // BPF_F_CTXLEN_MASK
	perfTypeSW      = 1             // PERF_TYPE_SOFTWARE
	perfSWBPFOutput = 10            // PERF_COUNT_SW_BPF_OUTPUT
	rbNoWakeup      = 1             // BPF_RB_NO_WAKEUP
	rbForceWakeup   = 2             // BPF_RB_FORCE_WAKEUP
	ringbufHdrSize  = 8             // BPF_RINGBUF_HDR_SZ
	ringbufMaxRec   = (1 << 28) - 1 // RINGBUF_MAX_RECORD_SZ: UINT_MAX/4
)

func (s *Session) outputHelpers() map[string]bpfvm.HelperFunc {
	std := bpfvm.StandardHelpers()
	reserve, _ := std.Lookup("bpf_ringbuf_reserve")
	return map[string]bpfvm.HelperFunc{
		"bpf_perf_event_output":        s.perfOutput("bpf_perf_event_output"),
		"bpf_perf_event_output_tp":     s.perfOutput("bpf_perf_event_output_tp"),
		"bpf_perf_event_output_raw_tp": s.perfOutput("bpf_perf_event_output_raw_tp"),
		"bpf_ringbuf_output":           s.ringbufOutput,
		"bpf_ringbuf_reserve": func(m *bpfvm.Machine, a [5]uint64) (uint64, error) {
			ok, err := s.ringbufRoom(a[0], a[1])
			if err != nil || !ok {
				return 0, err
			}
			return reserve(m, a)
		},
	}
}

// perfCheck is __bpf_perf_event_output's checks of the slot flags names:
// the CPU index of the event, or an errno.
func (s *Session) perfCheck(mapAddr, flags uint64) (cpu uint32, errno int, err error) {
	mi, err := s.mapOf(mapAddr, "perf event output")
	if err != nil {
		return 0, 0, err
	}
	if mi.typ != bpf.MapTypePerfEventArray {
		return 0, 0, fmt.Errorf("perf event output to %s, not a perf_event_array", mi)
	}
	index := flags & perfIndexMask
	if index == perfCurrentCPU {
		index = uint64(s.opts.CPU)
	}
	ee, in, err := s.slotPtr(mi, uint32(index))
	if err != nil {
		return 0, 0, err
	}
	if !in || index >= uint64(mi.max) {
		return 0, e2BIG, nil
	}
	if ee == 0 {
		return 0, eNOENT, nil
	}
	l := s.lay
	if err := need("struct bpf_event_entry, perf_event", l.eventEntryEvent, l.perfEventOncpu); err != nil {
		return 0, 0, err
	}
	ev, err := s.u64(ee + uint64(l.eventEntryEvent))
	if err != nil {
		return 0, 0, err
	}
	p := s.r.prog
	typ, err1 := p.UintAt("struct perf_event", ev, "attr.type")
	cfg, err2 := p.UintAt("struct perf_event", ev, "attr.config")
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("perf event at %#x: %v %v", ev, err1, err2)
	}
	if typ != perfTypeSW || cfg != perfSWBPFOutput {
		return 0, eINVAL, nil
	}
	oncpu, err := s.u32(ev + uint64(l.perfEventOncpu))
	if err != nil {
		return 0, 0, err
	}
	if int32(oncpu) != int32(s.opts.CPU) {
		return 0, eOPNOTSUPP, nil
	}
	return uint32(index), 0, nil
}

// perfOutput is bpf_perf_event_output(ctx, map, flags, data, size) of the
// tracing programs.
func (s *Session) perfOutput(name string) bpfvm.HelperFunc {
	return func(m *bpfvm.Machine, a [5]uint64) (uint64, error) {
		mp, flags, data, size := a[1], a[2], a[3], a[4]
		if flags&^perfIndexMask != 0 {
			return bpfvm.Errno(eINVAL), nil
		}
		buf, err := s.bytes(data, int(size))
		if err != nil {
			return 0, err
		}
		cpu, errno, err := s.perfCheck(mp, flags)
		if err != nil || errno != 0 {
			return bpfvm.Errno(errno), err
		}
		m.Record(bpfvm.Output{Helper: name, Map: mp, Flags: flags, CPU: cpu, Data: buf})
		return 0, nil
	}
}

// ctxEventOutput is bpf_xdp_event_output and bpf_skb_event_output(ctx,
// map, flags, meta, meta_size): the record is the meta data, then the
// first BPF_F_CTXLEN_MASK bytes of the packet.
func (s *Session) ctxEventOutput(name string, packet func(ctx, n uint64) ([]byte, bool, error)) bpfvm.HelperFunc {
	return func(m *bpfvm.Machine, a [5]uint64) (uint64, error) {
		ctx, mp, flags, meta, size := a[0], a[1], a[2], a[3], a[4]
		if flags&^(perfCtxLenMask|perfIndexMask) != 0 {
			return bpfvm.Errno(eINVAL), nil
		}
		ctxLen := (flags & perfCtxLenMask) >> 32
		buf, err := s.bytes(meta, int(size))
		if err != nil {
			return 0, err
		}
		pkt, ok, err := packet(ctx, ctxLen)
		if err != nil {
			return 0, err
		}
		if !ok {
			return bpfvm.Errno(eFAULT), nil
		}
		cpu, errno, err := s.perfCheck(mp, flags)
		if err != nil || errno != 0 {
			return bpfvm.Errno(errno), err
		}
		m.Record(bpfvm.Output{Helper: name, Map: mp, Flags: flags, CPU: cpu, Data: append(buf, pkt...)})
		return 0, nil
	}
}

// ringbufRoom is __bpf_ringbuf_reserve's check that size bytes fit: the
// producer, advanced by the dump's unread records and the runs' own, may
// not get a buffer's size ahead of the consumer.
func (s *Session) ringbufRoom(mapAddr, size uint64) (bool, error) {
	mi, err := s.mapOf(mapAddr, "ring buffer output")
	if err != nil {
		return false, err
	}
	if mi.typ != bpf.MapTypeRingBuf {
		return false, fmt.Errorf("ring buffer output to %s, not a ringbuf", mi)
	}
	l := s.lay
	if err := need("struct bpf_ringbuf", l.rbMapRB, l.rbMask, l.rbConsumer, l.rbProducer); err != nil {
		return false, err
	}
	if size > ringbufMaxRec {
		return false, nil
	}
	rb, err := s.u64(mapAddr + uint64(l.rbMapRB))
	if err != nil {
		return false, err
	}
	mask, err1 := s.u64(rb + uint64(l.rbMask))
	cons, err2 := s.u64(rb + uint64(l.rbConsumer))
	prod, err3 := s.u64(rb + uint64(l.rbProducer))
	if err1 != nil || err2 != nil || err3 != nil {
		return false, fmt.Errorf("ring buffer of %s at %#x: %v %v %v", mi, rb, err1, err2, err3)
	}
	n := (size + ringbufHdrSize + 7) &^ 7
	if n > mask+1 {
		return false, nil
	}
	prod += s.rbProd[mapAddr]
	if prod+n-cons > mask {
		return false, nil
	}
	s.rbProd[mapAddr] += n
	return true, nil
}

// ringbufOutput is bpf_ringbuf_output(ringbuf, data, size, flags).
func (s *Session) ringbufOutput(m *bpfvm.Machine, a [5]uint64) (uint64, error) {
	mp, data, size, flags := a[0], a[1], a[2], a[3]
	if flags&^(rbNoWakeup|rbForceWakeup) != 0 {
		return bpfvm.Errno(eINVAL), nil
	}
	ok, err := s.ringbufRoom(mp, size)
	if err != nil {
		return 0, err
	}
	if !ok {
		return bpfvm.Errno(eAGAIN), nil
	}
	buf, err := s.bytes(data, int(size))
	if err != nil {
		return 0, err
	}
	m.Record(bpfvm.Output{Helper: "bpf_ringbuf_output", Map: mp, Flags: flags, Data: buf})
	return 0, nil
}
