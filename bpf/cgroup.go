package bpf

import (
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"

	"github.com/cilium/ebpf/btf"
)

// The BPF programs attached to cgroups (kernel/bpf/cgroup.c), as
// bpftool cgroup tree shows them.

// CgroupProg is a program attached to a cgroup, as bpftool cgroup
// show/tree prints one.
type CgroupProg struct {
	ID          uint32 `json:"id"`
	AttachType  string `json:"attach_type"`
	AttachFlags string `json:"attach_flags"`
	Name        string `json:"name"`
	// The BTF of an LSM cgroup program's hook (bpftool prints them
	// empty and 0 for the others).
	AttachBTFName  string `json:"attach_btf_name"`
	AttachBTFObjID uint32 `json:"attach_btf_obj_id"`
	AttachBTFID    uint32 `json:"attach_btf_id"`
	// Link is the bpf_cgroup_link holding it (0: attached without a
	// link).
	Link objects.Hex `json:"-"`
}

// CgroupProgs is a cgroup with the programs attached to it.
type CgroupProgs struct {
	// Path is the cgroup's directory: the cgroup2 mount point and its
	// path in the hierarchy, as bpftool's tree walk finds it.
	Path     string       `json:"cgroup"`
	Cgroup   objects.Hex  `json:"-"`
	Programs []CgroupProg `json:"programs"`
}

// The attach flags of include/uapi/linux/bpf.h.
const (
	bpfFAllowOverride = 1 << 0
	bpfFAllowMulti    = 1 << 1
)

// CgroupAttached lists the programs attached to a cgroup (not those it
// inherits), as BPF_PROG_QUERY without BPF_F_QUERY_EFFECTIVE and
// bpftool's show_attached_bpf_progs: by attach type, in enum
// bpf_attach_type's order, each type's programs in the order of
// cgrp->bpf.progs[], the type's flags as "multi", "override" or "".
func CgroupAttached(cgrp objects.Value) ([]CgroupProg, error) {
	p := cgrp.Program()
	ca, err := objects.ObjectAddr(cgrp, "cgroup_bpf_query")
	if err != nil {
		return nil, err
	}
	c, err := p.ObjectOf("struct cgroup", ca)
	if err != nil {
		return nil, err
	}
	progs, err := c.Path("bpf.progs")
	if err != nil {
		return nil, err
	}
	n, err := progs.Len()
	if err != nil {
		return nil, err
	}
	// enum cgroup_bpf_attach_type indexes progs[]; CGROUP_X is
	// BPF_CGROUP_X of enum bpf_attach_type (to_cgroup_bpf_attach_type).
	ct, err := p.Type("enum cgroup_bpf_attach_type")
	if err != nil {
		return nil, err
	}
	ce, ok := btfload.Underlying(ct).(*btf.Enum)
	if !ok {
		return nil, fmt.Errorf("enum cgroup_bpf_attach_type: %w", objects.ErrType)
	}
	type slot struct {
		index      int
		attachType uint64
		name       string
	}
	var slots []slot
	for _, ev := range ce.Values {
		if int(ev.Value) >= n || !strings.HasPrefix(ev.Name, "CGROUP_") || strings.HasPrefix(ev.Name, "CGROUP_LSM") {
			continue
		}
		at, err := p.Enumerator("BPF_" + ev.Name)
		if err != nil {
			continue
		}
		slots = append(slots, slot{int(ev.Value), at, EnumName(p, "enum bpf_attach_type", "BPF_", at)})
	}
	// By bpf_attach_type, as bpftool queries them.
	for i := 1; i < len(slots); i++ {
		for j := i; j > 0 && slots[j].attachType < slots[j-1].attachType; j-- {
			slots[j], slots[j-1] = slots[j-1], slots[j]
		}
	}
	var out []CgroupProg
	for _, s := range slots {
		head, err := progs.Index(int64(s.index))
		if err != nil {
			return nil, err
		}
		flags, err := c.MemberUint(fmt.Sprintf("bpf.flags[%d]", s.index))
		if err != nil {
			return nil, err
		}
		fl := ""
		switch flags {
		case 0:
		case bpfFAllowMulti:
			fl = "multi"
		case bpfFAllowOverride:
			fl = "override"
		default:
			fl = fmt.Sprintf("unknown(%x)", flags)
		}
		for pl, err := range objects.HlistForEachEntry(head, "struct bpf_prog_list", "node") {
			if err != nil {
				return nil, fmt.Errorf("cgroup %#x: %s programs: %w", ca, s.name, err)
			}
			prog, err := pl.MemberUint("prog")
			if err != nil {
				return nil, err
			}
			link, err := pl.MemberUint("link")
			if err != nil {
				return nil, err
			}
			if prog == 0 && link != 0 {
				// Attached by a link: its program.
				if prog, err = p.UintAt("struct bpf_cgroup_link", link, "link.prog"); err != nil {
					return nil, err
				}
			}
			pv, err := p.ObjectOf("struct bpf_prog", prog)
			if err != nil {
				return nil, err
			}
			bp, err := NewProg(pv)
			if err != nil {
				return nil, fmt.Errorf("cgroup %#x: %w", ca, err)
			}
			out = append(out, CgroupProg{ID: bp.ID, AttachType: ToolAttachType(s.name, uint32(s.attachType)), AttachFlags: fl, Name: bp.Name, Link: objects.Hex(link)})
		}
	}
	return out, nil
}

// CgroupTree lists the cgroups of the default hierarchy that have
// programs attached, as bpftool cgroup tree: in pre-order from the root,
// each path under mountPoint (the cgroup2 mount, "/sys/fs/cgroup").
func CgroupTree(p *objects.Program, mountPoint string) ([]CgroupProgs, error) {
	root, err := linux.DefaultCgroupRoot(p)
	if err != nil {
		return nil, err
	}
	var out []CgroupProgs
	for c, err := range linux.CgroupForEachDescendantPre(root) {
		if err != nil {
			return out, err
		}
		progs, err := CgroupAttached(c)
		if err != nil {
			return out, err
		}
		if len(progs) == 0 {
			continue
		}
		path, err := linux.CgroupPath(c)
		if err != nil {
			return out, err
		}
		full := strings.TrimSuffix(mountPoint, "/") + path
		if path == "/" {
			full = mountPoint
		}
		out = append(out, CgroupProgs{Path: full, Cgroup: objects.Hex(c.Addr()), Programs: progs})
	}
	return out, nil
}

// CgroupMountPoint finds where init's namespace mounts the default
// hierarchy (the first cgroup2 mount); "" when none does.
func CgroupMountPoint(p *objects.Program) (string, error) {
	ns, err := linux.InitMntNS(p)
	if err != nil {
		return "", err
	}
	for m, err := range linux.ForEachMount(ns) {
		if err != nil {
			return "", err
		}
		if t, err := linux.MountFSType(m); err == nil && t == "cgroup2" {
			return linux.MountPath(m)
		}
	}
	return "", nil
}
