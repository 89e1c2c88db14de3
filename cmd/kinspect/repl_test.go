package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

func TestReplLines(t *testing.T) {
	s := labdata.Require(t, "basic")
	f, ok := s.Format("kdump-zlib")
	if !ok {
		t.Skip("no kdump-zlib")
	}
	dump := s.Path(f.Path)
	in := strings.Join([]string{
		`const t = kernel.var("init_task")`,
		`t.comm`,
		`t.pid + 1`,
		`function f(x) {`,
		`  return x * 2`,
		`}`,
		`f(21)`,
		`t.tasks`,
		`t.nosuch`,
		`kernel.var("jiffies").value_() > 0n`,
		``,
	}, "\n")
	old := replStdin
	defer func() { replStdin = old }()
	replStdin = strings.NewReader(in)
	var out, errb bytes.Buffer
	code := run([]string{"-c", dump, "repl"}, &out, &errb)
	want := []string{
		"swapper/0\n1\n42\n(struct list_head){\n\t.next = (struct list_head *)0x",
		"error: <eval>:1:3: no member named nosuch in struct task_struct",
		"\ntrue\n",
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("repl output lacks %q:\n%s", w, out.String())
		}
	}
	if code != 1 {
		t.Errorf("exit %d after an error, want 1", code)
	}
}

func TestScriptUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"script", "help"}, 0, "Usage: kinspect"},
		{[]string{"repl", "help"}, 0, "Usage: kinspect"},
		{[]string{"script"}, 2, "want a FILE.js"},
		{[]string{"script", "--timeout", "x", "f.js"}, 2, "want a duration"},
		{[]string{"script", "--bogus", "f.js"}, 2, "unknown option"},
		{[]string{"--json", "script", "/nonexistent.js"}, 1, `{"error":`},
		{[]string{"-e", "1+1"}, 2, "give -c DUMP or --live"},
	} {
		var out bytes.Buffer
		if code := run(tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q; want %d, %q", tt.args, code, out.String(), tt.code, tt.want)
		}
	}
}

func TestEvalAndTimeout(t *testing.T) {
	s := labdata.Require(t, "basic")
	f, _ := s.Format("kdump-zlib")
	dump := s.Path(f.Path)
	var out, errb bytes.Buffer
	if code := run([]string{"-c", dump, "-e", `kernel.findTask(1).comm`}, &out, &errb); code != 0 || out.String() != "init\n" {
		t.Errorf("-e: exit %d, %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"-c", dump, "--timeout", "300ms", "-e", `for (;;) {}`}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "time limit") {
		t.Errorf("--timeout: exit %d, %q", code, errb.String())
	}
}
