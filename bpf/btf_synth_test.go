package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/objects"
)

// splitBTF encodes, as include/uapi/linux/btf.h lays BTF out, a split
// BTF on base holding struct mod_thing { int x; }: its type IDs follow
// base's, its string offsets base's string section.
func splitBTF(t *testing.T, base *btfload.Spec) []byte {
	raw := base.Raw()
	baseStrLen := binary.LittleEndian.Uint32(raw[20:])
	intT, err := base.BTF().AnyTypeByName("int")
	if err != nil {
		t.Fatal(err)
	}
	intID, err := base.BTF().TypeID(intT)
	if err != nil {
		t.Fatal(err)
	}
	strs := []byte("mod_thing\x00x\x00")
	var types []byte
	for _, w := range []uint32{
		baseStrLen, 4<<24 | 1, 4, // struct mod_thing, one member, 4 bytes
		baseStrLen + 10, uint32(intID), 0, // x: int at bit 0
	} {
		types = binary.LittleEndian.AppendUint32(types, w)
	}
	hdr := []byte{0x9f, 0xeb, 1, 0}
	for _, w := range []uint32{24, 0, uint32(len(types)), uint32(len(types)), uint32(len(strs))} {
		hdr = binary.LittleEndian.AppendUint32(hdr, w)
	}
	return append(append(hdr, types...), strs...)
}

func TestBTFObjects(t *testing.T) {
	k := newBPF(t)
	foo := &btf.Struct{Name: "foo", Size: 4, Members: []btf.Member{{Name: "a", Type: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}}}
	raw, _ := rawBTF(t, "", foo)
	vm := k.btfObj(1, "vmlinux", raw).Set("kernel_btf", 1)
	mod := k.btfObj(2, "mymod", splitBTF(t, k.p.Types())).Set("kernel_btf", 1).Set("base_btf", vm.Addr)
	prog := k.btfObj(3, "", raw)
	k.idr("btf_idr", map[uint64]uint64{1: vm.Addr, 2: mod.Addr, 3: prog.Addr})

	var got []string
	for o, err := range BTFForEach(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %q %d kernel=%v base=%v", o.ID, o.Name, o.Size, o.Kernel, o.BaseAddr != 0))
	}
	want := fmt.Sprintf(`1 "vmlinux" %d kernel=true base=false|2 "mymod" %d kernel=true base=true|3 "" %d kernel=false base=false`, len(raw), 24+24+12, len(raw))
	if s := strings.Join(got, "|"); s != want {
		t.Errorf("BTF objects\ngot  %s\nwant %s", s, want)
	}
	o, err := BTFByID(k.p, 3)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := o.Bytes(); err != nil || !bytes.Equal(b, raw) {
		t.Errorf("bytes: %v", err)
	}
	spec, err := o.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Type("struct foo"); err != nil {
		t.Errorf("struct foo: %v", err)
	}
	o, err = BTFByID(k.p, 2)
	if err != nil {
		t.Fatal(err)
	}
	spec, err = o.Spec()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := spec.Type("struct mod_thing")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := mt.(*btf.Struct); !ok || s.Members[0].Name != "x" || s.Members[0].Type.TypeName() != "int" {
		t.Errorf("struct mod_thing on vmlinux: %v", mt)
	}
	if _, err := BTFByID(k.p, 9); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("BTFByID(9): %v", err)
	}

	// Damage: no data, data on an absent page, an id that disagrees with
	// the slot.
	prog.Set("data_size", 0)
	o, _ = BTFByID(k.p, 3)
	if _, err := o.Bytes(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("data_size 0: %v", err)
	}
	prog.Set("data_size", uint64(len(raw))).Set("data", 0xffff888077000000)
	o, _ = BTFByID(k.p, 3)
	if _, err := o.Spec(); !errors.Is(err, sk.ErrFault) || !strings.Contains(err.Error(), "btf 3") {
		t.Errorf("data on an absent page: %v", err)
	}
	// Damaged objects are left out, and noted.
	noted := func(addr uint64, cause error) bool {
		for _, d := range k.p.Damaged() {
			if uint64(d.Addr) == addr && errors.Is(d, cause) {
				return true
			}
		}
		return false
	}
	prog.Set("id", 4)
	if _, err := BTFByID(k.p, 4); !errors.Is(err, objects.ErrNotFound) || !noted(prog.Addr, objects.ErrCorrupt) {
		t.Errorf("id 4 in slot 3: %v; damage %v", err, k.p.Damaged())
	}
	k.idr("btf_idr", map[uint64]uint64{1: 0xffff888077000000})
	if _, err := BTFByID(k.p, 1); !errors.Is(err, objects.ErrNotFound) || !noted(0xffff888077000000, sk.ErrFault) {
		t.Errorf("struct btf on an absent page: %v; damage %v", err, k.p.Damaged())
	}
	if _, err := BTFByID(newBPF(t).p, 1); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("no btf_idr: %v", err)
	}
}
