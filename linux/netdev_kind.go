package linux

import (
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// The data a link's kind adds to ip -d link (its rtnl_link_ops'
// fill_info, IFLA_INFO_DATA), for the kinds kinspect decodes. Kinds
// whose fill_info puts nothing (veth, dummy) have none; others (bridge,
// bond, vxlan...) are listed in NetDevice.Incomplete.

// kindsWithoutData have no IFLA_INFO_DATA (no fill_info), or none ip
// prints.
var kindsWithoutData = map[string]bool{"veth": true, "dummy": true, "ifb": true, "nlmon": true, "vcan": true, "vxcan": true, "netdevsim": true}

// NetDevKindData is what ip -d link prints after a device's kind, as
// tokens each followed by a space (a token may begin with a newline and
// indentation, as a VLAN's QoS maps do), and whether the kind is
// decoded at all.
func netDevKindData(d objects.Value, kind string) ([]string, error) {
	switch {
	case kind == "", kindsWithoutData[kind]:
		return nil, nil
	case kind == "bridge":
		return bridgeData(d)
	case kind == "vlan":
		priv, err := netdevPriv(d, "struct vlan_dev_priv")
		if err != nil {
			return nil, err
		}
		return vlanData(priv)
	}
	return nil, errKindNotDecoded
}

// errKindNotDecoded: a kind whose data kinspect does not decode.
var errKindNotDecoded = fmt.Errorf("not decoded")

// vlanFlags are VLAN_FLAG_* in the order ip prints them.
var vlanFlags = []struct {
	bit  uint64
	name string
}{{1, "REORDER_HDR"}, {2, "GVRP"}, {8, "MVRP"}, {4, "LOOSE_BINDING"}, {0x10, "BRIDGE_BINDING"}}

// maxVLANMappings bounds an egress priority map's chains.
const maxVLANMappings = 4096

// vlanData is vlan_fill_info as ip prints it: protocol, id, flags and
// the QoS maps that have entries.
func vlanData(v objects.Value) ([]string, error) {
	proto, err := v.MemberUint("vlan_proto")
	if err != nil {
		return nil, err
	}
	id, err := v.MemberUint("vlan_id")
	if err != nil {
		return nil, err
	}
	flags, err := v.MemberUint("flags")
	if err != nil {
		return nil, err
	}
	out := []string{"protocol " + ethProto(proto), fmt.Sprintf("id %d", id)}
	var fl []string
	for _, f := range vlanFlags {
		if flags&f.bit != 0 {
			fl = append(fl, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 {
		fl = append(fl, fmt.Sprintf("%x", flags))
	}
	out = append(out, "<"+strings.Join(fl, ",")+">")

	if n, _ := v.MemberUint("nr_ingress_mappings"); n != 0 {
		m, err := v.Member("ingress_priority_map")
		if err != nil {
			return out, err
		}
		var pairs []string
		for i := range mustLen(m) {
			e, err := m.Index(int64(i))
			if err != nil {
				return out, err
			}
			if to, _ := e.Uint(); to != 0 {
				pairs = append(pairs, fmt.Sprintf("%d:%d ", i, to))
			}
		}
		out = append(out, "\n      ingress-qos-map { "+strings.Join(pairs, "")+"}")
	}
	if n, _ := v.MemberUint("nr_egress_mappings"); n != 0 {
		m, err := v.Member("egress_priority_map")
		if err != nil {
			return out, err
		}
		var pairs []string
		seen := 0
		for i := range mustLen(m) {
			e, err := m.Index(int64(i))
			if err != nil {
				return out, err
			}
			pm, _ := e.Uint()
			for pm != 0 && seen < maxVLANMappings {
				seen++
				mv, err := v.Program().ObjectOf("struct vlan_priority_tci_mapping", pm)
				if err != nil {
					return out, err
				}
				prio, _ := mv.MemberUint("priority")
				qos, _ := mv.MemberUint("vlan_qos")
				if qos != 0 {
					pairs = append(pairs, fmt.Sprintf("%d:%d ", prio, qos>>13&7))
				}
				if pm, err = mv.MemberUint("next"); err != nil {
					return out, err
				}
			}
		}
		out = append(out, "\n      egress-qos-map { "+strings.Join(pairs, "")+"}")
	}
	return out, nil
}
