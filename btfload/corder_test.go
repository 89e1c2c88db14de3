package btfload

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestOrderCLibbpf checks orderC against libbpf's btf_dump rules on the
// BTF clang writes for a struct of function pointers (the lab's
// tcp_congestion_ops): bpftool 7.1 printed "struct sock;" before
// "typedef unsigned int __u32;", because a typedef reached only through a
// pointer to a function is not strong, while a forward declaration is
// always queued.
func TestOrderCLibbpf(t *testing.T) {
	u32 := &btf.Typedef{Name: "__u32", Type: &btf.Int{Name: "unsigned int", Size: 4}}
	sock := &btf.Fwd{Name: "sock"}
	sockp := &btf.Pointer{Target: sock}
	proto := &btf.FuncProto{Return: u32, Params: []btf.FuncParam{{Type: sockp}}}
	ops := &btf.Struct{Name: "ops", Size: 8, Members: []btf.Member{{Name: "f", Type: &btf.Pointer{Target: proto}}}}
	anon := &btf.Enum{Size: 4, Values: []btf.EnumValue{{Name: "A", Value: 1}}}
	used := &btf.Enum{Size: 4, Values: []btf.EnumValue{{Name: "B", Value: 2}}}
	holder := &btf.Struct{Name: "holder", Size: 4, Members: []btf.Member{{Name: "e", Type: used}}}

	tests := []struct {
		name  string
		roots []btf.Type
		want  []btf.Type
	}{
		// Type ids in clang's order: the struct first, the typedef later.
		{"pointer-only typedef waits", []btf.Type{ops, u32, sock, proto}, []btf.Type{sock, ops, u32}},
		{"typedef first is strong", []btf.Type{u32, ops}, []btf.Type{u32, sock, ops}},
		// An anonymous enum nothing refers to is a top-level declaration;
		// one a struct embeds is written inline.
		{"anonymous enums", []btf.Type{anon, holder, used}, []btf.Type{anon, holder}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := orderC(tt.roots)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d types %v, want %v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}

	c := FormatC(ops, u32, sock, proto)
	if i, j := strings.Index(c, "struct sock;"), strings.Index(c, "typedef unsigned int __u32;"); i < 0 || j < 0 || i > j {
		t.Errorf("forward declaration not before the typedef:\n%s", c)
	}
}

// TestOrderCCycle: a struct that embeds itself cannot be ordered; one that
// points to itself can.
func TestOrderCCycle(t *testing.T) {
	self := &btf.Struct{Name: "node", Size: 8}
	self.Members = []btf.Member{{Name: "next", Type: &btf.Pointer{Target: self}}}
	if got := orderC([]btf.Type{self}); len(got) != 1 || got[0] != self {
		t.Errorf("self-pointing struct: got %v", got)
	}
	loop := &btf.Struct{Name: "loop", Size: 8}
	loop.Members = []btf.Member{{Name: "me", Type: loop}}
	o := &cOrder{state: map[btf.Type]int{}, referenced: map[btf.Type]bool{}}
	if r := o.order(loop, false); r != -1 {
		t.Errorf("self-embedding struct: order = %d, want -1", r)
	}
}
