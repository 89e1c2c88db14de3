package bpfrun

import (
	"fmt"
	"math"

	"github.com/kinspect/kinspect/bpfvm"
)

// The packet helpers of net/core/filter.c on the contexts the test run
// built (a linear skb, a single-buffer xdp_buff).

const (
	eACCES             = 13
	eNOTSUPP           = 524 // ENOTSUPP, the kernel's internal errno
	bpfFRecomputeCsum  = 1
	bpfFInvalidateHash = 2
)

func (s *Session) packetHelpers() map[string]bpfvm.HelperFunc {
	return map[string]bpfvm.HelperFunc{
		"bpf_skb_load_bytes":   s.skbLoadBytes,
		"bpf_skb_store_bytes":  s.skbStoreBytes,
		"bpf_xdp_adjust_head":  s.xdpAdjustHead,
		"bpf_xdp_adjust_tail":  s.xdpAdjustTail,
		"bpf_xdp_adjust_meta":  s.xdpAdjustMeta,
		"bpf_xdp_event_output": s.ctxEventOutput("bpf_xdp_event_output", s.xdpBytes),
		"bpf_skb_event_output": s.ctxEventOutput("bpf_skb_event_output", s.skbBytes),
	}
}

// skbField reads a field of the struct sk_buff at skb.
func (s *Session) skbField(skb uint64, f field) (uint64, error) {
	if f.width > 0 {
		return 0, fmt.Errorf("bitfield read")
	}
	return s.m.ReadUint(skb+uint64(f.off), f.size)
}

// skbHead is the linear data of the skb: skb->data and skb_headlen.
func (s *Session) skbHead(skb uint64) (data uint64, headlen uint64, err error) {
	l, err := s.skbLayout()
	if err != nil {
		return 0, 0, err
	}
	if data, err = s.skbField(skb, l.data); err != nil {
		return 0, 0, err
	}
	length, err := s.skbField(skb, l.len)
	if err != nil {
		return 0, 0, err
	}
	dl, err := s.skbField(skb, l.dataLen)
	if err != nil {
		return 0, 0, err
	}
	return data, uint64(uint32(length - dl)), nil
}

// skbLoadBytes is bpf_skb_load_bytes(skb, offset, to, len): 0, or
// -EFAULT with to cleared.
func (s *Session) skbLoadBytes(_ *bpfvm.Machine, a [5]uint64) (uint64, error) {
	skb, off, to, n := a[0], uint32(a[1]), a[2], uint32(a[3])
	if err := s.m.Check(to, int(n), true); err != nil {
		return 0, err
	}
	data, hl, err := s.skbHead(skb)
	if err != nil {
		return 0, err
	}
	if off > math.MaxInt32 || uint64(off)+uint64(n) > hl {
		return bpfvm.Errno(eFAULT), s.m.Write(to, make([]byte, n))
	}
	b, err := s.bytes(data+uint64(off), int(n))
	if err != nil {
		return 0, err
	}
	return 0, s.m.Write(to, b)
}

// skbStoreBytes is bpf_skb_store_bytes(skb, offset, from, len, flags)
// on a linear skb (the checksum flags change nothing on the test run's
// CHECKSUM_NONE skb; BPF_F_INVALIDATE_HASH clears the hash).
func (s *Session) skbStoreBytes(_ *bpfvm.Machine, a [5]uint64) (uint64, error) {
	skb, off, from, n, flags := a[0], uint32(a[1]), a[2], uint32(a[3]), a[4]
	if flags&^(bpfFRecomputeCsum|bpfFInvalidateHash) != 0 {
		return bpfvm.Errno(eINVAL), nil
	}
	if off > math.MaxInt32 {
		return bpfvm.Errno(eFAULT), nil
	}
	data, hl, err := s.skbHead(skb)
	if err != nil {
		return 0, err
	}
	if uint64(off)+uint64(n) > hl {
		return bpfvm.Errno(eFAULT), nil
	}
	b, err := s.bytes(from, int(n))
	if err != nil {
		return 0, err
	}
	if err := s.m.Write(data+uint64(off), b); err != nil {
		return 0, err
	}
	if flags&bpfFInvalidateHash != 0 {
		l, _ := s.skbLayout()
		if err := s.m.WriteUint(skb+uint64(l.hash.off), 4, 0); err != nil {
			return 0, err
		}
		for _, f := range []field{l.l4, l.sw} {
			if f.ok() {
				v, err := s.m.ReadUint(skb+uint64(f.off), 1)
				if err != nil {
					return 0, err
				}
				if err := s.m.WriteUint(skb+uint64(f.off), 1, v&^(1<<f.bit)); err != nil {
					return 0, err
				}
			}
		}
	}
	return 0, nil
}

// xdpBuf reads the pointers of the struct xdp_buff at x.
type xdpBuf struct {
	hardStart, data, dataEnd, dataMeta uint64
	frameSz, flags                     uint32
}

