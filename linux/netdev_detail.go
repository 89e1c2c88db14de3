package linux

import (
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// What ip -d link shows of a device beyond ip link (rtnl_fill_ifinfo's
// other attributes): its kind and its master's, the device it is linked
// to, its alias and alternative names, IPv6 address generation, offload
// limits and its parent device.

// netdevAlign is NETDEV_ALIGN: a device's private area (netdev_priv)
// follows struct net_device rounded up to it.
const netdevAlign = 32

// maxAltNames bounds a device's alternative names (the kernel has no
// limit but memory; ip link property add adds one at a time).
const maxAltNames = 1024

// addrGenModes are enum in6_addr_gen_mode as ip names them.
var addrGenModes = []string{"eui64", "none", "stable_secret", "random"}

// iflinkKinds says where a device of a kind keeps the device its
// ndo_get_iflink reports (IFLA_LINK, "NAME@LINK"): a pointer to a
// struct net_device in its private area, or an ifindex (tunnels'
// parms.link) with the tunnel's own namespace beside it.
var iflinkKinds = map[string]struct {
	priv    string // the private area's type
	dev     string // member path of the lower device (struct net_device *)
	ifindex string // or of its ifindex
	net     string // with ifindex: the link's namespace (struct net *)
}{
	"veth":      {priv: "struct veth_priv", dev: "peer"},
	"netkit":    {priv: "struct netkit", dev: "peer"},
	"vlan":      {priv: "struct vlan_dev_priv", dev: "real_dev"},
	"macvlan":   {priv: "struct macvlan_dev", dev: "lowerdev"},
	"macvtap":   {priv: "struct macvlan_dev", dev: "lowerdev"},
	"ipvlan":    {priv: "struct ipvl_dev", dev: "phy_dev"},
	"ipvtap":    {priv: "struct ipvl_dev", dev: "phy_dev"},
	"ipip":      {priv: "struct ip_tunnel", ifindex: "parms.link", net: "net"},
	"gre":       {priv: "struct ip_tunnel", ifindex: "parms.link", net: "net"},
	"gretap":    {priv: "struct ip_tunnel", ifindex: "parms.link", net: "net"},
	"erspan":    {priv: "struct ip_tunnel", ifindex: "parms.link", net: "net"},
	"vti":       {priv: "struct ip_tunnel", ifindex: "parms.link", net: "net"},
	"sit":       {priv: "struct ip_tunnel", ifindex: "parms.link", net: "net"},
	"ip6tnl":    {priv: "struct ip6_tnl", ifindex: "parms.link", net: "net"},
	"ip6gre":    {priv: "struct ip6_tnl", ifindex: "parms.link", net: "net"},
	"ip6gretap": {priv: "struct ip6_tnl", ifindex: "parms.link", net: "net"},
	"ip6erspan": {priv: "struct ip6_tnl", ifindex: "parms.link", net: "net"},
	"vti6":      {priv: "struct ip6_tnl", ifindex: "parms.link", net: "net"},
}

// netdevPriv is netdev_priv(dev) as an object of the named type.
func netdevPriv(d objects.Value, typeName string) (objects.Value, error) {
	p := d.Program()
	size, err := p.SizeofType("struct net_device")
	if err != nil {
		return objects.Value{}, err
	}
	off := (size + netdevAlign - 1) &^ (netdevAlign - 1)
	return p.ObjectOf(typeName, d.Addr()+off)
}

// devPointer is the struct net_device a pointer member holds, ok false
// for NULL.
func devPointer(v objects.Value, path string) (objects.Value, bool, error) {
	m, err := v.Path(path)
	if err != nil {
		return objects.Value{}, false, err
	}
	a, err := m.Uint()
	if err != nil || a == 0 {
		return objects.Value{}, false, err
	}
	d, err := v.Program().ObjectOf("struct net_device", a)
	return d, err == nil, err
}

// cstringAt reads the NUL-terminated string a char pointer member
// points to ("" for NULL).
func cstringAt(v objects.Value, path string, max int) (string, error) {
	a, err := v.MemberUint(path)
	if err != nil || a == 0 {
		return "", err
	}
	return v.Program().ReadCString(a, max)
}

// readDetails fills what ip -d link adds. Errors are a field's, and
// leave the rest read.
func (nd *NetDevice) readDetails(d objects.Value, alen int) []error {
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	p := d.Program()
	u := func(path string) uint64 {
		v, err := d.MemberUint(path)
		note(path, err)
		return v
	}
	nd.Promiscuity = uint32(u("promiscuity"))
	// IFLA_ALLMULTI: ip prints it where the kernel reports it.
	if _, err := p.Enumerator("IFLA_ALLMULTI"); err == nil {
		a := uint32(u("allmulti"))
		nd.Allmulti = &a
	}
	// tso_max_size and gro_max_size: 5.19+; gso_ipv4_max_size and
	// gro_ipv4_max_size: 6.3+.
	opt := func(path string) uint32 {
		v, err := d.MemberUint(path)
		if err != nil {
			return 0
		}
		return uint32(v)
	}
	nd.TSOMaxSize, nd.TSOMaxSegs, nd.GROMaxSize = opt("tso_max_size"), opt("tso_max_segs"), opt("gro_max_size")
	nd.GSOIPv4MaxSize, nd.GROIPv4MaxSize = opt("gso_ipv4_max_size"), opt("gro_ipv4_max_size")
	if pd, err := d.MemberUint("proto_down"); err == nil {
		nd.ProtoDown = pd != 0
	}

	// The link's kind: rtnl_link_ops->kind.
	if ops, err := d.MemberUint("rtnl_link_ops"); err == nil && ops != 0 {
		k, err := cstringAt(d, "rtnl_link_ops.kind", 64)
		note("rtnl_link_ops.kind", err)
		nd.Kind = k
	} else {
		note("rtnl_link_ops", err)
	}

	// The master: the first upper device, if it is one
	// (netdev_master_upper_dev_get); its kind is the slave kind.
	if up, err := d.Path("adj_list.upper"); err == nil {
		for a, err := range objects.ListForEachEntry(up, "struct netdev_adjacent", "list") {
			if err != nil {
				note("adj_list.upper", err)
				break
			}
			if m, _ := a.MemberUint("master"); m != 0 {
				md, ok, err := devPointer(a, "dev")
				note("adj_list.upper's master", err)
				if ok {
					nd.MasterIfindex = int(int32(must(md.MemberUint("ifindex"))))
					nm, _ := md.Member("name")
					nd.Master, _ = nm.CString()
					if ops, _ := md.MemberUint("rtnl_link_ops"); ops != 0 {
						nd.SlaveKind, err = cstringAt(md, "rtnl_link_ops.kind", 64)
						note("master's rtnl_link_ops.kind", err)
						switch f, _ := md.MemberUint("rtnl_link_ops.fill_slave_info"); {
						case nd.SlaveKind == "bridge":
							nd.SlaveKindData, err = bridgePortData(d)
							note("bridge port", err)
						case f != 0:
							nd.Incomplete = append(nd.Incomplete, fmt.Sprintf("slave data: a %q master's (IFLA_INFO_SLAVE_DATA) is not decoded", nd.SlaveKind))
						}
					}
				}
			}
			break
		}
	} else {
		note("adj_list.upper", err)
	}

	note("iflink", nd.readIflink(d))

	// The alias (dev->ifalias->ifalias) and the alternative names
	// (dev->name_node->list).
	if a, err := d.MemberUint("ifalias"); err == nil && a != 0 {
		al, err := d.Path("ifalias.ifalias")
		if err == nil {
			if at, ok := al.Address(); ok {
				nd.Alias, err = p.ReadCString(at, 256)
			}
		}
		note("ifalias", err)
	}
	if nn, err := d.MemberUint("name_node"); err == nil && nn != 0 {
		head, err := d.Path("name_node.list")
		if err == nil {
			n := 0
			for alt, err := range objects.ListForEachEntry(head, "struct netdev_name_node", "list") {
				if err != nil || n == maxAltNames {
					note("name_node.list", err)
					break
				}
				n++
				name, err := cstringAt(alt, "name", 128)
				note("altname", err)
				nd.AltNames = append(nd.AltNames, name)
			}
		}
		note("name_node", err)
	}

	// IPv6's address generation mode (IFLA_INET6_ADDR_GEN_MODE), for a
	// device with an inet6_dev.
	if a, err := d.MemberUint("ip6_ptr"); err == nil && a != 0 {
		m, err := d.Path("ip6_ptr.cnf.addr_gen_mode")
		if err == nil {
			var v uint64
			if v, err = m.Uint(); err == nil {
				nd.AddrGenMode = nameOr(addrGenModes, v)
			}
		}
		note("ip6_ptr.cnf.addr_gen_mode", err)
	}

	// The hardware address the device was made with, when it is not
	// all zeros (IFLA_PERM_ADDRESS).
	if alen > 0 {
		if pa, err := d.Member("perm_addr"); err == nil {
			if at, ok := pa.Address(); ok {
				nd.PermAddress = nonZeroHW(hwAddr(p, at, alen))
			}
		}
	}

	// The parent device (IFLA_PARENT_DEV_NAME, _BUS_NAME): dev.parent.
	if pa, err := d.MemberUint("dev.parent"); err == nil && pa != 0 {
		par, err := p.ObjectOf("struct device", pa)
		if err == nil {
			nd.ParentDev, err = deviceName(par)
			if b, _ := par.MemberUint("bus"); b != 0 {
				nd.ParentBus, _ = cstringAt(par, "bus.name", 64)
			}
		}
		note("dev.parent", err)
	}
	return errs
}

// readIflink finds the device's link (dev_get_iflink, when it is not
// the device itself) and, when that is in another namespace, its
// namespace's id in the device's (IFLA_LINK_NETNSID).
func (nd *NetDevice) readIflink(d objects.Value) error {
	ops, err := d.MemberUint("netdev_ops")
	if err != nil || ops == 0 {
		return err
	}
	fn, err := d.Path("netdev_ops.ndo_get_iflink")
	if err != nil {
		return nil // no such operation in this kernel
	}
	if a, err := fn.Uint(); err != nil || a == 0 {
		return err
	}
	k, ok := iflinkKinds[nd.Kind]
	if !ok {
		nd.Incomplete = append(nd.Incomplete, fmt.Sprintf("link: where a %q device keeps its link (ndo_get_iflink) is not known", nd.Kind))
		return nil
	}
	priv, err := netdevPriv(d, k.priv)
	if err != nil {
		return err
	}
	net, err := d.MemberUint("nd_net.net")
	if err != nil {
		return err
	}
	var ifindex, linkNet uint64
	var linkName string
	var linkUp bool
	if k.dev != "" {
		ld, ok, err := devPointer(priv, k.dev)
		if err != nil {
			return err
		}
		if ok {
			if ifindex, err = ld.MemberUint("ifindex"); err != nil {
				return err
			}
			if linkNet, err = ld.MemberUint("nd_net.net"); err != nil {
				return err
			}
			nm, _ := ld.Member("name")
			linkName, _ = nm.CString()
			fl, _ := ld.MemberUint("flags")
			linkUp = fl&iffUp != 0
		} else {
			linkNet = net
		}
	} else {
		if ifindex, err = priv.MemberUint(k.ifindex); err != nil {
			return err
		}
		if linkNet, err = priv.MemberUint(k.net); err != nil {
			return err
		}
	}
	idx := int(int32(ifindex))
	if idx == nd.Ifindex && linkNet == net {
		return nil
	}
	nd.Link = &idx
	if linkNet != net {
		id, err := peernetID(d.Program(), net, linkNet)
		nd.LinkNetnsID = &id
		return err
	}
	nd.LinkName = linkName
	nd.LinkDown = idx != 0 && !linkUp
	if k.ifindex != "" && idx != 0 {
		// A tunnel's link is an ifindex of its namespace: its name and
		// state are those of that device, found by the caller.
		nd.LinkName = ""
	}
	return nil
}

// peernetID is peernet2id(net, peer): the id the namespace net gave
// peer (its netns_ids IDR), -1 when it gave none.
func peernetID(p *objects.Program, net, peer uint64) (int, error) {
	n, err := p.ObjectOf("struct net", net)
	if err != nil {
		return -1, err
	}
	ids, err := n.Member("netns_ids")
	if err != nil {
		return -1, err
	}
	for e, err := range objects.IDRForEach(ids) {
		if err != nil {
			return -1, err
		}
		if a, _ := e.Value.Uint(); a == peer {
			return int(e.Index), nil
		}
	}
	return -1, nil
}

// deviceName is dev_name(dev): init_name until registered, then the
// kobject's name.
func deviceName(dev objects.Value) (string, error) {
	if n, err := cstringAt(dev, "init_name", 128); err == nil && n != "" {
		return n, nil
	}
	return cstringAt(dev, "kobj.name", 128)
}

// nonZeroHW is a, or "" when it is all zeros.
func nonZeroHW(a string) string {
	for _, c := range a {
		if c != '0' && c != ':' {
			return a
		}
	}
	return ""
}

func must(v uint64, _ error) uint64 { return v }
