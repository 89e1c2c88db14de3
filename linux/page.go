package linux

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// Pages and their flags (include/linux/mm.h, page-flags.h,
// arch/x86/include/asm/page_64.h): x86-64 with SPARSEMEM_VMEMMAP, where
// the struct page of pfn N is vmemmap_base + N * sizeof(struct page),
// and the direct map puts physical address P at page_offset_base + P.

// PageShift is x86-64's PAGE_SHIFT.
const PageShift = 12

// PageSize is x86-64's PAGE_SIZE.
const PageSize = 1 << PageShift

// startKernelMap is __START_KERNEL_map, where the kernel image is
// mapped (arch/x86/include/asm/page_64_types.h).
const startKernelMap = 0xffffffff80000000

// MemLayout is where the kernel keeps its memory: the bases KASLR
// randomizes, the struct page size, and the highest pfn.
type MemLayout struct {
	PageOffset uint64 // page_offset_base: the direct map of physical memory
	Vmemmap    uint64 // vmemmap_base: the struct page array
	Vmalloc    uint64 // vmalloc_base: the vmalloc area
	PhysBase   uint64 // phys_base: where the kernel image sits physically
	PageSize   uint64 // sizeof(struct page)
	MaxPFN     uint64 // max_pfn: one past the highest pfn of RAM
}

