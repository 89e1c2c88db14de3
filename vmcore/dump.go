package vmcore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Format is the container of a dump.
type Format int

const (
	FormatELF       Format = iota + 1 // ELF core (QEMU, makedumpfile -E, /proc/vmcore)
	FormatKdump                       // kdump-compressed, normal layout
	FormatKdumpFlat                   // kdump-compressed, flattened (makedumpfile -F, QEMU kdump-*)
	FormatKcore                       // /proc/kcore of the running kernel
	FormatLiME                        // LiME's "lime" format: range headers and raw memory
	FormatAVML                        // AVML's: LiME's layout with snappy-compressed ranges
)

// String gives the names the lab's manifest uses for layouts.
func (f Format) String() string {
	switch f {
	case FormatELF:
		return "elf"
	case FormatKdump:
		return "kdump"
	case FormatKdumpFlat:
		return "kdump-flat"
	case FormatKcore:
		return "kcore"
	case FormatLiME:
		return "lime"
	case FormatAVML:
		return "avml"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// Range is a range of physical memory.
type Range struct {
	Start, Size uint64
}

// End is the first address past the range.
func (r Range) End() uint64 { return r.Start + r.Size }

// PhysReader reads physical memory. Errors wrap an *AddrError naming the
// first address that failed.
type PhysReader interface {
	ReadPhys(p []byte, paddr uint64) (int, error)
}

// Option configures Open.
type Option func(*options)

type options struct {
	cachePages int
}

// WithCachePages sets the size of the decompressed-page cache of kdump
// files, in pages (default DefaultCachePages; 0 disables it).
func WithCachePages(n int) Option { return func(o *options) { o.cachePages = n } }

// Dump is an open dump file or live kernel. Its methods are safe for
// concurrent use.
type Dump struct {
	path     string
	f        *os.File
	format   Format
	pageSize int

	elf  *elfFile
	kd   *kdumpFile
	flat *flatFile
	lime *limeFile

	info      *VMCoreInfo
	infoSrc   string // where info came from (VMCOREINFOSource)
	cpus      []CPU
	eraseinfo string
	problems  []error

	// A dump without VMCOREINFO is searched for the kernel's own copy in
	// memory on first need (findinfo.go).
	findOnce sync.Once
	needFind bool
	derived  *derivedKernel // from the page tables when no copy is found

	kernelOnce sync.Once
	kernel     *KernelAS
	kernelErr  error
}

// Open opens a dump read-only: an ELF core, a kdump-compressed file in
// either layout, or a LiME or AVML capture. It reads headers, notes and
// VMCOREINFO only (a flattened file's record headers, a capture's range
// headers and AVML's chunk headers too); memory is read on demand. A dump
// without a VMCOREINFO note has its kernel's VMCOREINFO looked for in its
// memory on first need (see VMCOREINFOSource).
//
// Errors wrap ErrFormat (with a *FormatError naming the offset),
// ErrNotSupported, or the error of opening the file.
func Open(path string, opts ...Option) (*Dump, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open dump: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open dump: %w", err)
	}
	d, err := newDump(f, st.Size(), opts...)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open dump %s: %w", path, err)
	}
	d.path, d.f = path, f
	return d, nil
}

