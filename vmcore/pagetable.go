package vmcore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// x86-64 address-space constants (arch/x86/include/asm/page_64_types.h,
// pgtable_64_types.h).
const (
	startKernelMap = 0xffffffff80000000 // __START_KERNEL_map
	kernelImageMax = 1 << 30            // KERNEL_IMAGE_SIZE with KASLR
	startKernel    = 0xffffffff81000000 // __START_KERNEL: map + CONFIG_PHYSICAL_START (Debian: 16 MiB)

	pageOffsetL4 = 0xffff888000000000 // __PAGE_OFFSET_BASE_L4, the lowest direct-map base
	pageOffsetL5 = 0xff11000000000000 // __PAGE_OFFSET_BASE_L5

	pteAddrMask = 0x000ffffffffff000 // PTE_PFN_MASK with 52 physical address bits
	ptePresent  = 1 << 0             // _PAGE_PRESENT
	ptePSE      = 1 << 7             // _PAGE_PSE: a 1G (PUD) or 2M (PMD) leaf
	pteProtNone = 1 << 8             // _PAGE_PROTNONE (= _PAGE_GLOBAL): present to the kernel
	cr3AddrMask = 0x000ffffffffff000 // CR3 without PCID and flags
)

// KernelAS is the kernel's virtual address space in a dump: translation by
// walking the x86-64 page tables (4 or 5 levels, 1 GiB and 2 MiB pages)
// from swapper_pg_dir, with a small translation cache. It is safe for
// concurrent use.
type KernelAS struct {
	d       *Dump
	mem     PhysReader
	root    uint64 // physical address of the top-level table
	levels  int    // 4 or 5
	smeMask uint64

	// RootSource says where root came from: "VMCOREINFO" or "QEMU CR3".
	RootSource string

	info        *VMCoreInfo // the dump's, or the one being checked
	physBase    uint64
	hasPhysBase bool
	kaslr       uint64
	hasKASLR    bool

	tlb tlb

	pageOffsetOnce sync.Once
	pageOffset     uint64
	pageOffsetErr  error
}

// AnyPageDumped is the dump's AnyPageDumped: whether any page frame of
// [lo, hi) is in the dump, ok false where the format does not say.
func (a *KernelAS) AnyPageDumped(lo, hi uint64) (any, ok bool) {
	return a.d.AnyPageDumped(lo, hi)
}

// Kernel returns the kernel address space of the dump, built on first use.
// Errors wrap ErrNotSupported (no page-table root: neither VMCOREINFO nor
// QEMU CPU notes) or the error of reading the root.
func (d *Dump) Kernel() (*KernelAS, error) {
	d.kernelOnce.Do(func() { d.kernel, d.kernelErr = NewKernelAS(d) })
	return d.kernel, d.kernelErr
}

// NewKernelAS builds the kernel address space of d. The page-table root is
// SYMBOL(init_top_pgt) (or swapper_pg_dir) of VMCOREINFO — a run-time,
// KASLR-relocated address of kernel data, so its physical address is
// vaddr - __START_KERNEL_map + NUMBER(phys_base) — and failing that the
// CR3 of CPU 0 from QEMU's CPU notes (of the CPU whose tables map the
// kernel text when the dump has no VMCOREINFO at all). The number of
// levels is NUMBER(pgtable_l5_enabled), else CR4.LA57, else 4.
//
// Errors wrap ErrNotSupported.
func NewKernelAS(d *Dump) (*KernelAS, error) {
	d.findInfo()
	return newKernelAS(d, d.info, d.derived)
}

