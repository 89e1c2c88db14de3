package bpf

import (
	"fmt"
	"iter"

	"github.com/kinspect/kinspect/objects"
)

// BPF link types (enum bpf_link_type, include/uapi/linux/bpf.h).
const (
	LinkTypeRawTracepoint = 1
	LinkTypeTracing       = 2
	LinkTypeCgroup        = 3
	LinkTypeIter          = 4
	LinkTypeNetns         = 5
	LinkTypeXDP           = 6
	LinkTypePerfEvent     = 7
	LinkTypeStructOps     = 9
)

// Link is a BPF link (struct bpf_link) with the attach information
// bpf_link_info carries for its type, as bpftool's "link show" prints it.
// Fields a type does not have are zero; the Has flags say which parts
// were read.
type Link struct {
	// Obj is the struct bpf_link.
	Obj      objects.Value `json:"obj"`
	ID       uint32        `json:"id"`
	Type     uint32        `json:"-"`
	TypeName string        `json:"type"` // "perf_event", "tracing", ... (bpftool's)
	ProgID   uint32        `json:"prog_id"`
	ProgType uint32        `json:"-"`
	// ProgTypeName is the program's type as bpftool spells it.
	ProgTypeName string `json:"prog_type"`

	// AttachType (tracing, cgroup, netns) and its name.
	AttachType     uint32 `json:"-"`
	AttachTypeName string `json:"attach_type,omitempty"`
	HasAttachType  bool   `json:"-"`
	// Tracing: the target object (1: vmlinux, else a module's or a
	// program's BTF id) and type, from the trampoline's key.
	TargetObjID uint32 `json:"target_obj_id,omitempty"`
	TargetBTFID uint32 `json:"target_btf_id,omitempty"`
	Cookie      uint64 `json:"cookie,omitempty" js:"bigint"`
	HasTarget   bool   `json:"-"`
	// Cgroup: the cgroup's kernfs id.
	CgroupID uint64 `json:"cgroup_id,omitempty" js:"bigint"`
	// XDP: the device (0: detached).
	Ifindex uint32 `json:"ifindex,omitempty"`
	Devname string `json:"devname,omitempty"`
	// Raw tracepoint: its name.
	TPName string `json:"tp_name,omitempty"`
	// Perf event links: what the event is.
	Perf *PerfLinkInfo `json:"perf,omitempty"`
	// Iter: the iterator's target ("bpf_map_elem", "task", "cgroup", ...)
	// and what the target's fill_link_info reports: the map; the task
	// (TID or PID, by the iterator's task type); the cgroup and order.
	IterTarget      string `json:"target_name,omitempty"`
	IterMapID       uint32 `json:"map_id,omitempty"`
	IterTID         uint32 `json:"tid,omitempty"`
	IterPID         uint32 `json:"pid,omitempty"`
	IterCgroupID    uint64 `json:"iter_cgroup_id,omitempty" js:"bigint"`
	IterCgroupOrder uint32 `json:"order,omitempty"`
	// Netns: the network namespace's inode number (0: detached).
	NetnsIno uint32 `json:"netns_ino,omitempty"`
	// Err says why the type's attach information could not be read.
	Err error `json:"error,omitempty"`
}

// PerfLinkInfo describes the event of a perf_event link: a kprobe
// (Func, Offset, Addr, Retprobe) or a tracepoint (Tracepoint).
type PerfLinkInfo struct {
	Kind       string `json:"kind"` // "kprobe", "kretprobe", "tracepoint", "event"
	Func       string `json:"func,omitempty"`
	Offset     uint64 `json:"offset,omitempty"`
	Addr       uint64 `json:"addr,omitempty" js:"bigint"`
	Retprobe   bool   `json:"retprobe,omitempty"`
	Tracepoint string `json:"tracepoint,omitempty"`
}

// LinkForEach yields every BPF link in ID order, from link_idr
// (kernel/bpf/syscall.c, 5.8+). Links being set up sit in the IDR
// before they get an id (bpf_link_prime): those are skipped. A damaged
// IDR node or a link that cannot be read is a *objects.Damage, noted in
// the Program's damage log, and the walk goes on.
func LinkForEach(p *objects.Program) iter.Seq2[*Link, error] {
	read := func(v objects.Value) (*Link, error) {
		l, err := NewLink(v)
		if err == nil && l.ID == 0 {
			return nil, nil // not yet settled
		}
		return l, err
	}
	return idrWalk(p, "link_idr", "struct bpf_link", read, func(l *Link) uint32 { return l.ID })
}

