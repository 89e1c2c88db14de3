package vmcore

import (
	"bytes"
	"errors"
	"fmt"
)

// Finding VMCOREINFO in memory. A dump written without the kernel's
// VMCOREINFO note (QEMU's dump-guest-memory without -device vmcoreinfo,
// virsh dump, most VM platforms; LiME and AVML captures) still holds the
// kernel's own copy: vmcoreinfo_data, a zeroed page that
// crash_save_vmcoreinfo_init (kernel/vmcore_info.c, crash_core.c before
// 6.9) fills with the same "KEY=VALUE" lines, OSRELEASE first. (Kernels
// before 4.15 kept it in a static array, not page-aligned; those are not
// found.) The search reads the dump's physical ranges in order, looks at
// the start of every page, and takes the first page that parses as
// VMCOREINFO, is consistent, and whose page-table root translates: its
// own virtual address maps to itself, SYMBOL(_stext) to where KERNELOFFSET
// and phys_base put it, and, where the dump has QEMU's CPU notes, a CPU's
// CR3 agrees. Stale copies (a previous boot's, in freed memory) fail
// those checks.
//
// When no page is found, a QEMU dump's CR3 still gives the page tables:
// the kernel's placement (KASLR offset, phys_base) is then read from the
// kernel-text mapping, whose lowest present 2 MiB page is _text
// (cleanup_highmap unmaps the pages below it).

// vmcoreinfoPrefix starts the kernel's VMCOREINFO text: OSRELEASE is its
// first line.
const vmcoreinfoPrefix = "OSRELEASE="

// scanChunk is how much physical memory the search reads at a time.
const scanChunk = 1 << 20

// derivedKernel is the kernel's placement read from a CPU's page tables.
type derivedKernel struct {
	root     uint64 // physical address of the top-level table
	levels   int
	kaslr    uint64 // KASLR offset: _text - __START_KERNEL
	physBase uint64 // phys_base: phys(_text) - (_text - __START_KERNEL_map)
	cpu      int
}

// findInfo looks for VMCOREINFO in memory once, when the dump has none.
func (d *Dump) findInfo() {
	d.findOnce.Do(func() {
		if !d.needFind {
			return
		}
		vi, phys, scanned, err := d.searchVMCOREINFO()
		if err == nil {
			d.info, d.infoSrc = vi, fmt.Sprintf("found in memory at phys %#x", phys)
			d.setPageSize(vi)
			return
		}
		if dk, derr := d.kernelFromCR3(); derr == nil {
			d.derived = dk
			d.problems = append(d.problems, fmt.Errorf("no VMCOREINFO in the dump, nor in its %d MiB of memory (%v); KASLR offset %#x and phys_base %#x derived from CPU %d's page tables (CR3): %w",
				scanned>>20, err, dk.kaslr, dk.physBase, dk.cpu, ErrNotSupported))
			return
		}
		d.problems = append(d.problems, fmt.Errorf("no VMCOREINFO in the dump, nor in its %d MiB of memory: %w", scanned>>20, err))
	})
}

// searchVMCOREINFO scans the dump's memory for the kernel's VMCOREINFO
// page. It returns the parsed page, its physical address and how many
// bytes were scanned; the error wraps ErrNotSupported and names the first
// candidate page that was rejected, and why.
func (d *Dump) searchVMCOREINFO() (*VMCoreInfo, uint64, uint64, error) {
	var found *VMCoreInfo
	var at uint64
	var rejected error
	scanned, err := d.scanPages(func(pg []byte, pa uint64) bool {
		if !bytes.HasPrefix(pg, []byte(vmcoreinfoPrefix)) {
			return false
		}
		vi, err := parseInfoPage(pg)
		if err == nil {
			err = d.checkInfo(vi, pa)
		}
		if err == nil {
			found, at = vi, pa
			return true
		}
		if rejected == nil {
			rejected = fmt.Errorf("page at phys %#x: %w", pa, err)
		}
		return false
	})
	switch {
	case found != nil:
		return found, at, scanned, nil
	case err != nil:
		return nil, 0, scanned, fmt.Errorf("find VMCOREINFO: %w", err)
	case rejected != nil:
		return nil, 0, scanned, fmt.Errorf("no page that begins with %q is a consistent VMCOREINFO (first rejected: %v): %w", vmcoreinfoPrefix, rejected, ErrNotSupported)
	}
	return nil, 0, scanned, fmt.Errorf("no page begins with %q: %w", vmcoreinfoPrefix, ErrNotSupported)
}

