package bpf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

// opsTable writes a table of pointers indexed by type, as
// kernel/bpf/syscall.c's bpf_prog_types[] and bpf_map_types[].
func (k *bpfKernel) opsTable(name string, n int, ptrs map[int]uint64) {
	a := k.M.Global(k.Syms, name, 8*uint64(n))
	for i, p := range ptrs {
		k.M.U64(a+8*uint64(i), p)
	}
}

func features(fs []Feature) string {
	var out []string
	for _, f := range fs {
		s := fmt.Sprintf("%d:%s", f.Value, f.Name)
		if f.Have {
			s += "+"
		}
		if f.Ops != "" {
			s += "(" + f.Ops + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestFeatureProbe(t *testing.T) {
	k := newBPF(t)
	// Without the tables: every enumerator counts.
	f, err := FeatureProbe(k.p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.TablesRead || features(f.ProgTypes) != "1:socket_filter+ 2:kprobe+ 3:sched_cls+ 6:xdp+ 26:tracing+ 27:struct_ops+" {
		t.Errorf("prog types without tables: %v %s", f.TablesRead, features(f.ProgTypes))
	}
	names := map[uint64]string{
		0xffffffff82100000: "sk_filter_prog_ops",
		0xffffffff82100100: "tc_cls_act_prog_ops",
		0xffffffff82100200: "some_other_object", // past a table's end: not an entry
		0xffffffff82200000: "htab_map_ops",
		0xffffffff82200100: "array_map_ops",
	}
	symName := func(a uint64) (string, bool) { n, ok := names[a]; return n, ok }
	k.opsTable("bpf_prog_types", 28, map[int]uint64{1: 0xffffffff82100000, 3: 0xffffffff82100100, 6: 0xffffffff82100200})
	k.opsTable("bpf_map_types", 28, map[int]uint64{1: 0xffffffff82200000, 2: 0xffffffff82200100, 27: 0xffffffff82300000})
	f, err = FeatureProbe(k.p, symName, func(h string) bool { return h == "map_lookup_elem" || h == "ktime_get_ns" })
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"prog types", features(f.ProgTypes), "1:socket_filter+(sk_filter_prog_ops) 2:kprobe 3:sched_cls+(tc_cls_act_prog_ops) 6:xdp 26:tracing 27:struct_ops"},
		// BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED loses to its current name.
		{"map types", features(f.MapTypes), "1:hash+(htab_map_ops) 2:array+(array_map_ops) 3:prog_array 4:perf_event_array 5:percpu_hash 6:percpu_array 7:stack_trace 8:cgroup_array 9:lru_hash 10:lru_percpu_hash 11:lpm_trie 19:cgroup_storage 22:queue 23:stack 26:struct_ops 27:ringbuf"},
		{"attach types", features(f.AttachTypes), "0:cgroup_inet_ingress+ 1:cgroup_inet_egress+ 17:flow_dissector+ 24:trace_fentry+ 28:trace_iter+"},
		{"link types", features(f.LinkTypes), "1:raw_tracepoint+ 2:tracing+ 3:cgroup+ 4:iter+ 5:netns+ 6:xdp+ 7:perf_event+ 8:kprobe_multi+ 9:struct_ops+"},
		{"helpers", features(f.Helpers), "1:bpf_map_lookup_elem+ 2:bpf_map_update_elem 3:bpf_map_delete_elem 4:bpf_probe_read 5:bpf_ktime_get_ns+ 8:bpf_get_smp_processor_id 25:bpf_perf_event_output"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s\ngot  %s\nwant %s", tc.what, tc.got, tc.want)
		}
	}
	if !f.TablesRead {
		t.Errorf("tables not read")
	}
	// Trusting any pointer without names.
	f, _ = FeatureProbe(k.p, nil, nil)
	if s := features(f.ProgTypes); s != "1:socket_filter+ 2:kprobe 3:sched_cls+ 6:xdp+ 26:tracing 27:struct_ops" {
		t.Errorf("prog types without names: %s", s)
	}
}

func TestHelperIDByName(t *testing.T) {
	ids := map[string]int32{"map_lookup_elem": 1, "get_smp_processor_id": 8, "perf_event_output": 25, "get_stackid": 27, "get_stack": 67, "get_socket_cookie": 46, "setsockopt": 49}
	for _, tc := range []struct {
		fn string
		id int32
		ok bool
	}{
		{"bpf_map_lookup_elem", 1, true},
		{"map_lookup_elem", 1, true},
		{"bpf_get_raw_cpu_id", 8, true},    // an alias
		{"bpf_skb_event_output", 25, true}, // an alias
		{"bpf_get_stackid_tp", 27, true},   // a variant; get_stack is shorter
		{"bpf_get_socket_cookie_sock", 46, true},
		{"bpf_sock_addr_setsockopt", 49, true},
		{"bpf_nothing_like_it", 0, false},
		{"htab_map_lookup_elem", 0, false},
	} {
		id, ok := helperIDByName(tc.fn, ids)
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.fn, id, ok, tc.id, tc.ok)
		}
	}
}

