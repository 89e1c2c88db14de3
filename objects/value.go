package objects

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// MaxObjectSize bounds one read of an object.
const MaxObjectSize = 64 << 20

// Value is a typed kernel value: an object at an address (an lvalue,
// read on demand) or a constant (an rvalue, like a pointer computed by
// an expression). The zero Value is invalid.
type Value struct {
	prog   *Program
	typ    btf.Type
	addr   uint64
	lvalue bool
	percpu bool   // a per-CPU variable: addr is a per-CPU offset
	bitOff uint32 // a bitfield's first bit at addr
	bitLen uint32 // a bitfield's width; 0 if not a bitfield
	data   []byte // a constant's bytes, little-endian
}

// Program returns the Program the value belongs to.
func (v Value) Program() *Program { return v.prog }

// Type returns the value's type as declared (typedefs kept).
func (v Value) Type() btf.Type { return v.typ }

// TypeName spells the value's type in C.
func (v Value) TypeName() string { return btfload.TypeString(v.typ) }

// Address returns the object's address; false for a constant.
func (v Value) Address() (uint64, bool) { return v.addr, v.lvalue }

// IsPerCPU says whether v is a per-CPU variable, whose address is an
// offset into each CPU's area (see Program.PerCPU).
func (v Value) IsPerCPU() bool { return v.percpu }

// IsPointer reports whether v's type is (a typedef of) a pointer.
func (v Value) IsPointer() bool {
	_, ok := v.underlying().(*btf.Pointer)
	return ok
}

// BitField returns the bit offset and width of a bitfield member.
func (v Value) BitField() (off, width uint32, ok bool) { return v.bitOff, v.bitLen, v.bitLen > 0 }

// Size is the size of the value's type in bytes.
func (v Value) Size() (int, error) {
	n, err := btf.Sizeof(v.typ)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %v: %w", v.TypeName(), err, ErrType)
	}
	return n, nil
}

// String describes the value briefly for messages: "(struct task_struct
// *)0xffff888003a0c000" or "(struct list_head)@0xffffffff82a1c940".
func (v Value) String() string {
	if v.prog == nil {
		return "(invalid value)"
	}
	if v.lvalue {
		return fmt.Sprintf("(%s)@%#x", v.TypeName(), v.addr)
	}
	if u, err := v.Uint(); err == nil {
		return fmt.Sprintf("(%s)%#x", v.TypeName(), u)
	}
	return fmt.Sprintf("(%s)<constant>", v.TypeName())
}

// underlying is the type without typedefs and qualifiers.
func (v Value) underlying() btf.Type { return btfload.Underlying(v.typ) }

// Bytes reads the value's bytes (of a bitfield: of its storage).
func (v Value) Bytes() ([]byte, error) {
	if !v.lvalue {
		return v.data, nil
	}
	n, err := v.Size()
	if err != nil {
		return nil, err
	}
	if v.bitLen > 0 {
		n = int((v.bitOff + v.bitLen + 7) / 8)
	}
	if n > MaxObjectSize {
		return nil, fmt.Errorf("read %s at %#x: %d bytes is too big to read at once: %w", v.TypeName(), v.addr, n, ErrType)
	}
	b := make([]byte, n)
	if err := v.prog.Read(b, v.addr); err != nil {
		return nil, v.readErr(err)
	}
	return b, nil
}

// readErr adds a hint for per-CPU variables.
func (v Value) readErr(err error) error {
	if v.percpu {
		return fmt.Errorf("%w (%s is a per-CPU variable at per-CPU offset %#x: use per_cpu(x, cpu))", err, v.TypeName(), v.addr)
	}
	return err
}

// Read reads exactly len(b) bytes at addr.
func (p *Program) Read(b []byte, addr uint64) error {
	n, err := p.mem.ReadVirt(b, addr)
	if err == nil && n < len(b) {
		err = fmt.Errorf("read %d bytes at %#x: short read of %d: %w", len(b), addr, n, ErrCorrupt)
	}
	return err
}

