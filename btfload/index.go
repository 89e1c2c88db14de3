package btfload

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// nameIndex lists the kind and name of every type of one BTF blob,
// without decoding the types: 8 bytes a type, built on first need (name
// suggestions, listing).
type nameIndex struct {
	hdr     btfHeader
	strs    []byte // this blob's string section
	base    *nameIndex
	entries []indexEntry
}

type indexEntry struct {
	nameOff uint32
	kind    uint8
}

// parseIndex indexes raw BTF. base is the index of the base BTF for split
// BTF (whose string offsets continue the base's). Errors wrap ErrFormat
// and name the byte offset.
func parseIndex(raw []byte, base *nameIndex) (*nameIndex, error) {
	hdr, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	body := raw[hdr.HdrLen:]
	types := body[hdr.TypeOff : hdr.TypeOff+hdr.TypeLen]
	ix := &nameIndex{hdr: hdr, strs: body[hdr.StrOff : hdr.StrOff+hdr.StrLen], base: base}
	for off := 0; off < len(types); {
		if len(types)-off < 12 {
			return nil, fmt.Errorf("btf: type at offset %#x: truncated header: %w", int(hdr.HdrLen+hdr.TypeOff)+off, ErrFormat)
		}
		t := btfType{
			NameOff:    binary.LittleEndian.Uint32(types[off:]),
			Info:       binary.LittleEndian.Uint32(types[off+4:]),
			SizeOrType: binary.LittleEndian.Uint32(types[off+8:]),
		}
		n := t.extraLen()
		if n < 0 {
			return nil, fmt.Errorf("btf: type at offset %#x: unknown kind %d: %w", int(hdr.HdrLen+hdr.TypeOff)+off, t.kind(), ErrFormat)
		}
		if 12+n > len(types)-off {
			return nil, fmt.Errorf("btf: type at offset %#x: %d bytes of kind data run past the type section: %w", int(hdr.HdrLen+hdr.TypeOff)+off, n, ErrFormat)
		}
		ix.entries = append(ix.entries, indexEntry{nameOff: t.NameOff, kind: t.kind()})
		off += 12 + n
	}
	return ix, nil
}

// parseHeader reads and checks struct btf_header against the blob's size.
func parseHeader(raw []byte) (btfHeader, error) {
	var h btfHeader
	if len(raw) < btfHeaderSize {
		return h, fmt.Errorf("btf: %d bytes, shorter than a header: %w", len(raw), ErrFormat)
	}
	le := binary.LittleEndian
	h = btfHeader{
		Magic: le.Uint16(raw), Version: raw[2], Flags: raw[3], HdrLen: le.Uint32(raw[4:]),
		TypeOff: le.Uint32(raw[8:]), TypeLen: le.Uint32(raw[12:]), StrOff: le.Uint32(raw[16:]), StrLen: le.Uint32(raw[20:]),
	}
	if h.Magic != btfMagic {
		return h, fmt.Errorf("btf: magic %#04x at offset 0, want %#04x (big-endian BTF is not supported): %w", h.Magic, btfMagic, ErrFormat)
	}
	if h.HdrLen < btfHeaderSize || uint64(h.HdrLen) > uint64(len(raw)) {
		return h, fmt.Errorf("btf: header length %d at offset 4 outside 24..%d: %w", h.HdrLen, len(raw), ErrFormat)
	}
	body := uint64(len(raw)) - uint64(h.HdrLen)
	if uint64(h.TypeOff)+uint64(h.TypeLen) > body {
		return h, fmt.Errorf("btf: type section %#x+%#x (offset 8) past the end (%#x bytes): %w", h.TypeOff, h.TypeLen, body, ErrFormat)
	}
	if uint64(h.StrOff)+uint64(h.StrLen) > body {
		return h, fmt.Errorf("btf: string section %#x+%#x (offset 16) past the end (%#x bytes): %w", h.StrOff, h.StrLen, body, ErrFormat)
	}
	return h, nil
}

// name returns the string at off, split BTF continuing its base's table.
func (ix *nameIndex) name(off uint32) string {
	strs := ix.strs
	if ix.base != nil {
		if off < uint32(len(ix.base.strs)) {
			strs = ix.base.strs
		} else {
			off -= uint32(len(ix.base.strs))
		}
	}
	if off >= uint32(len(strs)) {
		return ""
	}
	s := strs[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// names calls f with every named type's C spelling ("struct x", "u64").
func (ix *nameIndex) names(f func(kind uint8, name string)) {
	for _, e := range ix.entries {
		if e.nameOff == 0 {
			continue
		}
		f(e.kind, ix.name(e.nameOff))
	}
}
