package kallsyms

import "encoding/binary"

// Wire layouts of the tables scripts/kallsyms writes into vmlinux
// (.rodata), read from kernel memory. Little-endian, as on x86-64. The
// decoded model is the image (image.go).
//
//	kallsyms_num_syms      unsigned int (a .quad PTR before 4.20 — its low
//	                       half reads the same on little-endian)
//	kallsyms_names         per symbol: a length, then that many token
//	                       codes; the expansion's first char is the type
//	                       ("include the type field in the symbol name, so
//	                       that it gets compressed together"). Length:
//	                       one byte; since 6.1 (commit 73bbb94466fd,
//	                       "kallsyms: support "big" kernel symbols") a
//	                       byte with the high bit set is followed by a
//	                       second: len = (b0 & 0x7f) | b1<<7 (ULEB128).
//	kallsyms_token_table   256 NUL-terminated strings
//	kallsyms_token_index   u16[256]: offset of each code's token
//	kallsyms_addresses     unsigned long[num_syms]: absolute addresses
//	                       (!CONFIG_KALLSYMS_BASE_RELATIVE; removed in 6.11)
//	kallsyms_offsets       int[num_syms] (4.6+, CONFIG_KALLSYMS_BASE_RELATIVE):
//	                       relative_base + (u32)off; or, with
//	                       CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP,
//	                       4.6 to 6.14), off >= 0 is an absolute per-CPU
//	                       offset and off < 0 is relative_base - 1 - off;
//	                       or, once kallsyms_relative_base is gone
//	                       ("kallsyms: Get rid of kallsyms relative base",
//	                       2026), place-relative: &offsets[i] + off.
//	kallsyms_relative_base unsigned long
//	kallsyms_markers       u32 per 256 symbols: offset of symbol 256*i in
//	                       kallsyms_names (unsigned long before 4.20)
//	kallsyms_seqs_of_names 6.2+ (commit 60443c88f3a8): the symbol indices
//	                       in name order, 3 bytes big-endian each (4-byte
//	                       u32 in the first 6.2 release candidates).
const (
	tokenCount      = 256
	tokenIndexSize  = tokenCount * 2
	maxTokenLen     = 256 // a token is a name fragment; names are < 512
	offsetSize      = 4
	addressSize     = 8
	markerSpan      = 256
	markerSize      = 4
	seqSize         = 3
	seqSizeOld      = 4
	bigLengthFlag   = 0x80
	bigLengthMask   = 0x7f
	bigLengthShift  = 7
	kernelNameLen   = 512 // KSYM_NAME_LEN since 6.1 (128 before)
	maxCompressed   = 0x3fff
	maxExpandedName = 2 * kernelNameLen
)

// Sanity limits, checked before allocating from values read from memory.
const (
	// maxSyms bounds kallsyms_num_syms: a distribution kernel has about
	// 150,000 symbols, allyesconfig about a million.
	maxSyms = 1 << 22
	// maxNamesBytes bounds kallsyms_names (about 2 MiB on a distribution
	// kernel) and maxExpandedBytes the decoded names.
	maxNamesBytes    = 1 << 27
	maxExpandedBytes = 1 << 28
	// initialCap bounds what is allocated from kallsyms_num_syms before
	// the tables prove that long; beyond, slices grow as symbols decode.
	initialCap = 1 << 18
	// readChunk is how much is read from memory at a time.
	readChunk = 64 << 10
)

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// nameLength decodes the length prefix of a kallsyms_names entry at the
// start of b: the length and the prefix's size, or ok false when b is too
// short.
func nameLength(b []byte) (n, prefix int, ok bool) {
	if len(b) < 1 {
		return 0, 0, false
	}
	if b[0]&bigLengthFlag == 0 {
		return int(b[0]), 1, true
	}
	if len(b) < 2 {
		return 0, 0, false
	}
	return int(b[0]&bigLengthMask) | int(b[1])<<bigLengthShift, 2, true
}

// seqAt decodes entry i of kallsyms_seqs_of_names of the given width.
func seqAt(b []byte, i, width int) uint32 {
	p := b[i*width:]
	if width == seqSizeOld {
		return le32(p)
	}
	return uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2])
}
