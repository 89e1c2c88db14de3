package bpf

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// The BPF programs of a network namespace's devices and of the
// namespace itself, as bpftool net show lists them: XDP per device,
// tcx (6.6+) then cls_bpf filters per device, and the flow dissector.

// NetShow is bpftool net show's result for one network namespace.
type NetShow struct {
	XDP           []NetXDP  `json:"xdp"`
	TC            []NetTC   `json:"tc"`
	FlowDissector []NetFlow `json:"flow_dissector"`
	// Errors are the devices or hooks that could not be read.
	Errors []string `json:"-"`
}

// NetXDP is one device's XDP programs; Multi holds them when several
// modes have one (bpftool's multi_attachments), else Mode and ProgID.
type NetXDP struct {
	Devname string       `json:"devname"`
	Ifindex int          `json:"ifindex"`
	Mode    string       `json:"mode,omitempty"`
	ProgID  uint32       `json:"id,omitempty"`
	Multi   []NetXDPMode `json:"multi_attachments,omitempty"`
}

// NetXDPMode is one mode's program of a device with several.
type NetXDPMode struct {
	Mode   string `json:"mode"`
	ProgID uint32 `json:"id"`
}

// NetTC is a tc program: a tcx program (Kind "tcx/ingress",
// "tcx/egress"; bpftool 7.3's fields: name, prog_id, prog_flags,
// link_id, link_flags) or a cls_bpf filter ("clsact/ingress",
// "clsact/egress": name, id).
type NetTC struct {
	Devname string
	Ifindex int
	Kind    string
	Name    string
	ProgID  uint32
	LinkID  uint32
}

// tcx reports a tcx attachment.
func (t NetTC) tcx() bool { return strings.HasPrefix(t.Kind, "tcx/") }

// MarshalJSON writes bpftool's object for the attachment's kind.
func (t NetTC) MarshalJSON() ([]byte, error) {
	if t.tcx() {
		return json.Marshal(struct {
			Devname   string   `json:"devname"`
			Ifindex   int      `json:"ifindex"`
			Kind      string   `json:"kind"`
			Name      string   `json:"name"`
			ProgID    uint32   `json:"prog_id"`
			ProgFlags []uint32 `json:"prog_flags"`
			LinkID    uint32   `json:"link_id"`
			LinkFlags []uint32 `json:"link_flags"`
		}{t.Devname, t.Ifindex, t.Kind, t.Name, t.ProgID, []uint32{}, t.LinkID, []uint32{}})
	}
	return json.Marshal(struct {
		Devname string `json:"devname"`
		Ifindex int    `json:"ifindex"`
		Kind    string `json:"kind"`
		Name    string `json:"name"`
		ProgID  uint32 `json:"id"`
	}{t.Devname, t.Ifindex, t.Kind, t.Name, t.ProgID})
}

// NetFlow is the namespace's flow dissector program.
type NetFlow struct {
	ProgID uint32 `json:"id"`
}

// ReadNetShow lists the programs of init_net's devices (where bpftool
// runs, unless told otherwise) and its flow dissector. Devices are in
// ifindex order, as rtnetlink dumps them.
func ReadNetShow(p *objects.Program) (*NetShow, error) {
	devs, err := linux.NetDevices(p)
	if err != nil && len(devs) == 0 {
		return nil, err
	}
	initNet, ierr := p.Symbol("init_net")
	if ierr != nil {
		return nil, fmt.Errorf("net show: %w", ierr)
	}
	initIno, err := p.UintAt("struct net", initNet, "ns.inum")
	if err != nil {
		return nil, fmt.Errorf("net show: init_net: %w", err)
	}
	r := &NetShow{XDP: []NetXDP{}, TC: []NetTC{}, FlowDissector: []NetFlow{}}
	var own []linux.NetDevice
	for _, d := range devs {
		if d.NetInode == initIno {
			own = append(own, d)
		}
	}
	slices.SortStableFunc(own, func(a, b linux.NetDevice) int { return a.Ifindex - b.Ifindex })
	for _, d := range own {
		if d.Error != "" {
			r.Errors = append(r.Errors, fmt.Sprintf("device %s (%#x): %s", d.Name, uint64(d.Dev), d.Error))
		}
		switch len(d.XDP) {
		case 0:
		case 1:
			r.XDP = append(r.XDP, NetXDP{Devname: d.Name, Ifindex: d.Ifindex, Mode: d.XDP[0].Mode, ProgID: d.XDP[0].ProgID})
		default:
			x := NetXDP{Devname: d.Name, Ifindex: d.Ifindex}
			for _, m := range d.XDP {
				x.Multi = append(x.Multi, NetXDPMode{m.Mode, m.ProgID})
			}
			r.XDP = append(r.XDP, x)
		}
	}
	// bpftool 7.3+: each device's tcx programs, ingress then egress,
	// then its cls_bpf filters.
	for _, d := range own {
		for _, tcx := range []bool{true, false} {
			for _, t := range d.TC {
				if strings.HasPrefix(t.Kind, "tcx/") != tcx {
					continue
				}
				name := t.Name
				if tcx && t.Prog != 0 {
					if bp, err := progAt(p, uint64(t.Prog)); err == nil {
						name = bp.FullName()
					}
				}
				r.TC = append(r.TC, NetTC{Devname: d.Name, Ifindex: d.Ifindex, Kind: t.Kind, Name: name, ProgID: t.ProgID, LinkID: t.LinkID})
			}
		}
	}
	id, err := flowDissector(p, initNet)
	if err != nil {
		r.Errors = append(r.Errors, "flow dissector: "+err.Error())
	} else if id != 0 {
		r.FlowDissector = append(r.FlowDissector, NetFlow{id})
	}
	return r, nil
}

