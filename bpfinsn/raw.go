package bpfinsn

import "encoding/binary"

// Wire layouts of include/uapi/linux/bpf.h and include/uapi/linux/btf.h,
// little-endian (x86-64).

// InsnSize is sizeof(struct bpf_insn).
const InsnSize = 8

// rawInsn is struct bpf_insn.
type rawInsn struct {
	Code uint8 // opcode
	Regs uint8 // dst_reg:4 (low nibble), src_reg:4 (high nibble)
	Off  int16 // signed offset
	Imm  int32 // signed immediate constant
}

func decodeRaw(b []byte) rawInsn {
	return rawInsn{Code: b[0], Regs: b[1], Off: int16(binary.LittleEndian.Uint16(b[2:])), Imm: int32(binary.LittleEndian.Uint32(b[4:]))}
}

func (r rawInsn) put(b []byte) {
	b[0], b[1] = r.Code, r.Regs
	binary.LittleEndian.PutUint16(b[2:], uint16(r.Off))
	binary.LittleEndian.PutUint32(b[4:], uint32(r.Imm))
}

// FuncInfoSize is sizeof(struct bpf_func_info): insn_off, type_id (u32 each).
const FuncInfoSize = 8

// LineInfoSize is sizeof(struct bpf_line_info): insn_off, file_name_off,
// line_off, line_col (u32 each; line_col is line << 10 | column).
const LineInfoSize = 16

// btfHeader is struct btf_header.
type btfHeader struct {
	Magic   uint16 // 0xeB9F
	Version uint8
	Flags   uint8
	HdrLen  uint32
	TypeOff uint32 // offsets are from the end of the header
	TypeLen uint32
	StrOff  uint32
	StrLen  uint32
}

const btfMagic = 0xeB9F

// btfHeaderSize is the size of the header fields above.
const btfHeaderSize = 24
