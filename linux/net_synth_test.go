package linux

import (
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// TestReadNetSynthetic: ReadNet over socket tables laid out as 6.1's
// include/net/sock.h, inet_hashtables.h, udp.h, raw.h, af_unix.h and
// net_namespace.h name them: each table's sockets, in /proc/net's order
// and columns.
func TestReadNetSynthetic(t *testing.T) {
	b := sk.NewBTF()
	m := sk.NewMem()
	syms := sk.Syms{}
	lh := b.ListHead()
	hh := b.HlistHead()
	hn := b.HlistNode()
	hnn := b.Decl("hlist_nulls_node")
	b.Struct("hlist_nulls_node", sk.F("next", sk.Ptr(hnn)), sk.F("pprev", sk.Ptr(sk.Ptr(hnn))))
	hnh := b.Struct("hlist_nulls_head", sk.F("first", sk.Ptr(hnn)))
	netT := b.Decl("net")
	in6 := b.Struct("in6_addr", sk.F("s6_addr", b.Array(b.U8, 16)))
	ref := b.Refcount()
	atomic := b.Atomic()
	sc := b.Struct("sock_common",
		sk.F("skc_daddr", b.U32), sk.F("skc_rcv_saddr", b.U32),
		sk.F("skc_dport", b.U16), sk.F("skc_num", b.U16),
		sk.F("skc_family", b.U16), sk.F("skc_state", b.U8),
		sk.F("", b.Union("", sk.F("skc_node", hn), sk.F("skc_nulls_node", hnn))),
		sk.F("skc_net", b.Struct("possible_net_t", sk.F("net", sk.Ptr(netT)))),
		sk.F("skc_v6_daddr", in6), sk.F("skc_v6_rcv_saddr", in6),
		sk.F("skc_refcnt", ref))
	socketT := b.Decl("socket")
	sock := b.Struct("sock", sk.F("__sk_common", sc), sk.F("sk_socket", sk.Ptr(socketT)),
		sk.F("sk_uid", b.Struct("kuid_t", sk.F("val", b.U32))), sk.F("sk_type", b.U16),
		sk.F("sk_ack_backlog", b.U32), sk.F("sk_wmem_alloc", ref),
		sk.F("sk_backlog", sk.AnonStruct(sk.F("rmem_alloc", atomic))))
	tcp := b.Struct("tcp_sock", sk.F("sk", sock), sk.F("write_seq", b.U32), sk.F("snd_una", b.U32),
		sk.F("rcv_nxt", b.U32), sk.F("copied_seq", b.U32))
	b.Struct("socket", sk.F("state", b.Int), sk.F("sk", sk.Ptr(sock)))
	inode := b.Struct("inode", sk.F("i_mode", b.U16), sk.F("i_ino", b.ULong))
	salloc := b.Struct("socket_alloc", sk.F("socket", socketT), sk.F("vfs_inode", inode))
	sun := b.Struct("sockaddr_un", sk.F("sun_family", b.U16), sk.F("sun_path", b.Array(b.Char, 108)))
	uaddr := b.Struct("unix_address", sk.F("refcnt", ref), sk.F("len", b.Int), sk.F("name", b.Array(sun, 0)))
	usock := b.Struct("unix_sock", sk.F("sk", sock), sk.F("addr", sk.Ptr(uaddr)))
	ehb := b.Struct("inet_ehash_bucket", sk.F("chain", hnh))
	lhb := b.Struct("inet_listen_hashbucket", sk.F("lock", b.U32), sk.F("nulls_head", hnh))
	hinfo := b.Struct("inet_hashinfo", sk.F("ehash", sk.Ptr(ehb)), sk.F("ehash_mask", b.U32),
		sk.F("lhash2", sk.Ptr(lhb)), sk.F("lhash2_mask", b.U32))
	slot := b.Struct("udp_hslot", sk.F("head", hh), sk.F("count", b.Int))
	utable := b.Struct("udp_table", sk.F("hash", sk.Ptr(slot)), sk.F("mask", b.U32))
	rawh := b.Struct("raw_hashinfo", sk.F("lock", b.U32), sk.F("ht", b.Array(hnh, 256)))
	b.Struct("net_device", sk.F("dev_list", lh))
	b.Struct("net", sk.F("list", lh), sk.F("dev_base_head", lh), sk.F("ns", b.Struct("ns_common", sk.F("inum", b.U32))),
		sk.F("unx", b.Struct("netns_unix", sk.F("table", b.Struct("unix_table", sk.F("locks", b.VoidPtr), sk.F("buckets", sk.Ptr(hh)))))))

	// init_net alone on net_namespace_list.
	net := m.New(netT)
	head := m.New(lh)
	syms["init_net"], syms["net_namespace_list"] = net.Addr, head.Addr
	head.Set("next", net.At("list")).Set("prev", net.At("list"))
	net.Set("list.next", head.Addr).Set("list.prev", head.Addr).Set("ns.inum", 4026531840)
	net.Set("dev_base_head.next", net.At("dev_base_head")).Set("dev_base_head.prev", net.At("dev_base_head")) // no device

	// Tables: ehash of 16 buckets, lhash2 of 8, udp of 128 slots, raw, unix.
	hi := m.New(hinfo)
	syms["tcp_hashinfo"] = hi.Addr
	eh := m.Alloc(16 * 8)
	lhs := m.Alloc(8 * 16)
	hi.Set("ehash", eh).Set("ehash_mask", 15).Set("lhash2", lhs).Set("lhash2_mask", 7)
	for i := range uint64(16) {
		m.U64(eh+i*8, i<<1|1) // nulls markers
	}
	for i := range uint64(8) {
		m.U64(lhs+i*16+8, i<<1|1)
	}
	ut := m.New(utable)
	syms["udp_table"] = ut.Addr
	slots := m.Alloc(128 * 16)
	ut.Set("hash", slots).Set("mask", 127)
	rh := m.New(rawh)
	syms["raw_v4_hashinfo"] = rh.Addr
	for i := range uint64(256) {
		m.U64(rh.At("ht")+i*8, i<<1|1)
	}
	ub := m.Alloc(512 * 8)
	net.Set("unx.table.buckets", ub)

	nodeOff := uint64(sc.Members[6].Offset.Bytes()) // the anonymous union of skc_node, skc_nulls_node
	// nulls links sockets' skc_nulls_nodes into the hlist_nulls at head,
	// ended by the nulls marker end.
	nulls := func(head, end uint64, socks ...sk.Obj) {
		link := head
		for _, o := range socks {
			n := o.Addr + nodeOff
			m.U64(link, n)
			m.U64(n+8, link)
			link = n
		}
		m.U64(link, end)
	}
	// newSock is a socket of struct typ with a struct socket of inode ino.
	newSock := func(typ any, ino, uid uint64) (sk.Obj, sk.Obj) {
		var o sk.Obj
		switch typ {
		case "tcp":
			o = m.New(tcp)
		case "unix":
			o = m.New(usock)
		default:
			o = m.New(sock)
		}
		s := m.Obj(sock, o.Addr)
		s.Set("__sk_common.skc_net.net", net.Addr)
		if ino != 0 {
			sa := m.New(salloc)
			sa.Set("socket.sk", o.Addr).Set("vfs_inode.i_ino", ino)
			s.Set("sk_socket", sa.At("socket")).Set("sk_uid.val", uid)
		}
		return o, s
	}
	be16 := func(v uint64) uint64 { return v>>8 | v<<8&0xff00 }

	// A TCP listener on 0.0.0.0:22 (2 connections to accept), one on
	// [::1]:8080, in lhash2[3].
	_, l4 := newSock("tcp", 100, 0)
	l4.Set("__sk_common.skc_family", 2).Set("__sk_common.skc_state", 10).Set("__sk_common.skc_num", 22).Set("sk_ack_backlog", 2)
	_, l6 := newSock("tcp", 105, 0)
	l6.Set("__sk_common.skc_family", 10).Set("__sk_common.skc_state", 10).Set("__sk_common.skc_num", 8080)
	l6.Bytes("__sk_common.skc_v6_rcv_saddr", []byte{15: 1})
	nulls(lhs+3*16+8, 3<<1|1, l4, l6)
	// 10.0.2.15:34567 -> 93.184.216.34:443 established (100 bytes unacked,
	// 30 unread), then a time-wait socket of the same pair's next port, in
	// ehash[5].
	e, es := newSock("tcp", 101, 1000)
	es.Set("__sk_common.skc_family", 2).Set("__sk_common.skc_state", 1).Set("__sk_common.skc_num", 34567).
		Set("__sk_common.skc_dport", be16(443)).Set("__sk_common.skc_rcv_saddr", 0x0F02000A).Set("__sk_common.skc_daddr", 0x22D8B85D)
	e.Set("write_seq", 1000).Set("snd_una", 900).Set("rcv_nxt", 50).Set("copied_seq", 20)
	tw := m.New(sc)
	tw.Set("skc_family", 2).Set("skc_state", 6).Set("skc_num", 34568).Set("skc_dport", be16(443)).
		Set("skc_rcv_saddr", 0x0F02000A).Set("skc_daddr", 0x22D8B85D).Set("skc_net.net", net.Addr)
	nulls(eh+5*8, 5<<1|1, es, tw)
	// UDP 0.0.0.0:53, 1 byte of wmem (none queued), 768 bytes received.
	_, u := newSock("", 102, 101)
	u.Set("__sk_common.skc_family", 2).Set("__sk_common.skc_state", 7).Set("__sk_common.skc_num", 53).
		Set("sk_wmem_alloc.refs.counter", 1).Set("sk_backlog.rmem_alloc.counter", 768)
	m.Hlist(slots+53*16, u.Addr+nodeOff)
	// A raw ICMP socket (skc_num 1).
	_, r := newSock("", 106, 0)
	r.Set("__sk_common.skc_family", 2).Set("__sk_common.skc_state", 7).Set("__sk_common.skc_num", 1).Set("sk_wmem_alloc.refs.counter", 1)
	nulls(rh.At("ht")+1*8, 1<<1|1, r)
	// unix: a stream listener at /run/x.sock, a datagram socket bound to
	// the abstract "\0abc", in buckets 7 and 300.
	un1, us1 := newSock("unix", 103, 0)
	us1.Set("__sk_common.skc_family", 1).Set("__sk_common.skc_state", 10).Set("sk_type", 1).Set("__sk_common.skc_refcnt.refs.counter", 2)
	ua := m.Obj(uaddr, m.Alloc(uint64(uaddr.Size)+112))
	ua.Set("len", uint64(2+len("/run/x.sock")+1))
	m.U16(ua.At("name"), 1)
	m.String(ua.At("name")+2, "/run/x.sock")
	un1.Set("addr", ua.Addr)
	un2, us2 := newSock("unix", 104, 0)
	us2.Set("__sk_common.skc_family", 1).Set("__sk_common.skc_state", 7).Set("sk_type", 2).Set("__sk_common.skc_refcnt.refs.counter", 1)
	ub2 := m.Obj(uaddr, m.Alloc(uint64(uaddr.Size)+112))
	ub2.Set("len", 2+4)
	m.Write(ub2.At("name"), []byte{1, 0, 0, 'a', 'b', 'c'})
	un2.Set("addr", ub2.Addr)
	m.Hlist(ub+7*8, un1.Addr+nodeOff)
	m.Hlist(ub+300*8, un2.Addr+nodeOff)

	p := objects.NewProgram(m, b.Spec(t), syms, objects.WithLimit(1000))
	n, err := ReadNet(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Namespaces) != 1 || !n.Namespaces[0].Init || n.Namespaces[0].Inode != 4026531840 {
		t.Errorf("namespaces: %+v", n.Namespaces)
	}
	var got []string
	for _, s := range n.Sockets {
		if s.Error != "" || s.NetInode != 4026531840 {
			t.Errorf("%+v", s)
		}
		got = append(got, s.Proto+" "+s.ProcLine)
	}
	want := []string{
		"tcp 00000000:0016 00000000:0000 0A 00000000:00000002     0 100",
		"tcp6 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000     0 105",
		"tcp 0F02000A:8707 22D8B85D:01BB 01 00000064:0000001E  1000 101",
		"tcp 0F02000A:8708 22D8B85D:01BB 06 00000000:00000000     0 0",
		"udp 00000000:0035 00000000:0000 07 00000000:00000300   101 102",
		"raw 00000000:0001 00000000:0000 07 00000000:00000000     0 106",
		"unix 00000002 00000000 00010000 0001 01   103 /run/x.sock",
		"unix 00000001 00000000 00000000 0002 01   104 @abc",
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("sockets:\n%s\nwant:\n%s", g, w)
	}
	for _, s := range n.Sockets {
		if s.Proto == "tcp" && s.State == 1 && (s.Local != "10.0.2.15" || s.Remote != "93.184.216.34" || s.RemotePort != 443) {
			t.Errorf("established: %+v", s)
		}
		if s.Proto == "tcp6" && s.Local != "0:0:0:0:0:0:0:1" {
			t.Errorf("tcp6 local %q", s.Local)
		}
	}
	// A cycle in a chain is an error, with what was read.
	m.U64(u.Addr+nodeOff, u.Addr+nodeOff)
	if _, err := ReadNet(p); err == nil || !strings.Contains(err.Error(), "udp_table.hash[53]") {
		t.Errorf("cycle: %v", err)
	}
}