// ReadMemLayout reads the memory layout's variables (once per Program).
func ReadMemLayout(p *objects.Program) (*MemLayout, error) {
	v, err := p.Memo("linux memory layout", func() (any, error) {
		l := &MemLayout{}
		for _, x := range []struct {
			name string
			dst  *uint64
		}{{"page_offset_base", &l.PageOffset}, {"vmemmap_base", &l.Vmemmap}, {"vmalloc_base", &l.Vmalloc}, {"max_pfn", &l.MaxPFN}} {
			v, err := p.Variable(x.name)
			if err == nil {
				*x.dst, err = v.Uint()
			}
			if err != nil {
				return nil, fmt.Errorf("memory layout: %w", err)
			}
		}
		// phys_base is a symbol whose value is the variable's address.
		if a, err := p.Symbol("phys_base"); err == nil {
			l.PhysBase, _ = p.ReadU64(a)
		}
		n, err := p.SizeofType("struct page")
		if err != nil {
			return nil, fmt.Errorf("memory layout: %w", err)
		}
		l.PageSize = n
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*MemLayout), nil
}

// InDirectMap says addr is in the direct map of RAM (below max_pfn).
func (l *MemLayout) InDirectMap(addr uint64) bool {
	return addr >= l.PageOffset && (addr-l.PageOffset)>>PageShift < l.MaxPFN
}

// InVmemmap says addr is in the struct page array (of RAM's pfns).
func (l *MemLayout) InVmemmap(addr uint64) bool {
	return addr >= l.Vmemmap && (addr-l.Vmemmap)/l.PageSize < l.MaxPFN
}

// PFNToPage is the address of the struct page of pfn (pfn_to_page).
func (l *MemLayout) PFNToPage(pfn uint64) uint64 { return l.Vmemmap + pfn*l.PageSize }

// PageToPFN is the pfn of the struct page at page (page_to_pfn).
func (l *MemLayout) PageToPFN(page uint64) uint64 { return (page - l.Vmemmap) / l.PageSize }

// PhysToVirt is the direct map's address of physical address pa (__va).
func (l *MemLayout) PhysToVirt(pa uint64) uint64 { return pa + l.PageOffset }

// VirtToPhys translates a direct-map or kernel-image address without
// page tables (__pa); false for other addresses.
func (l *MemLayout) VirtToPhys(addr uint64) (uint64, bool) {
	switch {
	case addr >= startKernelMap:
		return addr - startKernelMap + l.PhysBase, true
	case l.InDirectMap(addr):
		return addr - l.PageOffset, true
	}
	return 0, false
}

// PageFlagNames decodes the PG_* bits of a page's flags below
// __NR_PAGEFLAGS, each by the first name enum pageflags gives its bit
// (PG_locked, PG_referenced, ...). The node, zone and section bits
// above are left out.
func PageFlagNames(p *objects.Program, flags uint64) ([]string, error) {
	v, err := p.Memo("linux page flag names", func() (any, error) {
		t, err := p.Type("enum pageflags")
		if err != nil {
			return nil, err
		}
		e, ok := btfload.Underlying(t).(*btf.Enum)
		if !ok {
			return nil, fmt.Errorf("enum pageflags is %s: %w", btfload.TypeString(t), objects.ErrType)
		}
		names := map[uint64]string{}
		nr := uint64(64)
		for _, ev := range e.Values {
			if ev.Name == "__NR_PAGEFLAGS" {
				nr = ev.Value
				break
			}
			if _, dup := names[ev.Value]; !dup {
				names[ev.Value] = ev.Name
			}
		}
		out := make([]string, nr)
		for i := range out {
			out[i] = names[uint64(i)]
		}
		return out, nil
	})
	if err != nil {
		return nil, fmt.Errorf("page flags: %w", err)
	}
	table := v.([]string)
	out := []string{}
	for i, n := range table {
		if flags&(1<<i) != 0 {
			if n == "" {
				n = fmt.Sprintf("bit%d", i)
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// pageTypeLayout is how this kernel marks a page's type (slab, buddy,
// page table, ...).
type pageTypeLayout struct {
	// pgty: page_type's top byte is an enum pagetype (6.12+, 4ffca5a96678
	// "mm: support only one page_type per page").
	pgty bool
	// inverted: page_type's bits are cleared from PAGE_TYPE_BASE (4.19
	// to 6.11); slab is one of them from 6.10 (46df8e73a4a3 "mm: free up
	// PG_slab").
	base  uint64
	types map[uint64]string // pagetype value, or bit, to its name
	// slabFlag is PG_slab's bit of flags before 6.10; -1 after.
	slabFlag int
}

func readPageTypeLayout(p *objects.Program) (*pageTypeLayout, error) {
	v, err := p.Memo("linux page types", func() (any, error) {
		l := &pageTypeLayout{slabFlag: -1, types: map[uint64]string{}}
		if s, err := p.Enumerator("PG_slab"); err == nil {
			if t, terr := p.Type("enum pageflags"); terr == nil {
				if e, ok := btfload.Underlying(t).(*btf.Enum); ok && slices.ContainsFunc(e.Values, func(v btf.EnumValue) bool { return v.Name == "PG_slab" }) {
					l.slabFlag = int(s)
				}
			}
		}
		t, err := p.Type("enum pagetype")
		if err != nil {
			if l.slabFlag < 0 {
				return nil, fmt.Errorf("page types: neither enum pagetype nor PG_slab: %w", objects.ErrNotSupported)
			}
			// Before 6.9, page types had no enum: the defines of
			// page-flags.h (4.19-6.8): PG_buddy 0x80, PG_offline
			// 0x100, PG_table 0x200, PG_guard 0x400, base 0xf0000000.
			l.base = 0xf0000000
			l.types = map[uint64]string{0x80: "buddy", 0x100: "offline", 0x200: "table", 0x400: "guard"}
			return l, nil
		}
		e, ok := btfload.Underlying(t).(*btf.Enum)
		if !ok {
			return nil, fmt.Errorf("enum pagetype is %s: %w", btfload.TypeString(t), objects.ErrType)
		}
		for _, ev := range e.Values {
			switch {
			case strings.HasPrefix(ev.Name, "PGTY_"):
				l.pgty = true
				l.types[ev.Value] = strings.TrimPrefix(ev.Name, "PGTY_")
			case ev.Name == "PAGE_TYPE_BASE":
				l.base = ev.Value
			case strings.HasPrefix(ev.Name, "PG_"):
				l.types[ev.Value] = strings.TrimPrefix(ev.Name, "PG_")
			}
		}
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*pageTypeLayout), nil
}

// pageType names the type page_type gives a page, "" for none.
func (l *pageTypeLayout) pageType(pageType uint64) string {
	pageType &= 0xffffffff
	if l.pgty {
		return l.types[pageType>>24]
	}
	// Inverted: a page has a type when the base's bits are set and the
	// type's bit is clear.
	if pageType&l.base != l.base || pageType == 0xffffffff {
		return ""
	}
	for bit, n := range l.types {
		if bit != l.base && pageType&bit == 0 && bits.OnesCount64(bit) == 1 {
			return n
		}
	}
	return ""
}

// PageInfo is what kmem shows of a struct page.
type PageInfo struct {
	Page objects.Hex `json:"page"` // the struct page
	PFN  uint64      `json:"pfn"`
	Phys objects.Hex `json:"phys"`
	// Virt is the page's address in the direct map.
	Virt  objects.Hex `json:"virt"`
	Flags objects.Hex `json:"flags"`
	// FlagNames are the PG_* bits of Flags (PageFlagNames).
	FlagNames []string `json:"flag_names"`
	// Type is the page's type: "slab", "buddy" (free), "table", ...,
	// "" for none.
	Type string `json:"type,omitempty"`
	// Head is the compound page's head, for a tail page.
	Head     objects.Hex `json:"head,omitempty"`
	Mapping  objects.Hex `json:"mapping"`
	Index    uint64      `json:"index"`
	Refcount int64       `json:"refcount"`
	Mapcount int64       `json:"mapcount"`
}

// NewPageInfo reads the struct page of pfn.
func NewPageInfo(p *objects.Program, pfn uint64) (*PageInfo, error) {
	l, err := ReadMemLayout(p)
	if err != nil {
		return nil, err
	}
	pa := l.PFNToPage(pfn)
	pg, s, err := p.ReadStruct("struct page", pa)
	if err != nil {
		return nil, fmt.Errorf("page of pfn %#x: %w", pfn, err)
	}
	out := &PageInfo{Page: objects.Hex(pa), PFN: pfn, Phys: objects.Hex(pfn << PageShift), Virt: objects.Hex(l.PhysToVirt(pfn << PageShift)),
		Flags: objects.Hex(s.Uint("flags")), Mapping: objects.Hex(s.Uint("mapping")), Index: s.Uint("index")}
	if ch := s.Uint("compound_head"); ch&1 != 0 {
		out.Head = objects.Hex(ch - 1)
	}
	pt := s.Uint("page_type")
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("page %#x: %w", pa, err)
	}
	if r, err := pg.MemberInt("_refcount.counter"); err == nil {
		out.Refcount = r
	}
	if out.FlagNames, err = PageFlagNames(p, uint64(out.Flags)); err != nil {
		return nil, err
	}
	// A slab's page_type is its own (6.10+); a tail page's type is the
	// head's.
	headFlags := uint64(out.Flags)
	if out.Head != 0 {
		head := uint64(out.Head)
		_, hs, err := p.ReadStruct("struct page", head)
		if err != nil {
			return nil, fmt.Errorf("head page %#x of page %#x: %w", head, pa, err)
		}
		headFlags = hs.Uint("flags")
		pt = hs.Uint("page_type")
	}
	tl, err := readPageTypeLayout(p)
	if err != nil {
		return nil, err
	}
	out.Type = tl.pageType(pt)
	if tl.slabFlag >= 0 && headFlags&(1<<tl.slabFlag) != 0 {
		out.Type = "slab"
	}
	if out.Type == "" && (pt&0x80000000 == 0 || !tl.pgty) {
		// _mapcount shares page_type's word: -1 means unmapped.
		out.Mapcount = int64(int32(uint32(pt))) + 1
	}
	return out, nil
}

// CompoundHead returns the head page of the struct page at page
// (compound_head): itself unless it is a tail page.
func CompoundHead(p *objects.Program, page uint64) (uint64, error) {
	off, _, err := p.MemberOffset("struct page", "compound_head")
	if err != nil {
		return 0, err
	}
	ch, err := p.ReadU64(page + off)
	if err != nil {
		return 0, err
	}
	if ch&1 != 0 {
		return ch - 1, nil
	}
	return page, nil
}

// PageSlab says the struct page at head (a head page) is a slab's, as
// PageSlab/folio_test_slab: PG_slab in its flags before 6.10, its
// page_type after.
func PageSlab(p *objects.Program, head uint64) (bool, error) {
	tl, err := readPageTypeLayout(p)
	if err != nil {
		return false, err
	}
	pg, err := p.ObjectOf("struct page", head)
	if err != nil {
		return false, err
	}
	if tl.slabFlag >= 0 {
		f, err := pg.MemberUint("flags")
		return f&(1<<tl.slabFlag) != 0, err
	}
	pt, err := pg.MemberUint("page_type")
	return tl.pageType(pt) == "slab", err
}
