package objects

import (
	"fmt"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// A Struct is an object read from memory in one go, its members decoded
// from those bytes: one read for a structure whose many members a walker
// needs, instead of one per member. Uint keeps its first error (Err).
type Struct struct {
	f   field
	p   *Program
	err error
}

// ReadStruct reads the object of the named type at addr in one go.
func (p *Program) ReadStruct(typeName string, addr uint64) (Value, *Struct, error) {
	obj, err := p.ObjectOf(typeName, addr)
	if err != nil {
		return Value{}, nil, err
	}
	b, err := obj.Bytes()
	if err != nil {
		return Value{}, nil, fmt.Errorf("read %s at %#x: %w", typeName, addr, err)
	}
	return obj, p.StructFrom(obj.typ, b), nil
}

// ReadStructBefore is ReadStruct for an object allocated shorter than
// its type: only the bytes before member tail are read (struct
// kmem_cache is allocated up to node[nr_node_ids], not its
// MAX_NUMNODES; reading the whole type can run into an unmapped page).
// Members from tail on are not in the Struct (read them from the Value).
func (p *Program) ReadStructBefore(typeName string, addr uint64, tail string) (Value, *Struct, error) {
	obj, err := p.ObjectOf(typeName, addr)
	if err != nil {
		return Value{}, nil, err
	}
	off, _, err := p.MemberOffset(typeName, tail)
	if err != nil {
		return Value{}, nil, err
	}
	b := make([]byte, off)
	if err := p.Read(b, addr); err != nil {
		return Value{}, nil, fmt.Errorf("read %s at %#x (%d bytes, up to %s): %w", typeName, addr, off, tail, err)
	}
	return obj, p.StructFrom(obj.typ, b), nil
}

// StructFrom decodes the members of an object of type t from b, its
// bytes read earlier.
func (p *Program) StructFrom(t btf.Type, b []byte) *Struct {
	return &Struct{f: field{t: t, b: b}, p: p}
}

func (r *Struct) member(name string) (field, bool) {
	mi, err := r.p.FindMember(btfload.Underlying(r.f.t), name)
	if err != nil {
		return field{}, false
	}
	return mi.field(r.f.b)
}

// Uint decodes the integer (or enum, pointer, bitfield) member name. A
// missing or non-integer member returns 0 and is kept as Err.
func (r *Struct) Uint(name string) uint64 {
	if r.err != nil {
		return 0
	}
	g, ok := r.member(name)
	if !ok {
		_, r.err = r.p.FindMember(btfload.Underlying(r.f.t), name)
		if r.err == nil {
			r.err = fmt.Errorf("member %s: %w", name, ErrCorrupt)
		}
		return 0
	}
	x, ok := g.uint()
	if !ok {
		r.err = fmt.Errorf("member %s of %s is not an integer: %w", name, btfload.TypeString(r.f.t), ErrType)
	}
	return x
}

// OptUint is Uint for a member that some kernels lack: 0 then, and no
// error kept.
func (r *Struct) OptUint(name string) uint64 {
	g, ok := r.member(name)
	if !ok {
		return 0
	}
	x, _ := g.uint()
	return x
}

// Bytes returns the bytes of member name (nil when missing).
func (r *Struct) Bytes(name string) []byte {
	g, ok := r.member(name)
	if !ok {
		return nil
	}
	n, err := btf.Sizeof(g.t)
	if err != nil || n > len(g.b) {
		return nil
	}
	return g.b[:n]
}

// Err is the first error Uint met.
func (r *Struct) Err() error { return r.err }
