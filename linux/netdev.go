package linux

import (
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// Network devices (include/linux/netdevice.h): each namespace's
// dev_base_head list (for_each_netdev), read as rtnetlink reports a link
// (net/core/rtnetlink.c rtnl_fill_ifinfo) and ip link prints it.

// NetDevice is one network device, as ip link shows it.
type NetDevice struct {
	Dev      objects.Hex `json:"dev"`       // the struct net_device
	NetInode uint64      `json:"net_inode"` // its namespace's ns.inum
	Ifindex  int         `json:"ifindex"`
	Name     string      `json:"name"`
	// Flags are dev_get_flags' (SIOCGIFFLAGS, IFLA_IFF): dev->flags with
	// RUNNING, LOWER_UP and DORMANT from the link state; FlagNames them as
	// ip link prints them between < and >.
	Flags     uint32   `json:"flags"`
	FlagNames []string `json:"flag_names"`
	MTU       uint32   `json:"mtu"`
	// Qdisc is the root qdisc's kind (dev->qdisc->ops->id: "noqueue",
	// "pfifo_fast", "mq"...), "" without one.
	Qdisc string `json:"qdisc"`
	// OperState is RFC 2863's (IF_OPER_*), LinkMode dev->link_mode, as
	// ip link's "state" and "mode"; Group dev->group.
	OperState  string `json:"operstate"`
	LinkMode   string `json:"link_mode"`
	Group      uint32 `json:"group"`
	TxQueueLen uint32 `json:"txqlen"`
	// LinkType is dev->type as ip link names it (ARPHRD_*: "ether",
	// "loopback", "none"...); Address and Broadcast its hardware
	// addresses, "aa:bb:..", "" when it has none (addr_len 0).
	LinkType  string `json:"link_type"`
	Address   string `json:"address,omitempty"`
	Broadcast string `json:"broadcast,omitempty"`
	// MinMTU and MaxMTU bound the MTU (ip -d link's minmtu, maxmtu);
	// NumTxQueues and NumRxQueues its queues, GSOMaxSize and GSOMaxSegs
	// its offload limits (numtxqueues... gso_max_segs).
	MinMTU      uint32 `json:"min_mtu"`
	MaxMTU      uint32 `json:"max_mtu"`
	NumTxQueues uint32 `json:"num_tx_queues"`
	NumRxQueues uint32 `json:"num_rx_queues"`
	GSOMaxSize  uint32 `json:"gso_max_size"`
	GSOMaxSegs  uint32 `json:"gso_max_segs"`
	// What ip -d link adds: the promiscuity and allmulti counts; Kind
	// the link's kind (rtnl_link_ops->kind: "veth", "bridge"...), Master
	// its master device (MasterIfindex) and SlaveKind the master's kind;
	// Link the ifindex of the device it is linked to (a veth's peer, a
	// VLAN's real device: "NAME@LINK") when that is not itself, with its
	// LinkName, LinkDown when that is down (ip's M-DOWN), or
	// LinkNetnsID, the id this namespace gave the link's (-1: none),
	// when it is in another; Alias and AltNames; PermAddress the
	// permanent hardware address when it is set; AddrGenMode IPv6's
	// address generation ("eui64"...; "" without IPv6); the offload
	// limits; ParentBus and ParentDev the device it sits on ("pci",
	// "0000:00:03.0").
	Promiscuity    uint32   `json:"promiscuity"`
	Allmulti       *uint32  `json:"allmulti,omitempty"`
	Kind           string   `json:"kind,omitempty"`
	SlaveKind      string   `json:"slave_kind,omitempty"`
	Master         string   `json:"master,omitempty"`
	MasterIfindex  int      `json:"master_ifindex,omitempty"`
	Link           *int     `json:"link,omitempty"`
	LinkName       string   `json:"link_name,omitempty"`
	LinkDown       bool     `json:"link_down,omitempty"`
	LinkNetnsID    *int     `json:"link_netnsid,omitempty"`
	ProtoDown      bool     `json:"proto_down,omitempty"`
	Alias          string   `json:"alias,omitempty"`
	AltNames       []string `json:"altnames,omitempty"`
	PermAddress    string   `json:"perm_address,omitempty"`
	AddrGenMode    string   `json:"addr_gen_mode,omitempty"`
	TSOMaxSize     uint32   `json:"tso_max_size,omitempty"`
	TSOMaxSegs     uint32   `json:"tso_max_segs,omitempty"`
	GROMaxSize     uint32   `json:"gro_max_size,omitempty"`
	GSOIPv4MaxSize uint32   `json:"gso_ipv4_max_size,omitempty"`
	GROIPv4MaxSize uint32   `json:"gro_ipv4_max_size,omitempty"`
	ParentBus      string   `json:"parent_bus,omitempty"`
	ParentDev      string   `json:"parent_dev,omitempty"`
	// KindData is what the link's kind adds (IFLA_INFO_DATA), as ip -d
	// link prints it, for the kinds kinspect decodes (vlan); see
	// netDevKindData (vlan, bridge).
	KindData []string `json:"kind_data,omitempty"`
	// SlaveKindData is what the master's kind adds of this device
	// (IFLA_INFO_SLAVE_DATA: a bridge port's state, cost, flags...), as
	// ip -d link prints it after "bridge_slave".
	SlaveKindData []string `json:"slave_kind_data,omitempty"`
	// Addrs are its IPv4 then IPv6 addresses, as ip addr lists them.
	Addrs []NetAddr `json:"addrs,omitempty"`
	// XDP are the XDP programs attached, one per mode.
	XDP []NetDevXDP `json:"xdp,omitempty"`
	// TC are the tc programs attached: cls_bpf filters of the
	// ingress/clsact qdisc's hooks, and tcx's (6.6+).
	TC []NetDevTC `json:"tc,omitempty"`
	// Incomplete says what kinspect does not know how to read of this
	// device (not damage: a kind it does not decode).
	Incomplete []string `json:"incomplete,omitempty"`
	// Error says what could not be read.
	Error string `json:"error,omitempty"`
}

// NetDevXDP is an XDP program attached to a device.
type NetDevXDP struct {
	// Mode is bpftool net's: "generic" (skb), "driver" or "offload".
	Mode   string      `json:"mode"`
	ProgID uint32      `json:"id"`
	Prog   objects.Hex `json:"prog"`
	// LinkID is the BPF link holding it (0: attached through netlink).
	LinkID uint32 `json:"link_id,omitempty"`
}

// The IFF_* flags (include/uapi/linux/if.h, enum net_device_flags).
const (
	iffUp        = 1 << 0
	iffRunning   = 1 << 6
	iffPromisc   = 1 << 8
	iffAllMulti  = 1 << 9
	iffLowerUp   = 1 << 16
	iffDormant   = 1 << 17
	iffStateMask = iffRunning | iffLowerUp | iffDormant
)

// iffNames are the flags ip link prints, in its order (iproute2
// print_link_flags), RUNNING left out.
var iffNames = []struct {
	bit  uint32
	name string
}{
	{1 << 3, "LOOPBACK"}, {1 << 1, "BROADCAST"}, {1 << 4, "POINTOPOINT"}, {1 << 12, "MULTICAST"},
	{1 << 7, "NOARP"}, {1 << 9, "ALLMULTI"}, {1 << 8, "PROMISC"}, {1 << 10, "MASTER"},
	{1 << 11, "SLAVE"}, {1 << 2, "DEBUG"}, {1 << 15, "DYNAMIC"}, {1 << 14, "AUTOMEDIA"},
	{1 << 13, "PORTSEL"}, {1 << 5, "NOTRAILERS"}, {1 << 0, "UP"}, {1 << 16, "LOWER_UP"},
	{1 << 17, "DORMANT"}, {1 << 18, "ECHO"},
}

// IFFNames names flags as ip link does: NO-CARRIER for a device up
// without RUNNING, then the set flags in iproute2's order.
func IFFNames(flags uint32) []string {
	out := []string{}
	if flags&iffUp != 0 && flags&iffRunning == 0 {
		out = append(out, "NO-CARRIER")
	}
	for _, f := range iffNames {
		if flags&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	return out
}

// operStates are IF_OPER_* (include/uapi/linux/if.h), as ip link
// names them.
var operStates = []string{"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"}

// linkModes are IF_LINK_MODE_*.
var linkModes = []string{"DEFAULT", "DORMANT", "TESTING"}

// arphrdNames are iproute2's names of the ARPHRD_* link types
// (lib/ll_types.c) a kernel engineer meets.
var arphrdNames = map[uint16]string{
	0: "netrom", 1: "ether", 2: "eether", 3: "ax25", 4: "pronet", 5: "chaos", 6: "ieee802", 7: "arcnet",
	8: "appletlk", 15: "dlci", 19: "atm", 23: "metricom", 24: "ieee1394", 32: "infiniband",
	256: "slip", 257: "cslip", 258: "slip6", 259: "cslip6", 260: "rsrvd", 264: "adapt", 270: "rose",
	271: "x25", 272: "hwx25", 280: "can", 512: "ppp", 513: "hdlc", 516: "lapb", 517: "ddcmp",
	518: "rawhdlc", 519: "rawip", 768: "ipip", 769: "tunnel6", 770: "frad", 771: "skip",
	772: "loopback", 773: "localtlk", 774: "fddi", 775: "bif", 776: "sit", 777: "ip/ddp",
	778: "gre", 779: "pimreg", 780: "hippi", 781: "ash", 782: "econet", 783: "irda",
	784: "fcpp", 785: "fcal", 786: "fcpl", 787: "fcfb", 800: "tr", 801: "tr+rif",
	802: "ieee802.11", 803: "ieee802.11/prism", 804: "ieee802.11/radiotap", 805: "ieee802.15.4",
	806: "ieee802.15.4/monitor", 820: "phonet", 821: "phonet_pipe", 822: "caif", 823: "gre6",
	824: "netlink", 825: "6lowpan", 826: "vsockmon", 0xfffe: "none", 0xffff: "void",
}

// ForEachNetDevice yields the struct net_device of namespace net (a
// struct net), as for_each_netdev. A damaged link is yielded as a
// *objects.Damage and the walk goes on.
func ForEachNetDevice(net objects.Value) iter.Seq2[objects.Value, error] {
	head, err := net.Member("dev_base_head")
	if err != nil {
		return func(yield func(objects.Value, error) bool) { yield(objects.Value{}, err) }
	}
	return objects.ListForEachEntry(head, "struct net_device", "dev_list")
}

// NetDevices reads the devices of every network namespace, each
// namespace's in ifindex order of creation (its list's). A device that
// cannot be read is a row with its Error, noted in the Program's damage
// log, with what could be read of it; the walk goes on, past damaged
// links too. A walk that fails
// returns what it read before.
func NetDevices(p *objects.Program) ([]NetDevice, error) {
	out := []NetDevice{}
	for n, err := range ForEachNet(p) {
		if objects.IsDamage(err) {
			p.DamageOf(err, "net_namespace_list")
			continue
		}
		if err != nil {
			return out, err
		}
		ino, _ := n.MemberUint("ns.inum")
		for d, err := range ForEachNetDevice(n) {
			if d := p.DamageOf(err, fmt.Sprintf("devices of net namespace %d", ino)); d != nil {
				continue
			}
			if err != nil {
				return out, fmt.Errorf("devices of net namespace %d: %w", ino, err)
			}
			nd, err := NewNetDevice(d)
			if err != nil {
				// What was read before the error (its XDP programs
				// aside, the device itself) is kept.
				if nd == nil {
					nd = &NetDevice{Dev: objects.Hex(d.Addr())}
				}
				nd.Error = strings.ReplaceAll(err.Error(), "\n", "; ")
				p.NoteDamage(&objects.Damage{Walk: fmt.Sprintf("devices of net namespace %d", ino), Addr: objects.Hex(d.Addr()),
					Object: "struct net_device", Expected: "a readable net_device", Err: err})
			}
			nd.NetInode = ino
			out = append(out, *nd)
		}
	}
	resolveLinks(out)
	return out, nil
}

// resolveLinks names the links given by ifindex alone (tunnels'), from
// the devices of the same namespace.
func resolveLinks(devs []NetDevice) {
	type key struct {
		ino     uint64
		ifindex int
	}
	byIndex := map[key]*NetDevice{}
	for i := range devs {
		byIndex[key{devs[i].NetInode, devs[i].Ifindex}] = &devs[i]
	}
	for i := range devs {
		d := &devs[i]
		if d.Link == nil || *d.Link == 0 || d.LinkName != "" || d.LinkNetnsID != nil {
			continue
		}
		if l := byIndex[key{d.NetInode, *d.Link}]; l != nil {
			d.LinkName = l.Name
			d.LinkDown = l.Flags&iffUp == 0
		}
	}
}

// NewNetDevice reads one struct net_device.
func NewNetDevice(d objects.Value) (*NetDevice, error) {
	nd := &NetDevice{Dev: objects.Hex(d.Addr())}
	var err error
	u := func(path string) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = d.MemberUint(path)
		return v
	}
	nd.Ifindex = int(int32(u("ifindex")))
	nd.MTU = uint32(u("mtu"))
	nd.MinMTU, nd.MaxMTU = uint32(u("min_mtu")), uint32(u("max_mtu"))
	nd.TxQueueLen = uint32(u("tx_queue_len"))
	nd.Group = uint32(u("group"))
	nd.NumTxQueues, nd.NumRxQueues = uint32(u("num_tx_queues")), uint32(u("num_rx_queues"))
	nd.GSOMaxSize, nd.GSOMaxSegs = uint32(u("gso_max_size")), uint32(u("gso_max_segs"))
	flags, gflags, state := u("flags"), u("gflags"), u("state")
	oper, mode, typ, alen := u("operstate"), u("link_mode"), u("type"), u("addr_len")
	if err != nil {
		return nil, fmt.Errorf("net_device %#x: %w", d.Addr(), err)
	}
	if nm, err := d.Member("name"); err == nil {
		nd.Name, _ = nm.CString()
	}
	nd.Flags = devGetFlags(d.Program(), uint32(flags), uint32(gflags), state, oper)
	nd.FlagNames = IFFNames(nd.Flags)
	// rtnetlink reports a device not running (no __LINK_STATE_START) as
	// IF_OPER_DOWN, whatever dev->operstate says.
	start := uint64(0)
	if v, err := d.Program().Enumerator("__LINK_STATE_START"); err == nil {
		start = v
	}
	if state&(1<<start) == 0 {
		oper = 2
	}
	nd.OperState = nameOr(operStates, oper)
	nd.LinkMode = nameOr(linkModes, mode)
	nd.LinkType = arphrdNames[uint16(typ)]
	if nd.LinkType == "" {
		nd.LinkType = fmt.Sprintf("[%d]", typ)
	}
	if alen > 0 && alen <= 32 {
		// dev_addr is a pointer since 5.17 (to dev_addr_shadow's
		// copy), an array before.
		if a, err := d.Member("dev_addr"); err == nil {
			at, ok := a.Address()
			if a.IsPointer() {
				var v uint64
				v, err = a.Uint()
				at, ok = v, err == nil && v != 0
			}
			if ok {
				nd.Address = hwAddr(d.Program(), at, int(alen))
			}
		}
		if b, err := d.Member("broadcast"); err == nil {
			if at, ok := b.Address(); ok {
				nd.Broadcast = hwAddr(d.Program(), at, int(alen))
			}
		}
	}
	if q, err := d.Member("qdisc"); err == nil {
		if a, _ := q.Uint(); a != 0 {
			if id, err := q.Member("ops"); err == nil {
				if idv, err := id.Member("id"); err == nil {
					nd.Qdisc, _ = idv.CString()
				}
			}
		}
	}
	var errs []error
	if alen > 32 {
		alen = 0
	}
	errs = append(errs, nd.readDetails(d, int(alen))...)
	if kd, err := netDevKindData(d, nd.Kind); err == errKindNotDecoded {
		nd.Incomplete = append(nd.Incomplete, fmt.Sprintf("kind data: a %q device's (IFLA_INFO_DATA) is not decoded", nd.Kind))
	} else if err != nil {
		errs = append(errs, fmt.Errorf("%s data: %w", nd.Kind, err))
	} else {
		nd.KindData = kd
	}
	xdp, err := netDevXDP(d)
	if err != nil {
		errs = append(errs, fmt.Errorf("XDP: %w", err))
	}
	nd.XDP = xdp
	addrs, err := netDevAddrs(d)
	if err != nil {
		errs = append(errs, fmt.Errorf("addresses: %w", err))
	}
	nd.Addrs = addrs
	tc, err := netDevTC(d)
	if err != nil {
		errs = append(errs, fmt.Errorf("tc: %w", err))
	}
	nd.TC = tc
	if len(errs) > 0 {
		return nd, fmt.Errorf("net_device %#x (%s): %w", d.Addr(), nd.Name, errors.Join(errs...))
	}
	return nd, nil
}

// devGetFlags is dev_get_flags (net/core/dev.c): dev->flags but for
// the state flags, PROMISC and ALLMULTI from gflags (what the user
// asked), and for a running device RUNNING (operstate UP or UNKNOWN),
// LOWER_UP (carrier) and DORMANT from dev->state.
func devGetFlags(p *objects.Program, flags, gflags uint32, state, oper uint64) uint32 {
	f := flags&^(iffPromisc|iffAllMulti|iffStateMask) | gflags&(iffPromisc|iffAllMulti)
	bit := func(name string, def uint64) bool {
		n := def
		if v, err := p.Enumerator(name); err == nil {
			n = v
		}
		return state&(1<<n) != 0
	}
	// enum netdev_state_t: __LINK_STATE_START, _PRESENT, _NOCARRIER,
	// _LINKWATCH_PENDING, _DORMANT, _TESTING.
	if bit("__LINK_STATE_START", 0) {
		if oper == 6 || oper == 0 { // IF_OPER_UP, IF_OPER_UNKNOWN
			f |= iffRunning
		}
		if !bit("__LINK_STATE_NOCARRIER", 2) {
			f |= iffLowerUp
		}
		if bit("__LINK_STATE_DORMANT", 4) {
			f |= iffDormant
		}
	}
	return f
}

// netDevXDP reads dev->xdp_state[] (5.13+: the program of each mode,
// set directly or held by a link), or, before, dev->xdp_prog (generic
// XDP).
func netDevXDP(d objects.Value) ([]NetDevXDP, error) {
	st, err := d.Member("xdp_state")
	if err != nil {
		xp, err := d.Member("xdp_prog")
		if err != nil {
			return nil, nil
		}
		return xdpOf(xp, "generic", 0)
	}
	n, err := st.Len()
	if err != nil {
		return nil, err
	}
	var out []NetDevXDP
	for mode := range n {
		s, err := st.Index(int64(mode))
		if err != nil {
			return out, err
		}
		// enum bpf_xdp_mode: XDP_MODE_SKB, XDP_MODE_DRV, XDP_MODE_HW.
		name := nameOr([]string{"generic", "driver", "offload"}, uint64(mode))
		prog, err := s.Member("prog")
		if err != nil {
			return out, err
		}
		var linkID uint32
		if l, err := s.Member("link"); err == nil {
			if la, _ := l.Uint(); la != 0 {
				bl, err := l.Member("link")
				if err == nil {
					prog, err = bl.Member("prog")
				}
				if err != nil {
					return out, err
				}
				id, err := l.MemberUint("link.id")
				if err != nil {
					return out, err
				}
				linkID = uint32(id)
			}
		}
		x, err := xdpOf(prog, name, linkID)
		if err != nil {
			return out, err
		}
		out = append(out, x...)
	}
	return out, nil
}

// xdpOf is the program a struct bpf_prog pointer holds, if any.
func xdpOf(prog objects.Value, mode string, linkID uint32) ([]NetDevXDP, error) {
	a, err := prog.Uint()
	if err != nil || a == 0 {
		return nil, err
	}
	id, err := prog.MemberUint("aux.id")
	if err != nil {
		return nil, err
	}
	return []NetDevXDP{{Mode: mode, ProgID: uint32(id), Prog: objects.Hex(a), LinkID: linkID}}, nil
}

// hwAddr formats the n bytes at addr as "aa:bb:...".
func hwAddr(p *objects.Program, addr uint64, n int) string {
	b := make([]byte, n)
	if err := p.Read(b, addr); err != nil {
		return ""
	}
	parts := make([]string, n)
	for i := range n {
		parts[i] = fmt.Sprintf("%02x", b[i])
	}
	return strings.Join(parts, ":")
}

func nameOr(names []string, v uint64) string {
	if v < uint64(len(names)) {
		return names[v]
	}
	return fmt.Sprintf("%d", v)
}
