package linux

import (
	"fmt"
	"strings"
)

// Rendering a device as iproute2's ip link show and ip -d link show
// print it (ip/ipaddress.c print_linkinfo, iproute2 6.1).

// XDPProgInfo describes an attached XDP program the way ip's
// bpf_dump_prog_info does after "id N " ("name X tag T jited " and,
// with details, "load_time L created_by_uid U btf_id B "), from its
// struct bpf_prog; the bpf package provides it (bpf.XDPProgInfo).
type XDPProgInfo func(prog uint64, details bool) string

// xdpAttached is IFLA_XDP_ATTACHED's name for ip's first line, and the
// mode suffixes of its prog/xdp lines when several modes are in use.
func (d NetDevice) xdpAttached() string {
	switch len(d.XDP) {
	case 0:
		return ""
	case 1:
		return map[string]string{"generic": "xdpgeneric", "driver": "xdp", "offload": "xdpoffload"}[d.XDP[0].Mode]
	}
	return "xdpmulti"
}

// IPLink renders the device as ip link show (details false) or ip -d
// link show prints it, without the trailing newline. info describes the
// XDP programs (nil: their ids only).
func (d NetDevice) IPLink(details bool, info XDPProgInfo) string {
	var b strings.Builder
	name := d.Name
	mdown := false
	if d.Link != nil {
		switch {
		case *d.Link == 0:
			name += "@NONE"
		case d.LinkNetnsID != nil:
			name += fmt.Sprintf("@if%d", *d.Link)
		case d.LinkName != "":
			name += "@" + d.LinkName
			mdown = d.LinkDown
		default:
			name += fmt.Sprintf("@if%d", *d.Link)
		}
	}
	flags := strings.Join(d.FlagNames, ",")
	if mdown {
		flags += ",M-DOWN"
	}
	fmt.Fprintf(&b, "%d: %s: <%s> mtu %d ", d.Ifindex, name, flags, d.MTU)
	if x := d.xdpAttached(); x != "" {
		b.WriteString(x + " ")
	}
	if d.Qdisc != "" {
		fmt.Fprintf(&b, "qdisc %s ", d.Qdisc)
	}
	if d.Master != "" {
		fmt.Fprintf(&b, "master %s ", d.Master)
	}
	group := "default"
	if d.Group != 0 {
		group = fmt.Sprint(d.Group)
	}
	fmt.Fprintf(&b, "state %s mode %s group %s qlen %d\n    link/%s ", d.OperState, d.LinkMode, group, d.TxQueueLen, d.LinkType)
	if d.Address != "" {
		b.WriteString(d.Address)
		if d.Broadcast != "" {
			fmt.Fprintf(&b, " brd %s", d.Broadcast)
		}
	}
	if d.PermAddress != "" && d.PermAddress != d.Address {
		fmt.Fprintf(&b, " permaddr %s", d.PermAddress)
	}
	if d.LinkNetnsID != nil {
		if *d.LinkNetnsID >= 0 {
			fmt.Fprintf(&b, " link-netnsid %d", *d.LinkNetnsID)
		} else {
			b.WriteString(" link-netnsid unknown")
		}
	}
	if d.ProtoDown {
		b.WriteString(" protodown on ")
	}
	if details {
		fmt.Fprintf(&b, " promiscuity %d ", d.Promiscuity)
		if d.Allmulti != nil {
			fmt.Fprintf(&b, " allmulti %d ", *d.Allmulti)
		}
		fmt.Fprintf(&b, "minmtu %d maxmtu %d ", d.MinMTU, d.MaxMTU)
		if d.Kind != "" {
			fmt.Fprintf(&b, "\n    %s ", d.Kind)
			for _, t := range d.KindData {
				b.WriteString(t + " ")
			}
		}
		if d.SlaveKind != "" {
			fmt.Fprintf(&b, "\n    %s_slave ", d.SlaveKind)
			for _, t := range d.SlaveKindData {
				b.WriteString(t + " ")
			}
		}
		if d.AddrGenMode != "" {
			fmt.Fprintf(&b, "addrgenmode %s ", d.AddrGenMode)
		}
		fmt.Fprintf(&b, "numtxqueues %d numrxqueues %d gso_max_size %d gso_max_segs %d ", d.NumTxQueues, d.NumRxQueues, d.GSOMaxSize, d.GSOMaxSegs)
		if d.TSOMaxSize != 0 {
			fmt.Fprintf(&b, "tso_max_size %d tso_max_segs %d ", d.TSOMaxSize, d.TSOMaxSegs)
		}
		if d.GROMaxSize != 0 {
			fmt.Fprintf(&b, "gro_max_size %d ", d.GROMaxSize)
		}
		if d.ParentBus != "" {
			fmt.Fprintf(&b, "parentbus %s ", d.ParentBus)
		}
		if d.ParentDev != "" {
			fmt.Fprintf(&b, "parentdev %s ", d.ParentDev)
		}
	}
	if d.Alias != "" {
		fmt.Fprintf(&b, "\n    alias %s", d.Alias)
	}
	for _, x := range d.XDP {
		suffix := ""
		if len(d.XDP) > 1 {
			suffix = map[string]string{"generic": "generic", "driver": "drv", "offload": "offload"}[x.Mode]
		}
		fmt.Fprintf(&b, "\n    prog/xdp%s id %d ", suffix, x.ProgID)
		if info != nil {
			b.WriteString(info(uint64(x.Prog), details))
		}
	}
	for _, a := range d.AltNames {
		fmt.Fprintf(&b, "\n    altname %s", a)
	}
	return b.String()
}
