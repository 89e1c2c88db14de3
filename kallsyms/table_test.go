package kallsyms

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

const vmlinuxOnly = `0000000000000000 A fixed_percpu_data
000000000001f000 A cpu_number
ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81001000 T do_one_initcall
ffffffff81e6a2c0 T schedule
ffffffff81e6a380 t match_token
ffffffff83400000 B _end
`

func TestTableModulesAndBPF(t *testing.T) {
	tab := textTable(t, vmlinuxOnly)
	tab.AddModule("ext4", []Symbol{
		{Name: "ext4_fill_super", Addr: 0xffffffffc0a01100, Type: 't', Size: 0x200},
		{Name: "ext4_init_fs", Addr: 0xffffffffc0a01000, Type: 'T', Size: 0x80},
		{Name: "ext4_data", Addr: 0xffffffffc0a08000, Type: 'd'},
		{Name: "match_token", Addr: 0xffffffffc0a02000, Type: 't', Size: 0x10},
	})
	tab.AddModule("virtio", []Symbol{{Name: "virtio_dev_probe", Addr: 0xffffffffc0b00000, Type: 't', Size: 0x100}})
	tab.AddBPF(BPFProgName([8]byte{0x6d, 0xee, 0xf7, 0x35, 0x7e, 0x7b, 0x45, 0x30}, "sd_fw_egress"), 0xffffffffc0c00000, 0x4c)
	tab.AddBPF(BPFProgName([8]byte{0x6d, 0xee, 0xf7, 0x35, 0x7e, 0x7b, 0x45, 0x30}, "sd_fw_egress"), 0xffffffffc0c00000, 0x4c)
	if tab.Len() != 8+4+1+1 {
		t.Errorf("Len() = %d, want 14", tab.Len())
	}
	tests := []struct {
		addr uint64
		want string // "" for not found
	}{
		{0xffffffff81000000, "_text+0x0/0x1000"}, // the first alias in kallsyms order
		{0xffffffff81000010, "_text+0x10/0x1000"},
		{0xffffffff81e6a2c5, "schedule+0x5/0xc0"},
		{0xffffffff83400000, "_end+0x0"},
		{0xffffffff83400001, ""},
		{0xffffffff80000000, ""},
		{0x1f000, ""}, // per-CPU offsets are not addresses
		{0xffffffffc0a01000, "ext4_init_fs+0x0/0x80 [ext4]"},
		{0xffffffffc0a0107f, "ext4_init_fs+0x7f/0x80 [ext4]"},
		{0xffffffffc0a01080, ""}, // gap between sized symbols
		{0xffffffffc0a01150, "ext4_fill_super+0x50/0x200 [ext4]"},
		{0xffffffffc0a02008, "match_token+0x8/0x10 [ext4]"},
		{0xffffffffc0a08000, "ext4_data+0x0 [ext4]"}, // last of its module, size unknown
		{0xffffffffc0a08001, "ext4_data+0x1 [ext4]"}, // up to the next module's symbol
		{0xffffffffc0afffff, "ext4_data+0xf7fff [ext4]"},
		{0xffffffffc0b000ff, "virtio_dev_probe+0xff/0x100 [virtio]"},
		{0xffffffffc0c0004b, "bpf_prog_6deef7357e7b4530_sd_fw_egress+0x4b/0x4c [bpf]"},
		{0xffffffffc0c0004c, ""},
	}
	tab.AddModule("last", []Symbol{{Name: "last_data", Addr: 0xffffffffc0d00000, Type: 'd'}})
	tests = append(tests, []struct {
		addr uint64
		want string
	}{
		{0xffffffffc0d00000 + maxImpliedSize - 1, "last_data+0xfffff [last]"},
		{0xffffffffc0d00000 + maxImpliedSize, ""},
	}...)
	for _, tt := range tests {
		l, err := tab.LookupAddr(tt.addr)
		switch {
		case tt.want == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("LookupAddr(%#x) = %v, %v; want ErrNotFound", tt.addr, l, err)
		case tt.want != "" && (err != nil || l.String() != tt.want):
			t.Errorf("LookupAddr(%#x) = %v, %v; want %s", tt.addr, l, err, tt.want)
		}
	}
	syms, err := tab.Lookup("match_token")
	if err != nil {
		t.Fatal(err)
	}
	want := []Symbol{
		{Name: "match_token", Addr: 0xffffffff81e6a380, Type: 't', Size: 0xffffffff83400000 - 0xffffffff81e6a380},
		{Name: "match_token", Addr: 0xffffffffc0a02000, Type: 't', Size: 0x10, Module: "ext4"},
	}
	if !slices.Equal(syms, want) {
		t.Errorf("Lookup(match_token) = %+v, want %+v", syms, want)
	}
	// Replacing a module's symbols.
	tab.AddModule("virtio", []Symbol{{Name: "virtio_other", Addr: 0xffffffffc0b00000, Type: 't', Size: 0x10}})
	if _, err := tab.Lookup("virtio_dev_probe"); !errors.Is(err, ErrNotFound) {
		t.Errorf("replaced module symbol still found: %v", err)
	}
	var nf *NotFoundError
	if _, err := tab.Lookup("virtio_othe"); !errors.As(err, &nf) || !slices.Equal(nf.Suggestions(), []string{"virtio_other"}) {
		t.Errorf("Lookup(virtio_othe) = %v, want a suggestion of virtio_other", err)
	}
}

func TestTableAddr(t *testing.T) {
	tab := textTable(t, vmlinuxOnly+`ffffffff81e6b000 t match_token
ffffffff81e6c000 t static_twice
ffffffff81e6d000 t static_twice
ffffffff81e6e000 T static_twice
ffffffffc0a01000 t modonly	[m]
`)
	tests := []struct {
		name string
		want uint64
		ok   bool
	}{
		{"schedule", 0xffffffff81e6a2c0, true},
		{"static_twice", 0xffffffff81e6e000, true}, // the global one
		{"match_token", 0, false},                  // two locals
		{"modonly", 0xffffffffc0a01000, true},
		{"nope", 0, false},
	}
	for _, tt := range tests {
		got, err := tab.Addr(tt.name)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Addr(%q) = %#x, %v; want %#x, ok %v", tt.name, got, err, tt.want, tt.ok)
		}
	}
}

// Lookups and additions may run concurrently (go test -race).
func TestTableConcurrent(t *testing.T) {
	st := buildSynth(synthSyms(), synthOptions{enc: EncodingAbsolutePercpu})
	tab := FromMemory(st.mem, st.loc)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if g%2 == 0 {
					tab.AddBPF("bpf_prog_x", 0xffffffffc0000000+uint64(g*1000+i)*0x100, 0x80)
				}
				if _, err := tab.Lookup("schedule"); err != nil {
					t.Error(err)
				}
				tab.LookupAddr(0xffffffffc0000010)
				for range tab.All() {
				}
			}
		}()
	}
	wg.Wait()
	if got := tab.Len(); got != len(st.syms)+4*50 {
		t.Errorf("Len() = %d, want %d", got, len(st.syms)+200)
	}
}

func TestEmptyTable(t *testing.T) {
	var tab Table
	if _, err := tab.LookupAddr(0xffffffff81000000); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupAddr on empty table: %v", err)
	}
	tab.AddModule("m", []Symbol{{Name: "f", Addr: 0x1000, Size: 0x10, Type: 't'}})
	if l, err := tab.LookupAddr(0x1008); err != nil || l.String() != "f+0x8/0x10 [m]" {
		t.Errorf("LookupAddr = %v, %v", l, err)
	}
}
