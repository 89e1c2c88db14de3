package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// Walkers of include/net/net_namespace.h and the socket hash tables
// /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix} read: net/ipv4/tcp_ipv4.c
// (tcp_hashinfo's listening and established hashes), net/ipv4/udp.c
// (udp_table), net/ipv4/raw.c (raw_v4_hashinfo, raw_v6_hashinfo) and
// net/unix/af_unix.c (each namespace's unx.table, 5.19+).

// ForEachNet yields each struct net on net_namespace_list
// (for_each_net).
func ForEachNet(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		addr, err := p.Symbol("net_namespace_list")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("net namespaces: %w", err))
			return
		}
		head, err := p.ObjectOf("struct list_head", addr)
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("net namespaces: %w", err))
			return
		}
		for n, err := range objects.ListForEachEntry(head, "struct net", "list") {
			if !yield(n, err) || err != nil {
				return
			}
		}
	}
}

// Net is net's result: the network namespaces, their devices and the
// sockets.
type Net struct {
	Namespaces []NetNamespace `json:"namespaces"`
	Devices    []NetDevice    `json:"devices"`
	Sockets    []Socket       `json:"sockets"`
	// Errors name the tables (or parts) that could not be read.
	Errors []string `json:"errors,omitempty"`
}

// NetNamespace is one network namespace.
type NetNamespace struct {
	Net   objects.Hex `json:"net"`   // the struct net
	Inode uint64      `json:"inode"` // ns.inum: /proc/PID/ns/net's net:[INODE]
	Init  bool        `json:"init"`  // init_net
}

// Socket is one socket of the tables /proc/net shows, with the columns
// that identify it there.
type Socket struct {
	// Proto is the /proc/net file that lists it: tcp, tcp6, udp, udp6,
	// raw, raw6, unix.
	Proto string      `json:"proto"`
	Sock  objects.Hex `json:"sock"` // the struct sock (sock_common for a time-wait or request socket)
	// NetInode is its namespace's ns.inum.
	NetInode uint64 `json:"net_inode"`
	// State is skc_state: a TCP state (1 ESTABLISHED ... 10 LISTEN, 12
	// NEW_SYN_RECV; UDP: 1 connected, 7 unconnected); StateName its name.
	State     uint8  `json:"state"`
	StateName string `json:"state_name"`
	// Local and Remote are the addresses as ip(8) spells them; the
	// ports in host order.
	Local      string `json:"local,omitempty"`
	LocalPort  uint16 `json:"local_port"`
	Remote     string `json:"remote,omitempty"`
	RemotePort uint16 `json:"remote_port"`
	// TxQueue and RxQueue are /proc's tx_queue and rx_queue.
	TxQueue uint64 `json:"tx_queue"`
	RxQueue uint64 `json:"rx_queue"`
	UID     uint32 `json:"uid"`
	Inode   uint64 `json:"inode"` // sock_i_ino: the socket's inode (socket:[INODE]); 0 without one
	// Unix sockets: SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5, and
	// the bound path ("@..." abstract).
	Type uint16 `json:"type,omitempty"`
	Path string `json:"path,omitempty"`
	// ProcLine is the line's columns as the /proc/net file prints them
	// up to the inode (without the "sl" index).
	ProcLine string `json:"proc_line"`
	Error    string `json:"error,omitempty"`
}

// tcpStates names skc_state (include/net/tcp_states.h).
var tcpStates = []string{1: "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE"}

func stateName(s uint8) string {
	if int(s) < len(tcpStates) && tcpStates[s] != "" {
		return tcpStates[s]
	}
	return fmt.Sprintf("%d", s)
}

const (
	afUnix  = 1
	afInet  = 2
	afInet6 = 10
)

// netSockets reads the socket tables.
type netSockets struct {
	p    *objects.Program
	nets map[uint64]uint64 // struct net -> ns.inum
	out  []Socket
	errs []error
}

