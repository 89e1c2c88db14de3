package bpf

import (
	"errors"
	"fmt"
	"iter"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// Walkers of the BPF symbols of kernel/bpf/core.c.

// Ksym is one entry of bpf_kallsyms: a BPF program or subprogram, a
// trampoline or a dispatcher, as /proc/kallsyms lists it under [bpf].
type Ksym struct {
	Addr       uint64 // the struct bpf_ksym
	Name       string
	Start, End uint64
	// Prog says the image is a program's (bpf_ksym.prog, 5.8+); false
	// for trampolines and dispatchers, and where BTF lacks the member.
	Prog bool
}

// KsymForEach yields each struct bpf_ksym on the bpf_kallsyms list
// (linked by lnode, 5.8+: dba122fb5e9d "bpf: Add bpf_ksym_add/del
// functions"), in the order bpf_get_kallsym lists them.
func KsymForEach(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		head, err := p.Variable("bpf_kallsyms")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("bpf_kallsyms: %w", err))
			return
		}
		for k, err := range objects.ListForEachEntry(head, "struct bpf_ksym", "lnode") {
			if err != nil {
				if d := p.DamageOf(err, "bpf_kallsyms"); d != nil {
					if !yield(objects.Value{}, d) {
						return
					}
					continue
				}
				yield(objects.Value{}, fmt.Errorf("bpf_kallsyms: %w", err))
				return
			}
			if !yield(k, nil) {
				return
			}
		}
	}
}

// NewKsym reads a struct bpf_ksym.
func NewKsym(k objects.Value) (*Ksym, error) {
	addr, err := objects.ObjectAddr(k, "read bpf_ksym")
	if err != nil {
		return nil, err
	}
	out := Ksym{Addr: addr}
	fail := func(err error) (*Ksym, error) { return nil, fmt.Errorf("bpf_ksym at %#x: %w", addr, err) }
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{"start", &out.Start}, {"end", &out.End}} {
		v, err := k.Member(f.name)
		if err == nil {
			*f.dst, err = v.Uint()
		}
		if err != nil {
			return fail(err)
		}
	}
	n, err := k.Member("name")
	if err == nil {
		out.Name, err = n.CString()
	}
	if err != nil {
		return fail(err)
	}
	if pv, err := k.Member("prog"); err == nil {
		if out.Prog, err = pv.Bool(); err != nil {
			return fail(err)
		}
	} else if !errors.Is(err, objects.ErrNotFound) {
		return fail(err)
	}
	if out.End < out.Start {
		return fail(fmt.Errorf("%s: end %#x before start %#x: %w", out.Name, out.End, out.Start, objects.ErrCorrupt))
	}
	return &out, nil
}

// AddSymbols adds every bpf_kallsyms entry to t as its "[bpf]"
// symbol, of size end - start. A damaged entry is noted in the
// Program's damage log and skipped; errors are the walk's.
func AddSymbols(p *objects.Program, t *kallsyms.Table) error {
	for k, err := range KsymForEach(p) {
		if err != nil {
			if objects.IsDamage(err) {
				continue
			}
			return err
		}
		s, err := NewKsym(k)
		if err != nil {
			p.NoteDamage(&objects.Damage{Walk: "bpf_kallsyms", Addr: objects.Hex(k.Addr()), Object: "struct bpf_ksym",
				Expected: "a readable symbol", Err: err})
			continue
		}
		t.AddBPF(s.Name, s.Start, s.End-s.Start)
	}
	return nil
}
