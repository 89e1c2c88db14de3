package linux

import (
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// An inode's page cache (include/linux/pagemap.h): the folios of
// inode->i_mapping->i_pages, an xarray indexed by file offset in pages,
// as crash's files -p lists them.

// InodePages is the page cache of one inode.
type InodePages struct {
	Inode   objects.Hex `json:"inode"`
	Mapping objects.Hex `json:"mapping"` // i_mapping, a struct address_space
	// NrPages is the kernel's own count (mapping->nrpages); Pages the
	// pages found in i_pages, by index; Shadows the value entries there
	// (workingset shadows of evicted pages, not pages).
	NrPages uint64     `json:"nrpages"`
	Pages   []PageInfo `json:"pages"`
	Shadows int        `json:"shadows"`
	// Errors name the parts of the tree or pages that could not be read.
	Errors []string `json:"errors,omitempty"`
}

// ReadInodePages walks the page cache of inode (a struct inode, or a
// pointer to one). A page cache entry is a struct page (a folio's head
// for a large folio, which covers several indexes); a damaged node of the
// tree or an unreadable page is named in Errors and the walk goes on.
func ReadInodePages(inode objects.Value) (*InodePages, error) {
	p := inode.Program()
	ia, err := objects.ObjectAddr(inode, "inode pages")
	if err != nil {
		return nil, err
	}
	in, err := p.ObjectOf("struct inode", ia)
	if err != nil {
		return nil, err
	}
	m, err := in.Path("i_mapping")
	if err == nil {
		m, err = m.Deref()
	}
	if err != nil {
		return nil, fmt.Errorf("inode %#x: i_mapping: %w", ia, err)
	}
	out := &InodePages{Inode: objects.Hex(ia), Mapping: objects.Hex(m.Addr()), Pages: []PageInfo{}}
	if out.NrPages, err = m.MemberUint("nrpages"); err != nil {
		return nil, fmt.Errorf("inode %#x: nrpages: %w", ia, err)
	}
	xa, err := m.Member("i_pages")
	if err != nil {
		return nil, fmt.Errorf("inode %#x: i_pages: %w", ia, err)
	}
	l, err := ReadMemLayout(p)
	if err != nil {
		return nil, err
	}
	for e, err := range objects.XArrayForEach(xa) {
		if err != nil {
			out.Errors = append(out.Errors, err.Error())
			if objects.IsDamage(err) {
				continue
			}
			break
		}
		if e.IsValue {
			out.Shadows++
			continue
		}
		page, err := e.Value.Uint()
		if err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("index %d: %v", e.Index, err))
			continue
		}
		if !l.InVmemmap(page) {
			out.Errors = append(out.Errors, fmt.Sprintf("index %d: %#x is no struct page", e.Index, page))
			continue
		}
		pi, err := NewPageInfo(p, l.PageToPFN(page))
		if err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("index %d: %v", e.Index, err))
			continue
		}
		out.Pages = append(out.Pages, *pi)
	}
	return out, nil
}
