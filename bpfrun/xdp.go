package bpfrun

import (
	"fmt"

	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/objects"
)

// The context BPF_PROG_TEST_RUN builds for XDP programs
// (bpf_prog_test_run_xdp, without BPF_F_TEST_XDP_LIVE_FRAMES): a struct
// xdp_buff over a page holding XDP_PACKET_HEADROOM, data_in and the
// shared info's tailroom, on the loopback device's first rx queue; the
// struct xdp_md of ctx_in sets the metadata's length and the rx queue.

const (
	xdpPacketHeadroom = 256 // XDP_PACKET_HEADROOM
	xdpMetaMax        = 32  // xdp_metalen_invalid: at most 32, a multiple of 4
	rxqRegistered     = 1   // REG_STATE_REGISTERED
	xdpFlagsHasFrags  = 1   // XDP_FLAGS_HAS_FRAGS
)

type xdpLayout struct {
	buf                                              *fields
	data, dataEnd, dataMeta, hardStart, rxq, frameSz field
	flags                                            field
	md                                               *fields
	mdData, mdDataEnd, mdDataMeta, mdIngress, mdRxQ  field
	mdEgress                                         field
	frameSize                                        int64 // sizeof(struct xdp_frame)
	rxqRegState, rxqDev, rxqIndex                    field
}

func readXDPLayout(p *objects.Program) (*xdpLayout, error) {
	var err error
	l := &xdpLayout{buf: newFields(p, "struct xdp_buff"), md: newFields(p, "struct xdp_md")}
	b, m := l.buf, l.md
	l.data, l.dataEnd, l.dataMeta, l.hardStart = b.must("data", &err), b.must("data_end", &err), b.must("data_meta", &err), b.must("data_hard_start", &err)
	l.rxq, l.frameSz, l.flags = b.must("rxq", &err), b.must("frame_sz", &err), b.get("flags")
	l.mdData, l.mdDataEnd, l.mdDataMeta = m.must("data", &err), m.must("data_end", &err), m.must("data_meta", &err)
	l.mdIngress, l.mdRxQ, l.mdEgress = m.must("ingress_ifindex", &err), m.must("rx_queue_index", &err), m.get("egress_ifindex")
	l.frameSize = newFields(p, "struct xdp_frame").size
	q := newFields(p, "struct xdp_rxq_info")
	l.rxqRegState, l.rxqDev, l.rxqIndex = q.must("reg_state", &err), q.must("dev", &err), q.must("queue_index", &err)
	if err == nil && (b.size <= 0 || m.size <= 0 || l.frameSize <= 0) {
		err = fmt.Errorf("struct xdp_buff, xdp_md or xdp_frame: no size: %w", ErrNotSupported)
	}
	return l, err
}

func (s *Session) xdpLayout() (*xdpLayout, error) {
	r := s.r
	r.xdpOnce.Do(func() { r.xdpLay, r.xdpErr = readXDPLayout(r.prog) })
	return r.xdpLay, r.xdpErr
}

// xdpCtx is a built XDP context.
type xdpCtx struct {
	l    *xdpLayout
	xdp  *bpfvm.Region // the struct xdp_buff
	page *bpfvm.Region
	user []byte // the xdp_md of ctx_in (nil without)
}

// rxQueue is &dev->_rx[index].xdp_rxq, with the number of queues.
func (s *Session) rxQueue(dev uint64, index uint32) (uint64, error) {
	sl, err := s.skbLayout()
	if err != nil {
		return 0, err
	}
	if !sl.devRx.ok() || !sl.rxqXDP.ok() || sl.netdevRxSize <= 0 {
		return 0, fmt.Errorf("net_device._rx: %w", ErrNotSupported)
	}
	if sl.devNumRx.ok() {
		n, err := s.u32(dev + uint64(sl.devNumRx.off))
		if err != nil {
			return 0, err
		}
		if index >= n {
			return 0, fmt.Errorf("rx_queue_index %d of a device with %d: %w", index, n, ErrInvalid)
		}
	}
	rx, err := s.u64(dev + uint64(sl.devRx.off))
	if err != nil {
		return 0, err
	}
	return rx + uint64(index)*uint64(sl.netdevRxSize) + uint64(sl.rxqXDP.off), nil
}

