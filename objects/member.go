package objects

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

type memberKey struct {
	t    btf.Type
	name string
}

// MemberInfo locates a member in its struct or union: its bit offset
// (from the start of the outermost struct, through anonymous members),
// its bitfield width (0 when not a bitfield) and its type.
type MemberInfo struct {
	BitOff uint32
	BitLen uint32
	Type   btf.Type
}

// FindMember looks name up in a struct or union, anonymous members
// included, caching the answer.
func (p *Program) FindMember(t btf.Type, name string) (MemberInfo, error) {
	k := memberKey{t, name}
	p.mu.RLock()
	mi, ok := p.members[k]
	p.mu.RUnlock()
	if ok {
		return mi, nil
	}
	var ms []btf.Member
	switch u := t.(type) {
	case *btf.Struct:
		ms = u.Members
	case *btf.Union:
		ms = u.Members
	default:
		return MemberInfo{}, fmt.Errorf("member %s of %s: not a struct or union: %w", name, btfload.TypeString(t), ErrType)
	}
	mi, ok = lookupMember(ms, name, 0)
	if !ok {
		return MemberInfo{}, fmt.Errorf("no member named %s in %s%s: %w", name, btfload.TypeString(t),
			btfload.SuggestSuffix(btfload.Closest(name, btfload.MemberNames(ms), 5)), ErrNotFound)
	}
	p.mu.Lock()
	p.members[k] = mi
	p.mu.Unlock()
	return mi, nil
}

func lookupMember(ms []btf.Member, name string, base uint32) (MemberInfo, bool) {
	for _, m := range ms {
		if m.Name == name {
			return MemberInfo{BitOff: base + uint32(m.Offset), BitLen: uint32(m.BitfieldSize), Type: m.Type}, true
		}
	}
	for _, m := range ms {
		if m.Name != "" {
			continue
		}
		var sub []btf.Member
		switch u := btfload.Underlying(m.Type).(type) {
		case *btf.Struct:
			sub = u.Members
		case *btf.Union:
			sub = u.Members
		}
		if mi, ok := lookupMember(sub, name, base+uint32(m.Offset)); ok {
			return mi, true
		}
	}
	return MemberInfo{}, false
}

// Member returns member name of a struct or union, or of the struct a
// pointer points to (C's -> and . alike, as drgn's member_). Members of
// anonymous structs and unions are found by their own names. Errors wrap
// ErrNotFound (with close names), ErrType or ErrCorrupt (NULL pointer).
func (v Value) Member(name string) (Value, error) {
	obj := v
	if _, ok := v.underlying().(*btf.Pointer); ok {
		d, err := v.Deref()
		if err != nil {
			return Value{}, fmt.Errorf("%s->%s: %w", v.TypeName(), name, err)
		}
		obj = d
	}
	t := obj.underlying()
	mi, err := obj.prog.FindMember(t, name)
	if err != nil {
		return Value{}, err
	}
	if !obj.lvalue {
		if mi.BitLen > 0 || int(mi.BitOff/8) >= len(obj.data) {
			return Value{}, fmt.Errorf("member %s of a constant %s: %w", name, obj.TypeName(), ErrType)
		}
		sz, _ := btf.Sizeof(mi.Type)
		end := min(int(mi.BitOff/8)+sz, len(obj.data))
		return Value{prog: v.prog, typ: mi.Type, data: obj.data[mi.BitOff/8 : end]}, nil
	}
	w := Value{prog: v.prog, typ: mi.Type, lvalue: true, percpu: obj.percpu}
	if mi.BitLen > 0 {
		w.addr = obj.addr + uint64(mi.BitOff/8)
		w.bitOff = mi.BitOff % 8
		w.bitLen = mi.BitLen
	} else {
		w.addr = obj.addr + uint64(mi.BitOff/8)
	}
	return w, nil
}

// MemberUint reads the integer (or pointer, enum, bitfield) at member
// path of v, an object or a pointer to one: v.Path(path), then Uint.
func (v Value) MemberUint(path string) (uint64, error) {
	m, err := v.Path(path)
	if err != nil {
		return 0, err
	}
	return m.Uint()
}

// MemberInt is MemberUint for a signed integer.
func (v Value) MemberInt(path string) (int64, error) {
	m, err := v.Path(path)
	if err != nil {
		return 0, err
	}
	return m.Int()
}

// UintAt reads the integer at member path of the object of the named
// type at addr, as MemberUint. A NULL addr is ErrCorrupt.
func (p *Program) UintAt(typeName string, addr uint64, path string) (uint64, error) {
	if addr == 0 {
		return 0, fmt.Errorf("NULL %s: %w", typeName, ErrCorrupt)
	}
	obj, err := p.ObjectOf(typeName, addr)
	if err != nil {
		return 0, err
	}
	return obj.MemberUint(path)
}

