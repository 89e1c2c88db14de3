package bpf

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// link allocates the struct called container holding a struct bpf_link
// at member (a path), with id, type and program.
func (k *bpfKernel) link(container, member string, id uint32, typ uint64, prog uint64) (sk.Obj, sk.Obj) {
	c := k.New(container)
	l := c.Member(member).Set("id", uint64(id)).Set("type", typ).Set("prog", prog)
	return c, l
}

// linkKernel lays out a link of each type bpf_link_info describes, on
// program 5 (a sched_cls program).
func linkKernel(t *testing.T) (*bpfKernel, map[uint32]sk.Obj) {
	k := newBPF(t)
	prog, _ := k.prog(5, 3, "cls", nil)
	ls := map[uint32]sk.Obj{}
	cgroup := func(id uint64) sk.Obj {
		return k.New("cgroup").Set("kn", k.New("kernfs_node").Set("id", id).Addr)
	}

	c, l := k.link("bpf_cgroup_link", "link", 1, LinkTypeCgroup, prog.Addr)
	c.Set("cgroup", cgroup(0x1234).Addr).Set("type", 1)
	ls[1] = l
	c, l = k.link("bpf_tracing_link", "link.link", 2, LinkTypeTracing, prog.Addr)
	// bpf_trampoline_compute_key: obj_id << 32 | btf_id, bit 31 set for
	// a kernel BTF.
	c.Set("link.cookie", 0x77).Set("attach_type", 24).Set("trampoline", k.New("bpf_trampoline").Set("key", 1<<32|0x80000000|1234).Addr)
	ls[2] = l
	c, l = k.link("bpf_xdp_link", "link", 3, LinkTypeXDP, prog.Addr)
	c.Set("dev", k.New("net_device").Str("name", "eth0").Set("ifindex", 2).Addr)
	ls[3] = l
	c, l = k.link("bpf_raw_tp_link", "link", 4, LinkTypeRawTracepoint, prog.Addr)
	c.Set("btp", k.New("bpf_raw_event_map").Set("tp", k.New("tracepoint").Set("name", k.Str("sched_switch")).Addr).Addr)
	ls[4] = l
	iter := func(id uint32, target string) sk.Obj {
		c, l := k.link("bpf_iter_link", "link", id, LinkTypeIter, prog.Addr)
		c.Set("tinfo", k.New("bpf_iter_target_info").Set("reg_info", k.New("bpf_iter_reg").Set("target", k.Str(target)).Addr).Addr)
		ls[id] = l
		return c
	}
	_, m9 := k.mapIn("bpf_htab", 0, 9, MapTypeHash, 4, 4, 1, "m")
	iter(5, "bpf_map_elem").Set("aux.map", m9.Addr)
	iter(6, "task").Set("aux.task.type", 2).Set("aux.task.pid", 100) // BPF_TASK_ITER_TGID
	iter(7, "cgroup").Set("aux.cgroup.start", cgroup(0x55).Addr).Set("aux.cgroup.order", 3)
	iter(8, "task_file").Set("aux.task.type", 1).Set("aux.task.pid", 101) // BPF_TASK_ITER_TID
	c, l = k.link("bpf_netns_link", "link", 9, LinkTypeNetns, prog.Addr)
	c.Set("type", 17).Set("net", k.New("net").Set("ns.inum", 4026531840).Addr)
	ls[9] = l

	// A kretprobe: the event's call is the one in a struct
	// trace_probe_event whose probes list holds the struct trace_probe
	// of a struct trace_kprobe.
	tk := k.New("trace_kprobe").Set("symbol", k.Str("do_sys_open")).Set("rp.kp.offset", 0x10).Set("rp.kp.addr", 0xffffffff81234567).Set("rp.handler", 0xffffffff81000100)
	tpe := k.New("trace_probe_event")
	tk.Set("tp.event", tpe.Addr)
	k.M.List(tpe.At("probes"), tk.At("tp.list"))
	perf := func(id uint32, call uint64, cookie uint64) {
		ev := k.New("perf_event").Set("tp_event", call).Set("bpf_cookie", cookie)
		c, l := k.link("bpf_perf_link", "link", id, LinkTypePerfEvent, prog.Addr)
		c.Set("perf_file", k.New("file").Set("private_data", ev.Addr).Addr)
		ls[id] = l
	}
	perf(10, tpe.At("call"), 0xc00c1e)
	// A tracepoint: a static trace_event_call whose union holds the
	// struct tracepoint (TRACE_EVENT_FL_TRACEPOINT).
	tp := k.New("tracepoint").Set("name", k.Str("sys_enter_openat"))
	perf(11, k.New("trace_event_call").Set("tp", tp.Addr).Addr, 0)
	// An event call with its name inline.
	perf(12, k.New("trace_event_call").Set("name", k.Str("my_event")).Addr, 0)
	// A software event: no call.
	perf(13, 0, 0)
	// Detached: an XDP link without its device, a cgroup link without
	// its cgroup.
	_, l = k.link("bpf_xdp_link", "link", 14, LinkTypeXDP, prog.Addr)
	ls[14] = l
	_, l = k.link("bpf_cgroup_link", "link", 15, LinkTypeCgroup, 0)
	ls[15] = l
	// A link being set up: in the IDR without its id yet.
	_, l = k.link("bpf_xdp_link", "link", 0, LinkTypeXDP, prog.Addr)
	ls[16] = l

	entries := map[uint64]uint64{}
	for id, l := range ls {
		entries[uint64(id)] = l.Addr
	}
	k.idr("link_idr", entries)
	k.idr("prog_idr", map[uint64]uint64{5: prog.Addr})
	return k, ls
}

