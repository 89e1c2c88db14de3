package vmcore

import (
	"errors"
	"fmt"
)

// sectionHasMemMap is SECTION_HAS_MEM_MAP (include/linux/mmzone.h): the
// section has struct pages, so its pfns are valid (pfn_valid).
const sectionHasMemMap = 1 << 1

// MemorySize returns the bytes of the dump's physical ranges that the
// kernel has struct pages for — its memory, without the device memory and
// firmware that some dumps (QEMU's ELF) also hold. It walks SPARSEMEM's
// mem_section table as VMCOREINFO describes it (SYMBOL(mem_section),
// LENGTH(mem_section), SIZE(mem_section),
// OFFSET(mem_section.section_mem_map), NUMBER(SECTION_SIZE_BITS)), with
// CONFIG_SPARSEMEM_EXTREME's two levels, as on every x86-64 kernel.
//
// Errors wrap ErrNotSupported (VMCOREINFO lacks the table) or the error
// of reading it.
func (as *KernelAS) MemorySize() (uint64, error) {
	vi := as.info
	root, ok1 := vi.Symbol("mem_section")
	nroots, ok2 := vi.Length("mem_section")
	ssize, ok3 := vi.Size("mem_section")
	moff, ok4 := vi.Offset("mem_section", "section_mem_map")
	sbits, ok5 := vi.Number("SECTION_SIZE_BITS")
	ps := uint64(as.d.pageSize)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || ssize == 0 || sbits < 12 || sbits > 40 || ps == 0 {
		return 0, fmt.Errorf("kernel memory size: VMCOREINFO lacks the mem_section table: %w", ErrNotSupported)
	}
	perRoot := ps / ssize // SECTIONS_PER_ROOT
	if perRoot == 0 {
		return 0, fmt.Errorf("kernel memory size: SIZE(mem_section) %d > page size: %w", ssize, ErrNotSupported)
	}
	sectionBytes := uint64(1) << uint(sbits)
	present := map[uint64]bool{}
	valid := func(nr uint64) (bool, error) {
		if v, ok := present[nr]; ok {
			return v, nil
		}
		r := nr / perRoot
		if r >= nroots {
			present[nr] = false
			return false, nil
		}
		rp, err := as.ReadUint64(root + r*8)
		if err != nil {
			return false, err
		}
		v := false
		if rp != 0 {
			mm, err := as.ReadUint64(rp + (nr%perRoot)*ssize + moff)
			if err != nil && !errors.Is(err, ErrNotPresent) {
				return false, err
			}
			v = err == nil && mm&sectionHasMemMap != 0
		}
		present[nr] = v
		return v, nil
	}
	ranges, err := as.d.Ranges()
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, rg := range ranges {
		for a := rg.Start; a < rg.End(); {
			nr := a / sectionBytes
			end := min(rg.End(), (nr+1)*sectionBytes)
			ok, err := valid(nr)
			if err != nil {
				return 0, fmt.Errorf("kernel memory size: reading mem_section %d: %w", nr, err)
			}
			if ok {
				n += end - a
			}
			a = end
		}
	}
	return n, nil
}