// ReadNet lists the network namespaces and the sockets of the tables
// /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix} read, of every namespace,
// each file's in its order: TCP's listening hash (lhash2) then its
// established hash (ehash: time-wait and request sockets too), UDP's
// udp_table, raw_v4_hashinfo and raw_v6_hashinfo, each namespace's unix
// table. A table that cannot be read is skipped; the errors are
// returned joined, with what was read.
func ReadNet(p *objects.Program) (*Net, error) {
	r := &netSockets{p: p, nets: map[uint64]uint64{}}
	var nss []NetNamespace
	initNet, _ := p.Symbol("init_net")
	for n, err := range ForEachNet(p) {
		if err != nil {
			r.errs = append(r.errs, err)
			break
		}
		ino, err := n.MemberUint("ns.inum")
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("struct net at %#x: %w", n.Addr(), err))
		}
		r.nets[n.Addr()] = ino
		nss = append(nss, NetNamespace{Net: objects.Hex(n.Addr()), Inode: ino, Init: n.Addr() == initNet})
	}
	r.inet()
	r.udp()
	r.raw()
	for _, ns := range nss {
		r.unix(uint64(ns.Net))
	}
	if nss == nil {
		nss = []NetNamespace{}
	}
	if r.out == nil {
		r.out = []Socket{}
	}
	devs, err := NetDevices(p)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	n := &Net{Namespaces: nss, Devices: devs, Sockets: r.out}
	for _, err := range r.errs {
		n.Errors = append(n.Errors, err.Error())
	}
	return n, errors.Join(r.errs...)
}

// chain yields the objects linked from an hlist (or hlist_nulls) head
// at head through their node member at off.
func (r *netSockets) chain(head uint64, nulls bool, off uint64, what string) iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		node, err := r.p.ReadU64(head)
		g := r.p.NewGuard(what)
		for err == nil && node != 0 && !(nulls && node&1 != 0) {
			if err = g.Visit(node); err != nil {
				break
			}
			if !yield(node - off) {
				return
			}
			node, err = r.p.ReadU64(node) // ->next, the node's first member
		}
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s: %w", what, err))
		}
	}
}

// offset is the byte offset of a member path of a type.
func (r *netSockets) offset(typ, path string) (uint64, error) {
	off, _, err := r.p.MemberOffset(typ, path)
	return off, err
}

// inet reads tcp_hashinfo: the listening hash lhash2 (hlist_nulls of
// skc_nulls_node since 5.19's commit cae3873c5b3a; before, an hlist of
// icsk_listen_portaddr_node), then ehash.
func (r *netSockets) inet() {
	p := r.p
	hi, err := p.Symbol("tcp_hashinfo")
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("tcp: %w", err))
		return
	}
	h, err := p.ObjectOf("struct inet_hashinfo", hi)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("tcp: %w", err))
		return
	}
	nullsOff, err := r.offset("struct sock_common", "skc_nulls_node")
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("tcp: %w", err))
		return
	}
	// Listening sockets.
	if lh, err := h.MemberUint("lhash2"); err == nil && lh != 0 {
		mask, _ := h.MemberUint("lhash2_mask")
		size, _ := p.SizeofType("struct inet_listen_hashbucket")
		headOff, _, err := p.MemberOffset("struct inet_listen_hashbucket", "nulls_head")
		nulls, nodeOff := true, nullsOff
		if err != nil {
			headOff, _, err = p.MemberOffset("struct inet_listen_hashbucket", "head")
			nulls = false
			nodeOff, _ = r.offset("struct inet_connection_sock", "icsk_listen_portaddr_node")
		}
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("tcp listening hash: %w", err))
		} else if mask < 1<<24 {
			for i := uint64(0); i <= mask; i++ {
				for sk := range r.chain(lh+i*size+headOff, nulls, nodeOff, fmt.Sprintf("tcp lhash2[%d]", i)) {
					r.inetSock("tcp", sk)
				}
			}
		}
	}
	eh, err := h.MemberUint("ehash")
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("tcp: %w", err))
		return
	}
	mask, _ := h.MemberUint("ehash_mask")
	size, _ := p.SizeofType("struct inet_ehash_bucket")
	if mask >= 1<<26 {
		r.errs = append(r.errs, fmt.Errorf("tcp ehash: mask %#x: %w", mask, objects.ErrCorrupt))
		return
	}
	// The table is read in one go: most buckets are empty.
	b := make([]byte, (mask+1)*size)
	if err := p.Read(b, eh); err != nil {
		r.errs = append(r.errs, fmt.Errorf("tcp ehash at %#x: %w", eh, err))
		return
	}
	for i := uint64(0); i <= mask; i++ {
		if first := binary.LittleEndian.Uint64(b[i*size:]); first == 0 || first&1 != 0 {
			continue
		}
		for sk := range r.chain(eh+i*size, true, nullsOff, fmt.Sprintf("tcp ehash[%d]", i)) {
			r.inetSock("tcp", sk)
		}
	}
}

