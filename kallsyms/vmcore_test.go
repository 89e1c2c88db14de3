package kallsyms

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/vmcore"
)

func TestLocationsFromVMCOREINFO(t *testing.T) {
	full := `OSRELEASE=6.1.0-56-amd64
SYMBOL(init_uts_ns)=ffffffffaedfb000
SYMBOL(_stext)=ffffffffad200000
SYMBOL(mem_section)=ffff8a2d5f396000
SYMBOL(kallsyms_names)=ffffffffae3bdac0
SYMBOL(kallsyms_num_syms)=ffffffffae3bdab8
SYMBOL(kallsyms_token_table)=ffffffffae52ddd8
SYMBOL(kallsyms_token_index)=ffffffffae52e170
SYMBOL(kallsyms_offsets)=ffffffffae3619c8
SYMBOL(kallsyms_relative_base)=ffffffffae3bdab0
`
	tests := []struct {
		name   string
		text   string
		want   Locations
		substr string
	}{
		{"6.1", full, Locations{
			NumSyms: 0xffffffffae3bdab8, Names: 0xffffffffae3bdac0, TokenTable: 0xffffffffae52ddd8, TokenIndex: 0xffffffffae52e170,
			Offsets: 0xffffffffae3619c8, RelativeBase: 0xffffffffae3bdab0,
		}, ""},
		{"5.10", "OSRELEASE=5.10.0-30-amd64\nSYMBOL(init_uts_ns)=ffffffff82a12340\n", Locations{}, "VMCOREINFO of 5.10.0-30-amd64 has no SYMBOL(kallsyms_names), SYMBOL(kallsyms_num_syms)"},
		{"no offsets", strings.ReplaceAll(full, "SYMBOL(kallsyms_offsets)", "X"), Locations{}, "SYMBOL(kallsyms_offsets) or SYMBOL(kallsyms_addresses)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vi, err := vmcore.ParseVMCOREINFO([]byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			loc, err := LocationsFromVMCOREINFO(vi)
			if tt.substr != "" {
				if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), tt.substr) {
					t.Errorf("err = %v, want ErrNotSupported saying %q", err, tt.substr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			known := loc.Known
			loc.Known = nil
			if !reflect.DeepEqual(loc, tt.want) {
				t.Errorf("got %+v, want %+v", loc, tt.want)
			}
			if len(known) != 2 || known["init_uts_ns"] != 0xffffffffaedfb000 || known["_stext"] != 0xffffffffad200000 {
				t.Errorf("known = %v, want init_uts_ns and _stext (not mem_section, not kallsyms_*)", known)
			}
		})
	}
	if _, err := LocationsFromVMCOREINFO(nil); !errors.Is(err, ErrNotSupported) {
		t.Errorf("nil VMCOREINFO: %v", err)
	}
}
