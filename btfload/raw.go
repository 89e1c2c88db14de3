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

// BTF_KIND_* names as bpftool prints them.
var btfKindNames = [...]string{"UNKNOWN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF",
	"VOLATILE", "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64"}

// BTF kinds.
const (
	BTFKindInt       = 1
	BTFKindPtr       = 2
	BTFKindArray     = 3
	BTFKindStruct    = 4
	BTFKindUnion     = 5
	BTFKindEnum      = 6
	BTFKindFwd       = 7
	BTFKindTypedef   = 8
	BTFKindVolatile  = 9
	BTFKindConst     = 10
	BTFKindRestrict  = 11
	BTFKindFunc      = 12
	BTFKindFuncProto = 13
	BTFKindVar       = 14
	BTFKindDatasec   = 15
	BTFKindFloat     = 16
	BTFKindDeclTag   = 17
	BTFKindTypeTag   = 18
	BTFKindEnum64    = 19
)

// extraLen returns how many bytes follow a btf_type of the kind, or -1 for
// an unknown kind.
func (t btfType) extraLen() int {
	switch t.kind() {
	case BTFKindInt, BTFKindVar, BTFKindDeclTag:
		return 4 // btf_int encoding, struct btf_var, struct btf_decl_tag
	case BTFKindArray:
		return 12 // struct btf_array
	case BTFKindStruct, BTFKindUnion:
		return 12 * int(t.vlen()) // struct btf_member
	case BTFKindEnum:
		return 8 * int(t.vlen()) // struct btf_enum
	case BTFKindEnum64:
		return 12 * int(t.vlen()) // struct btf_enum64
	case BTFKindFuncProto:
		return 8 * int(t.vlen()) // struct btf_param
	case BTFKindDatasec:
		return 12 * int(t.vlen()) // struct btf_var_secinfo
	case BTFKindPtr, BTFKindFwd, BTFKindTypedef, BTFKindVolatile, BTFKindConst, BTFKindRestrict, BTFKindFunc, BTFKindFloat, BTFKindTypeTag:
		return 0
	}
	return -1
}
