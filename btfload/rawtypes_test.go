package btfload_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// FuzzParseRawBTF: arbitrary bytes never panic, hang or allocate past
// their size; seeded with the lab's BTF objects.
func FuzzParseRawBTF(f *testing.F) {
	if sc, err := labdata.Load("basic"); err == nil {
		if files, err := os.ReadDir(sc.Path("truth/btf")); err == nil && len(files) > 0 {
			for _, p := range labkernel.Programs(f, "elf") {
				for o, err := range bpf.BTFForEach(p) {
					if err != nil || o.Name == "vmlinux" || o.Kernel {
						continue
					}
					if raw, err := o.Bytes(); err == nil {
						f.Add(raw)
					}
				}
				break
			}
		}
	}
	f.Add([]byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 32, 0, 0, 0, 0, 'i', 'n', 't'})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := btfload.ParseRawBTF(raw, nil)
		if err != nil {
			return
		}
		if len(b.Types)*12 > len(raw) {
			t.Fatalf("%d types from %d bytes", len(b.Types), len(raw))
		}
		for _, ty := range b.Types {
			_ = ty.KindName()
			b.Str(ty.NameOff)
		}
		var buf bytes.Buffer
		json.NewEncoder(&buf).Encode(b.Types)
	})
}