// scanPages calls fn with every page of the dump's memory, in physical
// order, until it returns true; it returns the bytes scanned. Pages that
// cannot be read (excluded, damaged) are skipped; the error is that of
// listing the ranges.
func (d *Dump) scanPages(fn func(pg []byte, paddr uint64) bool) (uint64, error) {
	ranges, err := d.Ranges()
	if err != nil {
		return 0, err
	}
	ps := uint64(d.pageSize)
	buf := make([]byte, scanChunk)
	var scanned uint64
	for _, r := range ranges {
		for a := (r.Start + ps - 1) &^ (ps - 1); a < r.End() && r.End()-a >= ps; {
			n := min(uint64(len(buf)), (r.End()-a)&^(ps-1))
			k, rerr := d.ReadPhys(buf[:n], a)
			k = max(0, min(k, int(n)))
			pages := uint64(k) / ps
			for i := range pages {
				if fn(buf[i*ps:(i+1)*ps], a+i*ps) {
					return scanned + (i+1)*ps, nil
				}
			}
			scanned += pages * ps
			if rerr != nil && uint64(k) < n {
				// Skip the page that failed (excluded, damaged).
				a += (pages + 1) * ps
				continue
			}
			a += n
		}
	}
	return scanned, nil
}

// parseInfoPage parses a page that may be vmcoreinfo_data: VMCOREINFO
// text from its start, then zeros to its end (the page was zeroed and the
// text is bounded by it). The text must name the release, the page size
// (the page's), KERNELOFFSET, NUMBER(phys_base) and a page-table root
// (SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)) inside the kernel's
// text mapping. Errors wrap ErrFormat.
func parseInfoPage(pg []byte) (*VMCoreInfo, error) {
	if !bytes.HasPrefix(pg, []byte(vmcoreinfoPrefix)) {
		return nil, formatErr("VMCOREINFO page", 0, "does not begin with %q", vmcoreinfoPrefix)
	}
	end := bytes.IndexByte(pg, 0)
	if end < 0 {
		return nil, formatErr("VMCOREINFO page", int64(len(pg)), "text is not NUL-terminated within the page")
	}
	for i, c := range pg[end:] {
		if c != 0 {
			return nil, formatErr("VMCOREINFO page", int64(end+i), "byte %#x after the text: not a zeroed page", c)
		}
	}
	vi, err := ParseVMCOREINFO(pg[:end])
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return formatErr("VMCOREINFO page", 0, format, args...)
	}
	root, ok := vi.Symbol("init_top_pgt")
	if !ok {
		root, ok = vi.Symbol("swapper_pg_dir")
	}
	_, hasPB := vi.Number("phys_base")
	switch {
	case vi.OSRelease == "":
		return nil, bad("empty OSRELEASE")
	case vi.PageSize != len(pg):
		return nil, bad("PAGESIZE %d in a %d-byte page", vi.PageSize, len(pg))
	case !vi.HasKernelOffset:
		return nil, bad("no KERNELOFFSET")
	case !hasPB:
		return nil, bad("no NUMBER(phys_base)")
	case !ok:
		return nil, bad("no SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)")
	case !inKernelMap(root):
		return nil, bad("page-table root %#x outside the kernel text mapping", root)
	case vi.KernelOffset >= kernelImageMax:
		return nil, bad("KERNELOFFSET %#x beyond the kernel image space", vi.KernelOffset)
	}
	if st, ok := vi.Symbol("_stext"); ok && !inKernelMap(st) {
		return nil, bad("SYMBOL(_stext) %#x outside the kernel text mapping", st)
	}
	return vi, nil
}

// inKernelMap reports whether a is in the kernel text mapping,
// [__START_KERNEL_map, +KERNEL_IMAGE_SIZE).
func inKernelMap(a uint64) bool { return a >= startKernelMap && a-startKernelMap < kernelImageMax }