// newKernelAS builds the address space of d described by vi and, without
// a root in vi, dk or QEMU's CR3.
func newKernelAS(d *Dump, vi *VMCoreInfo, dk *derivedKernel) (*KernelAS, error) {
	as := &KernelAS{d: d, mem: d, levels: 4, info: vi}
	if l5, ok := vi.Number("pgtable_l5_enabled"); ok {
		if l5 != 0 {
			as.levels = 5
		}
	} else if q := d.firstQEMU(); q != nil && q.CR[4]&cr4LA57 != 0 {
		as.levels = 5
	}
	if sme, ok := vi.Number("sme_mask"); ok {
		as.smeMask = uint64(sme)
	}
	if pb, ok := vi.Number("phys_base"); ok {
		as.physBase, as.hasPhysBase = uint64(pb), true
	}
	if vi != nil && vi.HasKernelOffset {
		as.kaslr, as.hasKASLR = vi.KernelOffset, true
	}
	sym, ok := vi.Symbol("init_top_pgt")
	if !ok {
		sym, ok = vi.Symbol("swapper_pg_dir")
	}
	switch {
	case ok && as.hasPhysBase && sym >= startKernelMap && sym-startKernelMap < kernelImageMax:
		as.root = sym - startKernelMap + as.physBase
		as.RootSource = "VMCOREINFO"
	case vi == nil && dk != nil:
		as.root, as.levels = dk.root, dk.levels
		as.kaslr, as.hasKASLR = dk.kaslr, true
		as.physBase, as.hasPhysBase = dk.physBase, true
		as.RootSource = "QEMU CR3"
	case d.firstQEMU() != nil && d.firstQEMU().CR[3]&cr3AddrMask != 0:
		as.root = d.firstQEMU().CR[3] & cr3AddrMask
		as.RootSource = "QEMU CR3"
	default:
		return nil, fmt.Errorf("kernel address space: no page-table root (no VMCOREINFO with SYMBOL(init_top_pgt) and NUMBER(phys_base), in the dump or its memory, and no QEMU CPU note): %w", ErrNotSupported)
	}
	as.root &^= as.smeMask
	var b [8]byte
	if _, err := as.mem.ReadPhys(b[:], as.root); err != nil {
		return nil, fmt.Errorf("kernel address space: reading page-table root: %w", err)
	}
	return as, nil
}

func (d *Dump) firstQEMU() *QEMUState {
	if len(d.cpus) > 0 {
		return d.cpus[0].QEMU
	}
	return nil
}

// Levels is the number of page-table levels, 4 or 5.
func (as *KernelAS) Levels() int { return as.levels }

// Root is the physical address of the top-level page table.
func (as *KernelAS) Root() uint64 { return as.root }

// PhysBase is NUMBER(phys_base): where the kernel image was loaded
// physically, relative to where it was linked (without VMCOREINFO, what
// the page tables at QEMU's CR3 say).
func (as *KernelAS) PhysBase() (uint64, bool) { return as.physBase, as.hasPhysBase }

// KASLROffset is VMCOREINFO's KERNELOFFSET, the slide of kernel text;
// without VMCOREINFO, what the page tables at QEMU's CR3 say.
func (as *KernelAS) KASLROffset() (uint64, bool) { return as.kaslr, as.hasKASLR }

// TextStart is the run-time address of the kernel's text, _stext:
// VMCOREINFO's SYMBOL(_stext), else __START_KERNEL plus the KASLR offset
// (x86-64 kernels built with the usual CONFIG_PHYSICAL_START of 16 MiB).
func (as *KernelAS) TextStart() (uint64, bool) {
	if a, ok := as.info.Symbol("_stext"); ok {
		return a, true
	}
	if as.hasKASLR {
		return startKernel + as.kaslr, true
	}
	return 0, false
}

// canonical reports whether vaddr is canonical for the paging mode.
func (as *KernelAS) canonical(vaddr uint64) bool {
	bits := uint(48)
	if as.levels == 5 {
		bits = 57
	}
	top := int64(vaddr) >> (bits - 1)
	return top == 0 || top == -1
}

