package linux

import (
	"testing"

	"github.com/kinspect/kinspect/kallsyms"
)

func TestSizeModuleSymbols(t *testing.T) {
	regions := []ModuleRegion{{Name: "text", Base: 0x1000, Size: 0x100}, {Name: "data", Base: 0x2000, Size: 0x80}}
	syms := []kallsyms.Symbol{
		{Name: "f", Addr: 0x1000}, {Name: "f_alias", Addr: 0x1000}, {Name: "g", Addr: 0x1040},
		{Name: "$x", Addr: 0x1050}, // a mapping symbol is no boundary
		{Name: "h", Addr: 0x10c0}, {Name: "v", Addr: 0x2000}, {Name: "w", Addr: 0x2010},
		{Name: "elsewhere", Addr: 0x9000},
	}
	sizeModuleSymbols(syms, regions)
	want := map[string]uint64{"f": 0x40, "f_alias": 0x40, "g": 0x80, "$x": 0x70, "h": 0x40, "v": 0x10, "w": 0x70, "elsewhere": 0}
	for _, s := range syms {
		if s.Size != want[s.Name] {
			t.Errorf("%s: size %#x, want %#x", s.Name, s.Size, want[s.Name])
		}
	}
}
