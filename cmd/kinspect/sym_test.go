package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

const symSample = `0000000000000000 A fixed_percpu_data
000000000001f000 A cpu_number
ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81e6a2c0 T schedule
ffffffff81e6a360 T schedule_tail
ffffffff81e6a400 t match_token
ffffffff81e6a500 t match_token
ffffffff83400000 B _end
ffffffffc0a01000 t ext4_init_fs	[ext4]
ffffffffc0a01100 T ext4_fill_super	[ext4]
ffffffffc0b00000 t bpf_prog_6deef7357e7b4530_sd_fw_egress	[bpf]
`

func writeKallsyms(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSym(t *testing.T) {
	k := writeKallsyms(t, symSample)
	hidden := writeKallsyms(t, "0000000000000000 T _text\n0000000000000000 T schedule\n")
	tests := []struct {
		args     []string
		code     int
		contains []string
	}{
		{[]string{"sym", "-k", k, "schedule"}, 0, []string{"ffffffff81e6a2c0 T schedule size 0xa0\n"}},
		{[]string{"sym", "-k", k, "ext4_fill_super"}, 0, []string{"ffffffffc0a01100 T ext4_fill_super [ext4]\n"}},
		{[]string{"sym", "-k", k, "match_token"}, 0, []string{"ffffffff81e6a400 t match_token size 0x100\n", "ffffffff81e6a500 t match_token size 0x1595b00\n"}},
		{[]string{"sym", "-k", k, "0xffffffff81e6a2d0"}, 0, []string{"ffffffff81e6a2d0 schedule+0x10/0xa0\n"}},
		{[]string{"sym", "-k", k, "ffffffff81e6a2d0"}, 0, []string{"schedule+0x10/0xa0"}},
		{[]string{"sym", "-k", k, "schedule+0x10"}, 0, []string{"ffffffff81e6a2d0 schedule+0x10/0xa0\n"}},
		{[]string{"sym", "-k", k, "0xffffffffc0b00010"}, 0, []string{"ffffffffc0b00010 bpf_prog_6deef7357e7b4530_sd_fw_egress+0x10 [bpf]\n"}},
		{[]string{"sym", "-k", k, "schedul"}, 1, []string{`no symbol named "schedul" (did you mean schedule, schedule_tail?)`}},
		{[]string{"sym", "-k", k, "0x10"}, 1, []string{"no symbol at 0x10"}},
		{[]string{"sym", "-k", k, "match_token+4"}, 1, []string{"ambiguous"}},
		{[]string{"sym", "-k", k, "0xzz"}, 2, []string{"bad address"}},
		{[]string{"sym", "-k", k, "--list", "sched*"}, 0, []string{"ffffffff81e6a2c0 T schedule\nffffffff81e6a360 T schedule_tail\n"}},
		{[]string{"sym", "-k", k, "--list", "ext4"}, 0, []string{"ffffffffc0a01000 t ext4_init_fs [ext4]\nffffffffc0a01100 T ext4_fill_super [ext4]\n"}},
		{[]string{"sym", "-k", k, "--list", "nomatch"}, 1, []string{"no symbol matches"}},
		{[]string{"sym", "-k", hidden, "schedule"}, 0, []string{"(hidden)         T schedule\n", "addresses unknown: /proc/kallsyms shows every address as 0"}},
		{[]string{"sym", "-k", hidden, "0xffffffff81000000"}, 1, []string{"hidden"}},
		{[]string{"sym", "-k", "/nonexistent", "x"}, 1, []string{"no such file"}},
		{[]string{"sym", "schedule"}, 2, []string{"give -c DUMP or --live"}},
		{[]string{"sym"}, 2, []string{"give a NAME or an ADDR"}},
		{[]string{"sym", "--bogus"}, 2, []string{"unknown option"}},
		{[]string{"sym", "help"}, 0, []string{"Usage: kinspect"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			code := run(tt.args, &out, &out)
			if code != tt.code {
				t.Errorf("exit %d, want %d:\n%s", code, tt.code, out.String())
			}
			for _, c := range tt.contains {
				if !strings.Contains(out.String(), c) {
					t.Errorf("output lacks %q:\n%s", c, out.String())
				}
			}
		})
	}
}

func TestSymJSON(t *testing.T) {
	k := writeKallsyms(t, symSample)
	var out bytes.Buffer
	if code := run([]string{"--json", "sym", "-k", k, "schedule", "0xffffffffc0a01108"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	var rs []map[string]any
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := []map[string]any{
		{"query": "schedule", "name": "schedule", "address": "0xffffffff81e6a2c0", "type": "T", "module": "", "offset": 0.0, "size": 160.0},
		{"query": "0xffffffffc0a01108", "name": "ext4_fill_super", "address": "0xffffffffc0a01100", "type": "T", "module": "ext4", "offset": 8.0, "size": 0.0},
	}
	if len(rs) != len(want) {
		t.Fatalf("got %v", rs)
	}
	for i := range want {
		for key, v := range want[i] {
			if rs[i][key] != v {
				t.Errorf("result %d: %s = %v, want %v", i, key, rs[i][key], v)
			}
		}
	}
	out.Reset()
	if code := run([]string{"--json", "sym", "-k", k, "nosuch"}, &out, &out); code != 1 || !strings.HasPrefix(out.String(), `{"error":"no symbol named`) {
		t.Errorf("exit %d, output %s", code, out.String())
	}
}

// TestSymLive: --live reads /proc/kallsyms, which needs no /proc/kcore.
func TestSymLive(t *testing.T) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Skip(err)
	}
	sc := bufio.NewScanner(f)
	sc.Scan()
	first := strings.Fields(sc.Text())
	f.Close()
	if len(first) < 3 {
		t.Skipf("odd /proc/kallsyms line %q", sc.Text())
	}
	var out bytes.Buffer
	if code := run([]string{"--live", "--json", "sym", first[2]}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	var rs []symResult
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil || len(rs) == 0 {
		t.Fatalf("%v: %s", err, out.String())
	}
	want, err := strconv.ParseUint(first[0], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(rs[0].Address) != want {
		t.Errorf("address %#x, /proc/kallsyms says %s", uint64(rs[0].Address), first[0])
	}
}

// TestSymLab: sym on a dump answers as the guest's /proc/kallsyms.
func TestSymLab(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live || len(s.Formats) == 0 {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			b, err := os.ReadFile(s.Path("truth/kallsyms.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var want string
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[2] == "init_uts_ns" {
					want = f[0]
				}
			}
			if want == "" {
				t.Fatal("no init_uts_ns in the truth")
			}
			var out bytes.Buffer
			args := []string{"-c", s.Path(s.Formats[0].Path), "sym", "init_uts_ns", "0x" + want}
			if code := run(args, &out, &out); code != 0 {
				t.Fatalf("exit %d: %s", code, out.String())
			}
			if !strings.Contains(out.String(), want+" D init_uts_ns") || !strings.Contains(out.String(), want+" init_uts_ns+0x0/") {
				t.Errorf("output:\n%s\nwant init_uts_ns at %s", out.String(), want)
			}
		})
	}
}

// TestSymListLab: sym -l lists the guest's /proc/kallsyms, line for line
// (vmlinux's, the modules' and the BPF programs' symbols), sorted by
// address. The one line it lacks by design is ftrace's trampoline
// ([__builtin__ftrace], which /proc/kallsyms makes up from ftrace's
// state, not a symbol table).
func TestSymListLab(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live || (s.Scenario != "basic" && s.Scenario != "k612") {
			continue
		}
		f, ok := s.Format("elf")
		if !ok {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			b, err := os.ReadFile(s.Path("truth/kallsyms.txt"))
			if err != nil {
				t.Fatal(err)
			}
			truth := map[string]int{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if !strings.HasSuffix(l, "\t[__builtin__ftrace]") {
					truth[strings.ReplaceAll(l, "\t", " ")]++
				}
			}
			out := runOK(t, "-c", s.Path(f.Path), "sym", "-l")
			var prev uint64
			got := map[string]int{}
			n := 0
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				a, err := strconv.ParseUint(strings.Fields(l)[0], 16, 64)
				if err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if a < prev {
					t.Errorf("not sorted by address: %q after %#x", l, prev)
				}
				prev = a
				got[l]++
				n++
			}
			var missing, extra []string
			for l, c := range truth {
				if got[l] < c {
					missing = append(missing, l)
				}
			}
			for l, c := range got {
				if truth[l] < c {
					extra = append(extra, l)
				}
			}
			if len(missing) > 0 || len(extra) > 0 {
				t.Errorf("missing %d %q; extra %d %q", len(missing), missing[:min(len(missing), 10)], len(extra), extra[:min(len(extra), 10)])
			}
			t.Logf("%d symbols, as /proc/kallsyms lists them", n)
		})
	}
}
