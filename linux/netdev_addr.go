package linux

import (
	"fmt"
	"net/netip"

	"github.com/kinspect/kinspect/objects"
)

// A device's IP addresses, as ip addr lists them: IPv4's from its
// struct in_device (dev->ip_ptr, the ifa_list chain), IPv6's from its
// struct inet6_dev (dev->ip6_ptr, addr_list).

// maxAddrs bounds a device's addresses of one family.
const maxAddrs = 1 << 16

// NetAddr is one address of a device.
type NetAddr struct {
	// Family is "inet" or "inet6"; Local the address, Prefixlen its
	// prefix length, Scope its scope as ip names it ("global", "link",
	// "host", "site", "nowhere" or a number), Label an IPv4 address's
	// label, Broadcast its broadcast address (when set).
	Family    string `json:"family"`
	Local     string `json:"local"`
	Prefixlen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Label     string `json:"label,omitempty"`
	Broadcast string `json:"broadcast,omitempty"`
	// Flags are the IFA_F_* flags (ifa_flags).
	Flags uint32 `json:"flags"`
}

// rtScopes are the rtnetlink scopes ip names (RT_SCOPE_*).
var rtScopes = map[uint64]string{0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

func scopeName(s uint64) string {
	if n, ok := rtScopes[s]; ok {
		return n
	}
	return fmt.Sprint(s)
}

// netDevAddrs reads the device's IPv4 then IPv6 addresses, each family
// in the order the kernel dumps them.
func netDevAddrs(d objects.Value) ([]NetAddr, error) {
	var out []NetAddr
	p := d.Program()
	if a, err := d.MemberUint("ip_ptr"); err == nil && a != 0 {
		ifa, err := d.MemberUint("ip_ptr.ifa_list")
		if err != nil {
			return out, err
		}
		for n := 0; ifa != 0; n++ {
			if n == maxAddrs {
				return out, fmt.Errorf("ifa_list: more than %d addresses", maxAddrs)
			}
			v, err := p.ObjectOf("struct in_ifaddr", ifa)
			if err != nil {
				return out, err
			}
			a, err := inetAddr(v)
			if err != nil {
				return out, fmt.Errorf("in_ifaddr %#x: %w", ifa, err)
			}
			out = append(out, a)
			if ifa, err = v.MemberUint("ifa_next"); err != nil {
				return out, err
			}
		}
	}
	if a, err := d.MemberUint("ip6_ptr"); err == nil && a != 0 {
		head, err := d.Path("ip6_ptr.addr_list")
		if err != nil {
			return out, err
		}
		n := 0
		for v, err := range objects.ListForEachEntry(head, "struct inet6_ifaddr", "if_list") {
			if err != nil {
				return out, err
			}
			if n++; n > maxAddrs {
				return out, fmt.Errorf("addr_list: more than %d addresses", maxAddrs)
			}
			a, err := inet6Addr(v)
			if err != nil {
				return out, fmt.Errorf("inet6_ifaddr %#x: %w", v.Addr(), err)
			}
			out = append(out, a)
		}
	}
	return out, nil
}

func inetAddr(v objects.Value) (NetAddr, error) {
	r := &memberReader{v: v}
	local, bcast := r.uint("ifa_local"), r.uint("ifa_broadcast")
	a := NetAddr{Family: "inet", Prefixlen: int(r.uint("ifa_prefixlen")), Scope: scopeName(r.uint("ifa_scope")), Flags: uint32(r.uint("ifa_flags"))}
	if r.err != nil {
		return a, r.err
	}
	// __be32 read little-endian: the first byte is the lowest.
	ip4 := func(x uint64) string {
		return netip.AddrFrom4([4]byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)}).String()
	}
	a.Local = ip4(local)
	if bcast != 0 {
		a.Broadcast = ip4(bcast)
	}
	if l, err := v.Member("ifa_label"); err == nil {
		a.Label, _ = l.CString()
	}
	return a, nil
}

// IPv6 address scopes (IFA_HOST, IFA_LINK, IFA_SITE in struct
// inet6_ifaddr's scope) and the RT_SCOPE_ each reports (rt_scope).
var ipv6Scopes = map[uint64]uint64{0x10: 254, 0x20: 253, 0x40: 200}

func inet6Addr(v objects.Value) (NetAddr, error) {
	r := &memberReader{v: v}
	plen, scope, flags := r.uint("prefix_len"), r.uint("scope"), r.uint("flags")
	if r.err != nil {
		return NetAddr{}, r.err
	}
	raw, err := v.Member("addr")
	var b []byte
	if err == nil {
		b, err = raw.Bytes()
	}
	if err != nil || len(b) != 16 {
		return NetAddr{}, fmt.Errorf("addr: %d bytes: %v", len(b), err)
	}
	return NetAddr{Family: "inet6", Local: netip.AddrFrom16([16]byte(b)).String(), Prefixlen: int(plen),
		Scope: scopeName(ipv6Scopes[scope&0xf0]), Flags: uint32(flags)}, nil
}