// LinkByID returns the link with the given ID. Errors wrap
// ErrNotFound.
func LinkByID(p *objects.Program, id uint32) (*Link, error) {
	for l, err := range LinkForEach(p) {
		if err != nil && l == nil {
			if objects.IsDamage(err) {
				continue
			}
			return nil, err
		}
		if l.ID == id {
			return l, err
		}
	}
	return nil, fmt.Errorf("no BPF link with id %d: %w", id, objects.ErrNotFound)
}

// NewLink reads the struct bpf_link v is or points to, and its type's
// attach information. A failure to read the latter is kept in Err.
func NewLink(v objects.Value) (*Link, error) {
	addr, err := objects.ObjectAddr(v, "bpf link")
	if err != nil {
		return nil, err
	}
	p := v.Program()
	obj, err := p.ObjectOf("struct bpf_link", addr)
	if err != nil {
		return nil, err
	}
	b, err := obj.Bytes()
	if err != nil {
		return nil, fmt.Errorf("read struct bpf_link at %#x: %w", addr, err)
	}
	r := p.StructFrom(obj.Type(), b)
	l := &Link{Obj: obj}
	l.ID = uint32(r.Uint("id"))
	l.Type = uint32(r.Uint("type"))
	prog := r.Uint("prog")
	if r.Err() != nil {
		return nil, fmt.Errorf("struct bpf_link at %#x: %w", addr, r.Err())
	}
	l.TypeName = EnumName(p, "enum bpf_link_type", "BPF_LINK_TYPE_", uint64(l.Type))
	if prog != 0 {
		pv, err := p.ObjectOf("struct bpf_prog", prog)
		if err != nil {
			return nil, err
		}
		id, err := pv.Path("aux->id")
		if err != nil {
			return nil, fmt.Errorf("link %d: program at %#x: %w", l.ID, prog, err)
		}
		x, err := id.Uint()
		if err != nil {
			return nil, fmt.Errorf("link %d: program at %#x: %w", l.ID, prog, err)
		}
		l.ProgID = uint32(x)
		if t, err := pv.MemberUint("type"); err == nil {
			l.ProgType = uint32(t)
			l.ProgTypeName = EnumName(p, "enum bpf_prog_type", "BPF_PROG_TYPE_", t)
		}
	}
	l.Err = l.readAttach()
	return l, nil
}

func (l *Link) setAttachType(t uint64) {
	l.AttachType, l.HasAttachType = uint32(t), true
	l.AttachTypeName = EnumName(l.Obj.Program(), "enum bpf_attach_type", "BPF_", t)
}