// progAt reads the struct bpf_prog at addr.
func progAt(p *objects.Program, addr uint64) (*Prog, error) {
	v, err := p.ObjectOf("struct bpf_prog", addr)
	if err != nil {
		return nil, err
	}
	return NewProg(v)
}

// flowDissector is the id of the flow dissector program of the
// namespace at net (net->bpf.run_array[NETNS_BPF_FLOW_DISSECTOR]'s
// first item, what BPF_PROG_QUERY reports), 0 without one.
func flowDissector(p *objects.Program, net uint64) (uint32, error) {
	n, err := p.ObjectOf("struct net", net)
	if err != nil {
		return 0, err
	}
	ra, err := n.Path("bpf.run_array")
	if err != nil {
		return 0, nil // a kernel without netns BPF
	}
	idx, err := p.Enumerator("NETNS_BPF_FLOW_DISSECTOR")
	if err != nil {
		idx = 0
	}
	arr, err := ra.Index(int64(idx))
	if err != nil {
		return 0, err
	}
	if a, err := arr.Uint(); err != nil || a == 0 {
		return 0, err
	}
	prog, err := arr.Path("items")
	if err != nil {
		return 0, err
	}
	first, err := prog.Index(0)
	if err != nil {
		return 0, err
	}
	pa, err := first.MemberUint("prog")
	if err != nil || pa == 0 {
		return 0, err
	}
	id, err := first.MemberUint("prog.aux.id")
	return uint32(id), err
}

// WriteText writes the result as bpftool net show prints it.
func (r *NetShow) WriteText(w io.Writer) {
	fmt.Fprintf(w, "xdp:\n")
	for _, x := range r.XDP {
		fmt.Fprintf(w, "%s(%d)", x.Devname, x.Ifindex)
		if len(x.Multi) > 0 {
			for _, m := range x.Multi {
				fmt.Fprintf(w, " %s id %d", m.Mode, m.ProgID)
			}
		} else {
			fmt.Fprintf(w, " %s id %d", x.Mode, x.ProgID)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\ntc:\n")
	for _, t := range r.TC {
		fmt.Fprintf(w, "%s(%d) %s %s", t.Devname, t.Ifindex, t.Kind, t.Name)
		if t.tcx() {
			fmt.Fprintf(w, " prog_id %d ", t.ProgID)
			if t.LinkID != 0 {
				fmt.Fprintf(w, "link_id %d ", t.LinkID)
			}
		} else {
			fmt.Fprintf(w, " id %d", t.ProgID)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nflow_dissector:\n")
	for _, f := range r.FlowDissector {
		fmt.Fprintf(w, "id %d", f.ProgID)
	}
	fmt.Fprintln(w)
}

// XDPProgInfo describes XDP programs as ip link does (linux.XDPProgInfo).
func XDPProgInfo(p *objects.Program) linux.XDPProgInfo {
	return func(addr uint64, details bool) string {
		bp, err := progAt(p, addr)
		if err != nil {
			return ""
		}
		var b strings.Builder
		fmt.Fprintf(&b, "name %s tag %s ", bp.Name, hex.EncodeToString(bp.Tag[:]))
		if bp.JitedLen != 0 {
			b.WriteString("jited ")
		}
		if details {
			if bp.LoadTime != 0 {
				fmt.Fprintf(&b, "load_time %d created_by_uid %d ", bp.LoadTime, bp.UID)
			}
			if bp.BTFID != 0 {
				fmt.Fprintf(&b, "btf_id %d ", bp.BTFID)
			}
		}
		return b.String()
	}
}
