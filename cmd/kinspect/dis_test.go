package main

import (
	"os"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// TestDis: crash's forms of dis on a lab dump (the disassembly itself is
// checked against objdump by linux's TestLabDisObjdump).
func TestDis(t *testing.T) {
	d := basicELF(t)
	whole := strings.Split(strings.TrimSpace(string(runOK(t, "-c", d, "dis", "schedule"))), "\n")
	if len(whole) < 10 || !strings.Contains(whole[0], " <schedule>:") || !strings.Contains(whole[1], " <schedule+") {
		t.Errorf("dis schedule:\n%s", strings.Join(whole, "\n"))
	}
	named := false
	for _, l := range whole {
		named = named || strings.Contains(l, "call   0x") && strings.HasSuffix(l, ">")
	}
	if !named {
		t.Errorf("dis schedule: no call's target named:\n%s", strings.Join(whole, "\n"))
	}
	same := func(a, b string) bool {
		return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
	}
	one := strings.Split(strings.TrimSpace(string(runOK(t, "-c", d, "dis", "schedule+5"))), "\n")
	if len(one) != 1 || !same(one[0], whole[1]) {
		t.Errorf("dis schedule+5: %q, want %q", one, whole[1])
	}
	three := strings.Split(strings.TrimSpace(string(runOK(t, "-c", d, "dis", "schedule", "3"))), "\n")
	if len(three) != 3 || !same(three[2], whole[2]) {
		t.Errorf("dis schedule 3: %q", three)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dis"}, 2, "give a SYMBOL"},
		{[]string{"dis", "schedule", "x"}, 2, "not a positive number"},
		{[]string{"dis", "no_such_function_x"}, 1, "no symbol"},
		{[]string{"dis", "0x10", "2"}, 1, "0x10"},
	} {
		var out strings.Builder
		if code := run(append([]string{"-c", d}, c.args...), &out, &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%q: exit %d, output %q; want %d and %q", c.args, code, out.String(), c.code, c.want)
		}
	}
}

// TestRd: rd's text and its errors on a lab dump (what it reads is
// checked against the dump's bytes by linux's TestLabRd).
func TestRd(t *testing.T) {
	s, d := labdata.Require(t, "basic"), basicELF(t)
	uname, err := os.ReadFile(s.Path("truth/uname.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := string(runOK(t, "-c", d, "rd", "-8", "init_uts_ns", "400"))
	if !strings.Contains(out, "   Linux.") || !strings.Contains(strings.ReplaceAll(out, "\n", ""), strings.TrimSpace(string(uname))[:8]) {
		t.Errorf("rd -8 init_uts_ns 400: no Linux, no release:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(runOK(t, "-c", d, "rd", "-64", "init_task", "5"))), "\n")
	// The units end at the three spaces before the ASCII column (whose
	// text may hold a space: a byte 0x20 of a KASLR'd pointer).
	units := func(l string) int {
		_, rest, _ := strings.Cut(l, ":")
		hex, _, _ := strings.Cut(strings.TrimLeft(rest, " "), "   ")
		return len(strings.Fields(hex))
	}
	if len(lines) != 3 || units(lines[0]) != 2 || units(lines[2]) != 1 {
		t.Errorf("rd init_task 5: 3 lines, the last of one unit:\n%s", strings.Join(lines, "\n"))
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rd"}, 2, "give an ADDR"},
		{[]string{"rd", "-s", "-32", "init_task"}, 2, "64-bit"},
		{[]string{"rd", "init_task", "0"}, 2, "not a positive"},
		{[]string{"rd", "0x10"}, 1, "0x10"},
		{[]string{"rd", "init_task", "100000000"}, 1, "over"},
	} {
		var out strings.Builder
		if code := run(append([]string{"-c", d}, c.args...), &out, &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%q: exit %d, output %q; want %d and %q", c.args, code, out.String(), c.code, c.want)
		}
	}
}