// field locates the member in b, the bytes of the struct holding it.
func (mi MemberInfo) field(b []byte) (field, bool) {
	start := int(mi.BitOff / 8)
	if start > len(b) {
		return field{}, false
	}
	g := field{t: mi.Type, b: b[start:]}
	if mi.BitLen > 0 {
		g.bitOff, g.bitLen = mi.BitOff%8, mi.BitLen
	}
	return g, true
}

// Uint decodes the member as an integer from b, the bytes of the struct
// holding it (0 when b is too short or the member is not an integer).
func (mi MemberInfo) Uint(b []byte) uint64 {
	f, ok := mi.field(b)
	if !ok {
		return 0
	}
	x, _ := f.uint()
	return x
}

// MemberOffset returns the byte offset of a member path ("a.b[2].c") in
// the named struct, as offsetof does. Errors wrap ErrNotFound or ErrType.
func (p *Program) MemberOffset(typeName, path string) (uint64, btf.Type, error) {
	t, err := p.Type(typeName)
	if err != nil {
		return 0, nil, err
	}
	v, err := p.Object(t, 0).Path(path)
	if err != nil {
		return 0, nil, err
	}
	if v.bitLen > 0 {
		return 0, nil, fmt.Errorf("offsetof(%s, %s): a bitfield: %w", typeName, path, ErrType)
	}
	return v.addr, v.typ, nil
}

// Path follows a member path: names joined by "." or "->", with array
// subscripts: "aux->name", "thread.sp", "pids[1].node", "[3]". Errors
// name the step that failed.
func (v Value) Path(path string) (Value, error) {
	steps, err := parsePath(path)
	if err != nil {
		return Value{}, err
	}
	cur := v
	done := ""
	for _, s := range steps {
		if s.index {
			cur, err = cur.Index(s.i)
			done += fmt.Sprintf("[%d]", s.i)
		} else {
			if s.arrow {
				if _, ok := cur.underlying().(*btf.Pointer); !ok {
					return Value{}, fmt.Errorf("%s%s->%s: %s is not a pointer (use .): %w", done, "", s.name, cur.TypeName(), ErrType)
				}
			}
			cur, err = cur.Member(s.name)
			sep := "."
			if s.arrow {
				sep = "->"
			}
			if done == "" {
				sep = ""
			}
			done += sep + s.name
		}
		if err != nil {
			if done == "" {
				return Value{}, err
			}
			return Value{}, fmt.Errorf("%s: %w", done, err)
		}
	}
	return cur, nil
}

type pathStep struct {
	name  string
	arrow bool
	index bool
	i     int64
}

func parsePath(path string) ([]pathStep, error) {
	var steps []pathStep
	s := strings.TrimSpace(path)
	first := true
	for s != "" {
		arrow := false
		switch {
		case strings.HasPrefix(s, "->"):
			arrow, s = true, s[2:]
		case s[0] == '.':
			s = s[1:]
		case s[0] == '[':
			j := strings.IndexByte(s, ']')
			if j < 0 {
				return nil, fmt.Errorf("path %q: missing ]: %w", path, btfload.ErrFormat)
			}
			n, err := strconv.ParseInt(strings.TrimSpace(s[1:j]), 0, 64)
			if err != nil {
				return nil, fmt.Errorf("path %q: index %q: %w", path, s[1:j], btfload.ErrFormat)
			}
			steps = append(steps, pathStep{index: true, i: n})
			s = s[j+1:]
			first = false
			continue
		default:
			if !first {
				return nil, fmt.Errorf("path %q: unexpected %q: %w", path, s, btfload.ErrFormat)
			}
		}
		s = strings.TrimLeft(s, " ")
		j := 0
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == 0 {
			return nil, fmt.Errorf("path %q: expected a member name at %q: %w", path, s, btfload.ErrFormat)
		}
		steps = append(steps, pathStep{name: s[:j], arrow: arrow})
		s = strings.TrimLeft(s[j:], " ")
		first = false
	}
	return steps, nil
}

// ContainerOf returns the object of the named type that contains, as its
// member path member, the object ptr points to (or the object ptr is):
// the kernel's container_of, returning the containing object rather than
// a pointer to it.
func ContainerOf(ptr Value, typeName, member string) (Value, error) {
	p := ptr.prog
	var addr uint64
	if _, ok := ptr.underlying().(*btf.Pointer); ok {
		a, err := ptr.Uint()
		if err != nil {
			return Value{}, err
		}
		addr = a
	} else if ptr.lvalue {
		addr = ptr.addr
	} else {
		return Value{}, fmt.Errorf("container_of(%s): not a pointer or object: %w", ptr, ErrType)
	}
	off, _, err := p.MemberOffset(typeName, member)
	if err != nil {
		return Value{}, err
	}
	t, _ := p.Type(typeName)
	if addr == 0 {
		return Value{}, fmt.Errorf("container_of(NULL, %s, %s): %w", typeName, member, ErrCorrupt)
	}
	return p.Object(t, addr-off), nil
}