func (s *Session) readXDP(x uint64) (*xdpLayout, xdpBuf, error) {
	l, err := s.xdpLayout()
	if err != nil {
		return nil, xdpBuf{}, err
	}
	b, err := s.bytes(x, int(l.buf.size))
	if err != nil {
		return nil, xdpBuf{}, err
	}
	return l, xdpBuf{hardStart: l.hardStart.get(b), data: l.data.get(b), dataEnd: l.dataEnd.get(b), dataMeta: l.dataMeta.get(b),
		frameSz: uint32(l.frameSz.get(b)), flags: uint32(l.flags.get(b))}, nil
}

// metalen is xdp_get_metalen: 0 when data_meta is past data (no
// metadata support).
func (x xdpBuf) metalen() uint64 {
	if x.dataMeta > x.data {
		return 0
	}
	return x.data - x.dataMeta
}

// xdpAdjustHead is bpf_xdp_adjust_head(xdp, offset).
func (s *Session) xdpAdjustHead(_ *bpfvm.Machine, a [5]uint64) (uint64, error) {
	l, x, err := s.readXDP(a[0])
	if err != nil {
		return 0, err
	}
	off := int64(int32(a[1]))
	frameEnd := x.hardStart + uint64(l.frameSize)
	metalen := x.metalen()
	data := x.data + uint64(off)
	if data < frameEnd+metalen || data > x.dataEnd-ethHLen {
		return bpfvm.Errno(eINVAL), nil
	}
	if metalen > 0 {
		m, err := s.bytes(x.dataMeta, int(metalen))
		if err != nil {
			return 0, err
		}
		if err := s.m.Write(x.dataMeta+uint64(off), m); err != nil {
			return 0, err
		}
	}
	if err := s.put64(a[0]+uint64(l.dataMeta.off), x.dataMeta+uint64(off)); err != nil {
		return 0, err
	}
	return 0, s.put64(a[0]+uint64(l.data.off), data)
}

// xdpAdjustTail is bpf_xdp_adjust_tail(xdp, offset) of a single buffer.
func (s *Session) xdpAdjustTail(_ *bpfvm.Machine, a [5]uint64) (uint64, error) {
	l, x, err := s.readXDP(a[0])
	if err != nil {
		return 0, err
	}
	if x.flags&xdpFlagsHasFrags != 0 {
		return 0, fmt.Errorf("bpf_xdp_adjust_tail of a multi-buffer xdp_buff: %w", ErrNotSupported)
	}
	sl, err := s.skbLayout()
	if err != nil {
		return 0, err
	}
	off := int64(int32(a[1]))
	hardEnd := x.hardStart + uint64(x.frameSz) - uint64(skbDataAlign(sl.shinfo.size))
	end := x.dataEnd + uint64(off)
	switch {
	case end > hardEnd:
		return bpfvm.Errno(eINVAL), nil
	case x.frameSz > pageSize:
		return bpfvm.Errno(eINVAL), nil
	case end < x.data+ethHLen:
		return bpfvm.Errno(eINVAL), nil
	}
	if off > 0 {
		if err := s.m.Write(x.dataEnd, make([]byte, off)); err != nil {
			return 0, err
		}
	}
	return 0, s.put64(a[0]+uint64(l.dataEnd.off), end)
}

// xdpAdjustMeta is bpf_xdp_adjust_meta(xdp, offset).
func (s *Session) xdpAdjustMeta(_ *bpfvm.Machine, a [5]uint64) (uint64, error) {
	l, x, err := s.readXDP(a[0])
	if err != nil {
		return 0, err
	}
	off := int64(int32(a[1]))
	frameEnd := x.hardStart + uint64(l.frameSize)
	meta := x.dataMeta + uint64(off)
	if x.dataMeta > x.data {
		return bpfvm.Errno(eNOTSUPP), nil
	}
	if meta < frameEnd || meta > x.data {
		return bpfvm.Errno(eINVAL), nil
	}
	if n := x.data - meta; n > xdpMetaMax || n%4 != 0 {
		return bpfvm.Errno(eACCES), nil
	}
	return 0, s.put64(a[0]+uint64(l.dataMeta.off), meta)
}

// xdpBytes reads the first n bytes of the packet an xdp_buff holds
// (bpf_xdp_copy); ok false when it holds fewer.
func (s *Session) xdpBytes(x uint64, n uint64) ([]byte, bool, error) {
	_, b, err := s.readXDP(x)
	if err != nil {
		return nil, false, err
	}
	if n > b.dataEnd-b.data {
		return nil, false, nil
	}
	p, err := s.bytes(b.data, int(n))
	return p, true, err
}

// skbBytes reads the first n bytes of an skb's packet (bpf_skb_copy).
func (s *Session) skbBytes(skb uint64, n uint64) ([]byte, bool, error) {
	data, hl, err := s.skbHead(skb)
	if err != nil {
		return nil, false, err
	}
	if n > hl {
		return nil, false, nil
	}
	p, err := s.bytes(data, int(n))
	return p, true, err
}
