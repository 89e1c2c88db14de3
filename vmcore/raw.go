package vmcore

// Wire layouts, as the producers write them. Everything here is
// little-endian x86-64 except the flattened-format headers, which
// makedumpfile writes big-endian. Model types live in dump.go, cpu.go and
// vmcoreinfo.go.

// Kdump-compressed ("diskdump") format: makedumpfile's diskdump_mod.h.

const (
	kdumpSignature = "KDUMP   " // disk_dump_header.signature
	diskdumpSig    = "DISKDUMP" // the older diskdump facility; same layout

	// disk_dump_header.status and page_desc.flags.
	dumpCompressedZlib   = 0x1  // DUMP_DH_COMPRESSED_ZLIB
	dumpCompressedLZO    = 0x2  // DUMP_DH_COMPRESSED_LZO
	dumpCompressedSnappy = 0x4  // DUMP_DH_COMPRESSED_SNAPPY
	dumpIncomplete       = 0x8  // DUMP_DH_COMPRESSED_INCOMPLETE
	dumpExcludedVmemmap  = 0x10 // DUMP_DH_EXCLUDED_VMEMMAP
	dumpCompressedZstd   = 0x20 // DUMP_DH_COMPRESSED_ZSTD
	dumpCompressionMask  = dumpCompressedZlib | dumpCompressedLZO | dumpCompressedSnappy | dumpCompressedZstd

	rawDiskDumpHeaderSize = 464 // sizeof(struct disk_dump_header) on x86-64
	rawSubHeaderSize      = 104 // sizeof(struct kdump_sub_header), version 6
	rawPageDescSize       = 24  // sizeof(struct page_desc)
)

// rawNewUtsname is struct new_utsname.
type rawNewUtsname struct {
	Sysname    [65]byte
	Nodename   [65]byte
	Release    [65]byte
	Version    [65]byte
	Machine    [65]byte
	Domainname [65]byte
}

// rawDiskDumpHeader is struct disk_dump_header (block 0 of the file).
type rawDiskDumpHeader struct {
	Signature     [8]byte // "KDUMP   "
	HeaderVersion int32   // dump header version
	Utsname       rawNewUtsname
	_             [6]byte // padding to align the timeval
	TimestampSec  int64   // struct timeval timestamp
	TimestampUsec int64   //
	Status        uint32  // DUMP_DH_* flags
	BlockSize     int32   // size of a block in bytes (the page size)
	SubHdrSize    int32   // size of the arch-dependent header in blocks
	BitmapBlocks  uint32  // size of the two memory bitmaps, in blocks
	MaxMapnr      uint32  // OBSOLETE: 32-bit only, full 64 bit in the sub header
	TotalRAM      uint32  // total_ram_blocks: number of blocks that should be written
	DeviceBlocks  uint32  // number of blocks in the dump device
	WrittenBlocks uint32  // number of written blocks
	CurrentCPU    uint32  // CPU that handled the dump
	NrCPUs        int32   // number of CPUs
	// struct task_struct *tasks[0] follows, never used.
}

// rawKdumpSubHeader is struct kdump_sub_header (block 1), version 6.
type rawKdumpSubHeader struct {
	PhysBase         uint64 // phys_base
	DumpLevel        int32  // header_version 1 and later
	Split            int32  // header_version 2 and later
	StartPFN         uint64 // header_version 2 and later, OBSOLETE (32 bit)
	EndPFN           uint64 // header_version 2 and later, OBSOLETE (32 bit)
	OffsetVmcoreinfo int64  // header_version 3 and later
	SizeVmcoreinfo   uint64 // header_version 3 and later
	OffsetNote       int64  // header_version 4 and later
	SizeNote         uint64 // header_version 4 and later
	OffsetEraseinfo  int64  // header_version 5 and later
	SizeEraseinfo    uint64 // header_version 5 and later
	StartPFN64       uint64 // header_version 6 and later
	EndPFN64         uint64 // header_version 6 and later
	MaxMapnr64       uint64 // header_version 6 and later
}

// rawPageDesc is struct page_desc: one per dumped page, in pfn order,
// after the bitmaps.
//
//	off_t              offset;     the offset of the page data
//	unsigned int       size;       the size of this dump page
//	unsigned int       flags;      DUMP_DH_COMPRESSED_*
//	unsigned long long page_flags; page flags (unused)

// Flattened format: makedumpfile.h.