// newDump reads the dump in r, of size bytes.
func newDump(r io.ReaderAt, size int64, opts ...Option) (d *Dump, err error) {
	o := options{cachePages: DefaultCachePages}
	for _, opt := range opts {
		opt(&o)
	}
	defer func() {
		// The parsers check every size and offset; this is the last line
		// of defence against a panic on hostile input.
		if r := recover(); r != nil {
			d, err = nil, formatErr("dump", 0, "parser panic: %v", r)
		}
	}()
	var magic [16]byte
	if n, _ := r.ReadAt(magic[:], 0); n < len(magic) {
		return nil, formatErr("dump", 0, "file of %d bytes is too short for any dump header", size)
	}
	d = &Dump{pageSize: 4096}
	var noteBytes []note
	var vmcoreinfo []byte
	var viOff int64
	switch {
	case isELF(magic[:]):
		ef, err := openELF(r, size, 4096)
		if err != nil {
			return nil, err
		}
		d.elf, d.format = ef, FormatELF
		if isKcoreLayout(ef) {
			d.format = FormatKcore
		}
		noteBytes = ef.notes
	case isFlattened(magic[:]):
		ff, err := openFlat(r, size)
		if err != nil {
			return nil, err
		}
		k, err := openKdump(ff, ff.size, ff.data, o.cachePages)
		if err != nil {
			return nil, err
		}
		d.flat, d.kd, d.format = ff, k, FormatKdumpFlat
	case isKdump(magic[:]):
		k, err := openKdump(r, size, size, o.cachePages)
		if err != nil {
			return nil, err
		}
		d.kd, d.format = k, FormatKdump
	case isLiME(magic[:]):
		lf, err := openLiME(r, size, o.cachePages)
		if err != nil {
			return nil, err
		}
		d.lime, d.format = lf, FormatLiME
		if lf.avml {
			d.format = FormatAVML
		}
	default:
		return nil, formatErr("dump", 0, "unknown magic %q: not an ELF core, a kdump-compressed file or a LiME or AVML capture", magic[:8])
	}
	if d.kd != nil {
		d.pageSize = d.kd.pageSize
		if len(d.kd.notes) > 0 {
			ns, err := parseNotes(d.kd.notes, d.kd.notesOff)
			if err != nil {
				d.problems = append(d.problems, err)
			}
			noteBytes = ns
		}
		vmcoreinfo = d.kd.vmcoreinfo
		viOff = d.kd.sub.OffsetVmcoreinfo
	}
	ni, err := decodeNotes(noteBytes)
	if err != nil {
		d.problems = append(d.problems, err)
	}
	d.cpus = ni.cpus
	d.eraseinfo = string(ni.eraseinfo)
	if d.kd != nil && d.kd.eraseinfo != nil {
		d.eraseinfo = string(d.kd.eraseinfo)
	}
	src := "kdump sub-header"
	if vmcoreinfo == nil {
		vmcoreinfo, viOff = ni.vmcoreinfo, ni.vmcoreinfoOff
		src = "ELF note"
	}
	if vmcoreinfo != nil {
		vi, err := ParseVMCOREINFO(vmcoreinfo)
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				fe.Offset += viOff
			}
			d.problems = append(d.problems, err)
		} else {
			d.info, d.infoSrc = vi, src
			d.setPageSize(vi)
		}
	}
	// /proc/kcore has had the note since 4.19; older ones are not searched.
	d.needFind = d.info == nil && d.format != FormatKcore
	return d, nil
}

// setPageSize takes an ELF core's page size from VMCOREINFO.
func (d *Dump) setPageSize(vi *VMCoreInfo) {
	if ps := vi.PageSize; ps >= 512 && ps <= maxPageSize && ps&(ps-1) == 0 && d.elf != nil {
		d.pageSize = vi.PageSize
		d.elf.pageSize = uint64(vi.PageSize)
	}
}

// EraseInfo is what makedumpfile erased from the dump (its --config
// eraseinfo: "erase SYMBOL[.MEMBER] size N" lines), "" when nothing was.
func (d *Dump) EraseInfo() string { return d.eraseinfo }

