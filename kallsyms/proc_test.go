package kallsyms

import (
	"errors"
	"strings"
	"testing"
)

// textTable parses /proc/kallsyms text or fails the test.
func textTable(t testing.TB, text string) *Table {
	t.Helper()
	tab, err := ParseProcKallsyms(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

const sampleProc = `0000000000000000 A fixed_percpu_data
0000000000000000 A __per_cpu_start
000000000001f000 A cpu_number
ffffffff81000000 T _text
ffffffff81000000 T _stext
ffffffff81000000 T startup_64
ffffffff81001000 T do_one_initcall
ffffffff81001200 t match_token
ffffffff81e6a2c0 T schedule
ffffffff81e6a380 t match_token
ffffffff83400000 B _end
ffffffffc0a01000 t ext4_init_fs	[ext4]
ffffffffc0a01100 T ext4_fill_super	[ext4]
ffffffffc0a02000 d ext4_data	[ext4]
ffffffffc0b00000 t bpf_prog_6deef7357e7b4530_sd_fw_egress	[bpf]
ffffffffc0b00800 t bpf_prog_1234567890abcdef_spin	[bpf]
ffffffffc0c00000 t ftrace_trampoline	[__builtin__ftrace]
`

func TestParseProcKallsyms(t *testing.T) {
	tab := textTable(t, sampleProc)
	info, err := tab.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Symbols != 11 || info.Encoding != EncodingText || info.Hidden {
		t.Errorf("info = %+v", info)
	}
	if tab.Len() != 17 {
		t.Errorf("Len() = %d, want 17", tab.Len())
	}
	tests := []struct {
		name string
		want []Symbol
	}{
		{"schedule", []Symbol{{Name: "schedule", Addr: 0xffffffff81e6a2c0, Type: 'T', Size: 0xc0}}},
		{"match_token", []Symbol{
			{Name: "match_token", Addr: 0xffffffff81001200, Type: 't', Size: 0xffffffff81e6a2c0 - 0xffffffff81001200},
			{Name: "match_token", Addr: 0xffffffff81e6a380, Type: 't', Size: 0xffffffff83400000 - 0xffffffff81e6a380},
		}},
		{"cpu_number", []Symbol{{Name: "cpu_number", Addr: 0x1f000, Type: 'A'}}},
		{"ext4_init_fs", []Symbol{{Name: "ext4_init_fs", Addr: 0xffffffffc0a01000, Type: 't', Module: "ext4", Size: 0x100}}},
		{"ext4_data", []Symbol{{Name: "ext4_data", Addr: 0xffffffffc0a02000, Type: 'd', Module: "ext4"}}},
		{"bpf_prog_6deef7357e7b4530_sd_fw_egress", []Symbol{{Name: "bpf_prog_6deef7357e7b4530_sd_fw_egress", Addr: 0xffffffffc0b00000, Type: 't', Module: "bpf", Size: 0x800}}},
		{"ftrace_trampoline", []Symbol{{Name: "ftrace_trampoline", Addr: 0xffffffffc0c00000, Type: 't', Module: "__builtin__ftrace"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tab.Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("got %+v, want %+v", got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseProcKallsymsHidden(t *testing.T) {
	tab := textTable(t, `0000000000000000 T _text
0000000000000000 T schedule
0000000000000000 t ext4_init_fs	[ext4]
`)
	if info, _ := tab.Info(); !info.Hidden {
		t.Errorf("all-zero addresses not reported hidden")
	}
	if s, err := tab.Lookup("schedule"); err != nil || s[0].Type != 'T' {
		t.Errorf("Lookup on hidden table = %v, %v", s, err)
	}
	if _, err := tab.LookupAddr(0xffffffff81000000); !errors.Is(err, ErrHidden) {
		t.Errorf("LookupAddr on hidden table: err = %v, want ErrHidden", err)
	}
}

func TestParseProcKallsymsErrors(t *testing.T) {
	tests := []struct {
		name, text, substr string
	}{
		{"bad address", "ffffffff8100000g T x\n", "line 1: bad hex digit"},
		{"long address", "1ffffffff81000000 T x\n", "line 1: want a hex address"},
		{"no type", "ffffffff81000000\n", "line 1: want a one-letter type"},
		{"long type", "ffffffff81000000 Tt x\n", "want a one-letter type"},
		{"no name", "ffffffff81000000 T\n", "line 1: no name"},
		{"bad module", "ffffffff81000000 T x\text4\n", "want [MODULE]"},
		{"empty module", "ffffffff81000000 T x\t[]\n", "want [MODULE]"},
		{"extra", "ffffffff81000000 T x\t[m] y\n", "extra fields"},
		{"second line", "ffffffff81000000 T x\n\nzz T y\n", "line 3:"},
		{"too long", "ffffffff81000000 T " + strings.Repeat("x", 5000) + "\n", "line 1: line longer"},
		{"long name", "ffffffff81000000 T " + strings.Repeat("x", 1500) + "\n", "name longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProcKallsyms(strings.NewReader(tt.text))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("err = %v, want ErrFormat saying %q", err, tt.substr)
			}
		})
	}
}

func FuzzParseProcKallsyms(f *testing.F) {
	f.Add([]byte(sampleProc))
	f.Add([]byte("0000000000000000 T _text\n"))
	f.Add([]byte("ffffffff81000000 T x\t[m]\nffffffff81000000 t y\t[bpf]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := ParseProcKallsyms(strings.NewReader(string(b)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			return
		}
		n := 0
		for s := range tab.All() {
			n++
			got, err := tab.Lookup(s.Name)
			if err != nil || len(got) == 0 {
				t.Fatalf("Lookup(%q) of a listed symbol: %v", s.Name, err)
			}
			tab.LookupAddr(s.Addr)
			tab.LookupAddr(s.Addr + 1)
		}
		if n != tab.Len() {
			t.Fatalf("All yielded %d symbols, Len says %d", n, tab.Len())
		}
	})
}

// TestOpenLive parses this machine's /proc/kallsyms and looks every
// vmlinux symbol up both ways.
func TestOpenLive(t *testing.T) {
	tab, err := OpenLive()
	if err != nil {
		t.Skip(err)
	}
	info, err := tab.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Hidden {
		t.Skip("addresses hidden")
	}
	if info.Symbols < 1000 {
		t.Fatalf("only %d vmlinux symbols", info.Symbols)
	}
	firstAt := map[uint64]string{}
	n := 0
	for s := range tab.All() {
		if s.Module != "" {
			continue
		}
		if _, ok := firstAt[s.Addr]; !ok {
			firstAt[s.Addr] = s.Name
		}
		if n++; n%97 != 0 {
			continue
		}
		if found, err := tab.Lookup(s.Name); err != nil || len(found) == 0 {
			t.Errorf("Lookup(%q): %v", s.Name, err)
		}
		if s.Addr < 1<<32 {
			continue
		}
		if l, err := tab.LookupAddr(s.Addr); err != nil || l.Name != firstAt[s.Addr] {
			t.Errorf("LookupAddr(%#x) = %v, %v; want %s", s.Addr, l, err, firstAt[s.Addr])
		}
	}
}
