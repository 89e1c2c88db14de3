package bpfrun

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/objects"
)

// The context BPF_PROG_TEST_RUN builds for socket filter, cgroup skb, tc
// and lwt programs (net/bpf/test_run.c bpf_prog_test_run_skb): a struct
// sk_buff over a kzalloc'ed buffer holding data_in, as build_skb,
// skb_reserve, __skb_put and eth_type_trans leave it, with a struct sock
// and the netns's loopback device; the __sk_buff of ctx_in copied in
// (convert___skb_to_skb) and out (convert_skb_to___skb).

// Constants of x86-64 kernels (include/linux/skbuff.h, if_ether.h).
const (
	ethHLen       = 14   // ETH_HLEN
	netSKBPad     = 64   // NET_SKB_PAD: max(32, L1_CACHE_BYTES)
	netIPAlign    = 0    // NET_IP_ALIGN on x86
	smpCacheBytes = 64   // SMP_CACHE_BYTES, SKB_DATA_ALIGN's
	pageSize      = 4096 // PAGE_SIZE
	gsoMaxSegs    = 65535
	gsoLegacyMax  = 65536
	ethP8023Min   = 0x0600 // ETH_P_802_3_MIN
	ethP8023      = 0x0001
	ethP8022      = 0x0004
	ethPIP        = 0x0800
	ethPIPv6      = 0x86dd
	afInet        = 2
	afInet6       = 10
	tcpClose      = 7 // TCP_CLOSE
	packetHost    = 0 // PACKET_HOST
	packetBcast   = 1
	packetMcast   = 2
	packetOther   = 3
)

func skbDataAlign(n int64) int64 { return (n + smpCacheBytes - 1) &^ (smpCacheBytes - 1) }

// kmallocSize is ksize of a kmalloc of n bytes: the kmalloc cache's size
// (kmalloc-8 ... kmalloc-8k, with kmalloc-96 and -192).
func kmallocSize(n int64) int64 {
	for _, c := range []int64{8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192} {
		if n <= c {
			return c
		}
	}
	return (n + pageSize - 1) &^ (pageSize - 1)
}

// skbLayout is what the skb context needs of the kernel's structures.
type skbLayout struct {
	skb                                                                *fields
	len, dataLen, head, data, tail, end, dev, sk, protocol, mark, prio field
	skbIIF, tstamp, cb, mac, network, transport, pktType, hash, l4, sw field
	truesize, users, allocCPU                                          field
	cbPktLen, cbData, cbDataMeta, cbDataEnd                            field
	shinfo                                                             *fields
	gsoSegs, gsoSize, hwtstamp, dataref                                field
	u                                                                  *fields
	uMark, uPrio, uIngress, uIfindex, uCb, uTstamp, uWireLen, uGsoSegs field
	uGsoSize, uHwtstamp                                                field
	sock                                                               *fields
	skFamily, skDaddr, skRcvSaddr, skV6Daddr, skV6RcvSaddr, skState    field
	devIfindex, devDevAddr, devBroadcast, devRx, devNumRx, rxqXDP      field
	netdevRxSize                                                       int64
}

