package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// netdevObject holds ki_net_xdp and ki_net_tc.
const netdevObject = "netdev.bpf.o"

// The lab's devices (made by init.sh before the workload starts) and
// the pins init.sh attaches through netlink once the workload is ready.
var (
	pinNetXDP = filepath.Join(bpffsRoot, "ki_net_xdp")
	pinNetTC  = filepath.Join(bpffsRoot, "ki_net_tc")
)

// loadNetdev loads ki_net_xdp and ki_net_tc, pins them for init.sh
// (XDP in driver mode on ki_veth0 through netlink, cls_bpf filters on
// its clsact qdisc), attaches ki_net_xdp to ki_veth1 in driver mode
// with an XDP link, and ki_net_tc to ki_veth1's ingress with a tcx link
// where the kernel has tcx (6.6+). Without the devices (a workload run
// outside the lab's guest) it notes so and does nothing.
func (r *runner) loadNetdev() error {
	veth1, err := net.InterfaceByName("ki_veth1")
	if err != nil {
		r.note("netdev: no ki_veth1 (%v); ki_net_xdp and ki_net_tc not loaded", err)
		return nil
	}
	path := filepath.Join(r.cfg.BPFDir, netdevObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
	}
	keep = append(keep, coll)
	xdp, tc := coll.Programs["ki_net_xdp"], coll.Programs["ki_net_tc"]

	xdpAttach := []string{"xdp:ki_veth0(driver, netlink)"}
	xl, err := link.AttachXDP(link.XDPOptions{Program: xdp, Interface: veth1.Index, Flags: link.XDPDriverMode})
	if err != nil {
		r.note("netdev: XDP link on ki_veth1 in driver mode: %v", err)
	} else {
		xdpAttach = append(xdpAttach, "xdp:ki_veth1(driver)")
		r.addLink(xl, "ki_net_xdp", "xdp:ki_veth1(driver)")
	}
	tcAttach := []string{"tc:ki_veth0(ingress, egress; cls_bpf)"}
	tl, err := link.AttachTCX(link.TCXOptions{Program: tc, Attach: ebpf.AttachTCXIngress, Interface: veth1.Index})
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		r.note("netdev: no tcx in this kernel: ki_net_tc is attached through cls_bpf only")
	case err != nil:
		r.note("netdev: tcx link on ki_veth1 ingress: %v", err)
	default:
		tcAttach = append(tcAttach, "tcx:ki_veth1(ingress)")
		r.addLink(tl, "ki_net_tc", "tcx:ki_veth1(ingress)")
	}
	for _, p := range []struct {
		prog *ebpf.Program
		pin  string
	}{{xdp, pinNetXDP}, {tc, pinNetTC}} {
		if err := os.Remove(p.pin); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale pin %s: %w", p.pin, err)
		}
		if err := p.prog.Pin(p.pin); err != nil {
			return fmt.Errorf("pin %s: %w", p.pin, err)
		}
	}
	e := r.addProg("ki_net_xdp", xdp, strings.Join(xdpAttach, "; "))
	e.pinned = pinNetXDP
	e = r.addProg("ki_net_tc", tc, strings.Join(tcAttach, "; "))
	e.pinned = pinNetTC
	return nil
}