// TestLoadedFacts: what AsLoaded is told of the kernel, from BTF and
// symbols.
func TestLoadedFacts(t *testing.T) {
	k, objs, _ := progKernel(t)
	k.Syms["__htab_map_lookup_elem"] = 0xffffffff81310000
	// bpf_verifier_ops[] (kernel/bpf/verifier.c): socket filters convert
	// their context accesses.
	vops := k.New("bpf_verifier_ops").Set("convert_ctx_access", 0xffffffff81500000)
	k.opsTable("bpf_verifier_ops", 28, map[int]uint64{1: vops.Addr})
	bp, err := ProgByID(k.p, 1)
	if err != nil {
		t.Fatal(err)
	}
	names := map[uint64]string{0xffffffff81400000: "bpf_get_raw_cpu_id", 0xffffffff81410000: "bpf_kfunc_example"}
	f, err := bp.LoadedFacts(func(a uint64) (string, bool) { n, ok := names[a]; return n, ok })
	if err != nil {
		t.Fatal(err)
	}
	arr := objs["arr"]
	elem := k.M.Obj(k.S("htab_elem"), 0)
	if f.CallBase != callBase || f.HtabLookup != 0xffffffff81310000 || f.ArrayValueOff != int32(arr.At("value")-arr.Addr) ||
		f.HtabKeyOff != int32(elem.At("key")) || f.LRURefOff != int32(elem.At("lru_node.ref")) {
		t.Errorf("facts %+v", f)
	}
	if fmt.Sprint(f.Maps) != fmt.Sprint([]bpfinsn.MapShape{{Type: MapTypeArray, KeySize: 4, MaxEntries: 1, ElemSize: 8}, {Type: MapTypeHash, KeySize: 4, MaxEntries: 16}}) {
		t.Errorf("maps %+v", f.Maps)
	}
	for _, tc := range []struct {
		addr uint64
		id   int32
		ok   bool
	}{{htabLookup, 1, true}, {0xffffffff81400000, 8, true}, {0xffffffff81999999, 0, false}} {
		if id, ok := f.Helper(tc.addr); id != tc.id || ok != tc.ok {
			t.Errorf("helper at %#x: %d, %v", tc.addr, id, ok)
		}
	}
	kf, err := k.p.Types().BTF().AnyTypeByName("bpf_kfunc_example")
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := k.p.Types().BTF().TypeID(kf)
	if id, ok := f.Kfunc(0xffffffff81410000, 0); !ok || id != int32(kid) {
		t.Errorf("kfunc: %d, %v; want %d", id, ok, kid)
	}
	if _, ok := f.Kfunc(0xffffffff81410000, 1); ok {
		t.Errorf("a module's kfunc resolved")
	}
	// __sk_buff.len and .mark are one load of sk_buff's (net/core/filter.c
	// bpf_convert_ctx_access); the other fields have no kernel twin here.
	ctx := k.M.Obj(k.S("__sk_buff"), 0)
	skb := k.M.Obj(k.S("sk_buff"), 0)
	want := []bpfinsn.CtxField{
		{Name: "__sk_buff.len", CtxOff: int16(ctx.At("len")), CtxSize: bpfinsn.SizeW, KernOff: int16(skb.At("len")), KernSize: bpfinsn.SizeW},
		{Name: "__sk_buff.mark", CtxOff: int16(ctx.At("mark")), CtxSize: bpfinsn.SizeW, KernOff: int16(skb.At("mark")), KernSize: bpfinsn.SizeW},
	}
	if fmt.Sprint(f.Ctx) != fmt.Sprint(want) {
		t.Errorf("ctx %+v\nwant %+v", f.Ctx, want)
	}
}
