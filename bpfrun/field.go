package bpfrun

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/objects"
)

// field is a member of a kernel structure: its byte offset, and for a
// bitfield its bits; size is the member's size in bytes (for a
// bitfield, 1). off is noOff when the kernel has no such member.
type field struct {
	off        int64
	bit, width uint32
	size       int
}

func (f field) ok() bool { return f.off >= 0 }

// fields looks members up in one type.
type fields struct {
	p    *objects.Program
	typ  string
	t    btf.Type
	err  error
	size int64
}

func newFields(p *objects.Program, typ string) *fields {
	f := &fields{p: p, typ: typ, size: noOff}
	f.t, f.err = p.Type(typ)
	if f.err == nil {
		if n, err := btf.Sizeof(f.t); err == nil {
			f.size = int64(n)
		}
	}
	return f
}

// get is member path's field, noOff when missing.
func (f *fields) get(path string) field {
	if f.err != nil {
		return field{off: noOff}
	}
	v, err := f.p.Object(f.t, 0).Path(path)
	if err != nil {
		return field{off: noOff}
	}
	a, _ := v.Address()
	out := field{off: int64(a)}
	if off, w, ok := v.BitField(); ok {
		out.bit, out.width, out.size = off, w, 1
		return out
	}
	n, err := btf.Sizeof(v.Type())
	if err != nil {
		return field{off: noOff}
	}
	out.size = n
	return out
}

// must is get, recording a missing member as the error of err.
func (f *fields) must(path string, err *error) field {
	g := f.get(path)
	if !g.ok() && *err == nil {
		*err = fmt.Errorf("%s: no member %s in the kernel's BTF: %w", f.typ, path, ErrNotSupported)
	}
	return g
}

// put writes v into b at the field (little-endian, truncated to its
// size, bitfields merged).
func (g field) put(b []byte, v uint64) {
	if !g.ok() || int(g.off)+g.size > len(b) {
		return
	}
	if g.width > 0 {
		// Bitfields of the structures written here fit in 16 bits.
		x := uint32(b[g.off])
		if int(g.off)+1 < len(b) {
			x |= uint32(b[g.off+1]) << 8
		}
		mask := uint32(1)<<g.width - 1
		x = x&^(mask<<g.bit) | (uint32(v)&mask)<<g.bit
		b[g.off] = byte(x)
		if g.bit+g.width > 8 && int(g.off)+1 < len(b) {
			b[g.off+1] = byte(x >> 8)
		}
		return
	}
	switch g.size {
	case 1:
		b[g.off] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b[g.off:], uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b[g.off:], uint32(v))
	case 8:
		binary.LittleEndian.PutUint64(b[g.off:], v)
	}
}

// get reads the field from b.
func (g field) get(b []byte) uint64 {
	if !g.ok() || int(g.off)+g.size > len(b) {
		return 0
	}
	if g.width > 0 {
		x := uint32(b[g.off])
		if int(g.off)+1 < len(b) {
			x |= uint32(b[g.off+1]) << 8
		}
		return uint64(x>>g.bit) & (1<<g.width - 1)
	}
	switch g.size {
	case 1:
		return uint64(b[g.off])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b[g.off:]))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b[g.off:]))
	case 8:
		return binary.LittleEndian.Uint64(b[g.off:])
	}
	return 0
}

// bytes is the field's bytes in b.
func (g field) bytes(b []byte) []byte {
	if !g.ok() || int(g.off)+g.size > len(b) {
		return nil
	}
	return b[g.off : int(g.off)+g.size]
}
