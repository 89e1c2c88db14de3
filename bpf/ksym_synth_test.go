package bpf

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

func TestKsyms(t *testing.T) {
	k := newBPF(t)
	// bpf_kallsyms (kernel/bpf/core.c): a program's image and a
	// trampoline's, linked by lnode in the order bpf_ksym_add added them.
	a := k.New("bpf_ksym").Set("start", 0xffffffffa0001000).Set("end", 0xffffffffa0001040).Str("name", "bpf_prog_0123456789abcdef_f").Set("prog", 1)
	b := k.New("bpf_ksym").Set("start", 0xffffffffa0002000).Set("end", 0xffffffffa0002100).Str("name", "bpf_trampoline_6442450944")
	head := k.M.Global(k.Syms, "bpf_kallsyms", 16)
	k.M.List(head, a.At("lnode"), b.At("lnode"))

	var got []string
	for v, err := range KsymForEach(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewKsym(v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %#x-%#x prog=%v", s.Name, s.Start, s.End, s.Prog))
	}
	if s := strings.Join(got, "|"); s != "bpf_prog_0123456789abcdef_f 0xffffffffa0001000-0xffffffffa0001040 prog=true|bpf_trampoline_6442450944 0xffffffffa0002000-0xffffffffa0002100 prog=false" {
		t.Errorf("ksyms: %s", s)
	}
	tab, err := kallsyms.ParseProcKallsyms(strings.NewReader("ffffffff81000000 T _stext\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := AddSymbols(k.p, tab); err != nil {
		t.Fatal(err)
	}
	s, err := tab.Lookup("bpf_trampoline_6442450944")
	if err != nil || len(s) != 1 || s[0].Module != kallsyms.BPFModule || s[0].Size != 0x100 || s[0].Addr != 0xffffffffa0002000 {
		t.Errorf("lookup: %v, %v", s, err)
	}

	// An end before the start; a cycle: noted as damage, the rest added.
	lastDamage := func() error {
		d := k.p.Damaged()
		if len(d) == 0 {
			return nil
		}
		return d[len(d)-1]
	}
	b.Set("end", 0xffffffffa0001000)
	if err := AddSymbols(k.p, tab); err != nil {
		t.Errorf("end before start: %v", err)
	}
	if err := lastDamage(); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", b.Addr)) {
		t.Errorf("end before start: damage %v", err)
	}
	b.Set("end", 0xffffffffa0002100)
	k.M.U64(b.At("lnode"), a.At("lnode"))
	if err := AddSymbols(k.p, tab); err != nil {
		t.Errorf("cycle: %v", err)
	}
	if err := lastDamage(); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), "bpf_kallsyms") {
		t.Errorf("cycle: damage %v", err)
	}
	if _, err := NewKsym(k.p.Pointer(k.S("bpf_ksym"), 0)); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("NULL ksym: %v", err)
	}
	if err := AddSymbols(newBPF(t).p, tab); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("no bpf_kallsyms: %v", err)
	}
}
