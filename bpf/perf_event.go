package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// PerfEvent is the perf event in a perf_event_array slot (struct
// bpf_event_entry), with the records pending in its ring buffer.
type PerfEvent struct {
	Addr   objects.Hex `json:"addr"` // struct perf_event
	CPU    int         `json:"cpu"`
	Type   uint32      `json:"event_type"` // attr.type (PERF_TYPE_SOFTWARE: 1)
	Config uint64      `json:"config"`     // attr.config (PERF_COUNT_SW_BPF_OUTPUT: 10)
	// DataHead and DataTail are the ring buffer's positions
	// (perf_event_mmap_page); Records are the records between them.
	DataHead uint64       `json:"data_head"`
	DataTail uint64       `json:"data_tail"`
	Records  []PerfRecord `json:"records"`
	// RecordsErr says why the records could not be read.
	RecordsErr error `json:"records_error,omitempty"`
}

// PerfRecord is a record of a perf ring buffer: its header and, for a
// PERF_RECORD_SAMPLE of a BPF output event, the raw sample.
type PerfRecord struct {
	Type uint32 `json:"type"`
	Misc uint16 `json:"misc"`
	Size uint16 `json:"size"`
	Raw  []byte `json:"raw,omitempty"`
}

// maxPerfRecords bounds the records read from one perf ring buffer.
const maxPerfRecords = 1 << 16

// perfEvent reads the perf event of a struct bpf_event_entry and the
// records pending in its ring buffer (struct perf_buffer,
// kernel/events/internal.h: data_pages[] of nr_pages pages, positions in
// the user page).
func (m *Map) perfEvent(entry uint64) (*PerfEvent, error) {
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
	out := &PerfEvent{Addr: objects.Hex(ev.Addr())}
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

func (out *PerfEvent) readRecords(p *objects.Program, ev objects.Value) error {
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
