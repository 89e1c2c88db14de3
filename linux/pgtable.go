package linux

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// The x86-64 page tables (arch/x86/include/asm/pgtable*.h), walked from
// an address space's top table through the direct map: the kernel's
// (init_mm.pgd, swapper_pg_dir) or a process's (mm->pgd), as crash's
// vtop and the kernel's follow_pte do.

// ErrNotMapped: the page tables map no page at the address.
var ErrNotMapped = errors.New("not mapped")

// The page-table entry bits the walk reads.
const (
	ptePresent  = 1 << 0
	pteRW       = 1 << 1
	pteUser     = 1 << 2
	ptePSE      = 1 << 7 // a 1 GiB (PUD) or 2 MiB (PMD) leaf
	pteProtNone = 1 << 8 // _PAGE_PROTNONE: present to the kernel
	pteNX       = 1 << 63
	pteAddrMask = 0x000ffffffffff000 // PTE_PFN_MASK
)

// PTLevel is one level of a page-table walk.
type PTLevel struct {
	Name string `json:"name"` // PGD, P4D, PUD, PMD, PTE
	// Table is the physical address of the table, Entry the entry's
	// physical address in it, Value the entry.
	Table objects.Hex `json:"table"`
	Entry objects.Hex `json:"entry"`
	Value objects.Hex `json:"value"`
}

// Translation is where a virtual address leads.
type Translation struct {
	Virt objects.Hex `json:"virt"`
	// Phys is the physical address; PageSize the size of the page that
	// maps it (4 KiB, 2 MiB or 1 GiB).
	Phys     objects.Hex `json:"phys"`
	PageSize uint64      `json:"page_size"`
	// Levels are the entries the walk read, top first.
	Levels []PTLevel `json:"levels"`
	// Writable, User, NX are the leaf entry's RW, U/S and NX bits.
	Writable bool `json:"writable"`
	User     bool `json:"user"`
	NX       bool `json:"nx"`
	// Page is the struct page of the physical page (Vtop only).
	Page *PageInfo `json:"page,omitempty"`
}

// PgtableLevels is 5 with LA57 paging (__pgtable_l5_enabled), else 4.
func PgtableLevels(p *objects.Program) int {
	if v, err := p.Variable("__pgtable_l5_enabled"); err == nil {
		if l5, err := v.Uint(); err == nil && l5 != 0 {
			return 5
		}
	}
	return 4
}

// KernelPgd returns the kernel's top page table (init_mm.pgd), a
// direct-map or kernel-image address.
func KernelPgd(p *objects.Program) (uint64, error) {
	mm, err := p.Variable("init_mm")
	if err != nil {
		return 0, err
	}
	return mm.MemberUint("pgd")
}

// VirtToPhysTable converts a page table's kernel address (a pgd in the
// direct map or the kernel image) to its physical address.
func virtToPhysTable(l *MemLayout, addr uint64) (uint64, error) {
	pa, ok := l.VirtToPhys(addr)
	if !ok {
		return 0, fmt.Errorf("page table at %#x is neither in the direct map nor in the kernel image: %w", addr, objects.ErrCorrupt)
	}
	return pa, nil
}

// FollowPhys walks the page tables whose top table is at pgd (a kernel
// virtual address: init_mm.pgd, or a process's mm->pgd) to translate
// vaddr, reading each table through the direct map. Errors wrap
// ErrNotMapped (naming the level whose entry is not present) or the
// memory's.
func FollowPhys(p *objects.Program, pgd, vaddr uint64) (*Translation, error) {
	l, err := ReadMemLayout(p)
	if err != nil {
		return nil, err
	}
	levels := PgtableLevels(p)
	table, err := virtToPhysTable(l, pgd)
	if err != nil {
		return nil, err
	}
	names := [...]string{"", "PTE", "PMD", "PUD", "P4D", "PGD"}
	tr := &Translation{Virt: objects.Hex(vaddr)}
	var b [8]byte
	for level := levels; level >= 1; level-- {
		shift := uint(PageShift + 9*(level-1))
		ea := table + (vaddr>>shift&511)*8
		name := names[level]
		if level == levels {
			name = "PGD"
		}
		if err := p.Read(b[:], l.PhysToVirt(ea)); err != nil {
			return tr, fmt.Errorf("translate %#x: read %s entry at physical %#x: %w", vaddr, name, ea, err)
		}
		e := binary.LittleEndian.Uint64(b[:])
		tr.Levels = append(tr.Levels, PTLevel{Name: name, Table: objects.Hex(table), Entry: objects.Hex(ea), Value: objects.Hex(e)})
		present := e&ptePresent != 0 || level <= 2 && e&pteProtNone != 0 && (level == 1 || e&ptePSE != 0)
		if !present {
			return tr, fmt.Errorf("translate %#x: %s entry %#x at physical %#x not present: %w", vaddr, name, e, ea, ErrNotMapped)
		}
		if level == 1 || (level == 2 || level == 3) && e&ptePSE != 0 {
			mask := uint64(1)<<shift - 1
			tr.Phys = objects.Hex(e&pteAddrMask&^mask | vaddr&mask)
			tr.PageSize = 1 << shift
			tr.Writable, tr.User, tr.NX = e&pteRW != 0, e&pteUser != 0, e&pteNX != 0
			return tr, nil
		}
		table = e & pteAddrMask
	}
	panic("unreachable")
}