// Translate returns the physical address of vaddr. Errors wrap an
// *AddrError wrapping ErrNotPresent, or the error of reading a page table
// (ErrPageExcluded, ErrNotInDump, ErrFormat).
func (as *KernelAS) Translate(vaddr uint64) (uint64, error) {
	if p, ok := as.tlb.lookup(vaddr); ok {
		return p, nil
	}
	p, shift, err := as.walk(vaddr)
	if err != nil {
		return 0, err
	}
	as.tlb.insert(vaddr, p, shift)
	return p, nil
}

// walk translates vaddr through the page tables, returning the physical
// address and the page-size shift of the mapping (12, 21 or 30).
func (as *KernelAS) walk(vaddr uint64) (uint64, uint, error) {
	fail := func(err error, paddr uint64, phys bool) (uint64, uint, error) {
		return 0, 0, &AddrError{Op: "translate", Virtual: true, VAddr: vaddr, Physical: phys, PAddr: paddr, PageSize: uint64(as.d.pageSize), Err: err}
	}
	if !as.canonical(vaddr) {
		return fail(fmt.Errorf("non-canonical address: %w", ErrNotPresent), 0, false)
	}
	table := as.root
	var b [8]byte
	names := [...]string{"", "PTE", "PMD", "PUD", "P4D", "PGD"}
	for level := as.levels; level >= 1; level-- {
		shift := uint(12 + 9*(level-1))
		idx := (vaddr >> shift) & 511
		ea := table + idx*8
		if _, err := as.mem.ReadPhys(b[:], ea); err != nil {
			var ae *AddrError
			if errors.As(err, &ae) {
				return fail(fmt.Errorf("reading %s entry: %w", names[level], ae.Err), ea, true)
			}
			return fail(fmt.Errorf("reading %s entry: %w", names[level], err), ea, true)
		}
		e := binary.LittleEndian.Uint64(b[:]) &^ as.smeMask
		present := e&ptePresent != 0
		if level <= 2 && !present && e&pteProtNone != 0 && (level == 1 || e&ptePSE != 0) {
			present = true
		}
		if !present {
			return fail(fmt.Errorf("%s entry %#x at paddr %#x not present: %w", names[level], e, ea, ErrNotPresent), 0, false)
		}
		if level == 1 || ((level == 2 || level == 3) && e&ptePSE != 0) {
			mask := uint64(1)<<shift - 1
			base := e & pteAddrMask &^ mask
			return base | vaddr&mask, shift, nil
		}
		table = e & pteAddrMask
	}
	panic("unreachable")
}

// ReadVirt reads kernel virtual memory, page by page, so reads may cross
// page boundaries and mappings. A short read returns an *AddrError for the
// first byte not read, wrapping ErrNotPresent, ErrPageExcluded,
// ErrNotInDump or ErrFormat.
func (as *KernelAS) ReadVirt(p []byte, vaddr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := vaddr + uint64(n)
		pa, err := as.Translate(a)
		if err != nil {
			return n, err
		}
		// Up to the end of the 4 KiB page (smaller than any mapping).
		m := min(len(p)-n, int(4096-a%4096))
		k, err := as.mem.ReadPhys(p[n:n+m], pa)
		n += k
		if err != nil {
			if as.d.format == FormatKcore && errors.Is(err, ErrNotInDump) {
				k2, err2 := as.d.elf.readVirtSegs(p[n:n+m-k], a+uint64(k))
				n += k2
				if err2 == nil {
					continue
				}
			}
			return n, withVAddr(err, a+uint64(k))
		}
	}
	return n, nil
}

// ReadAt implements io.ReaderAt over the kernel address space: off is the
// virtual address as a two's-complement int64.
func (as *KernelAS) ReadAt(p []byte, off int64) (int, error) {
	return as.ReadVirt(p, uint64(off))
}

