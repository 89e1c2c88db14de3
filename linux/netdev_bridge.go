package linux

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/objects"
)

// A bridge's and a bridge port's data as ip -d link prints them
// (net/bridge/br_netlink.c br_fill_info and br_port_fill_attrs;
// iproute2 6.1's ip/iplink_bridge.c and iplink_bridge_slave.c): from
// struct net_bridge (the bridge device's private area) and struct
// net_bridge_port (a port device's rx_handler_data).

// The bits of struct net_bridge_port's flags (include/linux/if_bridge.h).
const (
	brHairpinMode    = 1 << 0
	brBPDUGuard      = 1 << 1
	brRootBlock      = 1 << 2
	brMcastFastLeave = 1 << 3
	brLearning       = 1 << 5
	brFlood          = 1 << 6
	brProxyARP       = 1 << 8
	brProxyARPWifi   = 1 << 10
	brMcastFlood     = 1 << 11
	brMcastToUnicast = 1 << 12
	brVLANTunnel     = 1 << 13
	brBcastFlood     = 1 << 14
	brNeighSuppress  = 1 << 15
	brIsolated       = 1 << 16
	brPortLocked     = 1 << 21
	rhtElasticity    = 16 // RHT_ELASTICITY, what IFLA_BR_MCAST_HASH_ELASTICITY reports
	brPortStateMax   = 4  // BR_STATE_BLOCKING
	bridgeIDSize     = 8  // struct bridge_id: prio[2], addr[6]
)

var brPortStates = []string{"disabled", "listening", "learning", "forwarding", "blocking"}

// memberReader reads one kernel object's members (a bridge's, a port's,
// an address's), keeping the first error.
type memberReader struct {
	v   objects.Value
	err error
}

func (r *memberReader) uint(paths ...string) uint64 {
	var last error
	for _, path := range paths {
		x, err := r.v.MemberUint(path)
		if err == nil {
			return x
		}
		last = err
	}
	if r.err == nil {
		r.err = last
	}
	return 0
}

// clock is a jiffies member in clock_t (USER_HZ) units.
func (r *memberReader) clock(paths ...string) uint64 {
	j := r.uint(paths...)
	c, err := JiffiesToClockT(r.v.Program(), j)
	if err != nil && r.err == nil {
		r.err = err
	}
	return c
}

// timer is br_timer_value: the time left on a pending timer_list, in
// clock_t, as ip prints it ("%4i.%.2i" seconds).
func (r *memberReader) timer(path string) string {
	t, err := r.v.Path(path)
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return ""
	}
	pprev, _ := t.MemberUint("entry.pprev")
	left := uint64(0)
	if pprev != 0 {
		exp, err := t.MemberUint("expires")
		if err != nil {
			r.err = err
			return ""
		}
		now, err := jiffiesNow(r.v.Program())
		if err != nil {
			r.err = err
			return ""
		}
		if d := int64(exp - now); d > 0 {
			left, err = JiffiesToClockT(r.v.Program(), uint64(d))
			if err != nil {
				r.err = err
			}
		}
	}
	return fmt.Sprintf("%4d.%02d", left/100, left%100)
}

// bridgeID formats a struct bridge_id as iproute2's br_dump_bridge_id:
// the priority in hex, then the address as ether_ntoa (no leading
// zeros).
func (r *memberReader) bridgeID(path string) string {
	v, err := r.v.Path(path)
	if err == nil {
		var b []byte
		if b, err = v.Bytes(); err == nil && len(b) >= bridgeIDSize {
			a := make([]string, 6)
			for i := range a {
				a[i] = fmt.Sprintf("%x", b[2+i])
			}
			return fmt.Sprintf("%02x%02x.%s", b[0], b[1], strings.Join(a, ":"))
		}
		if err == nil {
			err = fmt.Errorf("%s: %d bytes", path, len(b))
		}
	}
	if r.err == nil {
		r.err = err
	}
	return ""
}

