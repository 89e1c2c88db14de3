package btfload

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDecl(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"struct task_struct init_task", "struct task_struct init_task"},
		{"struct printk_ringbuffer *prb;", "struct printk_ringbuffer *prb"},
		{"unsigned long __per_cpu_offset[8192]", "long unsigned int __per_cpu_offset[8192]"},
		{"const char *const linux_proc_banner", "char *linux_proc_banner"},
		{"int a[2][3]", "int a[2][3]"},
	} {
		d, err := ParseDecl(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if d.String() != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, d, tc.want)
		}
	}
	for _, bad := range []string{"init_task", "struct task_struct", "unsigned long", "int x[", "int 3x"} {
		if _, err := ParseDecl(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("%q: err %v, want ErrFormat", bad, err)
		}
	}
}

func TestBuiltinDecls(t *testing.T) {
	d := NewDecls()
	if len(d.Names()) != len(Builtin) {
		t.Errorf("%d names for %d builtins", len(d.Names()), len(Builtin))
	}
	s := liveSpec(t)
	for _, n := range []string{"init_task", "prog_idr", "map_idr", "modules", "__per_cpu_offset", "prb", "btf_modules"} {
		dc, ok := d.Lookup(n)
		if !ok {
			t.Fatalf("no builtin %s", n)
		}
		if _, err := s.Resolve(dc.Type); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if err := d.AddText(strings.NewReader("# comment\nstruct foo bar; int baz // trailing\n\n"), "test"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Lookup("baz"); !ok {
		t.Error("baz not declared")
	}
	if err := d.AddText(strings.NewReader("int ok\nstruct\n"), "file.decl"); err == nil || !strings.Contains(err.Error(), "file.decl:2") {
		t.Errorf("err %v, want one naming file.decl:2", err)
	}
}

func TestPerCPUVar(t *testing.T) {
	s := liveSpec(t)
	v, err := s.PerCPUVar("runqueues")
	if err != nil {
		t.Fatal(err)
	}
	if TypeString(v.Type) != "struct rq" {
		t.Errorf("runqueues: %s", TypeString(v.Type))
	}
	if _, err := s.PerCPUVar("runqueus"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "runqueues") {
		t.Errorf("err %v", err)
	}
}
