package bpf

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/objects"
)

// What the verifier's rewrites of a program depend on, read from the
// kernel, so that bpfinsn.AsLoaded can undo them and the program's tag
// can be recomputed (kernel/bpf/verifier.c, do_misc_fixups and
// convert_ctx_accesses).

// mapOpsHelpers are the members of struct bpf_map_ops that
// do_misc_fixups calls directly in place of a helper, with the helper's
// enum bpf_func_id name.
var mapOpsHelpers = []struct{ member, helper string }{
	{"map_lookup_elem", "map_lookup_elem"},
	{"map_update_elem", "map_update_elem"},
	{"map_delete_elem", "map_delete_elem"},
	{"map_push_elem", "map_push_elem"},
	{"map_pop_elem", "map_pop_elem"},
	{"map_peek_elem", "map_peek_elem"},
	{"map_redirect", "redirect_map"},                     // 5.12+
	{"map_for_each_callback", "for_each_map_elem"},       // 5.13+
	{"map_lookup_percpu_elem", "map_lookup_percpu_elem"}, // 5.19+
}

// helperAliases are helper implementations whose names do not derive
// from their helper's (net/core/filter.c, kernel/trace/bpf_trace.c,
// kernel/bpf/helpers.c): the function a program type's get_func_proto
// hands the verifier for the helper.
var helperAliases = map[string]string{
	"bpf_xdp_event_output":             "perf_event_output",
	"bpf_skb_event_output":             "perf_event_output",
	"bpf_event_output_data":            "perf_event_output",
	"bpf_get_raw_cpu_id":               "get_smp_processor_id",
	"bpf_probe_read_compat_str":        "probe_read_str",
	"bpf_xdp_fib_lookup":               "fib_lookup",
	"bpf_skb_fib_lookup":               "fib_lookup",
	"bpf_xdp_check_mtu":                "check_mtu",
	"bpf_skb_check_mtu":                "check_mtu",
	"bpf_xdp_redirect_map":             "redirect_map",
	"sk_reuseport_load_bytes":          "skb_load_bytes",
	"sk_reuseport_load_bytes_relative": "skb_load_bytes_relative",
}

// helperIDByName resolves the name of a kernel function to the helper
// it implements, given enum bpf_func_id's names (without BPF_FUNC_): the
// helper "bpf_NAME" (or NAME), an alias, or a variant of it for some
// program types ("bpf_get_stackid_tp", "bpf_get_socket_cookie_sock",
// "bpf_sock_addr_setsockopt"), the longest helper name winning.
func helperIDByName(fn string, ids map[string]int32) (int32, bool) {
	if id, ok := ids[strings.TrimPrefix(fn, "bpf_")]; ok {
		return id, true
	}
	if h, ok := helperAliases[fn]; ok {
		id, ok := ids[h]
		return id, ok
	}
	if !strings.HasPrefix(fn, "bpf_") {
		return 0, false
	}
	rest := strings.TrimPrefix(fn, "bpf_")
	best, bestID := "", int32(0)
	for h, id := range ids {
		if len(h) <= len(best) {
			continue
		}
		if strings.HasPrefix(rest, h+"_") || strings.HasSuffix(rest, "_"+h) {
			best, bestID = h, id
		}
	}
	return bestID, best != ""
}

// Context fields that convert_ctx_access turns into exactly one load of
// a kernel field, per context: {context member, kernel struct, kernel
// member path}. Loads of other fields become several instructions or
// none, and are left alone.
var skbCtxFields = [][3]string{
	// bpf_convert_ctx_access (net/core/filter.c)
	{"len", "struct sk_buff", "len"},
	{"protocol", "struct sk_buff", "protocol"},
	{"vlan_proto", "struct sk_buff", "vlan_proto"},
	{"priority", "struct sk_buff", "priority"},
	{"ingress_ifindex", "struct sk_buff", "skb_iif"},
	{"hash", "struct sk_buff", "hash"},
	{"mark", "struct sk_buff", "mark"},
	{"queue_mapping", "struct sk_buff", "queue_mapping"},
	{"vlan_tci", "struct sk_buff", "vlan_tci"},
	{"tc_index", "struct sk_buff", "tc_index"},
	{"data", "struct sk_buff", "data"},
}

var xdpCtxFields = [][3]string{
	// xdp_convert_ctx_access
	{"data", "struct xdp_buff", "data"},
	{"data_meta", "struct xdp_buff", "data_meta"},
	{"data_end", "struct xdp_buff", "data_end"},
}

// bpfSizeCode gives BPF_B, BPF_H, BPF_W or BPF_DW for a size in bytes.
func bpfSizeCode(n int) (uint8, bool) {
	switch n {
	case 1:
		return bpfinsn.SizeB, true
	case 2:
		return bpfinsn.SizeH, true
	case 4:
		return bpfinsn.SizeW, true
	case 8:
		return bpfinsn.SizeDW, true
	}
	return 0, false
}