// opt is br_opt_get(br, BROPT_name): a bit of br->options.
func (r *memberReader) opt(name string) uint64 {
	bit, err := enumeratorOf(r.v.Program(), "enum net_bridge_opts", name)
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return 0
	}
	return r.uint("options") >> bit & 1
}

// enumeratorOf is an enumerator of the named enum type, looked up where
// the Program finds types (modules' BTF too).
func enumeratorOf(p *objects.Program, typeName, name string) (uint64, error) {
	t, err := p.Type(typeName)
	if err != nil {
		return 0, err
	}
	if v, ok := enumValue(t, name); ok {
		return v, nil
	}
	return 0, fmt.Errorf("%s has no %s: %w", typeName, name, objects.ErrNotFound)
}

// jiffiesNow is the jiffies counter.
func jiffiesNow(p *objects.Program) (uint64, error) {
	j, err := p.Variable("jiffies_64")
	if err != nil {
		return 0, err
	}
	return j.Uint()
}

// mcast reads a multicast setting: br->multicast_ctx.NAME (5.15+) or
// br->NAME before.
func (r *memberReader) mcast(name string) uint64 {
	return r.uint("multicast_ctx."+name, name)
}

func (r *memberReader) mcastClock(name string) uint64 {
	return r.clock("multicast_ctx."+name, name)
}

