package objects

import (
	"encoding/binary"
	"math"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// field is a piece of an object's bytes with its type: what the
// formatters walk once an object has been read in one go.
type field struct {
	t      btf.Type
	b      []byte // from the field's first byte
	bitOff uint32
	bitLen uint32
}

// uint decodes a scalar field, sign-extending signed ones.
func (f field) uint() (uint64, bool) {
	size, signed, ok := scalarInfo(f.t)
	if !ok {
		return 0, false
	}
	size = min(size, 8)
	var buf [16]byte
	n := size
	if f.bitLen > 0 {
		n = int((f.bitOff + f.bitLen + 7) / 8)
	}
	if n > len(f.b) {
		return 0, false
	}
	copy(buf[:], f.b[:n])
	x := binary.LittleEndian.Uint64(buf[:8])
	width := uint32(size * 8)
	if f.bitLen > 0 {
		if f.bitOff > 0 {
			x = x>>f.bitOff | binary.LittleEndian.Uint64(buf[8:])<<(64-f.bitOff)
		}
		width = f.bitLen
	}
	if width < 64 {
		x &= 1<<width - 1
		if signed && x&(1<<(width-1)) != 0 {
			x |= ^uint64(0) << width
		}
	}
	return x, true
}

// float decodes a float field.
func (f field) float() (float64, bool) {
	fl, ok := btfload.Underlying(f.t).(*btf.Float)
	if !ok || int(fl.Size) > len(f.b) {
		return 0, false
	}
	switch fl.Size {
	case 4:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(f.b))), true
	case 8:
		return math.Float64frombits(binary.LittleEndian.Uint64(f.b)), true
	}
	return 0, false
}

// members returns the fields of a struct or union field.
func (f field) members() ([]btf.Member, bool) {
	switch u := btfload.Underlying(f.t).(type) {
	case *btf.Struct:
		return u.Members, true
	case *btf.Union:
		return u.Members, true
	}
	return nil, false
}

func (f field) member(m btf.Member) field {
	off := uint32(m.Offset)
	start := int(off / 8)
	if start > len(f.b) {
		start = len(f.b)
	}
	g := field{t: m.Type, b: f.b[start:]}
	if m.BitfieldSize > 0 {
		g.bitOff, g.bitLen = off%8, uint32(m.BitfieldSize)
	}
	return g
}

// EnumName names an enum value, or "" if the enum does not.
func EnumName(t btf.Type, x uint64) string {
	e, ok := btfload.Underlying(t).(*btf.Enum)
	if !ok {
		return ""
	}
	for _, ev := range e.Values {
		if ev.Value == x || e.Size < 8 && ev.Value&(1<<(8*e.Size)-1) == x&(1<<(8*e.Size)-1) {
			return ev.Name
		}
	}
	return ""
}