func readSKBLayout(p *objects.Program) (*skbLayout, error) {
	var err error
	l := &skbLayout{skb: newFields(p, "struct sk_buff")}
	s := l.skb
	if s.err != nil {
		return nil, fmt.Errorf("struct sk_buff: %w", s.err)
	}
	l.len, l.dataLen, l.head, l.data = s.must("len", &err), s.must("data_len", &err), s.must("head", &err), s.must("data", &err)
	l.tail, l.end, l.dev, l.sk = s.must("tail", &err), s.must("end", &err), s.must("dev", &err), s.must("sk", &err)
	l.protocol, l.mark, l.prio, l.skbIIF = s.must("protocol", &err), s.must("mark", &err), s.must("priority", &err), s.must("skb_iif", &err)
	l.tstamp, l.cb, l.mac, l.network = s.must("tstamp", &err), s.must("cb", &err), s.must("mac_header", &err), s.must("network_header", &err)
	l.transport, l.pktType = s.must("transport_header", &err), s.must("pkt_type", &err)
	l.hash, l.l4, l.sw = s.get("hash"), s.get("l4_hash"), s.get("sw_hash")
	l.truesize, l.users, l.allocCPU = s.get("truesize"), s.get("users"), s.get("alloc_cpu")
	// skb->cb as struct qdisc_skb_cb (net/sch_generic.h) and struct
	// bpf_skb_data_end (include/linux/filter.h), which begins with one.
	q := newFields(p, "struct qdisc_skb_cb")
	l.cbPktLen, l.cbData = q.must("pkt_len", &err), q.must("data", &err)
	d := newFields(p, "struct bpf_skb_data_end")
	l.cbDataMeta, l.cbDataEnd = d.must("data_meta", &err), d.must("data_end", &err)
	l.shinfo = newFields(p, "struct skb_shared_info")
	sh := l.shinfo
	l.gsoSegs, l.gsoSize, l.hwtstamp, l.dataref = sh.must("gso_segs", &err), sh.must("gso_size", &err), sh.get("hwtstamps.hwtstamp"), sh.get("dataref")
	l.u = newFields(p, "struct __sk_buff")
	u := l.u
	l.uMark, l.uPrio, l.uIngress, l.uIfindex = u.must("mark", &err), u.must("priority", &err), u.must("ingress_ifindex", &err), u.must("ifindex", &err)
	l.uCb, l.uTstamp, l.uWireLen, l.uGsoSegs = u.must("cb", &err), u.must("tstamp", &err), u.must("wire_len", &err), u.must("gso_segs", &err)
	l.uGsoSize, l.uHwtstamp = u.get("gso_size"), u.get("hwtstamp")
	l.sock = newFields(p, "struct sock")
	k := l.sock
	l.skFamily, l.skDaddr, l.skRcvSaddr, l.skState = k.must("__sk_common.skc_family", &err), k.must("__sk_common.skc_daddr", &err),
		k.must("__sk_common.skc_rcv_saddr", &err), k.must("__sk_common.skc_state", &err)
	l.skV6Daddr, l.skV6RcvSaddr = k.get("__sk_common.skc_v6_daddr"), k.get("__sk_common.skc_v6_rcv_saddr")
	dv := newFields(p, "struct net_device")
	l.devIfindex, l.devDevAddr, l.devBroadcast = dv.must("ifindex", &err), dv.must("dev_addr", &err), dv.must("broadcast", &err)
	l.devRx, l.devNumRx = dv.get("_rx"), dv.get("real_num_rx_queues")
	rq := newFields(p, "struct netdev_rx_queue")
	l.rxqXDP, l.netdevRxSize = rq.get("xdp_rxq"), rq.size
	if err == nil && (s.size <= 0 || sh.size <= 0 || u.size <= 0 || k.size <= 0) {
		err = fmt.Errorf("struct sk_buff, skb_shared_info, __sk_buff or sock: no size: %w", ErrNotSupported)
	}
	return l, err
}

// skbCtx is a built skb context.
type skbCtx struct {
	l       *skbLayout
	skb     *bpfvm.Region // the struct sk_buff
	buf     *bpfvm.Region // its head
	sock    *bpfvm.Region
	user    []byte // the __sk_buff of ctx_in (nil without)
	isL2    bool
	dev     uint64
	headLen int64 // bytes of the buffer before the shared info (skb->end)
}

// Program types (enum bpf_prog_type) BPF_PROG_TEST_RUN runs with an skb.
const (
	progSocketFilter  = 1
	progSchedCLS      = 3
	progSchedACT      = 4
	progXDP           = 6
	progCgroupSKB     = 8
	progLWTIn         = 10
	progLWTOut        = 11
	progLWTXmit       = 12
	progRawTP         = 17
	progLWTSeg6       = 19
	progFlowDiss      = 22
	progRawTPWritable = 24
)