// ReadUint64 reads a little-endian 64-bit value at vaddr.
func (as *KernelAS) ReadUint64(vaddr uint64) (uint64, error) {
	var b [8]byte
	if _, err := as.ReadVirt(b[:], vaddr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// PageOffset returns the base of the direct map (page_offset_base),
// randomized by KASLR on most kernels. VMCOREINFO does not carry it on
// x86-64, so it is found in the page tables: the direct map is the lowest
// mapping at or above __PAGE_OFFSET_BASE, it starts on a 1 GiB boundary
// (kernel_randomize_memory aligns regions to PUD_SIZE) and maps physical
// address 0 there. Errors wrap ErrNotPresent when no such mapping exists.
func (as *KernelAS) PageOffset() (uint64, error) {
	as.pageOffsetOnce.Do(func() {
		lo := uint64(pageOffsetL4)
		step := uint64(1) << 30
		if as.levels == 5 {
			lo = pageOffsetL5
		}
		// Walk down at 1 GiB steps, skipping unmapped upper-level
		// entries whole, until the first 1 GiB region whose start maps
		// physical 0. The direct map lies within 64 TiB (L4) / 32 PiB
		// (L5) of the base; stop at the vmalloc area at the latest.
		limit := lo + (64 << 40)
		if as.levels == 5 {
			limit = lo + (32 << 50)
		}
		for a := lo; a < limit; {
			pa, _, err := as.walk(a)
			if err == nil {
				if pa == 0 {
					as.pageOffset = a
					return
				}
				a += step
				continue
			}
			// Skip the whole unmapped region of the level that failed.
			a = as.nextMapped(a, step)
		}
		as.pageOffsetErr = &AddrError{Op: "find direct map", Virtual: true, VAddr: lo, Err: fmt.Errorf("no 1 GiB-aligned mapping of physical 0 above the base: %w", ErrNotPresent)}
	})
	return as.pageOffset, as.pageOffsetErr
}

// nextMapped returns the next step-aligned address after a that might be
// mapped, skipping the span of the highest non-present table entry.
func (as *KernelAS) nextMapped(a, step uint64) uint64 {
	table := as.root
	var b [8]byte
	for level := as.levels; level >= 1; level-- {
		shift := uint(12 + 9*(level-1))
		ea := table + ((a>>shift)&511)*8
		if _, err := as.mem.ReadPhys(b[:], ea); err != nil {
			break
		}
		e := binary.LittleEndian.Uint64(b[:]) &^ as.smeMask
		if e&ptePresent == 0 || level <= 3 {
			span := uint64(1) << shift
			next := (a | (span - 1)) + 1
			return max(next, a+step) &^ (step - 1)
		}
		table = e & pteAddrMask
	}
	return a + step
}

// tlb caches translations at the granularity of their mapping.
type tlb struct {
	mu sync.Mutex
	e  [3][]tlbEntry // 4 KiB, 2 MiB, 1 GiB
}

type tlbEntry struct {
	vpn   uint64 // vaddr >> shift, plus 1 (0 = empty)
	pbase uint64
}

var tlbShifts = [3]uint{12, 21, 30}
var tlbSizes = [3]int{1024, 256, 64}

func (t *tlb) lookup(vaddr uint64) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.e[0] == nil {
		return 0, false
	}
	for i := 2; i >= 0; i-- {
		vpn := vaddr >> tlbShifts[i]
		e := &t.e[i][vpn%uint64(tlbSizes[i])]
		if e.vpn == vpn+1 {
			return e.pbase | vaddr&(1<<tlbShifts[i]-1), true
		}
	}
	return 0, false
}

func (t *tlb) insert(vaddr, paddr uint64, shift uint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.e[0] == nil {
		for i := range t.e {
			t.e[i] = make([]tlbEntry, tlbSizes[i])
		}
	}
	i := 0
	switch shift {
	case 21:
		i = 1
	case 30:
		i = 2
	}
	vpn := vaddr >> shift
	t.e[i][vpn%uint64(tlbSizes[i])] = tlbEntry{vpn: vpn + 1, pbase: paddr &^ (1<<shift - 1)}
}

func (t *tlb) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.e {
		clear(t.e[i])
	}
}
