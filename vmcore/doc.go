// Package vmcore reads kernel memory from a crash dump or a live kernel:
// ELF cores, kdump-compressed files (normal and flattened), LiME and AVML
// captures, /proc/kcore, with VMCOREINFO, per-CPU registers and x86-64
// address translation.
//
// Open (or OpenLive for /proc/kcore) reads headers only; memory is read on
// demand:
//
//	d, err := vmcore.Open("vmcore")       // ELF, kdump, flattened kdump, LiME, AVML
//	d.VMCOREINFO().OSRelease                // "6.1.0-56-amd64"
//	d.CPUs()[0].Regs.RIP                     // from NT_PRSTATUS
//	d.ReadPhys(buf, paddr)                   // physical memory
//	k, err := d.Kernel()                     // the kernel's address space
//	k.ReadVirt(buf, vaddr)                   // virtual memory, any page size
//	k.Translate(vaddr)                       // virtual to physical
//
// Sources: QEMU's dump-guest-memory ELF and kdump files (flattened),
// makedumpfile's kdump files (zlib, lzo, snappy, zstd or uncompressed
// pages; filtered with -d) in both layouts and its ELF output (-E), copies
// of /proc/vmcore, /proc/kcore, and forensic captures: LiME's "lime"
// format (a 32-byte header per range of physical memory, then its bytes;
// lime.go) and AVML's, whose version-2 ranges are snappy framed streams
// (avml.go). Decompression is pure Go (klauspost/compress;
// github.com/anchore/go-lzo for LZO1X).
//
// Dumps without VMCOREINFO. QEMU without -device vmcoreinfo (virsh dump,
// most VM platforms) and the forensic captures carry no VMCOREINFO note;
// the kernel's own copy, the page vmcoreinfo_data, is then looked for in
// memory on first need (VMCOREINFO, VMCOREINFOSource, Kernel): every page
// start of the dump's ranges, the first page that parses, is zero-padded,
// and whose page tables map its page-table root and _stext where its
// phys_base says (and agree with QEMU's CR3, if any) wins (findinfo.go).
// About 0.15 s per GiB scanned from the OS's page cache on an ELF dump;
// the kernel's page is often in the first few dozen MiB. Failing that, a
// QEMU dump's CR3 gives the page tables, and the lowest mapped page of the
// kernel text mapping gives the KASLR offset and phys_base (Problems
// says so).
//
// Errors. Every error wraps at most one sentinel:
//
//   - ErrFormat: the file is damaged or not a dump; a *FormatError names
//     the byte offset (the logical offset for flattened files).
//   - ErrPageExcluded: the page exists but the dump left it out (makedumpfile
//     -d); never read as zeros. An *AddrError names the virtual address, the
//     physical address and the page frame.
//   - ErrNotInDump: no range of the dump holds the physical address.
//   - ErrNotPresent: the page tables do not map the virtual address.
//   - ErrNotSupported: e.g. no page-table root, an unknown compression.
//
// Memory errors are *AddrError values (errors.As) wrapping one of the
// sentinels above.
//
// Performance: kdump bitmaps are read on the first page access and
// indexed with a rank table (4 bytes per 512 pages); descriptors and pages
// are read per access; decompressed pages are kept in a CLOCK cache of
// WithCachePages pages (default DefaultCachePages). Opening a flattened
// file scans its record headers, O(records), to index it without
// rewriting it. Translations are cached per page size (4K, 2M, 1G).
package vmcore
