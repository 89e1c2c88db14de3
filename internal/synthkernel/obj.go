package synthkernel

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Obj writes the members of an object by name, at the offsets and in
// the sizes its BTF type gives: the test says what the kernel holds,
// the type where it sits. Paths are member names joined by dots, with
// array indexes ("mem[1].base"); anonymous members are looked through.
// A path the type lacks panics: that is a bug in the test.
type Obj struct {
	m    *Mem
	t    btf.Type
	Addr uint64
}

// Obj returns the object of type t at addr.
func (m *Mem) Obj(t btf.Type, addr uint64) Obj { return Obj{m: m, t: t, Addr: addr} }

// New allocates a zeroed object of type t and returns it.
func (m *Mem) New(t btf.Type) Obj { return m.Obj(t, m.Alloc(uint64(sizeof(t)))) }

func underlying(t btf.Type) btf.Type {
	for {
		switch u := t.(type) {
		case *btf.Typedef:
			t = u.Type
		case *btf.Const:
			t = u.Type
		case *btf.Volatile:
			t = u.Type
		default:
			return t
		}
	}
}

// find locates path: its bit offset from the object, bitfield size and
// type.
func (o Obj) find(path string) (bitOff, bits uint32, t btf.Type) {
	t = o.t
	for _, step := range strings.Split(path, ".") {
		name, idx := step, -1
		if i := strings.IndexByte(step, '['); i >= 0 && strings.HasSuffix(step, "]") {
			n, err := strconv.Atoi(step[i+1 : len(step)-1])
			if err != nil {
				panic("synthkernel: bad path " + path)
			}
			name, idx = step[:i], n
		}
		if name != "" {
			off, b, mt, ok := lookup(t, name)
			if !ok {
				panic(fmt.Sprintf("synthkernel: no member %s (of %s) in %v", name, path, o.t))
			}
			bitOff, bits, t = bitOff+off, b, mt
		}
		if idx >= 0 {
			a, ok := underlying(t).(*btf.Array)
			if !ok {
				panic(fmt.Sprintf("synthkernel: %s in %s is not an array", step, path))
			}
			bitOff += uint32(idx) * sizeof(a.Type) * 8
			t = a.Type
		}
	}
	return bitOff, bits, t
}

func lookup(t btf.Type, name string) (uint32, uint32, btf.Type, bool) {
	var ms []btf.Member
	switch u := underlying(t).(type) {
	case *btf.Struct:
		ms = u.Members
	case *btf.Union:
		ms = u.Members
	default:
		return 0, 0, nil, false
	}
	for _, m := range ms {
		if m.Name == name {
			return uint32(m.Offset), uint32(m.BitfieldSize), m.Type, true
		}
	}
	for _, m := range ms {
		if m.Name == "" {
			if off, b, mt, ok := lookup(m.Type, name); ok {
				return uint32(m.Offset) + off, b, mt, true
			}
		}
	}
	return 0, 0, nil, false
}

// At returns the address of the member at path.
func (o Obj) At(path string) uint64 {
	off, _, _ := o.find(path)
	return o.Addr + uint64(off/8)
}

// Member returns the member at path as an object.
func (o Obj) Member(path string) Obj {
	off, _, t := o.find(path)
	return Obj{m: o.m, t: t, Addr: o.Addr + uint64(off/8)}
}

// Set writes the integer, enum, pointer or bitfield member at path.
func (o Obj) Set(path string, v uint64) Obj {
	off, bits, t := o.find(path)
	n := sizeof(t)
	if bits > 0 {
		// Read-modify-write the bytes that hold the bitfield.
		first, last := off/8, (off+bits-1)/8
		b := make([]byte, 8)
		o.m.ReadVirt(b[:last-first+1], o.Addr+uint64(first))
		word := binary.LittleEndian.Uint64(b)
		shift := off % 8
		mask := (uint64(1)<<bits - 1) << shift
		word = word&^mask | v<<shift&mask
		binary.LittleEndian.PutUint64(b, word)
		o.m.Write(o.Addr+uint64(first), b[:last-first+1])
		return o
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if n > 8 {
		panic(fmt.Sprintf("synthkernel: %s is %d bytes, not an integer", path, n))
	}
	o.m.Write(o.Addr+uint64(off/8), b[:n])
	return o
}

// Bytes writes b at the member at path (at most the member's size).
func (o Obj) Bytes(path string, b []byte) Obj {
	off, _, t := o.find(path)
	if n := sizeof(t); uint32(len(b)) > n && n > 0 {
		panic(fmt.Sprintf("synthkernel: %d bytes for %s of %d", len(b), path, n))
	}
	o.m.Write(o.Addr+uint64(off/8), b)
	return o
}

// Str writes s NUL-terminated in the char array at path.
func (o Obj) Str(path, s string) Obj { return o.Bytes(path, append([]byte(s), 0)) }
