package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

func TestPrintLab(t *testing.T) {
	sc := labdata.Require(t, "basic")
	dump := sc.Path("dumps/elf")
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"print", "init_task.comm"}, "(char [16])\"swapper/0\"\n", 0},
		{[]string{"print", "init_task.pdi"}, "no member named pdi in struct task_struct; did you mean pid", 1},
		{[]string{"print", "init_tsak"}, "no symbol named", 1},
		{[]string{"print", "(struct task_strct *)0"}, "no type named struct task_strct; did you mean struct task_struct", 1},
		{[]string{"print", "container_of(init_task.tasks.next, struct task_struct, tasks)->comm"}, "\"init\"", 0},
		{[]string{"--declare", "struct mutex module_mutex", "print", "&module_mutex"}, "(struct mutex *)0xffffffff", 0},
		{[]string{"print", "-k", sc.Path("truth/kallsyms.txt"), "init_task.pid"}, "(pid_t)0\n", 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			code := run(append([]string{"-c", dump}, tc.args...), &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, output %q; want %d and %q", code, out.String(), tc.code, tc.want)
			}
		})
	}
	var out bytes.Buffer
	if code := run([]string{"-c", dump, "--json", "print", "init_task.comm"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	var r struct {
		Expr, Type, Address string
		Value               string
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Value != "swapper/0" || r.Type != "char [16]" || !strings.HasPrefix(r.Address, "0xffffffff") {
		t.Errorf("JSON %s: %+v %v", out.String(), r, err)
	}
}

// TestPrintLiveWithoutMemory: with --live and no readable /proc/kcore,
// print says why it cannot read memory.
func TestPrintLiveWithoutMemory(t *testing.T) {
	if f, err := os.Open("/proc/kcore"); err == nil {
		f.Close()
		t.Skip("/proc/kcore is readable here")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("no live BTF")
	}
	var out bytes.Buffer
	code := run([]string{"--live", "--declare", "struct task_struct __start_BTF", "print", "__start_BTF.pid"}, &out, &out)
	if code == 0 || !strings.Contains(out.String(), "cannot read kernel memory") || !strings.Contains(out.String(), "/proc/kcore") {
		t.Errorf("exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"--live", "print", "sizeof(struct list_head)"}, &out, &out); code != 0 || !strings.Contains(out.String(), ")16") {
		t.Errorf("sizeof without memory: exit %d: %s", code, out.String())
	}
}
