package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestCLI(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"--help"}, 0, "Commands:"},
		{nil, 2, "Usage:"},
		{[]string{"version"}, 0, "kinspect "},
		{[]string{"vers"}, 0, "kinspect "},
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"--bogus"}, 2, `unknown option "--bogus"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			code := run(tt.args, &out, &out)
			if code != tt.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, tt.code, out.String())
			}
			if !strings.Contains(out.String(), tt.contains) {
				t.Errorf("output lacks %q:\n%s", tt.contains, out.String())
			}
		})
	}
}

func TestJSONError(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--json", "nosuch"}, &out, &out); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	var v struct{ Error string }
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || !strings.Contains(v.Error, "nosuch") {
		t.Fatalf("want {\"error\": ...}, got %q (%v)", out.String(), err)
	}
}