const (
	flatSignature  = "makedumpfile" // makedumpfile_header.signature, NUL-padded to 16
	flatHeaderSize = 4096           // MAX_SIZE_MDF_HEADER
	flatTypeFlat   = 1              // TYPE_FLAT_HEADER
	flatVersion    = 1              // VERSION_FLAT_HEADER
	flatEndFlag    = -1             // END_FLAG_FLAT_HEADER, in both fields of the last record
	flatRecordSize = 16             // sizeof(struct makedumpfile_data_header)
)

// rawFlatHeader is struct makedumpfile_header, big-endian, at offset 0.
type rawFlatHeader struct {
	Signature [16]byte // "makedumpfile"
	Type      int64    // TYPE_FLAT_HEADER
	Version   int64    // VERSION_FLAT_HEADER
}

// struct makedumpfile_data_header, big-endian, flatRecordSize bytes: it
// precedes buf_size bytes that belong at offset of the rearranged file
// (decoded field by field in flat.go, once per record).
//
//	int64_t offset;
//	int64_t buf_size;

// ELF notes.

const (
	ntPrstatus = 1 // NT_PRSTATUS, name "CORE"

	// struct elf_prstatus on x86-64.
	prstatusSize   = 336
	prstatusPIDOff = 32  // pid_t pr_pid
	prstatusRegOff = 112 // elf_gregset_t pr_reg
	prstatusNRegs  = 27  // struct user_regs_struct, 8 bytes each

	// QEMU's "QEMU" note (type 0): struct QEMUCPUState, target/i386/arch_dump.c.
	qemuCPUStateMinSize = 432 // up to and including cr[5]
	qemuCPUStateKGSOff  = 432 // kernel_gs_base, present when size says so
)

// rawQEMUCPUSegment is QEMUCPUSegment.
type rawQEMUCPUSegment struct {
	Selector uint32
	Limit    uint32
	Flags    uint32
	Pad      uint32
	Base     uint64
}

// rawQEMUCPUState is QEMUCPUState.
type rawQEMUCPUState struct {
	Version                      uint32
	Size                         uint32
	RAX, RBX, RCX, RDX, RSI, RDI uint64
	RSP, RBP                     uint64
	R8, R9, R10, R11             uint64
	R12, R13, R14, R15           uint64
	RIP, RFlags                  uint64
	CS, DS, ES, FS, GS, SS       rawQEMUCPUSegment
	LDT, TR, GDT, IDT            rawQEMUCPUSegment
	CR                           [5]uint64
	// uint64_t kernel_gs_base follows when Size says so (QEMU 6.0+).
}

// LiME: src/lime.h of LiME (504ensicsLabs/LiME), lime_mem_range_header.
// A capture in LiME's "lime" format is a sequence of ranges of physical
// memory, each this header followed by e_addr - s_addr + 1 bytes of
// memory. AVML (microsoft/avml) writes the same layout; its version-2
// headers (magic "AVML") mark ranges whose bytes are compressed (avml.go).

const (
	limeMagic      = 0x4C694D45 // LIME_MAGIC: "EMiL" in the file
	limeVersion    = 1          // the only version LiME writes
	avmlMagic      = 0x4C4D5641 // AVML_MAGIC (src/image.rs): "AVML" in the file
	avmlVersion    = 2          // AVML's compressed ranges
	limeHeaderSize = 32         // sizeof(lime_mem_range_header), packed
)

// rawLiMEHeader is lime_mem_range_header (packed, little-endian).
type rawLiMEHeader struct {
	Magic    uint32  // LIME_MAGIC, or AVML_MAGIC for version 2
	Version  uint32  // 1 (LiME, AVML uncompressed) or 2 (AVML, snappy)
	SAddr    uint64  // first physical address of the range
	EAddr    uint64  // last physical address of the range (inclusive)
	Reserved [8]byte // zero
}

// Snappy's framing format (google/snappy framing_format.txt), which
// AVML's version-2 ranges use (snap::write::FrameEncoder): chunks of a
// type byte and a 3-byte little-endian length, then the body.
const (
	snappyChunkHeader       = 4
	snappyStreamID          = 0xff // body "sNaPpY", first in a stream
	snappyChunkCompressed   = 0x00 // masked CRC-32C (4 bytes), snappy block
	snappyChunkUncompressed = 0x01 // masked CRC-32C (4 bytes), raw bytes
	snappyChunkPadding      = 0xfe
	snappySkippableMin      = 0x80 // 0x80..0xfd: reserved, skippable
	snappyUnskippableMax    = 0x7f // 0x02..0x7f: reserved, unskippable
	snappyChecksumSize      = 4
	snappyMaxChunkData      = 65536 // uncompressed bytes of one chunk, at most
	snappyStreamMagic       = "sNaPpY"
	avmlTrailerSize         = 8 // u64: the byte length of the range's stream
)
