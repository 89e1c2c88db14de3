package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// TestBt runs the bt command on the basic scenario's dumps and checks its
// faces: the text format, JSON keys, errors.
func TestBt(t *testing.T) {
	sc := labdata.Require(t, "basic")
	dump := sc.Path("dumps/elf")
	frame := regexp.MustCompile(`(?m)^ #0  \[[0-9a-f]{16}\] [A-Za-z_].*\+0x[0-9a-f]+/0x[0-9a-f]+ .*at [0-9a-f]{16}$`)
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
		match    *regexp.Regexp
	}{
		{"help", []string{"bt", "help"}, 0, []string{"Usage: kinspect", "--all-tasks"}, nil},
		// No panic in basic: every CPU; CPU 1 runs the spinner in ki_spin.
		{"default", []string{"-c", dump, "bt"}, 0, []string{`COMMAND: "swapper/0"`, `COMMAND: "ki_spinner"`, "_ki_spin+0x", "[bpf]", "bpf prog id ", "spin.bpf.c:", "bpf_test_run+", "(frame pointer)"}, frame},
		{"pid", []string{"-c", dump, "bt", "-f", "1"}, 0, []string{`COMMAND: "init"`, "entry_SYSCALL_64_after_hwframe+", "--- user mode registers ---", "ORIG_RAX:"}, frame},
		{"pid 2", []string{"-c", dump, "bt", "2"}, 0, []string{"kthreadd+", "ret_from_fork+"}, nil},
		{"b is ambiguous", []string{"-c", dump, "b", "2"}, 2, []string{"ambiguous command", "bt, btf"}, nil},
		{"no such pid", []string{"-c", dump, "bt", "99999"}, 1, []string{"no task with pid 99999"}, nil},
		{"bad pid", []string{"-c", dump, "bt", "x1"}, 2, []string{`"x1" is not a PID`}, nil},
		{"bad option", []string{"-c", dump, "bt", "--frob"}, 2, []string{`unknown option "--frob"`}, nil},
		{"json error", []string{"-c", dump, "--json", "bt", "99999"}, 1, []string{`{"error":`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(tt.args, &out, &out)
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, out.String())
			}
			for _, c := range tt.contains {
				if !strings.Contains(out.String(), c) {
					t.Errorf("output lacks %q:\n%s", c, out.String())
				}
			}
			if tt.match != nil && !tt.match.MatchString(out.String()) {
				t.Errorf("output has no line like %s:\n%s", tt.match, out.String())
			}
		})
	}
}

func TestBtJSON(t *testing.T) {
	sc := labdata.Require(t, "basic")
	var out bytes.Buffer
	if code := run([]string{"-c", sc.Path("dumps/kdump-zlib"), "--json", "bt", "--all-tasks"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	var res []map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) < 50 {
		t.Fatalf("%d traces", len(res))
	}
	var spinner map[string]any
	for _, r := range res {
		for _, k := range []string{"pid", "tid", "comm", "task", "cpu", "on_cpu", "reliable", "frames"} {
			if _, ok := r[k]; !ok {
				t.Fatalf("trace lacks %q: %v", k, r)
			}
		}
		if r["comm"] == "ki_spinner" {
			spinner = r
		}
	}
	if spinner == nil || spinner["on_cpu"] != true || spinner["reliable"] != false {
		t.Fatalf("spinner trace %v", spinner)
	}
	f0 := spinner["frames"].([]any)[0].(map[string]any)
	bpf, ok := f0["bpf"].(map[string]any)
	if !ok || f0["module"] != "bpf" || bpf["id"] == nil || bpf["file"] == nil || bpf["line_num"] == nil {
		t.Errorf("spinner frame 0: %v", f0)
	}
}
