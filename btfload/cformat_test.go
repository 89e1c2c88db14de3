package btfload

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// staticAsserts checks, in C, every named struct's and union's size and
// the byte offset of each non-bitfield member against BTF.
func staticAsserts(e *cEmitter) string {
	var b strings.Builder
	n := 0
	var members func(tag string, ms []btf.Member, base uint32, prefix string)
	members = func(tag string, ms []btf.Member, base uint32, prefix string) {
		for _, m := range ms {
			off := base + uint32(m.Offset)
			if m.Name == "" {
				switch u := skipQuals(m.Type).(type) {
				case *btf.Struct:
					members(tag, u.Members, off, prefix)
				case *btf.Union:
					members(tag, u.Members, off, prefix)
				}
				continue
			}
			if m.BitfieldSize > 0 {
				continue
			}
			n++
			fmt.Fprintf(&b, "_Static_assert(__builtin_offsetof(%s, %s%s) == %d, \"%s.%s\");\n", tag, prefix, m.Name, off/8, tag, m.Name)
		}
	}
	for t, st := range e.state {
		if st != stDone {
			continue
		}
		var tag string
		var ms []btf.Member
		var size uint32
		switch tt := t.(type) {
		case *btf.Struct:
			if tt.Name == "" {
				continue
			}
			tag, ms, size = "struct "+e.name(t), tt.Members, tt.Size
		case *btf.Union:
			if tt.Name == "" {
				continue
			}
			tag, ms, size = "union "+e.name(t), tt.Members, tt.Size
		default:
			continue
		}
		fmt.Fprintf(&b, "_Static_assert(sizeof(%s) == %d, \"sizeof %s\");\n", tag, size, tag)
		members(tag, ms, 0, "")
	}
	return b.String()
}

// testSpecs returns the BTF specs a test can use: the running kernel's
// and the lab's (see lab_test.go).
func liveSpec(t testing.TB) *Spec {
	t.Helper()
	s, err := LoadLive()
	if err != nil {
		t.Skipf("no live BTF: %v", err)
	}
	return s
}

func TestFormatCCompiles(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	specs := map[string]*Spec{"live": liveSpec(t)}
	for name, s := range labSpecs(t) {
		specs[name] = s
	}
	for sname, s := range specs {
		for _, tn := range []string{"struct bpf_prog", "struct task_struct", "struct sk_buff", "struct bpf_map", "struct xarray", "struct printk_ringbuffer", "struct module"} {
			t.Run(sname+"/"+tn, func(t *testing.T) {
				typ, err := s.Type(tn)
				if err != nil {
					t.Fatal(err)
				}
				e := formatC(typ)
				src := e.b.String() + "\n" + staticAsserts(e)
				dir := t.TempDir()
				file := filepath.Join(dir, "t.c")
				if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(gcc, "-std=gnu11", "-Werror", "-Wno-unused", "-c", "-o", filepath.Join(dir, "t.o"), file).CombinedOutput()
				if err != nil {
					lines := strings.Split(string(out), "\n")
					if len(lines) > 30 {
						lines = lines[:30]
					}
					os.WriteFile("/tmp/kinspect-formatc-failed.c", []byte(src), 0o644)
					t.Fatalf("gcc: %v\n%s\n(source in /tmp/kinspect-formatc-failed.c)", err, strings.Join(lines, "\n"))
				}
				if !strings.Contains(src, tn+" {") {
					t.Errorf("no definition of %s", tn)
				}
			})
		}
	}
}

func TestTypeString(t *testing.T) {
	ch := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed}
	st := &btf.Struct{Name: "list_head", Size: 16}
	fp := &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4}, Params: []btf.FuncParam{{Type: &btf.Pointer{Target: (*btf.Void)(nil)}}}}
	for _, tc := range []struct {
		t    btf.Type
		want string
	}{
		{ch, "char"},
		{&btf.Pointer{Target: ch}, "char *"},
		{&btf.Array{Type: ch, Nelems: 16}, "char [16]"},
		{&btf.Pointer{Target: &btf.Const{Type: ch}}, "const char *"},
		{&btf.Const{Type: &btf.Pointer{Target: ch}}, "char *const"},
		{&btf.Pointer{Target: st}, "struct list_head *"},
		{&btf.Pointer{Target: fp}, "int (*)(void *)"},
		{&btf.Pointer{Target: &btf.Array{Type: ch, Nelems: 4}}, "char (*)[4]"},
		{&btf.Array{Type: &btf.Pointer{Target: st}, Nelems: 2}, "struct list_head *[2]"},
	} {
		if got := TypeString(tc.t); got != tc.want {
			t.Errorf("TypeString = %q, want %q", got, tc.want)
		}
	}
}
