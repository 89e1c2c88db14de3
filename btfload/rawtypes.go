package btfload

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Wire layout of BTF (include/uapi/linux/btf.h), decoded as written —
// type ids and name offsets kept — for bpftool's raw "btf dump".

// RawBTF is BTF decoded as written: every type with its id, name and
// kind-specific fields, for dumping the way bpftool does.
type RawBTF struct {
	// StartID is the first type id (1, or the base's count for split BTF).
	StartID uint32
	Types   []RawBTFType
	strs    []byte
	base    *RawBTF
}

// RawBTFType is one struct btf_type and what follows it.
type RawBTFType struct {
	ID       uint32
	Kind     uint8
	NameOff  uint32
	Name     string
	KindFlag bool
	Vlen     uint16
	// SizeOrType is the size (int, struct, union, enum, datasec, float)
	// or the referred type id (the others); for a FUNC_PROTO the return
	// type.
	SizeOrType uint32
	// INT: encoding, bit offset, bits.
	IntEncoding uint8
	IntOffset   uint8
	IntBits     uint8
	// ARRAY.
	ArrayType, ArrayIndexType, ArrayNelems uint32
	// STRUCT, UNION members; FUNC_PROTO parameters (no offsets).
	Members []RawBTFMember
	// ENUM, ENUM64 values.
	Values []RawBTFEnumValue
	// VAR linkage; DECL_TAG component index.
	Linkage      uint32
	ComponentIdx int32
	// DATASEC variables.
	Vars []RawBTFVarSecinfo
}

// RawBTFMember is a member or a parameter.
type RawBTFMember struct {
	NameOff      uint32
	Name         string
	Type         uint32
	BitOffset    uint32
	BitfieldSize uint32
}

// RawBTFEnumValue is an enumerator: Val holds the 32 or 64 bits.
type RawBTFEnumValue struct {
	NameOff uint32
	Name    string
	Val     uint64
}

// RawBTFVarSecinfo is struct btf_var_secinfo.
type RawBTFVarSecinfo struct{ Type, Offset, Size uint32 }

// KindName is the kind as bpftool prints it ("STRUCT").
func (t *RawBTFType) KindName() string {
	if int(t.Kind) < len(btfKindNames) {
		return btfKindNames[t.Kind]
	}
	return "UNKNOWN"
}

// maxRawTypes bounds the types one BTF blob may declare.
const maxRawTypes = 1 << 22

