package linux

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// Types and typed memory as crash's struct, union and whatis show them,
// from BTF.

// StructView is a struct or union type, or an object of it at an
// address: crash's struct (and union).
type StructView struct {
	// Type is the C name: "struct task_struct".
	Type string       `json:"type"`
	Size uint32       `json:"size"`
	Addr *objects.Hex `json:"address,omitempty"`
	// Members are the members' places (with offsets, crash's struct -o):
	// offsets from the start, nested for anonymous structs and unions.
	Members []btfload.MemberPlace `json:"members,omitempty"`
	// Definition is the type in C (without an address or offsets).
	Definition string `json:"definition,omitempty"`
	// Value is the object at Addr (without offsets).
	Value *objects.Value `json:"value,omitempty"`
}

// ViewStruct shows a struct or union type (kind "struct" or "union"; a
// typedef of one is taken too) as crash's struct: with an address, the
// object there (its members' places instead with offsets); without one,
// the type's C definition (its members' places with offsets). name may
// carry its keyword ("struct list_head").
//
// Errors wrap btfload.ErrNotFound (no such type, with close names),
// objects.ErrType (a type of another kind), or the memory's error.
func ViewStruct(p *objects.Program, kind, name string, addr *uint64, offsets bool) (*StructView, error) {
	bare := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), kind+" "))
	t, err := p.Type(kind + " " + bare)
	if errors.Is(err, btfload.ErrNotFound) {
		if td, err2 := p.Type(bare); err2 == nil {
			t, err = td, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, bare, err)
	}
	u := btfload.Underlying(t)
	if _, isStruct := u.(*btf.Struct); kind == "struct" && !isStruct {
		return nil, fmt.Errorf("%s %s: %s is not a struct: %w", kind, bare, btfload.TypeString(t), objects.ErrType)
	}
	if _, isUnion := u.(*btf.Union); kind == "union" && !isUnion {
		return nil, fmt.Errorf("%s %s: %s is not a union: %w", kind, bare, btfload.TypeString(t), objects.ErrType)
	}
	l, err := btfload.NewLayout(t, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, bare, err)
	}
	sv := &StructView{Type: l.Type, Size: l.Size}
	if offsets {
		sv.Members = l.Members
	}
	if addr == nil {
		if !offsets {
			sv.Definition = btfload.DefineC(u)
		}
		return sv, nil
	}
	sv.Addr = objects.HexPtr(*addr)
	if offsets {
		return sv, nil
	}
	v := p.Object(u, *addr)
	if _, err := v.Bytes(); err != nil {
		return nil, fmt.Errorf("%s %s at %#x: %w", kind, bare, *addr, err)
	}
	sv.Value = &v
	return sv, nil
}

// Whatis is a name's declaration: crash's whatis.
type Whatis struct {
	Name string `json:"name"`
	// Kind is "struct", "union", "enum", "typedef", "type" (a base type),
	// "function" or "variable".
	Kind string `json:"kind"`
	// Decl is the C: a type's definition (for struct, union and enum
	// its body), a function's prototype, a variable's declaration.
	Decl string `json:"decl"`
	// Size is the type's (the variable's) size, absent for a function.
	Size *int `json:"size,omitempty"`
}

// WhatIs says what a name is, as crash's whatis: a type (struct,
// union, enum, typedef or base type; "struct x" names the struct
// alone), a function (its BTF prototype) or a global variable (typed
// by the Program's declarations, per-CPU ones by BTF).
//
// Errors wrap objects.ErrNotFound when it is none of them.
func WhatIs(p *objects.Program, name string) (*Whatis, error) {
	name = strings.TrimSpace(name)
	w := &Whatis{Name: name}
	if t, err := p.Type(name); err == nil {
		switch t.(type) {
		case *btf.Struct:
			w.Kind = "struct"
		case *btf.Union:
			w.Kind = "union"
		case *btf.Enum:
			w.Kind = "enum"
		case *btf.Typedef:
			w.Kind = "typedef"
		default:
			w.Kind = "type"
		}
		w.Decl = btfload.DefineC(t)
		if n, err := btf.Sizeof(t); err == nil {
			w.Size = &n
		}
		return w, nil
	}
	if fns, err := p.Types().BTF().AnyTypesByName(name); err == nil {
		for _, t := range fns {
			if fn, ok := t.(*btf.Func); ok {
				w.Kind, w.Decl = "function", btfload.DefineC(fn)
				return w, nil
			}
		}
	}
	v, err := p.Variable(name)
	if err != nil {
		return nil, fmt.Errorf("whatis %s: not a type, a function or a variable: %w", name, err)
	}
	w.Kind, w.Decl = "variable", btfload.DeclareC(v.Type(), name)+";"
	if n, err := btf.Sizeof(v.Type()); err == nil {
		w.Size = &n
	}
	return w, nil
}