// checkInfo checks that a VMCOREINFO found at phys describes this dump's
// kernel: its page tables map the root's own address and _stext where
// phys_base says, QEMU's CR3 (where the dump has it) agrees, and
// SYMBOL(vmcoreinfo_data), if given, points at phys.
func (d *Dump) checkInfo(vi *VMCoreInfo, phys uint64) error {
	as, err := newKernelAS(d, vi, nil)
	if err != nil {
		return err
	}
	sym, ok := vi.Symbol("init_top_pgt")
	if !ok {
		sym, _ = vi.Symbol("swapper_pg_dir")
	}
	check := func(name string, va uint64) (uint64, error) {
		want := va - startKernelMap + as.physBase
		got, err := as.Translate(va)
		if err != nil {
			return 0, fmt.Errorf("its page tables do not map %s: %w", name, err)
		}
		if got != want {
			return 0, fmt.Errorf("its page tables map %s (%#x) at phys %#x, phys_base says %#x", name, va, got, want)
		}
		return got, nil
	}
	if _, err := check("the page-table root", sym); err != nil {
		return err
	}
	st, ok := vi.Symbol("_stext")
	if !ok {
		st = startKernel + vi.KernelOffset
	}
	stPhys, err := check("_stext", st)
	if err != nil {
		return err
	}
	if va, ok := vi.Symbol("vmcoreinfo_data"); ok {
		p, err := as.ReadUint64(va)
		if err != nil {
			return fmt.Errorf("reading vmcoreinfo_data: %w", err)
		}
		if pa, err := as.Translate(p); err != nil || pa != phys {
			return fmt.Errorf("vmcoreinfo_data points at %#x (phys %#x, %v), not at this page", p, pa, err)
		}
	}
	// QEMU's CPU notes: a CR3 that maps _stext must map it to the same
	// place. A CPU in user mode under PTI has the user half of its page
	// table pair in CR3 (bit 12 set), which does not map _stext.
	for _, c := range d.cpus {
		if c.QEMU == nil || c.QEMU.CR[3]&cr3AddrMask == 0 {
			continue
		}
		for _, root := range cr3Roots(c.QEMU.CR[3]) {
			cas := &KernelAS{d: d, mem: d, root: root &^ as.smeMask, levels: as.levels, smeMask: as.smeMask}
			pa, _, err := cas.walk(st)
			if err != nil {
				continue
			}
			if pa != stPhys {
				return fmt.Errorf("CPU %d's CR3 %#x maps _stext at phys %#x, this VMCOREINFO at %#x", c.Index, c.QEMU.CR[3], pa, stPhys)
			}
			break
		}
	}
	return nil
}

// cr3Roots are the page-table roots a CR3 may stand for: itself, and the
// kernel half of a PTI pair when bit 12 (PTI_USER_PGTABLE_BIT) is set.
func cr3Roots(cr3 uint64) []uint64 {
	r := cr3 & cr3AddrMask
	if r&(1<<12) != 0 {
		return []uint64{r &^ (1 << 12), r}
	}
	return []uint64{r}
}

// kernelFromCR3 reads the kernel's placement from the page tables of the
// CPUs' CR3 (QEMU dumps): the lowest mapped 2 MiB page of the kernel text
// mapping is _text. Of the CPUs' roots, the one mapping the lowest such
// page wins (a PTI user table maps only the entry text, above _text).
// Errors wrap ErrNotSupported.
func (d *Dump) kernelFromCR3() (*derivedKernel, error) {
	var best *derivedKernel
	var bestVA uint64
	var firstErr error
	for _, c := range d.cpus {
		q := c.QEMU
		if q == nil || q.CR[3]&cr3AddrMask == 0 {
			continue
		}
		levels := 4
		if q.CR[4]&cr4LA57 != 0 {
			levels = 5
		}
		for _, root := range cr3Roots(q.CR[3]) {
			as := &KernelAS{d: d, mem: d, root: root, levels: levels}
			va, pa, err := as.lowestKernelText()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("CPU %d's CR3 %#x: %w", c.Index, q.CR[3], err)
				}
				continue
			}
			if best == nil || va < bestVA {
				best = &derivedKernel{root: root, levels: levels, kaslr: va - startKernel, physBase: pa - (va - startKernelMap), cpu: c.Index}
				bestVA = va
			}
		}
	}
	if best != nil {
		return best, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("no CPU note with a CR3: %w", ErrNotSupported)
}

// lowestKernelText finds the lowest mapped 2 MiB-aligned address at or
// above __START_KERNEL in the kernel text mapping, and its physical
// address.
func (as *KernelAS) lowestKernelText() (uint64, uint64, error) {
	const step = 2 << 20
	for va := uint64(startKernel); va-startKernelMap < kernelImageMax; va += step {
		pa, _, err := as.walk(va)
		if err == nil {
			return va, pa, nil
		}
		if !errors.Is(err, ErrNotPresent) {
			return 0, 0, err
		}
	}
	return 0, 0, fmt.Errorf("nothing mapped in the kernel text mapping: %w", ErrNotSupported)
}