// ReadUser reads len(b) bytes of a process's memory at uaddr, through
// its page tables (mm->pgd), as access_process_vm does: page by page;
// a page of a file mapping that the tables do not map is read from the
// file's page cache, where a fault would find it. A page found in
// neither (never touched, swapped out) is an error wrapping
// ErrNotMapped; one the dump left out (makedumpfile excludes user pages
// from -d 8 up) the memory's error.
func ReadUser(mm objects.Value, b []byte, uaddr uint64) error {
	p := mm.Program()
	pgd, err := mm.MemberUint("pgd")
	if err != nil {
		return err
	}
	l, err := ReadMemLayout(p)
	if err != nil {
		return err
	}
	for n := 0; n < len(b); {
		a := uaddr + uint64(n)
		var phys uint64
		tr, err := FollowPhys(p, pgd, a)
		if errors.Is(err, ErrNotMapped) {
			var ok bool
			phys, ok, err = pageCachePhys(mm, a)
			if err == nil && !ok {
				_, err = FollowPhys(p, pgd, a)
			}
		} else if err == nil {
			phys = uint64(tr.Phys)
		}
		if err != nil {
			return err
		}
		m := min(len(b)-n, int(PageSize-a%PageSize))
		if err := p.Read(b[n:n+m], l.PhysToVirt(phys)); err != nil {
			return fmt.Errorf("user address %#x (physical %#x): %w", a, phys, err)
		}
		n += m
	}
	return nil
}

// pageCachePhys finds the physical address of user address uaddr in the
// page cache of the file its VMA maps, as a fault would: the folio at
// the page's index in vm_file->f_mapping->i_pages. False when the VMA
// maps no file, or the page is not cached.
func pageCachePhys(mm objects.Value, uaddr uint64) (uint64, bool, error) {
	p := mm.Program()
	var vma objects.Value
	found := false
	for v, err := range ForEachVMA(mm) {
		if err != nil {
			return 0, false, err
		}
		start, err1 := v.MemberUint("vm_start")
		end, err2 := v.MemberUint("vm_end")
		if err := errors.Join(err1, err2); err != nil {
			return 0, false, err
		}
		if uaddr >= start && uaddr < end {
			vma, found = v, true
			break
		}
		if start > uaddr {
			break
		}
	}
	if !found {
		return 0, false, nil
	}
	file, err := vma.MemberUint("vm_file")
	if err != nil || file == 0 {
		return 0, false, err
	}
	start, _ := vma.MemberUint("vm_start")
	pgoff, err := vma.MemberUint("vm_pgoff")
	if err != nil {
		return 0, false, err
	}
	f, err := p.ObjectOf("struct file", file)
	if err != nil {
		return 0, false, err
	}
	pages, err := f.Path("f_mapping->i_pages")
	if err != nil {
		return 0, false, err
	}
	idx := pgoff + (uaddr-start)>>PageShift
	e, ok, err := objects.XALoad(pages, idx)
	if err != nil || !ok || e.IsValue {
		return 0, false, err // a value entry is a shadow of an evicted page
	}
	head, _ := e.Value.Uint()
	l, err := ReadMemLayout(p)
	if err != nil {
		return 0, false, err
	}
	// A large folio's entry is its head page, of the folio's first index.
	hi, err := p.UintAt("struct page", head, "index")
	if err != nil {
		return 0, false, err
	}
	if idx < hi {
		return 0, false, fmt.Errorf("page cache entry %#x at index %d has index %d: %w", head, idx, hi, objects.ErrCorrupt)
	}
	pfn := l.PageToPFN(head) + idx - hi
	return pfn<<PageShift | uaddr%PageSize, true, nil
}

// Vtop translates vaddr through the page tables at pgd as crash's vtop:
// the walk (FollowPhys), and the struct page of the physical page when
// it is RAM (Page). A walk that stops at an entry not present returns
// the levels read so far with the error.
func Vtop(p *objects.Program, pgd, vaddr uint64) (*Translation, error) {
	tr, err := FollowPhys(p, pgd, vaddr)
	if err != nil {
		return tr, err
	}
	l, lerr := ReadMemLayout(p)
	if lerr == nil && uint64(tr.Phys)>>PageShift < l.MaxPFN {
		tr.Page, _ = NewPageInfo(p, uint64(tr.Phys)>>PageShift)
	}
	return tr, nil
}

// PhysAddr is a physical address as crash's ptov shows it.
type PhysAddr struct {
	Phys objects.Hex `json:"phys"`
	// Virt is its address in the direct map (__va).
	Virt objects.Hex `json:"virt"`
	// Page is its page's struct page, for RAM.
	Page *PageInfo `json:"page,omitempty"`
}

// Ptov gives the direct map's address of a physical address, and its
// page (crash's ptov).
func Ptov(p *objects.Program, paddr uint64) (*PhysAddr, error) {
	l, err := ReadMemLayout(p)
	if err != nil {
		return nil, err
	}
	out := &PhysAddr{Phys: objects.Hex(paddr), Virt: objects.Hex(l.PhysToVirt(paddr))}
	if paddr>>PageShift < l.MaxPFN {
		if out.Page, err = NewPageInfo(p, paddr>>PageShift); err != nil {
			return out, err
		}
	}
	return out, nil
}