// readAttach reads the per-type part, as each link type's
// fill_link_info does.
func (l *Link) readAttach() error {
	p := l.Obj.Program()
	switch l.Type {
	case LinkTypeCgroup:
		// struct bpf_cgroup_link (kernel/bpf/cgroup.c): cgroup, type;
		// the id is cgroup->kn->id.
		c, err := l.attached("struct bpf_cgroup_link", "link", "type")
		if err != nil {
			return err
		}
		// NULL once detached.
		l.CgroupID, err = pointeeUint(c, "cgroup", "kn->id")
		return err
	case LinkTypeTracing:
		// struct bpf_tracing_link (kernel/bpf/syscall.c): attach_type,
		// trampoline->key = obj_id << 32 | btf_id.
		// 5.19+ (f7e0beaf39d3 "bpf, x86: Generate trampolines from
		// bpf_tramp_links"): a struct bpf_tramp_link, with the cookie,
		// wraps the bpf_link; before, the bpf_link was the member.
		member := "link"
		if _, _, err := p.MemberOffset("struct bpf_tracing_link", "link.link"); err == nil {
			member = "link.link"
		}
		c, err := l.attached("struct bpf_tracing_link", member, "attach_type")
		if err != nil {
			return err
		}
		if ck, err := c.Path("link.cookie"); err == nil {
			l.Cookie, _ = ck.Uint()
		}
		tr, err := c.Member("trampoline")
		if err != nil {
			return err
		}
		if a, _ := tr.Uint(); a == 0 {
			return nil
		}
		key, err := tr.Path("key")
		if err != nil {
			return err
		}
		k, err := key.Uint()
		if err != nil {
			return err
		}
		// bpf_trampoline_unpack_key: bit 31 marks a kernel BTF id.
		l.TargetObjID, l.TargetBTFID, l.HasTarget = uint32(k>>32), uint32(k)&0x7fffffff, true
		return nil
	case LinkTypeXDP:
		// struct bpf_xdp_link (net/core/dev.c): dev (NULL once detached).
		c, err := objects.ContainerOf(l.Obj, "struct bpf_xdp_link", "link")
		if err != nil {
			return err
		}
		dev, err := c.Member("dev")
		if err != nil {
			return err
		}
		if a, _ := dev.Uint(); a == 0 {
			return nil
		}
		idx, err := dev.MemberUint("ifindex")
		if err != nil {
			return err
		}
		l.Ifindex = uint32(idx)
		nv, err := dev.Member("name")
		if err != nil {
			return err
		}
		l.Devname, err = nv.CString()
		return err
	case LinkTypeRawTracepoint:
		// struct bpf_raw_tp_link: btp->tp->name.
		c, err := objects.ContainerOf(l.Obj, "struct bpf_raw_tp_link", "link")
		if err != nil {
			return err
		}
		nv, err := c.Path("btp->tp->name")
		if err != nil {
			return err
		}
		l.TPName, err = nv.CString()
		return err
	case LinkTypePerfEvent:
		return l.readPerf()
	case LinkTypeIter:
		return l.readIter()
	case LinkTypeNetns:
		// struct bpf_netns_link (kernel/bpf/net_namespace.c): type, net
		// (NULL once the namespace is gone); bpf_netns_link_fill_info
		// reports net->ns.inum.
		c, err := l.attached("struct bpf_netns_link", "link", "type")
		if err != nil {
			return err
		}
		x, err := pointeeUint(c, "net", "ns.inum")
		l.NetnsIno = uint32(x)
		return err
	}
	return nil
}

// attached returns the link type's own struct, which holds the bpf_link
// at member, with its attach type (member attachType) read: what the
// cgroup, netns and tracing links' fill_link_info report first.
func (l *Link) attached(typeName, member, attachType string) (objects.Value, error) {
	c, err := objects.ContainerOf(l.Obj, typeName, member)
	if err != nil {
		return objects.Value{}, err
	}
	t, err := c.MemberUint(attachType)
	if err != nil {
		return objects.Value{}, err
	}
	l.setAttachType(t)
	return c, nil
}

// pointeeUint reads path in what v's pointer member ptr points to; 0
// when the pointer is NULL (a detached link, an iterator without that
// argument), as the kernel's fill_link_info functions report it.
func pointeeUint(v objects.Value, ptr, path string) (uint64, error) {
	pv, err := v.Member(ptr)
	if err != nil {
		return 0, err
	}
	if a, _ := pv.Uint(); a == 0 {
		return 0, nil
	}
	x, err := pv.Path(path)
	if err != nil {
		return 0, err
	}
	return x.Uint()
}

// readIter reads an iter link (struct bpf_iter_link, kernel/bpf/bpf_iter.c):
// the target's name (tinfo->reg_info->target) and the parts of aux its
// fill_link_info reports (bpf_iter_map_fill_link_info,
// bpf_iter_fill_link_info of the task targets, the cgroup target's).
func (l *Link) readIter() error {
	c, err := objects.ContainerOf(l.Obj, "struct bpf_iter_link", "link")
	if err != nil {
		return err
	}
	nv, err := c.Path("tinfo->reg_info->target")
	if err != nil {
		return err
	}
	if l.IterTarget, err = nv.CString(); err != nil {
		return err
	}
	aux, err := c.Member("aux")
	if err != nil {
		return err
	}
	switch l.IterTarget {
	case "bpf_map_elem", "bpf_sk_storage_map":
		id, err := pointeeUint(aux, "map", "id")
		l.IterMapID = uint32(id)
		return err
	case "task", "task_file", "task_vma":
		t, err := aux.Member("task")
		if err != nil {
			return nil // before 6.1: no task filter
		}
		typ, err := t.MemberUint("type")
		if err != nil {
			return err
		}
		pid, err := t.MemberUint("pid")
		if err != nil {
			return err
		}
		switch typ { // enum bpf_iter_task_type
		case 1: // BPF_TASK_ITER_TID
			l.IterTID = uint32(pid)
		case 2: // BPF_TASK_ITER_TGID
			l.IterPID = uint32(pid)
		}
	case "cgroup":
		cg, err := aux.Member("cgroup")
		if err != nil {
			return err
		}
		order, err := cg.MemberUint("order")
		if err != nil {
			return err
		}
		l.IterCgroupOrder = uint32(order)
		l.IterCgroupID, err = pointeeUint(cg, "start", "kn->id")
		return err
	}
	return nil
}

