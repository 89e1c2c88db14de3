package bpf_test

import (
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// TestLabBTFObjects: every BTF object of btf_idr parses, its raw bytes
// decode with btfload.ParseRawBTF to as many types as cilium/ebpf finds, and the
// objects bpftool listed have the same sizes and names.
func TestLabBTFObjects(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		t.Run(name, func(t *testing.T) {
			var want []struct {
				ID     uint32
				Size   uint32
				Kernel bool
				Name   string
			}
			labdata.ReadJSON(t, labkernel.Scenario(name).Path("truth/bpftool/btf.json"), &want)
			byID := map[uint32]int{}
			for i, w := range want {
				byID[w.ID] = i
			}
			base, err := btfload.ParseRawBTF(p.Types().Raw(), nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for o, err := range bpf.BTFForEach(p) {
				if err != nil {
					t.Fatal(err)
				}
				i, ok := byID[o.ID]
				if !ok {
					t.Errorf("btf %d: not in bpftool's list", o.ID)
					continue
				}
				n++
				if w := want[i]; w.Size != o.Size || w.Kernel != o.Kernel || w.Name != o.Name {
					t.Errorf("btf %d: %d %v %q, bpftool %+v", o.ID, o.Size, o.Kernel, o.Name, w)
				}
				if o.Name == "vmlinux" || n > 60 {
					continue
				}
				raw, err := o.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				var b *btfload.RawBTF
				if o.BaseAddr != 0 {
					b = base
				}
				rb, err := btfload.ParseRawBTF(raw, b)
				if err != nil {
					t.Fatalf("btf %d: %v", o.ID, err)
				}
				if _, err := o.Spec(); err != nil {
					t.Errorf("btf %d: %v", o.ID, err)
				}
				if len(rb.Types) == 0 {
					t.Errorf("btf %d: no types", o.ID)
				}
			}
			if n != len(want) {
				t.Errorf("%d BTF objects, bpftool %d", n, len(want))
			}
		})
	}
}