// buildXDP builds the context of bpf_prog_test_run_xdp.
func (s *Session) buildXDP(dataIn, ctxIn []byte, hasCtx bool) (*xdpCtx, error) {
	l, err := s.xdpLayout()
	if err != nil {
		return nil, err
	}
	sl, err := s.skbLayout()
	if err != nil {
		return nil, err
	}
	c := &xdpCtx{l: l}
	headroom := int64(xdpPacketHeadroom)
	tailroom := skbDataAlign(sl.shinfo.size)
	size := int64(len(dataIn))
	var meta uint64
	if hasCtx {
		c.user = make([]byte, l.md.size)
		if int64(len(ctxIn)) > l.md.size && !allZero(ctxIn[l.md.size:]) {
			return nil, fmt.Errorf("ctx_in of %d bytes: non-zero bytes beyond struct xdp_md's %d (the kernel's -E2BIG): %w", len(ctxIn), l.md.size, ErrInvalid)
		}
		copy(c.user, ctxIn)
		u := c.user
		meta = l.mdData.get(u)
		if l.mdDataMeta.get(u) != 0 || l.mdDataEnd.get(u) != uint64(size) || meta > l.mdDataEnd.get(u) || meta > xdpMetaMax || meta%4 != 0 {
			return nil, fmt.Errorf("ctx_in: xdp_md data %d, data_end %d, data_meta %d for %d bytes of data: %w",
				meta, l.mdDataEnd.get(u), l.mdDataMeta.get(u), size, ErrInvalid)
		}
		headroom -= int64(meta)
	}
	maxData := pageSize - headroom - tailroom
	if size > maxData {
		return nil, fmt.Errorf("data_in of %d bytes: more than the %d of one page (the kernel's fragments are not replayed): %w", size, maxData, ErrNotSupported)
	}
	if size < ethHLen {
		return nil, fmt.Errorf("data_in of %d bytes: fewer than an Ethernet header: %w", size, ErrInvalid)
	}
	if c.page, err = s.m.Alloc("xdp data", int(headroom+maxData+tailroom), false); err != nil {
		return nil, err
	}
	if c.xdp, err = s.m.Alloc("struct xdp_buff", int(l.buf.size), false); err != nil {
		return nil, err
	}
	copy(c.page.Bytes()[headroom:], dataIn)
	dev, err := s.netDevice(1)
	if err != nil {
		return nil, err
	}
	rxq, err := s.rxQueue(dev, 0)
	if err != nil {
		return nil, err
	}
	b, start := c.xdp.Bytes(), c.page.Addr
	data := start + uint64(headroom)
	l.hardStart.put(b, start)
	l.data.put(b, data)
	l.dataMeta.put(b, data)
	l.dataEnd.put(b, data+uint64(size))
	l.frameSz.put(b, uint64(headroom+maxData+tailroom))
	if c.user != nil {
		// xdp_convert_md_to_buff.
		u := c.user
		if l.mdEgress.get(u) != 0 {
			return nil, fmt.Errorf("ctx_in: egress_ifindex is set: %w", ErrInvalid)
		}
		ifx, qi := uint32(l.mdIngress.get(u)), uint32(l.mdRxQ.get(u))
		if ifx == 0 && qi != 0 {
			return nil, fmt.Errorf("ctx_in: rx_queue_index %d without ingress_ifindex: %w", qi, ErrInvalid)
		}
		if ifx != 0 {
			d, err := s.netDevice(ifx)
			if err != nil {
				return nil, err
			}
			if rxq, err = s.rxQueue(d, qi); err != nil {
				return nil, err
			}
			if st, err := s.u32(rxq + uint64(l.rxqRegState.off)); err != nil || st != rxqRegistered {
				return nil, fmt.Errorf("ctx_in: rx queue %d of ifindex %d is not registered for XDP: %w", qi, ifx, ErrInvalid)
			}
		}
		l.data.put(b, data+meta)
	}
	l.rxq.put(b, rxq)
	return c, nil
}

// finishXDP returns data_out (from data_meta to data_end) and ctx_out
// (xdp_convert_buff_to_md).
func (s *Session) finishXDP(c *xdpCtx) (dataOut, ctxOut []byte, err error) {
	l, b := c.l, c.xdp.Bytes()
	meta, data, end := l.dataMeta.get(b), l.data.get(b), l.dataEnd.get(b)
	if end < meta || end-meta > pageSize {
		return nil, nil, fmt.Errorf("xdp_buff left with data_meta %#x, data_end %#x", meta, end)
	}
	dataOut = make([]byte, end-meta)
	if err := s.m.Read(meta, dataOut); err != nil {
		return nil, nil, err
	}
	if c.user != nil {
		u := c.user
		l.mdData.put(u, data-meta)
		l.mdDataEnd.put(u, end-meta)
		ctxOut = append([]byte(nil), u...)
	}
	return dataOut, ctxOut, nil
}