// ReadU64 reads a little-endian u64 at addr.
func (p *Program) ReadU64(addr uint64) (uint64, error) {
	var b [8]byte
	if err := p.Read(b[:], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// ReadPointers reads n pointers at addr.
func (p *Program) ReadPointers(addr uint64, n int) ([]uint64, error) {
	if addr == 0 {
		return nil, fmt.Errorf("NULL array of %d pointers: %w", n, ErrCorrupt)
	}
	b := make([]byte, 8*n)
	if err := p.Read(b, addr); err != nil {
		return nil, err
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// CString returns the C string at the start of b: up to its first NUL,
// or all of b.
func CString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// SizeofType returns the size of the named type.
func (p *Program) SizeofType(name string) (uint64, error) {
	t, err := p.Type(name)
	if err != nil {
		return 0, err
	}
	n, err := btf.Sizeof(t)
	return uint64(n), err
}

// scalarInfo says how to read an integer-like type: its size and sign.
func scalarInfo(t btf.Type) (size int, signed bool, ok bool) {
	switch u := btfload.Underlying(t).(type) {
	case *btf.Int:
		return int(u.Size), u.Encoding&btf.Signed != 0, true
	case *btf.Enum:
		return int(u.Size), u.Signed, true
	case *btf.Pointer:
		return 8, false, true
	}
	return 0, false, false
}

// raw returns the value's integer bits, unsigned, and whether it is signed.
func (v Value) raw() (uint64, bool, int, error) {
	size, signed, ok := scalarInfo(v.typ)
	if !ok {
		return 0, false, 0, fmt.Errorf("%s is not an integer, enum or pointer: %w", v.TypeName(), ErrType)
	}
	if size > 8 {
		// __int128: read the low 64 bits.
		size = 8
	}
	var buf [16]byte
	if v.lvalue {
		n := size
		if v.bitLen > 0 {
			n = int((v.bitOff + v.bitLen + 7) / 8)
		}
		if err := v.prog.Read(buf[:n], v.addr); err != nil {
			return 0, false, 0, v.readErr(err)
		}
	} else {
		copy(buf[:], v.data)
	}
	x := binary.LittleEndian.Uint64(buf[:8])
	width := uint32(size * 8)
	if v.bitLen > 0 {
		hi := binary.LittleEndian.Uint64(buf[8:])
		if v.bitOff > 0 {
			x = x>>v.bitOff | hi<<(64-v.bitOff)
		}
		width = v.bitLen
	}
	if width < 64 {
		x &= 1<<width - 1
	}
	return x, signed, int(width), nil
}

// Uint reads an integer, enum, bool or pointer as unsigned (a signed
// value's bits, sign-extended). Errors wrap ErrType or the memory error.
func (v Value) Uint() (uint64, error) {
	x, signed, width, err := v.raw()
	if err != nil {
		return 0, err
	}
	if signed && width < 64 && x&(1<<(width-1)) != 0 {
		x |= ^uint64(0) << width
	}
	return x, nil
}

// Int reads an integer, enum, bool or pointer as signed.
func (v Value) Int() (int64, error) {
	x, err := v.Uint()
	return int64(x), err
}

// Signed says whether the value's integer type is signed.
func (v Value) Signed() bool { _, s, _ := scalarInfo(v.typ); return s }

// Bool reads a value as C would test it: non-zero is true.
func (v Value) Bool() (bool, error) {
	x, err := v.Uint()
	return x != 0, err
}

// EnumName reads an enum and returns the name of its value; for a value
// the enum does not name, the number in decimal. Errors wrap ErrType.
func (v Value) EnumName() (string, error) {
	e, ok := v.underlying().(*btf.Enum)
	if !ok {
		return "", fmt.Errorf("%s is not an enum: %w", v.TypeName(), ErrType)
	}
	x, err := v.Uint()
	if err != nil {
		return "", err
	}
	for _, ev := range e.Values {
		if ev.Value == x || e.Signed && int64(ev.Value) == int64(x) {
			return ev.Name, nil
		}
		if !e.Signed && e.Size < 8 && ev.Value == x&(1<<(8*e.Size)-1) {
			return ev.Name, nil
		}
	}
	if e.Signed {
		return fmt.Sprint(int64(x)), nil
	}
	return fmt.Sprint(x), nil
}

// maxString bounds CString's reads through a char pointer.
const maxString = 1 << 16

// CString reads a C string: a char array (up to its first NUL or its
// length) or a char pointer (up to the first NUL, at most 64 KiB).
// Errors wrap ErrType, ErrCorrupt (a NULL pointer) or the memory error.
func (v Value) CString() (string, error) {
	switch u := v.underlying().(type) {
	case *btf.Array:
		if !isChar(u.Type) {
			return "", fmt.Errorf("%s is not a char array: %w", v.TypeName(), ErrType)
		}
		b, err := v.Bytes()
		if err != nil {
			return "", err
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b), nil
	case *btf.Pointer:
		if !isChar(u.Target) {
			return "", fmt.Errorf("%s is not a char pointer: %w", v.TypeName(), ErrType)
		}
		addr, err := v.Uint()
		if err != nil {
			return "", err
		}
		if addr == 0 {
			return "", fmt.Errorf("read string: %s is NULL: %w", v.TypeName(), ErrCorrupt)
		}
		return v.prog.ReadCString(addr, maxString)
	}
	return "", fmt.Errorf("%s is not a string: %w", v.TypeName(), ErrType)
}

// ReadCString reads a NUL-terminated string at addr, at most max bytes,
// a page at a time so a string near the end of a mapping still reads.
func (p *Program) ReadCString(addr uint64, max int) (string, error) {
	var out []byte
	for len(out) < max {
		chunk := 4096 - int(addr%4096)
		chunk = min(chunk, max-len(out))
		b := make([]byte, chunk)
		if err := p.Read(b, addr); err != nil {
			if len(out) > 0 {
				return string(out), fmt.Errorf("string at %#x: %w", addr-uint64(len(out)), err)
			}
			return "", err
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return string(append(out, b[:i]...)), nil
		}
		out = append(out, b...)
		addr += uint64(chunk)
	}
	return string(out), nil
}

// isChar says whether t is a (qualified) char type.
func isChar(t btf.Type) bool {
	i, ok := btfload.Underlying(t).(*btf.Int)
	return ok && i.Size == 1 && (i.Encoding&btf.Char != 0 || i.Name == "char" || i.Name == "signed char" || i.Name == "unsigned char")
}

// Deref follows a pointer to the object it points to, or returns the
// first element of an array. Errors wrap ErrType or ErrCorrupt (NULL).
func (v Value) Deref() (Value, error) {
	switch u := v.underlying().(type) {
	case *btf.Pointer:
		addr, err := v.Uint()
		if err != nil {
			return Value{}, err
		}
		if addr == 0 {
			return Value{}, fmt.Errorf("dereference of NULL %s: %w", v.TypeName(), ErrCorrupt)
		}
		if _, ok := btfload.Underlying(u.Target).(*btf.Void); ok || u.Target == nil {
			return Value{}, fmt.Errorf("dereference of %s at %#x: cast it to a type first: %w", v.TypeName(), addr, ErrType)
		}
		return v.prog.Object(u.Target, addr), nil
	case *btf.Array:
		return v.Index(0)
	}
	return Value{}, fmt.Errorf("dereference of %s: not a pointer: %w", v.TypeName(), ErrType)
}

// AddressOf returns a pointer constant to the object. Errors wrap ErrType
// for a constant or a bitfield.
func (v Value) AddressOf() (Value, error) {
	if !v.lvalue || v.bitLen > 0 {
		return Value{}, fmt.Errorf("cannot take the address of %s: %w", v, ErrType)
	}
	return v.prog.Pointer(v.typ, v.addr), nil
}

// Pointer returns the constant (T *)addr.
func (p *Program) Pointer(target btf.Type, addr uint64) Value {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, addr)
	return Value{prog: p, typ: &btf.Pointer{Target: target}, data: b}
}

// Constant returns an integer constant of type t (an integer, enum or
// pointer type), truncated to its size.
func (p *Program) Constant(t btf.Type, x uint64) (Value, error) {
	size, _, ok := scalarInfo(t)
	if !ok {
		return Value{}, fmt.Errorf("constant of type %s: not an integer or pointer type: %w", btfload.TypeString(t), ErrType)
	}
	b := make([]byte, max(size, 8))
	binary.LittleEndian.PutUint64(b, x)
	return Value{prog: p, typ: t, data: b[:size]}, nil
}

// ValueOf returns a value of type t made of b, not in memory: its
// members are read from b (a struct copied out of the kernel, as a map
// lookup returns it).
func (p *Program) ValueOf(t btf.Type, b []byte) Value {
	return Value{prog: p, typ: t, data: b}
}

// Index returns element i of an array, or of the array a pointer points
// to (C's p[i]). Arrays are bounds-checked, except those of length 0
// (flexible arrays). Errors wrap ErrType or ErrNotFound (out of bounds).
func (v Value) Index(i int64) (Value, error) {
	switch u := v.underlying().(type) {
	case *btf.Array:
		if u.Nelems > 0 && (i < 0 || i >= int64(u.Nelems)) {
			return Value{}, fmt.Errorf("index %d out of bounds of %s: %w", i, v.TypeName(), ErrNotFound)
		}
		sz, err := btf.Sizeof(u.Type)
		if err != nil {
			return Value{}, fmt.Errorf("index %s: %v: %w", v.TypeName(), err, ErrType)
		}
		if !v.lvalue {
			start := i * int64(sz)
			if start < 0 || start+int64(sz) > int64(len(v.data)) {
				return Value{}, fmt.Errorf("index %d of constant %s: %w", i, v.TypeName(), ErrNotFound)
			}
			return Value{prog: v.prog, typ: u.Type, data: v.data[start : start+int64(sz)]}, nil
		}
		return Value{prog: v.prog, typ: u.Type, addr: v.addr + uint64(i*int64(sz)), lvalue: true, percpu: v.percpu}, nil
	case *btf.Pointer:
		sz, err := btf.Sizeof(u.Target)
		if err != nil {
			return Value{}, fmt.Errorf("index %s: element size unknown: %w", v.TypeName(), ErrType)
		}
		base, err := v.Uint()
		if err != nil {
			return Value{}, err
		}
		if base == 0 {
			return Value{}, fmt.Errorf("index of NULL %s: %w", v.TypeName(), ErrCorrupt)
		}
		return v.prog.Object(u.Target, base+uint64(i*int64(sz))), nil
	}
	return Value{}, fmt.Errorf("index %s: not an array or pointer: %w", v.TypeName(), ErrType)
}

// Len returns the number of elements of an array type.
func (v Value) Len() (int, error) {
	a, ok := v.underlying().(*btf.Array)
	if !ok {
		return 0, fmt.Errorf("%s is not an array: %w", v.TypeName(), ErrType)
	}
	return int(a.Nelems), nil
}

// Cast converts v to the named type (see CastTo).
func (v Value) Cast(typeName string) (Value, error) {
	t, err := v.prog.Type(typeName)
	if err != nil {
		return Value{}, err
	}
	return v.CastTo(t)
}

// CastTo converts v to type t. Integers, enums and pointers convert to
// one another as in C; an object of another type is reinterpreted at its
// address (like drgn's reinterpret). Errors wrap ErrType.
func (v Value) CastTo(t btf.Type) (Value, error) {
	_, _, toScalar := scalarInfo(t)
	_, _, fromScalar := scalarInfo(v.typ)
	if toScalar && fromScalar {
		x, err := v.Uint()
		if err != nil {
			return Value{}, err
		}
		return v.prog.Constant(t, x)
	}
	if toScalar {
		if a, ok := v.underlying().(*btf.Array); ok && v.lvalue {
			// An array decays to a pointer to its first element.
			_ = a
			if _, isPtr := btfload.Underlying(t).(*btf.Pointer); isPtr {
				return v.prog.Constant(t, v.addr)
			}
		}
	}
	if !v.lvalue {
		return Value{}, fmt.Errorf("cast of %s to %s: %w", v, btfload.TypeString(t), ErrType)
	}
	w := v
	w.typ, w.bitLen, w.bitOff = t, 0, 0
	return w, nil
}

// Addr is the address of an object (0 for a constant): Address without
// its ok.
func (v Value) Addr() uint64 { return v.addr }