// bridgeData is br_fill_info as ip prints it.
func bridgeData(d objects.Value) ([]string, error) {
	br, err := netdevPriv(d, "struct net_bridge")
	if err != nil {
		return nil, err
	}
	r := &memberReader{v: br}
	out := []string{
		fmt.Sprintf("forward_delay %d", r.clock("forward_delay")),
		fmt.Sprintf("hello_time %d", r.clock("hello_time")),
		fmt.Sprintf("max_age %d", r.clock("max_age")),
		fmt.Sprintf("ageing_time %d", r.clock("ageing_time")),
		fmt.Sprintf("stp_state %d", r.uint("stp_enabled")),
	}
	var prio uint64
	if id, err := br.Member("bridge_id"); err == nil {
		if b, err := id.Bytes(); err == nil && len(b) >= 2 {
			prio = uint64(b[0])<<8 | uint64(b[1])
		}
	}
	out = append(out, fmt.Sprintf("priority %d", prio), fmt.Sprintf("vlan_filtering %d", r.opt("BROPT_VLAN_ENABLED")))
	if _, err := br.Member("vlan_proto"); err == nil {
		out = append(out, "vlan_protocol "+ethProto(r.uint("vlan_proto")))
	}
	// iproute2 6.1 prints the bridge id as designated_root too.
	id := r.bridgeID("bridge_id")
	out = append(out, "bridge_id "+id, "designated_root "+id,
		fmt.Sprintf("root_port %d", r.uint("root_port")),
		fmt.Sprintf("root_path_cost %d", r.uint("root_path_cost")),
		fmt.Sprintf("topology_change %d", r.uint("topology_change")),
		fmt.Sprintf("topology_change_detected %d", r.uint("topology_change_detected")),
		"hello_timer "+r.timer("hello_timer"),
		"tcn_timer "+r.timer("tcn_timer"),
		"topology_change_timer "+r.timer("topology_change_timer"),
		"gc_timer "+r.timer("gc_work.timer"))
	if _, err := br.Member("default_pvid"); err == nil {
		out = append(out, fmt.Sprintf("vlan_default_pvid %d", r.uint("default_pvid")),
			fmt.Sprintf("vlan_stats_enabled %d", r.opt("BROPT_VLAN_STATS_ENABLED")),
			fmt.Sprintf("vlan_stats_per_port %d", r.opt("BROPT_VLAN_STATS_PER_PORT")))
	}
	out = append(out, "group_fwd_mask "+hex0(r.uint("group_fwd_mask")))
	if g, err := br.Member("group_addr"); err == nil {
		if a, ok := g.Address(); ok {
			out = append(out, "group_address "+hwAddr(br.Program(), a, 6))
		}
	}
	if _, err := br.Path("multicast_ctx"); err == nil || hasMember(br, "multicast_router") {
		out = append(out, fmt.Sprintf("mcast_snooping %d", r.opt("BROPT_MULTICAST_ENABLED")),
			fmt.Sprintf("no_linklocal_learn %d", r.opt("BROPT_NO_LL_LEARN")))
		if _, err := enumeratorOf(br.Program(), "enum net_bridge_opts", "BROPT_MCAST_VLAN_SNOOPING_ENABLED"); err == nil {
			out = append(out, fmt.Sprintf("mcast_vlan_snooping %d", r.opt("BROPT_MCAST_VLAN_SNOOPING_ENABLED")))
		}
		out = append(out,
			fmt.Sprintf("mcast_router %d", r.mcast("multicast_router")),
			fmt.Sprintf("mcast_query_use_ifaddr %d", r.opt("BROPT_MULTICAST_QUERY_USE_IFADDR")),
			fmt.Sprintf("mcast_querier %d", r.mcast("multicast_querier")),
			fmt.Sprintf("mcast_hash_elasticity %d", rhtElasticity),
			fmt.Sprintf("mcast_hash_max %d", r.uint("hash_max")),
			fmt.Sprintf("mcast_last_member_count %d", r.mcast("multicast_last_member_count")),
			fmt.Sprintf("mcast_startup_query_count %d", r.mcast("multicast_startup_query_count")),
			fmt.Sprintf("mcast_last_member_interval %d", r.mcastClock("multicast_last_member_interval")),
			fmt.Sprintf("mcast_membership_interval %d", r.mcastClock("multicast_membership_interval")),
			fmt.Sprintf("mcast_querier_interval %d", r.mcastClock("multicast_querier_interval")),
			fmt.Sprintf("mcast_query_interval %d", r.mcastClock("multicast_query_interval")),
			fmt.Sprintf("mcast_query_response_interval %d", r.mcastClock("multicast_query_response_interval")),
			fmt.Sprintf("mcast_startup_query_interval %d", r.mcastClock("multicast_startup_query_interval")),
			fmt.Sprintf("mcast_stats_enabled %d", r.opt("BROPT_MULTICAST_STATS_ENABLED")),
			fmt.Sprintf("mcast_igmp_version %d", r.mcast("multicast_igmp_version")),
			fmt.Sprintf("mcast_mld_version %d", r.mcast("multicast_mld_version")))
	}
	out = append(out,
		fmt.Sprintf("nf_call_iptables %d", r.opt("BROPT_NF_CALL_IPTABLES")),
		fmt.Sprintf("nf_call_ip6tables %d", r.opt("BROPT_NF_CALL_IP6TABLES")),
		fmt.Sprintf("nf_call_arptables %d", r.opt("BROPT_NF_CALL_ARPTABLES")))
	return out, r.err
}

