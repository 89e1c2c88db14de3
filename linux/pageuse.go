package linux

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// What a page frame held, read from its struct page in the vmemmap, as
// makedumpfile classifies pages for its dump level (makedumpfile(8),
// -d): bit 1 zero pages, 2 page cache without private data, 4 page
// cache with private data, 8 user data (anonymous), 16 free pages.

// PageUse is what a page frame held.
type PageUse struct {
	PFN uint64
	// Kind is "free" (in the buddy allocator), "slab", "anon" (user
	// data), "cache", "cache with private data", "page table",
	// "reserved", or "in use" (none of these).
	Kind string
	// Bit is the dump level bit under which makedumpfile leaves such a
	// page out (0: none but zero pages, bit 1).
	Bit int
}

// defaultVmemmap is x86-64's vmemmap without KASLR of the memory layout
// (VMEMMAP_START, 4-level paging).
const defaultVmemmap = 0xffffea0000000000

// pageMappingAnon marks an anonymous page's mapping (PAGE_MAPPING_ANON).
const pageMappingAnon = 1

// ReadPageUse reads the struct page of pfn (at vmemmap_base + pfn *
// sizeof(struct page), SPARSEMEM_VMEMMAP) and says what it held.
func ReadPageUse(p *objects.Program, pfn uint64) (PageUse, error) {
	u := PageUse{PFN: pfn}
	page, err := structPage(p, pfn)
	if err != nil {
		return u, err
	}
	flags, err := page.MemberUint("flags")
	if err != nil {
		return u, fmt.Errorf("struct page of pfn %#x: %w", pfn, err)
	}
	// A tail page of a compound page: its head says what it is.
	if ch, err := page.MemberUint("compound_head"); err == nil && ch&1 == 1 {
		head := p.Object(page.Type(), ch-1)
		if hf, err := head.MemberUint("flags"); err == nil {
			page, flags = head, hf
		}
	}
	pt, ptErr := pageType(p, page)
	switch {
	case ptErr == nil && pt == "buddy":
		u.Kind, u.Bit = "free", 16
	case isFreeTail(p, pfn):
		u.Kind, u.Bit = "free", 16
	case ptErr == nil && pt == "slab", pageFlag(p, flags, "PG_slab"):
		u.Kind = "slab"
	case ptErr == nil && pt == "table":
		u.Kind = "page table"
	case pageFlag(p, flags, "PG_reserved"):
		u.Kind = "reserved"
	default:
		mapping, _ := page.MemberUint("mapping")
		switch {
		case mapping&pageMappingAnon != 0:
			u.Kind, u.Bit = "anon", 8
		case mapping != 0 && pageFlag(p, flags, "PG_lru") && !pageFlag(p, flags, "PG_swapcache"):
			u.Kind, u.Bit = "cache", 2
			if pageFlag(p, flags, "PG_private") || pageFlag(p, flags, "PG_private_2") {
				u.Kind, u.Bit = "cache with private data", 4
			}
		default:
			u.Kind = "in use"
		}
	}
	return u, nil
}

// structPage returns the struct page of pfn.
func structPage(p *objects.Program, pfn uint64) (objects.Value, error) {
	t, err := p.Type("struct page")
	if err != nil {
		return objects.Value{}, err
	}
	size, err := btf.Sizeof(t)
	if err != nil {
		return objects.Value{}, err
	}
	base := uint64(defaultVmemmap)
	if v, err := p.Variable("vmemmap_base"); err == nil {
		if b, err := v.Uint(); err == nil && b != 0 {
			base = b
		}
	}
	return p.Object(t, base+pfn*uint64(size)), nil
}