// ctxField builds one CtxField from BTF; ok false when a member is
// missing (a kernel built without it converts the load differently).
func ctxField(p *objects.Program, ctxType, ctxMember, kernType, kernOff string, extra uint64) (bpfinsn.CtxField, bool) {
	co, ct, err := p.MemberOffset(ctxType, ctxMember)
	if err != nil {
		return bpfinsn.CtxField{}, false
	}
	ko, kt, err := p.MemberOffset(kernType, kernOff)
	if err != nil {
		return bpfinsn.CtxField{}, false
	}
	cs, err1 := btf.Sizeof(ct)
	ks, err2 := btf.Sizeof(kt)
	if err1 != nil || err2 != nil {
		return bpfinsn.CtxField{}, false
	}
	csz, ok1 := bpfSizeCode(cs)
	ksz, ok2 := bpfSizeCode(ks)
	if !ok1 || !ok2 || ko+extra > 1<<15 {
		return bpfinsn.CtxField{}, false
	}
	return bpfinsn.CtxField{Name: strings.TrimPrefix(ctxType, "struct ") + "." + ctxMember,
		CtxOff: int16(co), CtxSize: csz, KernOff: int16(ko + extra), KernSize: ksz}, true
}

// ctxFields lists the one-to-one context conversions of the program's
// type, nil when its type converts no context access (its
// bpf_verifier_ops has no convert_ctx_access: kprobe, tracepoint,
// tracing) or the table cannot be read. converts says the type does
// convert context accesses.
func (bp *Prog) ctxFields() (fields []bpfinsn.CtxField, converts bool) {
	p := bp.Obj.Program(
	// bpf_verifier_ops[] (kernel/bpf/verifier.c) is indexed by type.
	)

	base, err := p.Symbol("bpf_verifier_ops")
	if err != nil {
		return nil, false
	}
	ops, err := p.ReadU64(base + 8*uint64(bp.Type))
	if err != nil || ops == 0 {
		return nil, false
	}
	conv, err := p.UintAt("struct bpf_verifier_ops", ops, "convert_ctx_access")
	if err != nil || conv == 0 {
		return nil, false
	}
	var table [][3]string
	ctxType := "struct __sk_buff"
	switch bp.TypeName {
	case "socket_filter", "sched_cls", "sched_act", "cgroup_skb", "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local", "sk_skb":
		table = skbCtxFields
	case "xdp":
		table, ctxType = xdpCtxFields, "struct xdp_md"
	}
	for _, f := range table {
		if c, ok := ctxField(p, ctxType, f[0], f[1], f[2], 0); ok {
			fields = append(fields, c)
		}
	}
	if ctxType == "struct __sk_buff" && table != nil {
		// cb[] and tc_classid live in the qdisc_skb_cb at skb->cb;
		// data_end in the struct bpf_skb_data_end that wraps it
		// (sk_skb programs compute data_end instead).
		if cb, _, err := p.MemberOffset("struct sk_buff", "cb"); err == nil {
			if d, _, err := p.MemberOffset("struct qdisc_skb_cb", "data"); err == nil {
				// A cb[] load keeps its size (bpf_convert_ctx_access).
				for i := range 5 {
					m := fmt.Sprintf("cb[%d]", i)
					co, ct, err := p.MemberOffset(ctxType, m)
					if err != nil {
						break
					}
					sz, err := btf.Sizeof(ct)
					code, ok := bpfSizeCode(sz)
					if err != nil || !ok {
						break
					}
					fields = append(fields, bpfinsn.CtxField{Name: "__sk_buff." + m, CtxOff: int16(co), CtxSize: code,
						KernOff: int16(cb + d + uint64(4*i)), KernSize: code})
				}
			}
			if c, ok := ctxField(p, ctxType, "tc_classid", "struct qdisc_skb_cb", "tc_classid", cb); ok {
				fields = append(fields, c)
			}
			if bp.TypeName != "sk_skb" {
				if c, ok := ctxField(p, ctxType, "data_end", "struct bpf_skb_data_end", "data_end", cb); ok {
					fields = append(fields, c)
				}
			}
		}
	}
	return fields, true
}

