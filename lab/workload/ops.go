package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// opsObject holds ki_cc, a struct_ops map (a TCP congestion control) and
// its three programs.
const opsObject = "ops.bpf.o"

// bpfFLink is BPF_F_LINK: a struct_ops map that a link attaches (6.4+).
const bpfFLink = 1 << 13

// loadStructOps creates ki_cc. With BPF_F_LINK (6.4+) a struct_ops link
// registers it; older kernels refuse the flag, and there the map update
// that cilium/ebpf makes at creation registers it.
func (r *runner) loadStructOps() error {
	path := filepath.Join(r.cfg.BPFDir, opsObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	ms := spec.Maps["ki_cc"]
	if ms == nil {
		return fmt.Errorf("%s has no map ki_cc", path)
	}
	coll, err := ebpf.NewCollection(spec.Copy())
	withLink := err == nil
	if err != nil {
		first := verifierDetail(err)
		spec.Maps["ki_cc"].Flags &^= bpfFLink
		coll, err = ebpf.NewCollection(spec)
		if err != nil {
			return fmt.Errorf("create objects of %s: with BPF_F_LINK: %v; without: %w", path, first, verifierDetail(err))
		}
		r.note("struct_ops: ki_cc registered without a link (BPF_F_LINK refused: %v)", first)
	}
	keep = append(keep, coll)
	m := coll.Maps["ki_cc"]
	target := "tcp_congestion_ops ki_cc"
	if withLink {
		l, err := link.AttachStructOps(link.StructOpsOptions{Map: m})
		if err != nil {
			return fmt.Errorf("attach struct_ops ki_cc: %w", err)
		}
		r.addLink(l, "ki_cc", "struct_ops:ki_cc")
	}
	for _, name := range []string{"ki_ssthresh", "ki_cong_avoid", "ki_undo_cwnd"} {
		p := coll.Programs[name]
		if p == nil {
			return fmt.Errorf("%s has no program %s", path, name)
		}
		r.addProg(name, p, "struct_ops:"+target)
	}
	r.addMap("ki_cc", m, true, "struct_ops value: tcp_congestion_ops ki_cc (ssthresh, cong_avoid, undo_cwnd)", func() (int, error) { return 1, nil })
	// The kernel now knows the congestion control by name.
	if err := checkCongestionControl("ki_cc"); err != nil {
		return err
	}
	return nil
}

// checkCongestionControl sets name as the congestion control of a TCP
// socket, which works only if it is registered.
func checkCongestionControl(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open TCP socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, name); err != nil {
		return fmt.Errorf("TCP_CONGESTION %s: %w", name, err)
	}
	got, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	if err != nil {
		return fmt.Errorf("get TCP_CONGESTION: %w", err)
	}
	if got != name {
		return errors.New("TCP_CONGESTION reads back " + got + ", want " + name)
	}
	return nil
}