// udp reads udp_table's primary hash (udp_hslot heads, skc_node).
func (r *netSockets) udp() {
	p := r.p
	ut, err := p.Symbol("udp_table")
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("udp: %w", err))
		return
	}
	t, err := p.ObjectOf("struct udp_table", ut)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("udp: %w", err))
		return
	}
	hash, err1 := t.MemberUint("hash")
	mask, err2 := t.MemberUint("mask")
	nodeOff, err3 := r.offset("struct sock_common", "skc_node")
	size, err4 := p.SizeofType("struct udp_hslot")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		r.errs = append(r.errs, fmt.Errorf("udp: %w", err))
		return
	}
	if mask >= 1<<24 {
		r.errs = append(r.errs, fmt.Errorf("udp_table: mask %#x: %w", mask, objects.ErrCorrupt))
		return
	}
	headOff, _, _ := p.MemberOffset("struct udp_hslot", "head")
	for i := uint64(0); i <= mask; i++ {
		for sk := range r.chain(hash+i*size+headOff, false, nodeOff, fmt.Sprintf("udp_table.hash[%d]", i)) {
			r.inetSock("udp", sk)
		}
	}
}

// raw reads raw_v4_hashinfo and raw_v6_hashinfo: ht[RAW_HTABLE_SIZE],
// hlist_nulls heads of skc_nulls_node (6.1's commit 0daf07e52709) or
// hlist heads of skc_node.
func (r *netSockets) raw() {
	p := r.p
	for _, v := range []struct{ sym, proto string }{{"raw_v4_hashinfo", "raw"}, {"raw_v6_hashinfo", "raw6"}} {
		a, err := p.Symbol(v.sym)
		if err != nil {
			continue // IPv6 as a module, or no raw sockets
		}
		ht, typ, err := p.MemberOffset("struct raw_hashinfo", "ht")
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s: %w", v.sym, err))
			return
		}
		arr, ok := btfload.Underlying(typ).(*btf.Array)
		if !ok {
			r.errs = append(r.errs, fmt.Errorf("%s: ht is not an array: %w", v.sym, objects.ErrType))
			return
		}
		head := btfload.Underlying(arr.Type)
		nulls := false
		if s, ok := head.(*btf.Struct); ok && s.Name == "hlist_nulls_head" {
			nulls = true
		}
		nodeOff, _ := r.offset("struct sock_common", map[bool]string{true: "skc_nulls_node", false: "skc_node"}[nulls])
		for i := uint64(0); i < uint64(arr.Nelems); i++ {
			for sk := range r.chain(a+ht+i*8, nulls, nodeOff, fmt.Sprintf("%s.ht[%d]", v.sym, i)) {
				r.inetSock(v.proto, sk)
			}
		}
	}
}

// unixHashSize is UNIX_HASH_SIZE (include/net/af_unix.h: 256 * 2 since
// 5.19's per-namespace tables), the number of buckets of net->unx.table
// /proc/net/unix walks.
const unixHashSize = 512

// unix reads a namespace's unix table (net->unx.table.buckets).
func (r *netSockets) unix(net uint64) {
	p := r.p
	off, _, err := p.MemberOffset("struct net", "unx.table.buckets")
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("unix sockets: %w (before 5.19's per-namespace tables: not read)", err))
		return
	}
	buckets, err := p.ReadU64(net + off)
	if err != nil || buckets == 0 {
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("unix sockets of net %#x: %w", net, err))
		}
		return
	}
	nodeOff, _ := r.offset("struct sock_common", "skc_node")
	b := make([]byte, unixHashSize*8)
	if err := p.Read(b, buckets); err != nil {
		r.errs = append(r.errs, fmt.Errorf("unix sockets of net %#x: buckets at %#x: %w", net, buckets, err))
		return
	}
	for i := uint64(0); i < unixHashSize; i++ {
		if binary.LittleEndian.Uint64(b[i*8:]) == 0 {
			continue
		}
		for sk := range r.chain(buckets+i*8, false, nodeOff, fmt.Sprintf("unix table[%d]", i)) {
			r.unixSock(sk)
		}
	}
}