// LoadedFacts reads what bpfinsn.AsLoaded needs to undo the verifier's
// rewrites of the program: the helpers and map operations its calls
// reach, its maps' shapes, the layouts of the inlined lookups and of its
// context. symName names kernel addresses (kallsyms); nil leaves calls
// and symbol loads unresolved.
func (bp *Prog) LoadedFacts(symName SymbolNamer) (bpfinsn.KernelFacts, error) {
	p := bp.Obj.Program()
	var f bpfinsn.KernelFacts
	if symName != nil {
		f.Syms = bpfinsn.ResolverFunc(symName)
	}
	if a, err := p.Symbol("__bpf_call_base"); err == nil {
		f.CallBase = a
	}
	if a, err := p.Symbol("__htab_map_lookup_elem"); err == nil {
		f.HtabLookup = a
	}
	if o, _, err := p.MemberOffset("struct bpf_array", "value"); err == nil {
		f.ArrayValueOff = int32(o)
	}
	if o, _, err := p.MemberOffset("struct htab_elem", "key"); err == nil {
		f.HtabKeyOff = int32(o)
	}
	if o, _, err := p.MemberOffset("struct htab_elem", "lru_node.ref"); err == nil {
		f.LRURefOff = int32(o)
	}
	helpers, err := enumFeatures(p, "enum bpf_func_id", "BPF_FUNC_")
	if err != nil {
		return f, fmt.Errorf("bpf prog %d: helpers: %w", bp.ID, err)
	}
	ids := make(map[string]int32, len(helpers))
	for _, h := range helpers {
		ids[h.Name] = int32(h.Value)
	}
	opsHelper := map[uint64]int32{}
	for _, addr := range bp.usedMapAddrs() {
		m, err := NewMap(p.Pointer(nil, addr))
		if err != nil {
			continue
		}
		s := bpfinsn.MapShape{Type: m.Type, KeySize: m.KeySize, MaxEntries: m.MaxEntries}
		if arr, err := objects.ContainerOf(m.Obj, "struct bpf_array", "map"); err == nil {
			if v, err := arr.Member("elem_size"); err == nil {
				es, _ := v.Uint()
				s.ElemSize = uint32(es)
			}
			if v, err := arr.Member("index_mask"); err == nil {
				im, _ := v.Uint()
				s.IndexMask = uint32(im)
			}
		}
		f.Maps = append(f.Maps, s)
		for _, oh := range mapOpsHelpers {
			v, err := m.Obj.Path("ops->" + oh.member)
			if err != nil {
				continue
			}
			fn, err := v.Uint()
			id, known := ids[oh.helper]
			if err != nil || fn == 0 || !known {
				continue
			}
			if prev, dup := opsHelper[fn]; dup && prev != id {
				opsHelper[fn] = -1 // one function serving two helpers: ambiguous
				continue
			}
			opsHelper[fn] = id
		}
	}
	f.Helper = func(addr uint64) (int32, bool) {
		if id, ok := opsHelper[addr]; ok {
			return id, id >= 0
		}
		if symName == nil {
			return 0, false
		}
		name, ok := symName(addr)
		if !ok {
			return 0, false
		}
		return helperIDByName(name, ids)
	}
	f.Kfunc = func(addr uint64, off int16) (int32, bool) {
		// off != 0 names a module's BTF by its index in the loader's
		// fd_array, which the kernel does not keep.
		if off != 0 || symName == nil {
			return 0, false
		}
		name, ok := symName(addr)
		if !ok {
			return 0, false
		}
		spec := p.Types().BTF()
		ts, err := spec.AnyTypesByName(name)
		if err != nil {
			return 0, false
		}
		for _, t := range ts {
			if fn, ok := t.(*btf.Func); ok {
				id, err := spec.TypeID(fn)
				return int32(id), err == nil
			}
		}
		return 0, false
	}
	f.Ctx, _ = bp.ctxFields()
	return f, nil
}

// usedMapAddrs returns the addresses of the program's struct bpf_maps
// (aux->used_maps), nil when they cannot be read.
func (bp *Prog) usedMapAddrs() []uint64 {
	refs, err := bp.UsedMaps()
	if err != nil {
		return nil
	}
	out := make([]uint64, len(refs))
	for i, r := range refs {
		out[i] = r.Addr
	}
	return out
}

// ProgLoaded is a program's instructions as loaded, reconstructed,
// and the tag they hash to.
type ProgLoaded struct {
	bpfinsn.Loaded
	Tag [bpfinsn.TagSize]byte
	// Match says Tag is the kernel's tag of the program (bp.Tag).
	Match bool
}

// AsLoaded reconstructs the program's instructions as loaded
// (bpfinsn.AsLoaded over Insns, UsedMaps and LoadedFacts) and
// recomputes its tag.
func (bp *Prog) AsLoaded(symName SymbolNamer) (*ProgLoaded, error) {
	raw, err := bp.Insns()
	if err != nil {
		return nil, err
	}
	maps, err := bp.UsedMaps()
	if err != nil {
		return nil, fmt.Errorf("bpf prog %d: %w", bp.ID, err)
	}
	facts, err := bp.LoadedFacts(symName)
	if err != nil {
		return nil, err
	}
	l := &ProgLoaded{Loaded: bpfinsn.AsLoaded(raw, maps, facts)}
	l.Tag = bpfinsn.Tag(l.Insns)
	l.Match = l.Tag == bp.Tag
	return l, nil
}
