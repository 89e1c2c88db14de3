package btfload

import (
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// DefaultCacheline is x86-64's cacheline size, used by NewLayout.
const DefaultCacheline = 64

// Layout is a struct's or union's layout, pahole-style: every member's
// place, the holes between them, the padding at the end.
type Layout struct {
	// Type is the C name, e.g. "struct bpf_prog".
	Type    string        `json:"type"`
	Size    uint32        `json:"size"`
	Members []MemberPlace `json:"members"`
	// Cacheline is the cacheline size boundaries are computed with.
	Cacheline uint32 `json:"cacheline"`
	// Cachelines is how many cachelines Size spans.
	Cachelines uint32 `json:"cachelines"`
	// LastCacheline is how many bytes the last cacheline holds.
	LastCacheline uint32 `json:"last_cacheline"`
	// SumMembers is the bytes of non-bitfield members.
	SumMembers uint32 `json:"sum_members"`
	// SumBitfields is the bits of bitfield members.
	SumBitfields uint32 `json:"sum_bitfield_bits"`
	Holes        int    `json:"holes"`
	SumHoles     uint32 `json:"sum_holes"`
	BitHoles     int    `json:"bit_holes"`
	SumBitHoles  uint32 `json:"sum_bit_holes"`
	// Padding is the bytes after the last member.
	Padding uint32 `json:"padding"`
}

// MemberPlace is one member of a Layout. Offsets are from the start of
// the outermost struct, also inside anonymous structs and unions.
type MemberPlace struct {
	Name string `json:"name"` // "" for an anonymous struct or union
	Type string `json:"type"`
	// Decl declares the member in C: "u8 digest[32]".
	Decl string `json:"decl"`
	// BitOffset is the member's offset in bits, as BTF has it.
	BitOffset uint32 `json:"bit_offset"`
	// Offset and Size are in bytes; for a bitfield, of its storage unit.
	Offset uint32 `json:"offset"`
	Size   uint32 `json:"size"`
	// BitfieldSize is the bitfield's width, 0 for a plain member;
	// BitfieldOffset its first bit within the storage unit at Offset.
	BitfieldSize   uint32 `json:"bitfield_size,omitempty"`
	BitfieldOffset uint32 `json:"bitfield_offset,omitempty"`
	// Nested lays out an anonymous struct or union member.
	Nested *Layout `json:"nested,omitempty"`
	// CachelineBefore, when non-zero, is the number of the cacheline
	// whose boundary falls at or just before this member.
	CachelineBefore uint32 `json:"cacheline_before,omitempty"`
	// HoleAfter and BitHoleAfter are the unused bytes and bits before the
	// next member (or the end).
	HoleAfter    uint32 `json:"hole_after,omitempty"`
	BitHoleAfter uint32 `json:"bit_hole_after,omitempty"`
}

// NewLayout lays out a struct or union (through typedefs). cacheline 0
// means DefaultCacheline. Errors wrap ErrNotSupported for other types.
func NewLayout(t btf.Type, cacheline uint32) (*Layout, error) {
	if cacheline == 0 {
		cacheline = DefaultCacheline
	}
	var l *Layout
	switch u := Underlying(t).(type) {
	case *btf.Struct:
		l = layout(TypeString(u), u.Members, u.Size, false, 0, cacheline)
	case *btf.Union:
		l = layout(TypeString(u), u.Members, u.Size, true, 0, cacheline)
	default:
		return nil, fmt.Errorf("layout of %s: not a struct or union: %w", TypeString(t), ErrNotSupported)
	}
	l.Cachelines = (l.Size + cacheline - 1) / cacheline
	if l.Size%cacheline != 0 {
		l.LastCacheline = l.Size % cacheline
	} else if l.Size > 0 {
		l.LastCacheline = cacheline
	}
	return l, nil
}

func layout(name string, ms []btf.Member, size uint32, union bool, base uint32, cl uint32) *Layout {
	l := &Layout{Type: name, Size: size, Cacheline: cl}
	endBits := uint32(0)      // end of the previous member, relative
	lastLine := base / 8 / cl // cacheline of the previous member
	for i, m := range ms {
		abs := base + uint32(m.Offset)
		sz, _ := btf.Sizeof(m.Type)
		p := MemberPlace{Name: m.Name, Type: TypeString(m.Type), Decl: cDecl(m.Type, m.Name, plainBase), BitOffset: abs, Size: uint32(sz)}
		if m.BitfieldSize > 0 {
			unit := uint32(max(sz, 1)) * 8
			p.Offset = abs / unit * unit / 8
			p.BitfieldOffset = abs - p.Offset*8
			p.BitfieldSize = uint32(m.BitfieldSize)
			l.SumBitfields += uint32(m.BitfieldSize)
		} else {
			p.Offset = abs / 8
			l.SumMembers += uint32(sz)
		}
		if m.Name == "" {
			switch u := Underlying(m.Type).(type) {
			case *btf.Struct:
				p.Nested = layout(TypeString(u), u.Members, u.Size, false, abs, cl)
			case *btf.Union:
				p.Nested = layout(TypeString(u), u.Members, u.Size, true, abs, cl)
			}
		}
		if line := (abs / 8) / cl; line > lastLine && !union {
			p.CachelineBefore = line
			lastLine = line
		}
		if !union && i > 0 {
			gap := int64(m.Offset) - int64(endBits)
			prev := &l.Members[len(l.Members)-1]
			if gap > 0 {
				if gap >= 8 && prev.BitfieldSize == 0 && m.BitfieldSize == 0 || gap%8 == 0 {
					prev.HoleAfter = uint32(gap / 8)
					l.Holes++
					l.SumHoles += uint32(gap / 8)
				} else {
					prev.BitHoleAfter = uint32(gap)
					l.BitHoles++
					l.SumBitHoles += uint32(gap)
				}
			}
		}
		end := uint32(m.Offset) + uint32(sz)*8
		if m.BitfieldSize > 0 {
			end = uint32(m.Offset) + uint32(m.BitfieldSize)
		}
		if union {
			endBits = max(endBits, end)
		} else {
			endBits = end
		}
		l.Members = append(l.Members, p)
	}
	if bytes := (endBits + 7) / 8; size > bytes {
		l.Padding = size - bytes
	}
	return l
}
