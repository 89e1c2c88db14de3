package btfload

import (
	"encoding/binary"
	"fmt"
)

// Enumerators returns the value of every enumerator of the BTF's enums,
// named and anonymous (the first of each name), read straight from the
// wire format: a scan of the type section that takes milliseconds where
// decoding every type takes a third of a second. Signed enums' values
// are sign-extended. Errors wrap ErrFormat, naming the byte offset.
func (s *Spec) Enumerators() (map[string]uint64, error) {
	ix, err := s.index()
	if err != nil {
		return nil, err
	}
	raw := s.raw
	hdr := ix.hdr
	types := raw[hdr.HdrLen+hdr.TypeOff : hdr.HdrLen+hdr.TypeOff+hdr.TypeLen]
	out := map[string]uint64{}
	le := binary.LittleEndian
	for off := 0; off+12 <= len(types); {
		t := btfType{NameOff: le.Uint32(types[off:]), Info: le.Uint32(types[off+4:]), SizeOrType: le.Uint32(types[off+8:])}
		n := t.extraLen()
		if n < 0 || 12+n > len(types)-off {
			return nil, fmt.Errorf("btf: type at offset %#x: %w", int(hdr.HdrLen+hdr.TypeOff)+off, ErrFormat)
		}
		signed := t.Info>>31 != 0 // kind_flag
		data := types[off+12 : off+12+n]
		switch t.kind() {
		case BTFKindEnum:
			for i := 0; i+8 <= len(data); i += 8 {
				name := ix.name(le.Uint32(data[i:]))
				v := uint64(le.Uint32(data[i+4:]))
				if signed {
					v = uint64(int64(int32(v)))
				}
				if _, dup := out[name]; !dup && name != "" {
					out[name] = v
				}
			}
		case BTFKindEnum64:
			for i := 0; i+12 <= len(data); i += 12 {
				name := ix.name(le.Uint32(data[i:]))
				v := uint64(le.Uint32(data[i+4:])) | uint64(le.Uint32(data[i+8:]))<<32
				if _, dup := out[name]; !dup && name != "" {
					out[name] = v
				}
			}
		}
		off += 12 + n
	}
	return out, nil
}
