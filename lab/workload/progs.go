package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Object files in the -bpfdir directory, built from bpf/*.bpf.c.
const (
	coreObject  = "ki.bpf.o"
	spinObject  = "spin.bpf.o"
	smallObject = "small.bpf.o"
)

// The program loaded separately from the core collection because the
// kernel may refuse it (fentry needs kernel BTF and a BPF trampoline).
const fentryProg = "ki_fentry"

// fentryTargets are the kernel functions ki_fentry tries, in order.
var fentryTargets = []string{"do_nanosleep", "hrtimer_nanosleep", "__x64_sys_nanosleep"}

// kprobeTarget is the function ki_kprobe is attached to; it exists and is
// probe-able on 6.1 and 6.12 (the sleepers call nanosleep).
const kprobeTarget = "do_nanosleep"

// cgroupRoot is where the cgroup2 hierarchy is mounted in the guest.
const cgroupRoot = "/sys/fs/cgroup"

// loadCore loads ki.bpf.o: every map and every program except ki_fentry.
func (r *runner) loadCore() error {
	path := filepath.Join(r.cfg.BPFDir, coreObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	r.coreSpec = spec.Copy()
	delete(spec.Programs, fentryProg)
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
	}
	r.core = coll
	keep = append(keep, coll)
	return nil
}

// verifierDetail returns err with the full verifier log if it has one.
func verifierDetail(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%w\n%+v", err, ve)
	}
	return err
}

// attachProgs attaches the core programs: the kprobe, the tracepoint and
// the cgroup_skb program (mandatory), the fentry program, the XDP program
// on lo and the socket filter on a UDP socket (optional), and installs
// ki_tail_tgt in ki_prog_array and checks the tail call.
func (r *runner) attachProgs() error {
	p := r.core.Programs

	kp, err := link.Kprobe(kprobeTarget, p["ki_kprobe"], nil)
	if err != nil {
		return fmt.Errorf("kprobe %s: %w", kprobeTarget, err)
	}
	r.addProg("ki_kprobe", p["ki_kprobe"], "kprobe:"+kprobeTarget)
	r.addLink(kp, "ki_kprobe", "kprobe:"+kprobeTarget)

	tp, err := link.Tracepoint("syscalls", "sys_enter_getpid", p["ki_tracepoint"], nil)
	if err != nil {
		return fmt.Errorf("tracepoint syscalls/sys_enter_getpid: %w", err)
	}
	r.addProg("ki_tracepoint", p["ki_tracepoint"], "tracepoint:syscalls/sys_enter_getpid")
	r.addLink(tp, "ki_tracepoint", "tracepoint:syscalls/sys_enter_getpid")
	// Fire the tracepoint a few times so that its counter is not zero.
	for i := 0; i < 3; i++ {
		unix.Getpid()
	}

	cg, err := link.AttachCgroup(link.CgroupOptions{
		Path: cgroupRoot, Attach: ebpf.AttachCGroupInetIngress, Program: p["ki_cgroup_skb"],
	})
	if err != nil {
		return fmt.Errorf("attach ki_cgroup_skb to %s: %w", cgroupRoot, err)
	}
	r.addProg("ki_cgroup_skb", p["ki_cgroup_skb"], "cgroup:"+cgroupRoot+":ingress")
	r.addLink(cg, "ki_cgroup_skb", "cgroup:"+cgroupRoot+":ingress")

	r.loadFentry()

	xdpAttach := ""
	if lo, err := net.InterfaceByName("lo"); err != nil {
		r.note("XDP: no lo interface (%v); ki_xdp is loaded but not attached", err)
	} else if xl, err := link.AttachXDP(link.XDPOptions{
		Program: p["ki_xdp"], Interface: lo.Index, Flags: link.XDPGenericMode,
	}); err != nil {
		r.note("XDP: attaching ki_xdp to lo failed (%v); ki_xdp is loaded but not attached", err)
	} else {
		xdpAttach = "xdp:lo(generic)"
		r.addLink(xl, "ki_xdp", xdpAttach)
	}
	r.addProg("ki_xdp", p["ki_xdp"], xdpAttach)

	sockAttach := ""
	if fd, err := attachSocketFilter(p["ki_sock_filter"]); err != nil {
		r.note("socket filter: %v; ki_sock_filter is loaded but not attached", err)
	} else {
		sockAttach = fmt.Sprintf("socket:udp(fd %d)", fd)
	}
	r.addProg("ki_sock_filter", p["ki_sock_filter"], sockAttach)

	if err := r.core.Maps["ki_prog_array"].Update(uint32(0), p["ki_tail_tgt"], ebpf.UpdateAny); err != nil {
		return fmt.Errorf("install ki_tail_tgt in ki_prog_array: %w", err)
	}
	r.addMap("ki_prog_array", r.core.Maps["ki_prog_array"], false, progArrayContent, progArraySlots(r.core.Maps["ki_prog_array"]))
	r.addProg("ki_tail_entry", p["ki_tail_entry"], "")
	r.addProg("ki_tail_tgt", p["ki_tail_tgt"], "ki_prog_array[0]")
	ret, err := p["ki_tail_entry"].Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		return fmt.Errorf("test run of ki_tail_entry: %w", err)
	}
	if ret != 42 {
		return fmt.Errorf("ki_tail_entry returned %d, want 42 from the tail call to ki_tail_tgt", ret)
	}
	r.addProg("ki_rb_produce", p["ki_rb_produce"], "")
	return nil
}

// loadFentry loads ki_fentry and attaches it with a tracing link to the
// first of fentryTargets the kernel accepts. Failure is only noted.
func (r *runner) loadFentry() {
	var errs []error
	for _, target := range fentryTargets {
		spec := r.coreSpec.Copy()
		for name := range spec.Programs {
			if name != fentryProg {
				delete(spec.Programs, name)
			}
		}
		spec.Programs[fentryProg].AttachTo = target
		// ki_fentry only uses ki_counters: reuse the core map.
		spec.Maps = map[string]*ebpf.MapSpec{"ki_counters": spec.Maps["ki_counters"]}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
			MapReplacements: map[string]*ebpf.Map{"ki_counters": r.core.Maps["ki_counters"]},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("load for %s: %w", target, err))
			continue
		}
		prog := coll.Programs[fentryProg]
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceFEntry})
		if err != nil {
			coll.Close()
			errs = append(errs, fmt.Errorf("attach to %s: %w", target, err))
			continue
		}
		keep = append(keep, coll)
		r.addProg(fentryProg, prog, "fentry:"+target)
		r.addLink(l, fentryProg, "fentry:"+target)
		if len(errs) > 0 {
			r.note("fentry: attached to %s after failures: %v", target, errors.Join(errs...))
		}
		return
	}
	r.note("fentry: ki_fentry could not be loaded and attached: %v", errors.Join(errs...))
}

// attachSocketFilter opens a UDP socket, attaches prog to it with
// SO_ATTACH_BPF and returns the socket, which is never closed.
func attachSocketFilter(prog *ebpf.Program) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open UDP socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, prog.FD()); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("SO_ATTACH_BPF: %w", err)
	}
	keep = append(keep, fd)
	return fd, nil
}

// loadSpin loads ki_spin from spin.bpf.o.
func (r *runner) loadSpin() error {
	path := filepath.Join(r.cfg.BPFDir, spinObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
	}
	keep = append(keep, coll)
	prog := coll.Programs["ki_spin"]
	if prog == nil {
		return fmt.Errorf("%s has no program ki_spin", path)
	}
	r.spin = prog
	r.addProg("ki_spin", prog, fmt.Sprintf("test_run loop on CPU %d", spinnerCPU))
	return nil
}

// progArraySlots returns a function that counts the occupied slots of a
// prog array (its keys are all indexes, occupied or not).
func progArraySlots(m *ebpf.Map) func() (int, error) {
	return func() (int, error) {
		n := 0
		for i := uint32(0); i < m.MaxEntries(); i++ {
			var id uint32
			err := m.Lookup(i, &id)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			if err != nil {
				return n, fmt.Errorf("slot %d: %w", i, err)
			}
			n++
		}
		return n, nil
	}
}