// common reads a socket's struct sock_common fields.
func (r *netSockets) common(s *Socket, sk uint64) (objects.Value, uint64, error) {
	c, err := r.p.ObjectOf("struct sock_common", sk)
	if err != nil {
		return c, 0, err
	}
	st, err := c.MemberUint("skc_state")
	if err != nil {
		return c, 0, err
	}
	s.State, s.StateName = uint8(st), stateName(uint8(st))
	fam, err := c.MemberUint("skc_family")
	if err != nil {
		return c, 0, err
	}
	if net, err := c.MemberUint("skc_net.net"); err == nil {
		s.NetInode = r.nets[net]
	}
	return c, fam, nil
}

// sockInode is sock_i_ino: the inode of the socket's struct socket
// (SOCK_INODE: its struct socket_alloc's vfs_inode), 0 without one.
func (r *netSockets) sockInode(sock objects.Value) (uint64, error) {
	so, err := sock.MemberUint("sk_socket")
	if err != nil || so == 0 {
		return 0, err
	}
	off, _, err := r.p.MemberOffset("struct socket_alloc", "socket")
	if err != nil {
		return 0, err
	}
	return r.p.UintAt("struct socket_alloc", so-off, "vfs_inode.i_ino")
}

func (r *netSockets) inetSock(proto string, sk uint64) {
	s := Socket{Proto: proto, Sock: objects.Hex(sk)}
	err := r.readInet(&s, sk)
	if s.Proto == "" {
		return // another family's (a v4 table's v6 socket is tcp6's)
	}
	if err != nil {
		s.Error = err.Error()
	}
	r.out = append(r.out, s)
}

func (r *netSockets) readInet(s *Socket, sk uint64) error {
	c, fam, err := r.common(s, sk)
	if err != nil {
		return err
	}
	lport, _ := c.MemberUint("skc_num")
	dport, _ := c.MemberUint("skc_dport")
	s.LocalPort, s.RemotePort = uint16(lport), uint16(dport>>8|dport<<8&0xff00)
	var laddr, raddr string
	switch fam {
	case afInet:
		s.Proto = strings.TrimSuffix(s.Proto, "6")
		l, _ := c.MemberUint("skc_rcv_saddr")
		d, _ := c.MemberUint("skc_daddr")
		s.Local, s.Remote = ip4(uint32(l)), ip4(uint32(d))
		laddr, raddr = fmt.Sprintf("%08X", uint32(l)), fmt.Sprintf("%08X", uint32(d))
	case afInet6:
		if !strings.HasSuffix(s.Proto, "6") {
			s.Proto += "6"
		}
		l, err1 := c.Member("skc_v6_rcv_saddr")
		d, err2 := c.Member("skc_v6_daddr")
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		lb, _ := l.Bytes()
		db, _ := d.Bytes()
		s.Local, s.Remote = ip6(lb), ip6(db)
		laddr, raddr = hex6(lb), hex6(db)
	default:
		s.Proto = ""
		return nil
	}
	var timeWait = s.State == 6 || s.State == 12 // TIME_WAIT, NEW_SYN_RECV: no struct sock
	if !timeWait {
		sock, err := r.p.ObjectOf("struct sock", sk)
		if err != nil {
			return err
		}
		if uid, err := sock.MemberUint("sk_uid.val"); err == nil {
			s.UID = uint32(uid)
		}
		if s.Inode, err = r.sockInode(sock); err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(s.Proto, "tcp") && s.State == 10: // LISTEN: the accept backlog
			q, _ := sock.MemberUint("sk_ack_backlog")
			s.RxQueue = q
		case strings.HasPrefix(s.Proto, "tcp"):
			tp, err := r.p.ObjectOf("struct tcp_sock", sk)
			if err == nil {
				ws, _ := tp.MemberUint("write_seq")
				una, _ := tp.MemberUint("snd_una")
				nxt, _ := tp.MemberUint("rcv_nxt")
				cp, _ := tp.MemberUint("copied_seq")
				s.TxQueue = uint64(uint32(ws - una))
				if d := int32(uint32(nxt - cp)); d > 0 {
					s.RxQueue = uint64(d)
				}
			}
		default:
			w, _ := sock.MemberUint("sk_wmem_alloc.refs.counter")
			rm, _ := sock.MemberUint("sk_backlog.rmem_alloc.counter")
			s.TxQueue, s.RxQueue = uint64(uint32(w)-1), uint64(uint32(rm))
		}
	}
	s.ProcLine = fmt.Sprintf("%s:%04X %s:%04X %02X %08X:%08X %5d %d", laddr, s.LocalPort, raddr, s.RemotePort, s.State, s.TxQueue, s.RxQueue, s.UID, s.Inode)
	return nil
}