// Close releases the file.
func (d *Dump) Close() error {
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// Path is the file the dump was opened from.
func (d *Dump) Path() string { return d.path }

// Format is the container format.
func (d *Dump) Format() Format { return d.format }

// Compression is the page compression a kdump file declares in its header
// (individual pages may still be stored raw), CompressSnappy for AVML's
// compressed captures; CompressNone for ELF and LiME.
func (d *Dump) Compression() Compression {
	switch {
	case d.kd != nil:
		return d.kd.compression
	case d.lime != nil && d.lime.avml:
		return CompressSnappy
	}
	return CompressNone
}

// DumpLevel is makedumpfile's -d level recorded in a kdump file, or -1.
// (QEMU writes 1 although it excludes nothing: zero pages share one copy.)
func (d *Dump) DumpLevel() int {
	if d.kd != nil && d.kd.hasSub {
		return int(d.kd.sub.DumpLevel)
	}
	return -1
}

// FlatRecords is the number of data records of a flattened file.
func (d *Dump) FlatRecords() int {
	if d.flat != nil {
		return d.flat.records
	}
	return 0
}

// PageSize is the kernel's page size.
func (d *Dump) PageSize() int { return d.pageSize }

// VMCOREINFO returns the parsed VMCOREINFO: the dump's own (a note, or
// the kdump sub-header's copy), or, when it has none (QEMU without
// -device vmcoreinfo, LiME and AVML captures), the kernel's own buffer
// found in its memory on the first call. It is nil when neither exists or
// the dump's did not parse (see Problems).
func (d *Dump) VMCOREINFO() *VMCoreInfo {
	d.findInfo()
	return d.info
}

// VMCOREINFOSource says where VMCOREINFO came from: "ELF note", "kdump
// sub-header", "found in memory at phys 0x...", or "" when there is none.
func (d *Dump) VMCOREINFOSource() string {
	d.findInfo()
	return d.infoSrc
}

// CPUs returns the saved CPU states, in CPU order.
func (d *Dump) CPUs() []CPU { return d.cpus }

// Problems lists what was wrong but not fatal: a damaged note area or
// VMCOREINFO, or a VMCOREINFO that could be found neither in the dump nor
// in its memory.
func (d *Dump) Problems() []error {
	d.findInfo()
	return d.problems
}

// Release is the kernel release: VMCOREINFO's OSRELEASE, else the kdump
// header's utsname (empty in QEMU's kdump files).
func (d *Dump) Release() string {
	d.findInfo()
	if d.info != nil && d.info.OSRelease != "" {
		return d.info.OSRelease
	}
	if d.kd != nil {
		return d.kd.release()
	}
	return ""
}

// CrashTime is when the kernel crashed, where the dump says:
// VMCOREINFO's CRASHTIME (kexec crash dumps) or the kdump header's
// timestamp. The second result is false when neither is set (QEMU dumps).
func (d *Dump) CrashTime() (time.Time, bool) {
	d.findInfo()
	if d.info != nil && !d.info.CrashTime.IsZero() {
		return d.info.CrashTime, true
	}
	if d.kd != nil {
		if t := d.kd.timestamp(); !t.IsZero() {
			return t, true
		}
	}
	return time.Time{}, false
}

// Ranges lists the physical memory the dump describes (including pages it
// excluded). Errors wrap ErrFormat.
func (d *Dump) Ranges() ([]Range, error) {
	switch {
	case d.kd != nil:
		return d.kd.ranges()
	case d.lime != nil:
		return d.lime.physRanges(), nil
	}
	return d.elf.ranges(), nil
}

// MemorySize is the total size of Ranges.
func (d *Dump) MemorySize() (uint64, error) {
	if d.kd != nil {
		return d.kd.memorySize()
	}
	rs, _ := d.Ranges()
	var n uint64
	for _, r := range rs {
		n += r.Size
	}
	return n, nil
}

// ReadPhys reads physical memory at paddr. A short read returns an error
// wrapping an *AddrError for the first byte not read, itself wrapping
// ErrPageExcluded, ErrNotInDump or ErrFormat (a damaged page).
func (d *Dump) ReadPhys(p []byte, paddr uint64) (int, error) {
	switch {
	case d.kd != nil:
		return d.kd.readPhys(p, paddr)
	case d.lime != nil:
		return d.lime.readPhys(p, paddr)
	}
	return d.elf.readPhys(p, paddr)
}

// AnyPageDumped says whether the file holds any of the page frames
// [lo, hi), so that a walk over every page frame (struct pages, say) can
// skip what no read could return. ok is false where the format does not
// say (ELF, LiME: ask by reading).
func (d *Dump) AnyPageDumped(lo, hi uint64) (any, ok bool) {
	if d.kd != nil {
		return d.kd.anyDumped(lo, hi)
	}
	return false, false
}

// DropCaches empties the page cache (for measuring cold reads).
func (d *Dump) DropCaches() {
	if d.kd != nil {
		d.kd.cache.reset()
	}
	if d.lime != nil && d.lime.cache != nil {
		d.lime.cache.reset()
	}
	if d.kernel != nil {
		d.kernel.tlb.reset()
	}
}