// pageType names the page type of a struct page ("buddy", "slab",
// "table", ...), or "" for none. Three encodings: 6.12+ keeps the type
// in page_type's top byte (enum pagetype: PGTY_buddy = 0xf0, ...;
// 4ffca5a96678 "mm: rework page type"); 6.8 to 6.11 clear a bit of
// PAGE_TYPE_BASE 0x80000000 (enum pagetype: PG_buddy = 0x40000000,
// ...); before, macros clear a bit of 0xf0000000 (PG_buddy 0x80,
// PG_offline 0x100, PG_table 0x200, PG_guard 0x400), not in BTF.
func pageType(p *objects.Program, page objects.Value) (string, error) {
	v, err := page.MemberUint("page_type")
	if err != nil {
		return "", err
	}
	v &= 0xffffffff
	if en := enumType(p, "enum pagetype"); en != nil {
		for _, e := range en.Values {
			if strings.HasPrefix(e.Name, "PGTY_") {
				if v>>24 == e.Value && e.Value != 0xff {
					return strings.ToLower(strings.TrimPrefix(e.Name, "PGTY_")), nil
				}
				continue
			}
			if strings.HasPrefix(e.Name, "PG_") && e.Value != 0 && v&(0x80000000|e.Value) == 0x80000000 {
				return strings.ToLower(strings.TrimPrefix(e.Name, "PG_")), nil
			}
		}
		return "", nil
	}
	for _, t := range []struct {
		bit  uint64
		name string
	}{{0x80, "buddy"}, {0x100, "offline"}, {0x200, "table"}, {0x400, "guard"}} {
		if v&(0xf0000000|t.bit) == 0xf0000000 {
			return t.name, nil
		}
	}
	return "", nil
}

// isFreeTail says whether pfn lies inside a free block of order > 0 whose
// first page is in the buddy allocator: only that page carries the type,
// with the block's order in page->private.
func isFreeTail(p *objects.Program, pfn uint64) bool {
	for order := uint64(1); order <= 10; order++ {
		head := pfn &^ (1<<order - 1)
		if head == pfn {
			continue
		}
		page, err := structPage(p, head)
		if err != nil {
			return false
		}
		if pt, err := pageType(p, page); err != nil || pt != "buddy" {
			continue
		}
		o, err := page.MemberUint("private")
		return err == nil && o >= order
	}
	return false
}

// pageFlag says whether flags has the enum pageflags bit name.
func pageFlag(p *objects.Program, flags uint64, name string) bool {
	en := enumType(p, "enum pageflags")
	if en == nil {
		return false
	}
	for _, e := range en.Values {
		if e.Name == name {
			return e.Value < 64 && flags&(1<<e.Value) != 0
		}
	}
	return false
}

// enumType returns the named enum type, or nil; memoized, as a page's
// classification asks for the same two enums each time.
func enumType(p *objects.Program, name string) *btf.Enum {
	v, _ := p.Memo("linux.enumType "+name, func() (any, error) {
		t, err := p.Type(name)
		if err != nil {
			return (*btf.Enum)(nil), nil
		}
		en, _ := btfload.Underlying(t).(*btf.Enum)
		return en, nil
	})
	return v.(*btf.Enum)
}

// dumpLevelBits names makedumpfile's dump level bits.
var dumpLevelBits = map[int]string{1: "zero pages", 2: "cache pages", 4: "cache pages with private data", 8: "user data pages", 16: "free pages"}

// ExplainExcluded says why makedumpfile, at dump level level, left the
// page pfn out of a dump: the dump level bit its struct page puts it
// under, or, when none does, that the page was in use (only an all-zero
// page, bit 1, would then be left out: otherwise makedumpfile took it
// for something it was not). level < 0: the dump does not say.
func ExplainExcluded(p *objects.Program, pfn uint64, level int) string {
	u, err := ReadPageUse(p, pfn)
	if err == nil && level < 0 { // the dump does not say its level
		if u.Bit != 0 {
			return fmt.Sprintf("pfn %#x: left out of the dump; its struct page says %s (dump level bit %d, %s)", pfn, u.Kind, u.Bit, dumpLevelBits[u.Bit])
		}
		return fmt.Sprintf("pfn %#x: left out of the dump, yet its struct page says %s", pfn, u.Kind)
	}
	if err != nil {
		return fmt.Sprintf("pfn %#x: left out at dump level %d; its struct page cannot be read: %v", pfn, level, err)
	}
	if u.Bit != 0 && level&u.Bit != 0 {
		return fmt.Sprintf("pfn %#x: left out at dump level %d as %s (bit %d): its struct page says %s", pfn, level, dumpLevelBits[u.Bit], u.Bit, u.Kind)
	}
	why := fmt.Sprintf("pfn %#x: left out at dump level %d, yet its struct page says %s", pfn, level, u.Kind)
	if level&1 != 0 {
		return why + ": only as a zero page (bit 1) should it be, or makedumpfile misfiltered it"
	}
	return why + ": makedumpfile misfiltered it"
}