// readPerf reads a perf_event link's event (struct bpf_perf_link's
// perf_file->private_data): a tracepoint's name, or a kprobe's
// function, offset and address (struct trace_kprobe), as
// bpf_perf_link_fill_link_info (6.6+) reports them.
func (l *Link) readPerf() error {
	c, err := objects.ContainerOf(l.Obj, "struct bpf_perf_link", "link")
	if err != nil {
		return err
	}
	pd, err := c.Path("perf_file->private_data")
	if err != nil {
		return err
	}
	ea, err := pd.Uint()
	if err != nil || ea == 0 {
		return err
	}
	ev, err := l.Obj.Program().ObjectOf("struct perf_event", ea)
	if err != nil {
		return err
	}
	info := &PerfLinkInfo{Kind: "event"}
	l.Perf = info
	call, err := ev.Member("tp_event")
	if err != nil {
		return err
	}
	if a, _ := call.Uint(); a == 0 {
		return nil
	}
	// A kprobe's call sits in the struct trace_probe_event of a
	// struct trace_kprobe (kernel/trace/trace_kprobe.c), whose probes
	// point back to it; a tracepoint's is a static trace_event_call.
	// The TRACE_EVENT_FL_* bits moved between releases, so the back
	// pointer decides, not the flags.
	if tk, ok := kprobeOf(call); ok {
		info.Kind = "kprobe"
		if sv, err := tk.Member("symbol"); err == nil {
			if a, _ := sv.Uint(); a != 0 {
				info.Func, _ = sv.CString()
			}
		}
		if ov, err := tk.Path("rp.kp.offset"); err == nil {
			info.Offset, _ = ov.Uint()
		}
		if av, err := tk.Path("rp.kp.addr"); err == nil {
			info.Addr, _ = av.Uint()
		}
		if hv, err := tk.Path("rp.handler"); err == nil {
			if h, _ := hv.Uint(); h != 0 {
				info.Retprobe, info.Kind = true, "kretprobe"
			}
		}
		return nil
	}
	info.Kind = "tracepoint"
	info.Tracepoint, err = tracepointName(call)
	return err
}

// kprobeOf returns the struct trace_kprobe whose event call is call.
func kprobeOf(call objects.Value) (objects.Value, bool) {
	tpe, err := objects.ContainerOf(call, "struct trace_probe_event", "call")
	if err != nil {
		return objects.Value{}, false
	}
	probes, err := tpe.Member("probes")
	if err != nil {
		return objects.Value{}, false
	}
	for tp, err := range objects.ListForEachEntry(probes, "struct trace_probe", "list") {
		if err != nil {
			return objects.Value{}, false
		}
		ev, err := tp.MemberUint("event")
		if err != nil || ev != tpe.Addr() {
			return objects.Value{}, false
		}
		tk, err := objects.ContainerOf(tp, "struct trace_kprobe", "tp")
		return tk, err == nil
	}
	return objects.Value{}, false
}

// tracepointName reads a trace_event_call's name: the union of name
// and tp (TRACE_EVENT_FL_TRACEPOINT) holds either the string or a struct
// tracepoint whose first member is the name; a pointer read as a string
// is not printable, which tells them apart.
func tracepointName(call objects.Value) (string, error) {
	nv, err := call.Member("name")
	if err != nil {
		return "", err
	}
	if s, err := nv.CString(); err == nil && printableIdent(s) {
		return s, nil
	}
	tv, err := call.Path("tp->name")
	if err != nil {
		return "", err
	}
	return tv.CString()
}

func printableIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