func TestLinks(t *testing.T) {
	k, _ := linkKernel(t)
	var got []string
	for l, err := range LinkForEach(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		if l.Err != nil {
			t.Errorf("link %d: %v", l.ID, l.Err)
		}
		s := fmt.Sprintf("%d %s prog=%d/%s", l.ID, l.TypeName, l.ProgID, l.ProgTypeName)
		if l.HasAttachType {
			s += " attach=" + l.AttachTypeName
		}
		switch l.Type {
		case LinkTypeCgroup:
			s += fmt.Sprintf(" cgroup=%#x", l.CgroupID)
		case LinkTypeTracing:
			s += fmt.Sprintf(" target=%d/%d cookie=%#x", l.TargetObjID, l.TargetBTFID, l.Cookie)
		case LinkTypeXDP:
			s += fmt.Sprintf(" dev=%d/%s", l.Ifindex, l.Devname)
		case LinkTypeRawTracepoint:
			s += " tp=" + l.TPName
		case LinkTypeIter:
			s += fmt.Sprintf(" iter=%s map=%d tid=%d pid=%d cgroup=%#x/%d", l.IterTarget, l.IterMapID, l.IterTID, l.IterPID, l.IterCgroupID, l.IterCgroupOrder)
		case LinkTypeNetns:
			s += fmt.Sprintf(" netns=%d", l.NetnsIno)
		case LinkTypePerfEvent:
			if p := l.Perf; p != nil {
				s += fmt.Sprintf(" %s func=%s+%#x addr=%#x ret=%v tp=%s", p.Kind, p.Func, p.Offset, p.Addr, p.Retprobe, p.Tracepoint)
			}
		}
		got = append(got, s)
	}
	want := []string{
		"1 cgroup prog=5/sched_cls attach=cgroup_inet_egress cgroup=0x1234",
		"2 tracing prog=5/sched_cls attach=trace_fentry target=1/1234 cookie=0x77",
		"3 xdp prog=5/sched_cls dev=2/eth0",
		"4 raw_tracepoint prog=5/sched_cls tp=sched_switch",
		"5 iter prog=5/sched_cls iter=bpf_map_elem map=9 tid=0 pid=0 cgroup=0x0/0",
		"6 iter prog=5/sched_cls iter=task map=0 tid=0 pid=100 cgroup=0x0/0",
		"7 iter prog=5/sched_cls iter=cgroup map=0 tid=0 pid=0 cgroup=0x55/3",
		"8 iter prog=5/sched_cls iter=task_file map=0 tid=101 pid=0 cgroup=0x0/0",
		"9 netns prog=5/sched_cls attach=flow_dissector netns=4026531840",
		"10 perf_event prog=5/sched_cls kretprobe func=do_sys_open+0x10 addr=0xffffffff81234567 ret=true tp=",
		"11 perf_event prog=5/sched_cls tracepoint func=+0x0 addr=0x0 ret=false tp=sys_enter_openat",
		"12 perf_event prog=5/sched_cls tracepoint func=+0x0 addr=0x0 ret=false tp=my_event",
		"13 perf_event prog=5/sched_cls event func=+0x0 addr=0x0 ret=false tp=",
		"14 xdp prog=5/sched_cls dev=0/",
		"15 cgroup prog=0/ attach=cgroup_inet_ingress cgroup=0x0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("links\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if l, err := LinkByID(k.p, 3); err != nil || l.Devname != "eth0" {
		t.Errorf("LinkByID(3): %+v, %v", l, err)
	}
	if _, err := LinkByID(k.p, 16); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("LinkByID of an unsettled link: %v", err)
	}
}

func TestLinkDamage(t *testing.T) {
	k, ls := linkKernel(t)
	// A link whose id disagrees with its slot; a link whose program's aux
	// is on an absent page; a tracepoint name on an absent page.
	ls[3].Set("id", 33)
	bad, _ := k.prog(6, 3, "bad", nil)
	bad.Set("aux", 0xffff888077000000)
	ls[4].Set("prog", bad.Addr)
	var errs []string
	n := 0
	for l, err := range LinkForEach(k.p) {
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		n++
		_ = l
	}
	if n != 13 || len(errs) != 2 || !strings.Contains(errs[0], fmt.Sprintf("%#x (struct bpf_link of id 3): expected id 3, found id 33", ls[3].Addr)) || !strings.Contains(errs[1], "0xffff88807700") {
		t.Errorf("%d links, errors %q", n, errs)
	}
	// The attach information unreadable: the link, its Err set.
	ls[3].Set("id", 3)
	c := k.Obj("bpf_xdp_link", ls[3].Addr)
	c.Set("dev", 0xffff888077000000)
	l, err := LinkByID(k.p, 3)
	if err != nil || !errors.Is(l.Err, sk.ErrFault) {
		t.Errorf("XDP device on an absent page: %v, %v", l, err)
	}
	if _, err := NewLink(k.p.Pointer(k.S("bpf_link"), 0)); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("NULL link: %v", err)
	}
}
