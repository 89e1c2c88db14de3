package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// structOpsMap lays out a struct bpf_struct_ops_map of
// tcp_congestion_ops (kernel/bpf/bpf_struct_ops.c) in state, its user
// value holding programs 7 and 8 in ssthresh and cong_avoid.
func (k *bpfKernel) structOpsMap(t *testing.T, id uint32, state uint64) (sk.Obj, sk.Obj, sk.Obj) {
	vt := k.S("bpf_struct_ops_tcp_congestion_ops")
	pt, err := k.p.Type("struct bpf_struct_ops_tcp_congestion_ops")
	if err != nil {
		t.Fatal(err)
	}
	vid, err := k.p.Types().BTF().TypeID(pt)
	if err != nil {
		t.Fatal(err)
	}
	st, m := k.mapIn("bpf_struct_ops_map", uint64(vt.Size), id, MapTypeStructOps, 4, vt.Size, 1, fmt.Sprintf("ops%d", id))
	m.Set("btf_vmlinux_value_type_id", uint64(vid))
	uv := k.M.New(vt)
	uv.Set("data.ssthresh", 7).Set("data.cong_avoid", 8).Str("data.name", "bpf_cubic").Set("data.key", 0x1234)
	st.Set("uvalue", uv.Addr).Set("funcs_cnt", 4).Set("kvalue.common.state", state)
	return st, m, uv
}

func TestStructOps(t *testing.T) {
	k := newBPF(t)
	st, m, uv := k.structOpsMap(t, 50, 1) // BPF_STRUCT_OPS_STATE_INUSE
	m.Set("refcnt.counter", 3).Set("usercnt.counter", 1)
	vmBTF := k.New("btf").Set("id", 1)
	st.Set("btf", vmBTF.Addr)
	_, m51, _ := k.structOpsMap(t, 51, 0) // INIT: nothing registered
	_, m52 := k.mapIn("bpf_htab", 0, 52, MapTypeHash, 4, 4, 1, "h")
	k.idr("map_idr", map[uint64]uint64{50: m.Addr, 51: m51.Addr, 52: m52.Addr})

	var got []*StructOps
	for s, err := range StructOpsForEach(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if len(got) != 2 {
		t.Fatalf("%d struct_ops maps", len(got))
	}
	s := got[0]
	if s.ValueErr != nil || s.KernelStruct != "tcp_congestion_ops" || s.State != 1 || s.StateName != "BPF_STRUCT_OPS_STATE_INUSE" {
		t.Errorf("map 50: %+v", s)
	}
	// bpf_struct_ops_map_sys_lookup_elem: the user's value, with the
	// state and the references (map refcnt - usercnt, since struct
	// bpf_struct_ops_link exists) filled in.
	want := make([]byte, len(s.Value))
	k.M.ReadVirt(want, uv.Addr)
	binary.LittleEndian.PutUint32(want[uv.At("common.state")-uv.Addr:], 1)
	binary.LittleEndian.PutUint32(want[uv.At("common.refcnt")-uv.Addr:], 2)
	if string(s.Value) != string(want) {
		t.Errorf("value\ngot  %x\nwant %x", s.Value, want)
	}
	if fmt.Sprint(s.Funcs) != "[{init 0} {release 0} {ssthresh 7} {cong_avoid 8}]" {
		t.Errorf("funcs %v", s.Funcs)
	}
	v, ok := s.ValueObject()
	if name, err := v.Path("data.name"); !ok || err != nil {
		t.Errorf("value object: %v, %v", ok, err)
	} else if n, _ := name.CString(); n != "bpf_cubic" {
		t.Errorf("data.name %q", n)
	}
	s = got[1]
	if s.ValueErr != nil || s.State != 0 || string(s.Value) != string(make([]byte, len(s.Value))) || fmt.Sprint(s.Funcs) != "[{init 0} {release 0} {ssthresh 0} {cong_avoid 0}]" {
		t.Errorf("map 51 in INIT: %+v", s)
	}

	mp, err := MapByID(k.p, 50)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries(t, mp, OrderAuto); s != fmt.Sprintf("00000000=%x", want) {
		t.Errorf("entries %s", s)
	}
	// bpf_struct_ops_map_mem_usage: the map with the value's data, the
	// user value, a link and a ksym pointer per function, a page.
	vsize := uint64(k.S("bpf_struct_ops_tcp_congestion_ops").Size)
	wantML := uint64(k.S("bpf_struct_ops_map").Size) + vsize - uint64(k.S("bpf_struct_ops_value").Size) + vsize + 4*8 + 4*8 + 4096
	if ml, err := mp.Memlock(); err != nil || ml != wantML {
		t.Errorf("memlock %d, %v; want %d", ml, err, wantML)
	}
	info, err := mp.Info()
	if err != nil {
		t.Fatal(err)
	}
	iv := k.p.ValueOf(info.Type, info.Data)
	if x, err := iv.MemberUint("btf_vmlinux_id"); err != nil || x != 1 {
		t.Errorf("btf_vmlinux_id %d, %v", x, err)
	}
	if x, err := iv.MemberUint("btf_vmlinux_value_type_id"); err != nil || x != uint64(mp.BTFVmlinuxValueTypeID) || x == 0 {
		t.Errorf("btf_vmlinux_value_type_id %d, %v", x, err)
	}
	kt, vt, err := mp.KeyValueTypes(nil, k.p.Types().BTF())
	if err != nil || kt != nil || vt.TypeName() != "bpf_struct_ops_tcp_congestion_ops" {
		t.Errorf("key and value types %v, %v, %v", kt, vt, err)
	}

	// Damage: a NULL uvalue in use, a value_size that is not the value
	// type's, an unknown value type, a map of another type.
	st.Set("uvalue", 0)
	if s, err := NewStructOps(mp); err != nil || !errors.Is(s.ValueErr, objects.ErrCorrupt) || s.Value != nil {
		t.Errorf("NULL uvalue: %+v, %v", s, err)
	}
	st.Set("uvalue", 0xffff888077000000)
	if s, err := NewStructOps(mp); err != nil || !errors.Is(s.ValueErr, sk.ErrFault) {
		t.Errorf("uvalue on an absent page: %+v, %v", s, err)
	}
	mp.ValueSize = 8
	if s, err := NewStructOps(mp); err != nil || !errors.Is(s.ValueErr, objects.ErrCorrupt) {
		t.Errorf("value_size 8: %+v, %v", s, err)
	}
	mp.BTFVmlinuxValueTypeID = 1 << 20
	if _, err := NewStructOps(mp); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("value type 1<<20: %v", err)
	}
	h, _ := MapByID(k.p, 52)
	if _, err := NewStructOps(h); !errors.Is(err, objects.ErrType) {
		t.Errorf("a hash map: %v", err)
	}
}
