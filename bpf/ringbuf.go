package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// Ring buffer record header bits (include/uapi/linux/bpf.h).
const (
	ringbufBusyBit    = 1 << 31
	ringbufDiscardBit = 1 << 30
	ringbufHdrSize    = 8
)

// RingBufRecord is a record of a BPF ring buffer (struct
// bpf_ringbuf_hdr and its sample).
type RingBufRecord struct {
	Pos     uint64 `json:"pos"` // logical position of the header
	Len     uint32 `json:"len"` // sample length, busy and discard bits removed
	PgOff   uint32 `json:"pg_off"`
	Busy    bool   `json:"busy"`    // BPF_RINGBUF_BUSY_BIT: reserved, not yet committed
	Discard bool   `json:"discard"` // BPF_RINGBUF_DISCARD_BIT: discarded
}

// RingBuf is a ring buffer map's state (struct bpf_ringbuf).
type RingBuf struct {
	Addr        objects.Hex `json:"addr"` // struct bpf_ringbuf
	Size        uint64      `json:"size"` // data size: mask + 1
	ConsumerPos uint64      `json:"consumer_pos"`
	ProducerPos uint64      `json:"producer_pos"`
	// PendingPos is the oldest uncommitted record's position (6.8+,
	// 56d2c28a1b4c "bpf: Add bpf_ringbuf_reserve/commit ... pending_pos");
	// nil when the kernel has no such member (0 is a position).
	PendingPos *uint64 `json:"pending_pos,omitempty"`
	data       uint64
}

// RingBuf reads a ring buffer map's state. Errors wrap ErrType for a map
// of another type.
func (m *Map) RingBuf() (*RingBuf, error) {
	if m.Type != MapTypeRingBuf {
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
	out := &RingBuf{Addr: objects.Hex(rb.Addr())}
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
		out.PendingPos = &pp
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
func (m *Map) ringbufEntries(yield func(*MapEntry, error) bool) error {
	p := m.Obj.Program()
	rb, err := m.RingBuf()
	if err != nil {
		return err
	}
	if rb.ProducerPos < rb.ConsumerPos || rb.ProducerPos-rb.ConsumerPos > rb.Size {
		return fmt.Errorf("map %d: ring buffer at %#x: consumer %d, producer %d for %d bytes: %w", m.ID, rb.Addr, rb.ConsumerPos, rb.ProducerPos, rb.Size, objects.ErrCorrupt)
	}
	e := &MapEntry{}
	for pos := rb.ConsumerPos; pos < rb.ProducerPos; {
		var h [ringbufHdrSize]byte
		at := rb.data + pos&(rb.Size-1)
		if err := p.Read(h[:], at); err != nil {
			return fmt.Errorf("map %d: record header at %d (%#x): %w", m.ID, pos, at, err)
		}
		l := binary.LittleEndian.Uint32(h[:])
		rec := &RingBufRecord{Pos: pos, Len: l &^ (ringbufBusyBit | ringbufDiscardBit),
			PgOff: binary.LittleEndian.Uint32(h[4:]), Busy: l&ringbufBusyBit != 0, Discard: l&ringbufDiscardBit != 0}
		total := (uint64(rec.Len) + ringbufHdrSize + 7) &^ 7
		if pos+total > rb.ProducerPos {
			return fmt.Errorf("map %d: record at %d (%#x) of %d bytes runs past the producer position %d: %w", m.ID, pos, at, rec.Len, rb.ProducerPos, objects.ErrCorrupt)
		}
		*e = MapEntry{Record: rec, Value: make([]byte, rec.Len)}
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