// loopback is the netns's loopback device, or the device of ifindex.
func (s *Session) netDevice(ifindex uint32) (uint64, error) {
	p := s.r.prog
	lo, err := p.Eval("init_net.loopback_dev")
	if err != nil {
		return 0, fmt.Errorf("the loopback device: %w", err)
	}
	loAddr, err := lo.Uint()
	if err != nil {
		return 0, err
	}
	if ifindex <= 1 {
		return loAddr, nil
	}
	head, err := p.Eval("init_net.dev_base_head")
	if err != nil {
		return 0, err
	}
	for n, err := range objects.ListForEachEntry(head, "struct net_device", "dev_list") {
		if err != nil {
			return 0, err
		}
		if x, err := n.MemberUint("ifindex"); err == nil && uint32(x) == ifindex {
			return n.Addr(), nil
		}
	}
	return 0, fmt.Errorf("no device with ifindex %d in init_net (the kernel's -ENODEV): %w", ifindex, ErrInvalid)
}

func (s *Session) skbLayout() (*skbLayout, error) {
	r := s.r
	r.ctxOnce.Do(func() { r.skbLay, r.skbErr = readSKBLayout(r.prog) })
	return r.skbLay, r.skbErr
}

// buildSKB builds the context of bpf_prog_test_run_skb.
func (s *Session) buildSKB(typ uint32, dataIn, ctxIn []byte, hasCtx bool) (*skbCtx, error) {
	l, err := s.skbLayout()
	if err != nil {
		return nil, err
	}
	c := &skbCtx{l: l}
	switch typ {
	case progSchedCLS, progSchedACT:
		c.isL2 = true
	}
	directPkt := c.isL2 || typ == progLWTIn || typ == progLWTOut || typ == progLWTXmit
	headroom := int64(netSKBPad + netIPAlign)
	tailroom := skbDataAlign(l.shinfo.size)
	size := int64(len(dataIn))
	if size < ethHLen || size > pageSize-headroom-tailroom {
		return nil, fmt.Errorf("data_in of %d bytes: the kernel takes %d to %d: %w", size, ethHLen, pageSize-headroom-tailroom, ErrInvalid)
	}
	// The __sk_buff of ctx_in (bpf_ctx_init): zeros beyond the struct.
	if hasCtx {
		c.user = make([]byte, l.u.size)
		if int64(len(ctxIn)) > l.u.size && !allZero(ctxIn[l.u.size:]) {
			return nil, fmt.Errorf("ctx_in of %d bytes: non-zero bytes beyond struct __sk_buff's %d (the kernel's -E2BIG): %w", len(ctxIn), l.u.size, ErrInvalid)
		}
		copy(c.user, ctxIn)
	}
	// kzalloc(size + headroom + tailroom), whose ksize build_skb uses.
	alloc := kmallocSize(size + headroom + tailroom)
	if c.buf, err = s.m.Alloc("skb data", int(alloc), false); err != nil {
		return nil, err
	}
	if c.skb, err = s.m.Alloc("struct sk_buff", int(l.skb.size), false); err != nil {
		return nil, err
	}
	if c.sock, err = s.m.Alloc("struct sock", int(l.sock.size), false); err != nil {
		return nil, err
	}
	b, head := c.skb.Bytes(), c.buf.Addr
	c.headLen = alloc - tailroom
	// __build_skb_around.
	l.truesize.put(b, uint64(c.headLen+skbDataAlign(l.skb.size)+tailroom))
	l.users.put(b, 1)
	l.head.put(b, head)
	l.data.put(b, head)
	l.tail.put(b, 0)
	l.end.put(b, uint64(c.headLen))
	l.mac.put(b, 0xffff)
	l.transport.put(b, 0xffff)
	l.allocCPU.put(b, uint64(s.opts.CPU))
	l.dataref.put(c.buf.Bytes()[c.headLen:], 1)
	l.sk.put(b, c.sock.Addr)
	// sock_init_data.
	l.skState.put(c.sock.Bytes(), tcpClose)
	// skb_reserve, __skb_put.
	data := head + uint64(headroom)
	copy(c.buf.Bytes()[headroom:], dataIn)
	l.data.put(b, data)
	l.tail.put(b, uint64(headroom+size))
	l.len.put(b, uint64(size))
	var ifindex uint32
	if c.user != nil {
		ifindex = uint32(l.uIfindex.get(c.user))
	}
	if c.dev, err = s.netDevice(ifindex); err != nil {
		return nil, err
	}
	// eth_type_trans.
	proto, pktType, err := s.ethTypeTrans(dataIn, c.dev)
	if err != nil {
		return nil, err
	}
	l.dev.put(b, c.dev)
	l.mac.put(b, uint64(headroom))
	data += ethHLen
	l.data.put(b, data)
	l.len.put(b, uint64(size-ethHLen))
	l.pktType.put(b, pktType)
	l.protocol.put(b, uint64(proto))
	l.network.put(b, uint64(headroom+ethHLen))
	// The sock's family and addresses from the IP header.
	net := dataIn[ethHLen:]
	sk := c.sock.Bytes()
	switch binary.BigEndian.Uint16(dataIn[12:]) {
	case ethPIP:
		l.skFamily.put(sk, afInet)
		if len(net) >= 20 {
			l.skRcvSaddr.put(sk, uint64(binary.LittleEndian.Uint32(net[12:])))
			l.skDaddr.put(sk, uint64(binary.LittleEndian.Uint32(net[16:])))
		}
	case ethPIPv6:
		l.skFamily.put(sk, afInet6)
		if len(net) >= 40 && l.skV6RcvSaddr.ok() && l.skV6Daddr.ok() {
			copy(sk[l.skV6RcvSaddr.off:], net[8:24])
			copy(sk[l.skV6Daddr.off:], net[24:40])
		}
	}
	if c.isL2 {
		data -= ethHLen
		l.data.put(b, data)
		l.len.put(b, uint64(size))
	}
	if directPkt {
		// bpf_compute_data_pointers.
		cb := b[l.cb.off:]
		l.cbDataMeta.put(cb, data)
		l.cbDataEnd.put(cb, data+l.len.get(b))
	}
	if c.user != nil {
		if err := c.fromUser(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ethTypeTrans is eth_type_trans's protocol and pkt_type of a frame
// received on dev.
func (s *Session) ethTypeTrans(frame []byte, dev uint64) (proto uint16, pktType uint64, err error) {
	l, _ := s.skbLayout()
	devAddr := make([]byte, 6)
	bcast := make([]byte, 6)
	// dev_addr is a pointer (5.17+) or an array.
	switch l.devDevAddr.size {
	case 8:
		a, err := s.u64(dev + uint64(l.devDevAddr.off))
		if err != nil {
			return 0, 0, err
		}
		if err := s.m.Read(a, devAddr); err != nil {
			return 0, 0, err
		}
	default:
		if err := s.m.Read(dev+uint64(l.devDevAddr.off), devAddr); err != nil {
			return 0, 0, err
		}
	}
	if err := s.m.Read(dev+uint64(l.devBroadcast.off), bcast); err != nil {
		return 0, 0, err
	}
	dest := frame[:6]
	if !bytes.Equal(dest, devAddr) {
		switch {
		case dest[0]&1 == 0:
			pktType = packetOther
		case bytes.Equal(dest, bcast):
			pktType = packetBcast
		default:
			pktType = packetMcast
		}
	}
	// The protocol stays in network order (__be16), as skb->protocol.
	hp := binary.LittleEndian.Uint16(frame[12:])
	if binary.BigEndian.Uint16(frame[12:]) >= ethP8023Min {
		return hp, pktType, nil
	}
	if len(frame) >= ethHLen+2 && frame[ethHLen] == 0xff && frame[ethHLen+1] == 0xff {
		return swap16(ethP8023), pktType, nil
	}
	return swap16(ethP8022), pktType, nil
}

func swap16(x uint16) uint16 { return x<<8 | x>>8 }

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// fromUser is convert___skb_to_skb: the fields of __sk_buff a test run
// takes, the others must be zero.
func (c *skbCtx) fromUser() error {
	l, u, b := c.l, c.user, c.skb.Bytes()
	allowed := []field{l.uMark, l.uPrio, l.uIngress, l.uIfindex, l.uCb, l.uTstamp, l.uWireLen, l.uGsoSegs, l.uGsoSize, l.uHwtstamp}
	mask := make([]bool, len(u))
	for _, f := range allowed {
		if f.ok() {
			for i := f.off; i < f.off+int64(f.size) && i < int64(len(u)); i++ {
				mask[i] = true
			}
		}
	}
	for i, x := range u {
		if x != 0 && !mask[i] {
			return fmt.Errorf("ctx_in: byte %d of struct __sk_buff is set, a field a test run does not take: %w", i, ErrInvalid)
		}
	}
	l.mark.put(b, l.uMark.get(u))
	l.prio.put(b, l.uPrio.get(u))
	l.skbIIF.put(b, l.uIngress.get(u))
	l.tstamp.put(b, l.uTstamp.get(u))
	cb := b[l.cb.off:]
	copy(cb[l.cbData.off:int(l.cbData.off)+l.cbData.size], l.uCb.bytes(u))
	skbLen := l.len.get(b)
	if w := l.uWireLen.get(u); w == 0 {
		l.cbPktLen.put(cb, skbLen)
	} else {
		if w < skbLen || w > gsoLegacyMax {
			return fmt.Errorf("ctx_in: wire_len %d, the packet's %d bytes to %d: %w", w, skbLen, gsoLegacyMax, ErrInvalid)
		}
		l.cbPktLen.put(cb, w)
	}
	segs := l.uGsoSegs.get(u)
	if segs > gsoMaxSegs {
		return fmt.Errorf("ctx_in: gso_segs %d > %d: %w", segs, gsoMaxSegs, ErrInvalid)
	}
	sh := c.buf.Bytes()[c.headLen:]
	l.gsoSegs.put(sh, segs)
	l.gsoSize.put(sh, l.uGsoSize.get(u))
	l.hwtstamp.put(sh, l.uHwtstamp.get(u))
	return nil
}

// finish undoes what the test run did before running (the Ethernet
// header pushed back, zeroed, for a program that did not get it) and
// returns data_out and ctx_out (convert_skb_to___skb).
func (s *Session) finishSKB(c *skbCtx) (dataOut, ctxOut []byte, err error) {
	l, b := c.l, c.skb.Bytes()
	head, data := l.head.get(b), l.data.get(b)
	length := l.len.get(b) - l.dataLen.get(b)
	if !c.isL2 {
		if data-head < ethHLen {
			return nil, nil, fmt.Errorf("the program left %d bytes of headroom, fewer than the Ethernet header the test run pushes back (pskb_expand_head is not replayed): %w", data-head, ErrNotSupported)
		}
		data -= ethHLen
		length += ethHLen
		l.data.put(b, data)
		l.len.put(b, l.len.get(b)+ethHLen)
		if err := s.m.Write(data, make([]byte, ethHLen)); err != nil {
			return nil, nil, err
		}
	}
	dataOut = make([]byte, length)
	if err := s.m.Read(data, dataOut); err != nil {
		return nil, nil, err
	}
	if c.user != nil {
		u := c.user
		cb := b[l.cb.off:]
		l.uMark.put(u, l.mark.get(b))
		l.uPrio.put(u, l.prio.get(b))
		l.uIngress.put(u, l.skbIIF.get(b))
		dev := l.dev.get(b)
		if ifx, err := s.u32(dev + uint64(l.devIfindex.off)); err == nil {
			l.uIfindex.put(u, uint64(ifx))
		}
		l.uTstamp.put(u, l.tstamp.get(b))
		copy(u[l.uCb.off:int(l.uCb.off)+l.uCb.size], cb[l.cbData.off:int(l.cbData.off)+l.cbData.size])
		l.uWireLen.put(u, l.cbPktLen.get(cb))
		sh := c.buf.Bytes()[c.headLen:]
		l.uGsoSegs.put(u, l.gsoSegs.get(sh))
		l.uHwtstamp.put(u, l.hwtstamp.get(sh))
		ctxOut = append([]byte(nil), u...)
	}
	return dataOut, ctxOut, nil
}
