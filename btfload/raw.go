package btfload

// Wire layout of BTF, from include/uapi/linux/btf.h. Only what the name
// index needs: cilium/ebpf/btf decodes types themselves.

// btfMagic is btf_header.magic.
const btfMagic = 0xeb9f

// btfHeader is struct btf_header.
type btfHeader struct {
	Magic   uint16 // 0xeB9F
	Version uint8
	Flags   uint8
	HdrLen  uint32 // sizeof(struct btf_header) as written
	TypeOff uint32 // offset of the type section, relative to the end of the header
	TypeLen uint32
	StrOff  uint32 // offset of the string section, relative to the end of the header
	StrLen  uint32
}

// btfHeaderSize is the size of the version-1 header.
const btfHeaderSize = 24

// btfType is struct btf_type: name_off, info (vlen bits 0-15, kind bits
// 24-28, kind_flag bit 31) and size or type.
type btfType struct {
	NameOff    uint32
	Info       uint32
	SizeOrType uint32
}

func (t btfType) kind() uint8  { return uint8(t.Info >> 24 & 0x1f) }
func (t btfType) vlen() uint32 { return t.Info & 0xffff }

// BTF_KIND_* values.
const (
	kindUnknown  = 0
	kindInt      = 1
	kindPtr      = 2
	kindArray    = 3
	kindStruct   = 4
	kindUnion    = 5
	kindEnum     = 6
	kindFwd      = 7
	kindTypedef  = 8
	kindVolatile = 9
	kindConst    = 10
	kindRestrict = 11
	kindFunc     = 12
	kindFuncProt = 13
	kindVar      = 14
	kindDatasec  = 15
	kindFloat    = 16
	kindDeclTag  = 17
	kindTypeTag  = 18
	kindEnum64   = 19
)

// extraLen returns how many bytes follow a btf_type of the kind, or -1 for
// an unknown kind.
func (t btfType) extraLen() int {
	switch t.kind() {
	case kindInt, kindVar, kindDeclTag:
		return 4 // btf_int encoding, struct btf_var, struct btf_decl_tag
	case kindArray:
		return 12 // struct btf_array
	case kindStruct, kindUnion:
		return 12 * int(t.vlen()) // struct btf_member
	case kindEnum:
		return 8 * int(t.vlen()) // struct btf_enum
	case kindEnum64:
		return 12 * int(t.vlen()) // struct btf_enum64
	case kindFuncProt:
		return 8 * int(t.vlen()) // struct btf_param
	case kindDatasec:
		return 12 * int(t.vlen()) // struct btf_var_secinfo
	case kindPtr, kindFwd, kindTypedef, kindVolatile, kindConst, kindRestrict, kindFunc, kindFloat, kindTypeTag:
		return 0
	}
	return -1
}
