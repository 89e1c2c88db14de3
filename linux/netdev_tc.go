package linux

import (
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// The tc programs of a device: cls_bpf filters on the hooks of its
// ingress or clsact qdisc (dev->miniq_ingress/miniq_egress, since 6.6
// the miniq of its tcx entry), and tcx's programs (6.6+:
// dev->tcx_ingress/tcx_egress, struct bpf_mprog_entry), as bpftool net
// lists them.

// maxTCFilters bounds a hook's filter chain and a cls_bpf instance's
// programs.
const maxTCFilters = 4096

// NetDevTC is a BPF program on one of a device's tc hooks.
type NetDevTC struct {
	// Kind is bpftool net's: "clsact/ingress", "clsact/egress" (a
	// cls_bpf filter, on a clsact or ingress qdisc), "tcx/ingress",
	// "tcx/egress".
	Kind string `json:"kind"`
	// Name is a cls_bpf filter's name (what tc gave it: "file:[section]"),
	// or, for tcx, the program's.
	Name   string      `json:"name"`
	ProgID uint32      `json:"id"`
	Prog   objects.Hex `json:"prog"`
	// LinkID is the tcx link holding the program (0: attached without one).
	LinkID uint32 `json:"link_id,omitempty"`
	// Filter is the cls_bpf filter's struct cls_bpf_prog; Prio and
	// Handle its priority and handle (tc filter show's pref and handle);
	// DirectAction says it runs in direct-action mode.
	Filter       objects.Hex `json:"filter,omitempty"`
	Prio         uint32      `json:"prio,omitempty"`
	Handle       uint32      `json:"handle,omitempty"`
	DirectAction bool        `json:"direct_action,omitempty"`
}

// netDevTC reads the device's tc programs: tcx's first (6.6+), then the
// cls_bpf filters, ingress before egress, in the order each hook runs
// them.
func netDevTC(d objects.Value) ([]NetDevTC, error) {
	var out []NetDevTC
	for _, dir := range []string{"ingress", "egress"} {
		miniq := "miniq_" + dir
		if e, err := d.Member("tcx_" + dir); err == nil {
			a, err := e.Uint()
			if err != nil {
				return out, err
			}
			if a == 0 {
				continue
			}
			progs, mq, err := tcxEntry(e, dir)
			out = append(out, progs...)
			if err != nil {
				return out, err
			}
			f, err := clsBPFFilters(mq, dir)
			out = append(out, f...)
			if err != nil {
				return out, err
			}
			continue
		}
		mq, err := d.Member(miniq)
		if err != nil {
			continue // no CONFIG_NET_INGRESS/EGRESS
		}
		f, err := clsBPFFilters(mq, dir)
		out = append(out, f...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// tcxEntry reads a tcx hook: the programs of the active struct
// bpf_mprog_entry (fp_items until a NULL program) with the links of its
// bundle's cp_items, and the miniq of the struct tcx_entry around it.
func tcxEntry(e objects.Value, dir string) ([]NetDevTC, objects.Value, error) {
	p := e.Program()
	ent, err := e.Deref()
	if err != nil {
		return nil, objects.Value{}, err
	}
	parent, err := ent.MemberUint("parent")
	if err != nil {
		return nil, objects.Value{}, err
	}
	bundle, err := p.ObjectOf("struct bpf_mprog_bundle", parent)
	if err != nil {
		return nil, objects.Value{}, err
	}
	fps, err := ent.Member("fp_items")
	if err != nil {
		return nil, objects.Value{}, err
	}
	cps, err := bundle.Member("cp_items")
	if err != nil {
		return nil, objects.Value{}, err
	}
	n, err := fps.Len()
	if err != nil {
		return nil, objects.Value{}, err
	}
	var out []NetDevTC
	for i := range n {
		fp, err := fps.Index(int64(i))
		if err != nil {
			return out, objects.Value{}, err
		}
		prog, err := fp.MemberUint("prog")
		if err != nil {
			return out, objects.Value{}, err
		}
		if prog == 0 {
			break
		}
		t := NetDevTC{Kind: "tcx/" + dir, Prog: objects.Hex(prog)}
		pv, err := p.ObjectOf("struct bpf_prog", prog)
		if err != nil {
			return out, objects.Value{}, err
		}
		id, err := pv.MemberUint("aux.id")
		if err != nil {
			return out, objects.Value{}, fmt.Errorf("tcx/%s program %#x: %w", dir, prog, err)
		}
		t.ProgID = uint32(id)
		if nm, err := pv.Path("aux.name"); err == nil {
			t.Name, _ = nm.CString()
		}
		if i < mustLen(cps) {
			cp, err := cps.Index(int64(i))
			if err == nil {
				if l, _ := cp.MemberUint("link"); l != 0 {
					lid, err := cp.MemberUint("link.id")
					if err != nil {
						return out, objects.Value{}, err
					}
					t.LinkID = uint32(lid)
				}
			}
		}
		out = append(out, t)
	}
	// struct tcx_entry { struct mini_Qdisc *miniq; struct bpf_mprog_bundle bundle; ... }
	off, _, err := p.MemberOffset("struct tcx_entry", "bundle")
	if err != nil {
		return out, objects.Value{}, err
	}
	te, err := p.ObjectOf("struct tcx_entry", parent-off)
	if err != nil {
		return out, objects.Value{}, err
	}
	mq, err := te.Member("miniq")
	return out, mq, err
}

func mustLen(v objects.Value) int {
	n, _ := v.Len()
	return n
}

// clsBPFFilters reads the cls_bpf filters of a hook's struct
// mini_Qdisc pointer: its filter_list of struct tcf_proto (chain 0, in
// priority order), and for each of kind "bpf" the programs of its
// struct cls_bpf_head.
func clsBPFFilters(mq objects.Value, dir string) ([]NetDevTC, error) {
	a, err := mq.Uint()
	if err != nil || a == 0 {
		return nil, err
	}
	p := mq.Program()
	tp, err := mq.MemberUint("filter_list")
	if err != nil {
		return nil, err
	}
	var out []NetDevTC
	seen := map[uint64]bool{}
	for tp != 0 {
		if seen[tp] || len(seen) == maxTCFilters {
			return out, &objects.Damage{Walk: "tc filters (" + dir + ")", Addr: objects.Hex(tp),
				Object: "struct tcf_proto", Expected: "a chain that ends", Err: fmt.Errorf("filter chain revisits %#x or passes %d filters", tp, maxTCFilters)}
		}
		seen[tp] = true
		t, err := p.ObjectOf("struct tcf_proto", tp)
		if err != nil {
			return out, err
		}
		var kind string
		k, err := t.Path("ops.kind") // char kind[IFNAMSIZ]
		if err == nil {
			kind, err = k.CString()
		}
		if err != nil {
			return out, fmt.Errorf("tcf_proto %#x: kind: %w", tp, err)
		}
		if kind == "bpf" {
			f, err := clsBPFProgs(t, dir)
			out = append(out, f...)
			if err != nil {
				return out, err
			}
		}
		if tp, err = t.MemberUint("next"); err != nil {
			return out, err
		}
	}
	return out, nil
}

// clsBPFProgs reads the programs of a cls_bpf instance (struct
// cls_bpf_head's plist of struct cls_bpf_prog); exts_integrated is
// direct-action mode (TCA_BPF_FLAG_ACT_DIRECT).
func clsBPFProgs(tp objects.Value, dir string) ([]NetDevTC, error) {
	p := tp.Program()
	root, err := tp.MemberUint("root")
	if err != nil || root == 0 {
		return nil, err
	}
	prio, _ := tp.MemberUint("prio")
	head, err := p.ObjectOf("struct cls_bpf_head", root)
	if err != nil {
		return nil, fmt.Errorf("cls_bpf (its module's BTF): %w", err)
	}
	pl, err := head.Member("plist")
	if err != nil {
		return nil, err
	}
	var out []NetDevTC
	for f, err := range objects.ListForEachEntry(pl, "struct cls_bpf_prog", "link") {
		if err != nil {
			return out, err
		}
		if len(out) == maxTCFilters {
			return out, fmt.Errorf("cls_bpf %#x: more than %d programs", root, maxTCFilters)
		}
		t := NetDevTC{Kind: "clsact/" + dir, Filter: objects.Hex(f.Addr()), Prio: uint32(prio >> 16)}
		prog, err := f.MemberUint("filter")
		if err != nil {
			return out, err
		}
		t.Prog = objects.Hex(prog)
		if prog != 0 {
			id, err := f.MemberUint("filter.aux.id")
			if err != nil {
				return out, fmt.Errorf("cls_bpf_prog %#x: program: %w", f.Addr(), err)
			}
			t.ProgID = uint32(id)
		}
		if h, err := f.MemberUint("handle"); err == nil {
			t.Handle = uint32(h)
		}
		if da, err := f.MemberUint("exts_integrated"); err == nil {
			t.DirectAction = da != 0
		}
		if t.Name, err = cstringAt(f, "bpf_name", 256); err != nil {
			return out, fmt.Errorf("cls_bpf_prog %#x: name: %w", f.Addr(), err)
		}
		out = append(out, t)
	}
	return out, nil
}