func (r *netSockets) unixSock(sk uint64) {
	s := Socket{Proto: "unix", Sock: objects.Hex(sk)}
	if err := r.readUnix(&s, sk); err != nil {
		s.Error = err.Error()
	}
	r.out = append(r.out, s)
}

// readUnix reads what unix_seq_show prints.
func (r *netSockets) readUnix(s *Socket, sk uint64) error {
	if _, _, err := r.common(s, sk); err != nil {
		return err
	}
	sock, err := r.p.ObjectOf("struct sock", sk)
	if err != nil {
		return err
	}
	ty, _ := sock.MemberUint("sk_type")
	s.Type = uint16(ty)
	if uid, err := sock.MemberUint("sk_uid.val"); err == nil {
		s.UID = uint32(uid)
	}
	if s.Inode, err = r.sockInode(sock); err != nil {
		return err
	}
	so, _ := sock.MemberUint("sk_socket")
	ref, _ := sock.MemberUint("__sk_common.skc_refcnt.refs.counter")
	flags := 0
	if s.State == 10 {
		flags = 1 << 16 // __SO_ACCEPTCON
	}
	// SS_UNCONNECTED 1, SS_CONNECTING 2, SS_CONNECTED 3, SS_DISCONNECTING 4
	ss := map[bool]map[bool]int{true: {true: 3, false: 1}, false: {true: 2, false: 4}}[so != 0][s.State == 1]
	u, err := r.p.ObjectOf("struct unix_sock", sk)
	if err != nil {
		return err
	}
	if addr, err := u.MemberUint("addr"); err == nil && addr != 0 {
		s.Path, err = r.unixPath(addr)
		if err != nil {
			return err
		}
	}
	s.ProcLine = fmt.Sprintf("%08X %08X %08X %04X %02X %5d", uint32(ref), 0, flags, s.Type, ss, s.Inode)
	if s.Path != "" {
		s.ProcLine += " " + s.Path
	}
	return nil
}

// unixPath spells a struct unix_address as /proc/net/unix does: the
// path, or '@' and the abstract name with its NULs as '@'.
func (r *netSockets) unixPath(addr uint64) (string, error) {
	n, err := r.p.UintAt("struct unix_address", addr, "len")
	if err != nil {
		return "", err
	}
	off, _, err := r.p.MemberOffset("struct unix_address", "name")
	if err != nil {
		return "", err
	}
	if n <= 2 || n > 110 {
		return "", nil
	}
	b := make([]byte, n-2) // after sun_family
	if err := r.p.Read(b, addr+off+2); err != nil {
		return "", err
	}
	if b[0] == 0 {
		return "@" + strings.ReplaceAll(string(b[1:]), "\x00", "@"), nil
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b), nil
}

func ip4(a uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", byte(a), byte(a>>8), byte(a>>16), byte(a>>24))
}

func ip6(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	var parts []string
	for i := 0; i < 16; i += 2 {
		parts = append(parts, fmt.Sprintf("%x", uint16(b[i])<<8|uint16(b[i+1])))
	}
	return strings.Join(parts, ":")
}

// hex6 is /proc's spelling of an IPv6 address: its four 32-bit words,
// each as the CPU reads it.
func hex6(b []byte) string {
	if len(b) != 16 {
		return strings.Repeat("0", 32)
	}
	var sb strings.Builder
	for i := 0; i < 16; i += 4 {
		fmt.Fprintf(&sb, "%08X", binary.LittleEndian.Uint32(b[i:]))
	}
	return sb.String()
}
