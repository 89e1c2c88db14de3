package bpfrun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Classic pcap files (the libpcap format, not pcapng): a global header,
// then records of a header and the captured bytes.

// ErrPcap marks a file that is not a classic pcap file of Ethernet
// frames, or is cut short.
var ErrPcap = errors.New("bad pcap file")

// Packet is a captured packet.
type Packet struct {
	// Index counts from 0; Sec and Nsec are the capture time.
	Index     int
	Sec, Nsec uint32
	// Data are the captured bytes; OrigLen the packet's length on the
	// wire.
	Data    []byte
	OrigLen uint32
}

const (
	pcapMagicUs      = 0xa1b2c3d4
	pcapMagicNs      = 0xa1b23c4d
	linktypeEthernet = 1
	pcapMaxSnap      = 1 << 18
)

// ReadPcap reads every packet of a classic pcap file of Ethernet frames
// (LINKTYPE_ETHERNET), either byte order, micro- or nanosecond times.
// Errors wrap ErrPcap, naming the byte offset.
func ReadPcap(r io.Reader) ([]Packet, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %v: %w", err, ErrPcap)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	nano := false
	switch m := binary.LittleEndian.Uint32(h[:]); m {
	case pcapMagicUs:
	case pcapMagicNs:
		nano = true
	default:
		bo = binary.BigEndian
		switch binary.BigEndian.Uint32(h[:]) {
		case pcapMagicUs:
		case pcapMagicNs:
			nano = true
		default:
			return nil, fmt.Errorf("magic %#08x at offset 0: not a classic pcap file (pcapng is not read): %w", m, ErrPcap)
		}
	}
	if lt := bo.Uint32(h[20:]) & 0x0fffffff; lt != linktypeEthernet {
		return nil, fmt.Errorf("link type %d at offset 20: only Ethernet (1) frames are test-run input: %w", lt, ErrPcap)
	}
	var out []Packet
	off := int64(24)
	for i := 0; ; i++ {
		var rh [16]byte
		n, err := io.ReadFull(r, rh[:])
		if err == io.EOF && n == 0 {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("record %d header at offset %d: %v: %w", i, off, err, ErrPcap)
		}
		incl := bo.Uint32(rh[8:])
		if incl > pcapMaxSnap {
			return out, fmt.Errorf("record %d at offset %d: %d captured bytes: %w", i, off, incl, ErrPcap)
		}
		p := Packet{Index: i, Sec: bo.Uint32(rh[0:]), Nsec: bo.Uint32(rh[4:]), OrigLen: bo.Uint32(rh[12:]), Data: make([]byte, incl)}
		if !nano {
			p.Nsec *= 1000
		}
		if _, err := io.ReadFull(r, p.Data); err != nil {
			return out, fmt.Errorf("record %d data at offset %d: %v: %w", i, off+16, err, ErrPcap)
		}
		out = append(out, p)
		off += 16 + int64(incl)
	}
}

// WritePcap writes packets as a classic pcap file of Ethernet frames
// (microsecond times, little-endian).
func WritePcap(w io.Writer, pkts [][]byte) error {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h, pcapMagicUs)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], pcapMaxSnap)
	binary.LittleEndian.PutUint32(h[20:], linktypeEthernet)
	if _, err := w.Write(h); err != nil {
		return err
	}
	for i, p := range pkts {
		rh := make([]byte, 16)
		binary.LittleEndian.PutUint32(rh, uint32(i))
		binary.LittleEndian.PutUint32(rh[8:], uint32(len(p)))
		binary.LittleEndian.PutUint32(rh[12:], uint32(len(p)))
		if _, err := w.Write(append(rh, p...)); err != nil {
			return err
		}
	}
	return nil
}

// RunPcap runs the program once per packet of the pcap file (each packet
// its data_in), on the session: the runs see each other's map updates,
// as a kernel running the program on the packets in order would. Each
// result's MapChanges are the session's so far; the error is the first
// run's that failed.
func (s *Session) RunPcap(p *Prog, r io.Reader, ro RunOptions) ([]*Result, error) {
	pkts, err := ReadPcap(r)
	if err != nil {
		return nil, err
	}
	var out []*Result
	for _, pk := range pkts {
		o := ro
		o.DataIn = pk.Data
		res, err := s.Run(p, o)
		if res != nil {
			out = append(out, res)
		}
		if err != nil {
			return out, fmt.Errorf("packet %d: %w", pk.Index, err)
		}
	}
	return out, nil
}