// ParseRawBTF decodes raw BTF; base is the BTF a split BTF (a module's)
// builds on, nil otherwise. Errors name the byte offset and wrap
// ErrFormat.
func ParseRawBTF(raw []byte, base *RawBTF) (*RawBTF, error) {
	var h btfHeader
	if len(raw) < 24 {
		return nil, fmt.Errorf("btf: %d bytes, shorter than a header: %w", len(raw), ErrFormat)
	}
	if err := binary.Read(bytes.NewReader(raw[:24]), binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("btf header: %v: %w", err, ErrFormat)
	}
	if h.Magic != 0xeb9f {
		return nil, fmt.Errorf("btf: magic %#x at offset 0, want 0xeb9f: %w", h.Magic, ErrFormat)
	}
	if h.HdrLen < 24 || uint64(h.HdrLen) > uint64(len(raw)) {
		return nil, fmt.Errorf("btf: header length %d of %d bytes: %w", h.HdrLen, len(raw), ErrFormat)
	}
	body := raw[h.HdrLen:]
	if uint64(h.TypeOff)+uint64(h.TypeLen) > uint64(len(body)) || uint64(h.StrOff)+uint64(h.StrLen) > uint64(len(body)) {
		return nil, fmt.Errorf("btf: types at %d+%d, strings at %d+%d past the end (%d bytes after the header): %w",
			h.TypeOff, h.TypeLen, h.StrOff, h.StrLen, len(body), ErrFormat)
	}
	b := &RawBTF{StartID: 1, strs: body[h.StrOff : h.StrOff+h.StrLen], base: base}
	if base != nil {
		b.StartID = base.StartID + uint32(len(base.Types))
	}
	ts := body[h.TypeOff : h.TypeOff+h.TypeLen]
	le := binary.LittleEndian
	for off := 0; off < len(ts); {
		at := int(h.HdrLen) + int(h.TypeOff) + off
		if len(ts)-off < 12 {
			return nil, fmt.Errorf("btf: type %d at offset %d: truncated: %w", int(b.StartID)+len(b.Types), at, ErrFormat)
		}
		if len(b.Types) >= maxRawTypes {
			return nil, fmt.Errorf("btf: more than %d types: %w", maxRawTypes, ErrFormat)
		}
		info := le.Uint32(ts[off+4:])
		t := RawBTFType{ID: b.StartID + uint32(len(b.Types)), NameOff: le.Uint32(ts[off:]), Kind: uint8(info >> 24 & 0x1f),
			KindFlag: info>>31 != 0, Vlen: uint16(info), SizeOrType: le.Uint32(ts[off+8:])}
		t.Name = b.Str(t.NameOff)
		off += 12
		vlen := int(t.Vlen)
		need := 0
		switch t.Kind {
		case BTFKindInt, BTFKindVar, BTFKindDeclTag:
			need = 4
		case BTFKindArray:
			need = 12
		case BTFKindStruct, BTFKindUnion, BTFKindDatasec, BTFKindEnum64:
			need = 12 * vlen
		case BTFKindEnum, BTFKindFuncProto:
			need = 8 * vlen
		case BTFKindPtr, BTFKindFwd, BTFKindTypedef, BTFKindVolatile, BTFKindConst, BTFKindRestrict, BTFKindFunc,
			BTFKindFloat, BTFKindTypeTag:
		default:
			return nil, fmt.Errorf("btf: type %d at offset %d: unknown kind %d: %w", t.ID, at, t.Kind, ErrFormat)
		}
		if len(ts)-off < need {
			return nil, fmt.Errorf("btf: type %d (%s) at offset %d: %d bytes of data past the end: %w", t.ID, t.KindName(), at, need, ErrFormat)
		}
		d := ts[off : off+need]
		switch t.Kind {
		case BTFKindInt:
			v := le.Uint32(d)
			t.IntEncoding, t.IntOffset, t.IntBits = uint8(v>>24&0xf), uint8(v>>16), uint8(v)
		case BTFKindVar:
			t.Linkage = le.Uint32(d)
		case BTFKindDeclTag:
			t.ComponentIdx = int32(le.Uint32(d))
		case BTFKindArray:
			t.ArrayType, t.ArrayIndexType, t.ArrayNelems = le.Uint32(d), le.Uint32(d[4:]), le.Uint32(d[8:])
		case BTFKindStruct, BTFKindUnion:
			t.Members = make([]RawBTFMember, vlen)
			for i := range t.Members {
				m := d[12*i:]
				mb := RawBTFMember{NameOff: le.Uint32(m), Type: le.Uint32(m[4:]), BitOffset: le.Uint32(m[8:])}
				if t.KindFlag {
					mb.BitfieldSize, mb.BitOffset = mb.BitOffset>>24, mb.BitOffset&0xffffff
				}
				mb.Name = b.Str(mb.NameOff)
				t.Members[i] = mb
			}
		case BTFKindFuncProto:
			t.Members = make([]RawBTFMember, vlen)
			for i := range t.Members {
				m := d[8*i:]
				t.Members[i] = RawBTFMember{NameOff: le.Uint32(m), Type: le.Uint32(m[4:])}
				t.Members[i].Name = b.Str(t.Members[i].NameOff)
			}
		case BTFKindEnum:
			t.Values = make([]RawBTFEnumValue, vlen)
			for i := range t.Values {
				m := d[8*i:]
				t.Values[i] = RawBTFEnumValue{NameOff: le.Uint32(m), Val: uint64(le.Uint32(m[4:]))}
				t.Values[i].Name = b.Str(t.Values[i].NameOff)
			}
		case BTFKindEnum64:
			t.Values = make([]RawBTFEnumValue, vlen)
			for i := range t.Values {
				m := d[12*i:]
				t.Values[i] = RawBTFEnumValue{NameOff: le.Uint32(m), Val: uint64(le.Uint32(m[4:])) | uint64(le.Uint32(m[8:]))<<32}
				t.Values[i].Name = b.Str(t.Values[i].NameOff)
			}
		case BTFKindDatasec:
			t.Vars = make([]RawBTFVarSecinfo, vlen)
			for i := range t.Vars {
				m := d[12*i:]
				t.Vars[i] = RawBTFVarSecinfo{Type: le.Uint32(m), Offset: le.Uint32(m[4:]), Size: le.Uint32(m[8:])}
			}
		}
		off += need
		b.Types = append(b.Types, t)
	}
	return b, nil
}

// Str returns the string at a name offset (of the base for a split
// BTF's offsets below the base's string section), "" for 0 or an offset
// out of range.
func (b *RawBTF) Str(off uint32) string {
	if b.base != nil {
		if n := uint32(len(b.base.allStrs())); off < n {
			return b.base.Str(off)
		} else {
			off -= n
		}
	}
	if off >= uint32(len(b.strs)) {
		return ""
	}
	s := b.strs[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// allStrs is the string section of the whole chain up to b.
func (b *RawBTF) allStrs() []byte { return b.strs }

// StrOK says whether a name offset points into a string section.
func (b *RawBTF) StrOK(off uint32) bool {
	if b.base != nil {
		n := uint32(len(b.base.strs))
		if off < n {
			return b.base.StrOK(off)
		}
		off -= n
	}
	return off < uint32(len(b.strs))
}

// TypeByID returns type id of b or of its base, nil if there is none
// (0 is void).
func (b *RawBTF) TypeByID(id uint32) *RawBTFType {
	if id < b.StartID {
		if b.base != nil {
			return b.base.TypeByID(id)
		}
		return nil
	}
	if i := id - b.StartID; i < uint32(len(b.Types)) {
		return &b.Types[i]
	}
	return nil
}
