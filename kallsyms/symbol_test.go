package kallsyms

import "testing"

func TestSymbolStrings(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"vmlinux", Symbol{Name: "schedule", Addr: 0xffffffff81e6a2c0, Type: 'T'}.String(), "ffffffff81e6a2c0 T schedule"},
		{"module", Symbol{Name: "ext4_fill_super", Addr: 0xffffffffc0a01000, Type: 't', Module: "ext4"}.String(), "ffffffffc0a01000 t ext4_fill_super\t[ext4]"},
		{"location", Location{Symbol: Symbol{Name: "schedule", Size: 0xa0}, Offset: 0x10}.String(), "schedule+0x10/0xa0"},
		{"location bpf", Location{Symbol: Symbol{Name: "bpf_prog_1234567890abcdef_spin", Size: 0x40, Module: BPFModule}, Offset: 0x8}.String(), "bpf_prog_1234567890abcdef_spin+0x8/0x40 [bpf]"},
		{"location no size", Location{Symbol: Symbol{Name: "ext4_data", Module: "ext4"}, Offset: 0x8}.String(), "ext4_data+0x8 [ext4]"},
		{"bpf name", BPFProgName([8]byte{0x12, 0x34, 0x56, 0x78, 0x90, 0xab, 0xcd, 0xef}, "spin"), "bpf_prog_1234567890abcdef_spin"},
		{"bpf no name", BPFProgName([8]byte{1}, ""), "bpf_prog_0100000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestIsText(t *testing.T) {
	for _, tt := range []struct {
		typ  byte
		want bool
	}{{'T', true}, {'t', true}, {'D', false}, {'b', false}, {'W', false}} {
		if got := (Symbol{Type: tt.typ}).IsText(); got != tt.want {
			t.Errorf("IsText(%c) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}
