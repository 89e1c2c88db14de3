package orc

import "encoding/binary"

// The wire layouts of struct orc_entry (arch/x86/include/asm/orc_types.h).
// Every version is 6 bytes, packed, little-endian:
//
//	s16 sp_offset;   // CFA (the caller's stack pointer) = sp_reg + sp_offset
//	s16 bp_offset;   // the caller's BP is saved at bp_reg + bp_offset
//	u16 bits;        // sp_reg:4 bp_reg:4, then per version:
//
//	v4.14..v6.2  type:2 end:1            (FormatEnd)
//	v6.3         type:2 signal:1 end:1   (FormatSignal)
//	v6.4+        type:3 signal:1         (FormatTypes)
//
// The .orc_unwind_ip table beside it holds one s32 per entry: the
// instruction address relative to the s32's own address. Both tables are
// sorted by address at boot (unwind_init, unwind_module_init), so memory
// holds them sorted. orc_lookup (vmlinux only) holds, per 256-byte block
// of _stext.._etext, the index of the first entry covering the block.
const (
	rawEntrySize  = 6
	rawIPSize     = 4
	lookupBlock   = 1 << 8 // LOOKUP_BLOCK_SIZE, arch/x86/include/asm/orc_lookup.h
	rawLookupSize = 4
)

// ORC_REG_* (orc_types.h; the same values in every version).
const (
	rawRegUndefined  = 0
	rawRegPrevSP     = 1
	rawRegDX         = 2
	rawRegDI         = 3
	rawRegBP         = 4
	rawRegSP         = 5
	rawRegR10        = 6
	rawRegR13        = 7
	rawRegBPIndirect = 8
	rawRegSPIndirect = 9
)

// Entry types before v6.4 (UNWIND_HINT_TYPE_*, where CALL was 0).
const (
	rawTypeV1Call        = 0
	rawTypeV1Regs        = 1
	rawTypeV1RegsPartial = 2 // ORC_TYPE_REGS_IRET before v4.19
)

// Entry types since v6.4 (fb799447ae29 "x86,objtool: Split
// UNWIND_HINT_EMPTY in two").
const (
	rawTypeUndefined   = 0
	rawTypeEndOfStack  = 1
	rawTypeCall        = 2
	rawTypeRegs        = 3
	rawTypeRegsPartial = 4
)

// bitField is a field of the 16-bit word after the offsets: its first bit
// (counted from bit 0 of that word) and width; width 0 when absent.
type bitField struct{ shift, width uint8 }

func (f bitField) get(w uint16) uint16 {
	if f.width == 0 {
		return 0
	}
	return w >> f.shift & (1<<f.width - 1)
}

// rawEntry is one undecoded entry.
type rawEntry struct {
	spOffset, bpOffset int16
	bits               uint16
}

func readRawEntry(b []byte) rawEntry {
	return rawEntry{
		spOffset: int16(binary.LittleEndian.Uint16(b)),
		bpOffset: int16(binary.LittleEndian.Uint16(b[2:])),
		bits:     binary.LittleEndian.Uint16(b[4:]),
	}
}