// bridgePortData is br_port_fill_attrs as ip prints it, for the port
// device d.
func bridgePortData(d objects.Value) ([]string, error) {
	pa, err := d.MemberUint("rx_handler_data")
	if err != nil || pa == 0 {
		return nil, fmt.Errorf("bridge port: rx_handler_data %#x: %w", pa, err)
	}
	port, err := d.Program().ObjectOf("struct net_bridge_port", pa)
	if err != nil {
		return nil, err
	}
	r := &memberReader{v: port}
	state := r.uint("state")
	st := fmt.Sprintf("state (%d)", state)
	if state <= brPortStateMax {
		st = "state " + brPortStates[state]
	}
	flags := r.uint("flags")
	on := func(name string, bit uint64) string {
		if flags&bit != 0 {
			return name + " on"
		}
		return name + " off"
	}
	out := []string{st,
		fmt.Sprintf("priority %d", r.uint("priority")),
		fmt.Sprintf("cost %d", r.uint("path_cost")),
		on("hairpin", brHairpinMode), on("guard", brBPDUGuard), on("root_block", brRootBlock),
		on("fastleave", brMcastFastLeave), on("learning", brLearning), on("flood", brFlood),
		"port_id " + hex0(r.uint("port_id")),
		"port_no " + hex0(r.uint("port_no")),
		fmt.Sprintf("designated_port %d", r.uint("designated_port")),
		fmt.Sprintf("designated_cost %d", r.uint("designated_cost")),
		"designated_bridge " + r.bridgeID("designated_bridge"),
		"designated_root " + r.bridgeID("designated_root"),
		"hold_timer " + r.timer("hold_timer"),
		"message_age_timer " + r.timer("message_age_timer"),
		"forward_delay_timer " + r.timer("forward_delay_timer"),
		fmt.Sprintf("topology_change_ack %d", r.uint("topology_change_ack")),
		fmt.Sprintf("config_pending %d", r.uint("config_pending")),
		on("proxy_arp", brProxyARP), on("proxy_arp_wifi", brProxyARPWifi),
	}
	if _, err := port.Path("multicast_ctx"); err == nil || hasMember(port, "multicast_router") {
		out = append(out, fmt.Sprintf("mcast_router %d", r.uint("multicast_ctx.multicast_router", "multicast_router")))
	}
	out = append(out, on("mcast_fast_leave", brMcastFastLeave), on("mcast_flood", brMcastFlood),
		on("bcast_flood", brBcastFlood), on("mcast_to_unicast", brMcastToUnicast), on("neigh_suppress", brNeighSuppress))
	mask := r.uint("group_fwd_mask")
	out = append(out, "group_fwd_mask "+hex0(mask), "group_fwd_mask_str "+fwdMaskStr(mask),
		on("vlan_tunnel", brVLANTunnel), on("isolated", brIsolated), on("locked", brPortLocked))
	if b, _ := port.MemberUint("backup_port"); b != 0 {
		bd, err := port.Path("backup_port.dev")
		if err == nil {
			var name objects.Value
			if name, err = bd.Member("name"); err == nil {
				var s string
				s, err = name.CString()
				out = append(out, "backup_port "+s)
			}
		}
		if err != nil && r.err == nil {
			r.err = err
		}
	}
	return out, r.err
}

// hex0 is printf's %#x: "0" for zero.
func hex0(v uint64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}

// fwdMaskStr is iproute2's _bitmask2str of a port's group_fwd_mask.
func fwdMaskStr(m uint64) string {
	names := map[int]string{0: "stp", 2: "lacp", 14: "lldp"}
	var parts []string
	for i := 0; m != 0; i, m = i+1, m>>1 {
		if m&1 == 0 {
			continue
		}
		if n, ok := names[i]; ok {
			parts = append(parts, n)
		} else {
			parts = append(parts, fmt.Sprintf("0x%x", 1<<i))
		}
	}
	if len(parts) == 0 {
		return "0x0"
	}
	return strings.Join(parts, ",")
}

// ethProto names a big-endian Ethernet protocol as ll_proto_n2a.
func ethProto(be uint64) string {
	v := be>>8&0xff | be&0xff<<8
	if n, ok := map[uint64]string{0x8100: "802.1Q", 0x88a8: "802.1ad"}[v]; ok {
		return n
	}
	return fmt.Sprintf("0x%04x", v)
}

// enumValue is the value of an enum type's enumerator.
func enumValue(t btf.Type, name string) (uint64, bool) {
	e, ok := btf.UnderlyingType(t).(*btf.Enum)
	if !ok {
		return 0, false
	}
	for _, v := range e.Values {
		if v.Name == name {
			return v.Value, true
		}
	}
	return 0, false
}

func hasMember(v objects.Value, name string) bool {
	_, err := v.Member(name)
	return err == nil
}
