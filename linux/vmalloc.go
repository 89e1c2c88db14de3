package linux

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// The vmalloc areas (include/linux/vmalloc.h, mm/vmalloc.c), as
// /proc/vmallocinfo lists them.

// VmapArea is a busy vmalloc area: a struct vmap_area and its
// vm_struct, as a line of /proc/vmallocinfo.
type VmapArea struct {
	Area  objects.Hex `json:"vmap_area"`
	Start objects.Hex `json:"start"` // va_start
	End   objects.Hex `json:"end"`   // va_end
	// VM is the struct vm_struct (0 for a vm_map_ram area, or one freed
	// lazily and not yet purged).
	VM    objects.Hex `json:"vm,omitempty"`
	Size  uint64      `json:"size"` // vm->size, the guard page included
	Pages uint64      `json:"pages"`
	// Caller is the address of the code that asked for the area
	// (vm->caller: __builtin_return_address of the allocator), and
	// CallerSymbol the symbol there (VmallocInfo only).
	Caller       objects.Hex `json:"caller,omitempty"`
	CallerSymbol string      `json:"caller_symbol,omitempty"`
	// Phys is the physical address an ioremap maps.
	Phys objects.Hex `json:"phys,omitempty"`
	// Kinds are vmallocinfo's words for vm->flags: ioremap, vmalloc,
	// vmap, user, dma-coherent; "vm_map_ram" or "unpurged" for an area
	// without vm_struct.
	Kinds []string `json:"kinds"`
}

// Contains says addr is in the area.
func (v VmapArea) Contains(addr uint64) bool { return addr >= uint64(v.Start) && addr < uint64(v.End) }

// The vm_struct flags of include/linux/vmalloc.h that vmallocinfo names.
var vmFlags = []struct {
	bit  uint64
	name string
}{{0x1, "ioremap"}, {0x2, "vmalloc"}, {0x4, "vmap"}, {0x8, "user"}, {0x10, "dma-coherent"}}

// VmapAreas reads the busy vmalloc areas sorted by address: the busy
// lists of every vmap_node (6.9+, d093602919ad "mm: vmalloc: remove
// global vmap_area_root rb-tree"), else the list vmap_area_list. They
// are read once per Program.
func VmapAreas(p *objects.Program) ([]VmapArea, error) {
	v, err := p.Memo("linux vmap areas", func() (any, error) { return readVmapAreas(p) })
	if err != nil {
		return nil, err
	}
	return v.([]VmapArea), nil
}

func readVmapAreas(p *objects.Program) ([]VmapArea, error) {
	var areas []objects.Value
	if _, err := p.Symbol("vmap_nodes"); err == nil {
		nodes, err := p.Variable("vmap_nodes")
		if err != nil {
			return nil, fmt.Errorf("vmap areas: %w", err)
		}
		nv, err := p.Variable("nr_vmap_nodes")
		if err != nil {
			return nil, err
		}
		n, err := nv.Uint()
		if err != nil {
			return nil, err
		}
		if n > 1<<16 {
			return nil, fmt.Errorf("vmap areas: nr_vmap_nodes %d: %w", n, objects.ErrCorrupt)
		}
		for i := range n {
			node, err := nodes.Index(int64(i))
			if err != nil {
				return nil, err
			}
			head, err := node.Path("busy.head")
			if err != nil {
				return nil, err
			}
			for va, err := range objects.ListForEachEntry(head, "struct vmap_area", "list") {
				if err != nil {
					return nil, fmt.Errorf("vmap areas of node %d: %w", i, err)
				}
				areas = append(areas, va)
			}
		}
	} else {
		head, err := p.Variable("vmap_area_list")
		if err != nil {
			return nil, fmt.Errorf("vmap areas: neither vmap_nodes nor vmap_area_list: %w", err)
		}
		for va, err := range objects.ListForEachEntry(head, "struct vmap_area", "list") {
			if err != nil {
				return nil, fmt.Errorf("vmap areas: %w", err)
			}
			areas = append(areas, va)
		}
	}
	out := make([]VmapArea, 0, len(areas))
	for _, va := range areas {
		a, err := NewVmapArea(va)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

// NewVmapArea reads a struct vmap_area and its vm_struct.
func NewVmapArea(va objects.Value) (*VmapArea, error) {
	p := va.Program()
	addr, err := objects.ObjectAddr(va, "vmap area")
	if err != nil {
		return nil, err
	}
	_, s, err := p.ReadStruct("struct vmap_area", addr)
	if err != nil {
		return nil, err
	}
	out := &VmapArea{Area: objects.Hex(addr), Start: objects.Hex(s.Uint("va_start")), End: objects.Hex(s.Uint("va_end")), VM: objects.Hex(s.Uint("vm"))}
	flags := s.OptUint("flags")
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("vmap area %#x: %w", addr, err)
	}
	if out.VM == 0 {
		out.Size = uint64(out.End - out.Start)
		// VMAP_RAM (6.3+): vm_map_ram; else a lazily freed area.
		if flags&0x1 != 0 {
			out.Kinds = []string{"vm_map_ram"}
		} else {
			out.Kinds = []string{"unpurged"}
		}
		return out, nil
	}
	_, vs, err := p.ReadStruct("struct vm_struct", uint64(out.VM))
	if err != nil {
		return nil, fmt.Errorf("vmap area %#x: vm_struct: %w", addr, err)
	}
	out.Size, out.Pages, out.Caller, out.Phys = vs.Uint("size"), vs.Uint("nr_pages"), objects.Hex(vs.Uint("caller")), objects.Hex(vs.Uint("phys_addr"))
	vf := vs.Uint("flags")
	if err := vs.Err(); err != nil {
		return nil, fmt.Errorf("vmap area %#x: vm_struct %#x: %w", addr, uint64(out.VM), err)
	}
	for _, f := range vmFlags {
		if vf&f.bit != 0 {
			out.Kinds = append(out.Kinds, f.name)
		}
	}
	return out, nil
}

// FindVmapArea returns the busy vmalloc area holding addr
// (find_vmap_area); false when none does.
func FindVmapArea(p *objects.Program, addr uint64) (*VmapArea, bool, error) {
	areas, err := VmapAreas(p)
	if err != nil {
		return nil, false, err
	}
	i, _ := slices.BinarySearchFunc(areas, addr, func(a VmapArea, x uint64) int {
		switch {
		case uint64(a.End) <= x:
			return -1
		case uint64(a.Start) > x:
			return 1
		}
		return 0
	})
	if i < len(areas) && areas[i].Contains(addr) {
		return &areas[i], true, nil
	}
	return nil, false, nil
}

// KindString joins the area's kinds as vmallocinfo prints them.
func (v VmapArea) KindString() string { return strings.Join(v.Kinds, " ") }

// VmallocInfo lists the busy vmalloc areas as /proc/vmallocinfo does,
// each caller symbolized by syms (nil: none).
func VmallocInfo(p *objects.Program, syms *kallsyms.Table) ([]VmapArea, error) {
	areas, err := VmapAreas(p)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(areas)
	for i := range out {
		if syms != nil && out[i].Caller != 0 {
			if loc, err := syms.LookupAddr(uint64(out[i].Caller)); err == nil {
				out[i].CallerSymbol = loc.String()
			}
		}
	}
	return out, nil
}
