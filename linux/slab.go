package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math/bits"

	"github.com/kinspect/kinspect/objects"
)

// Walkers of the SLUB allocator (mm/slab.h, mm/slub.c,
// mm/slab_common.c): caches, their counts as /proc/slabinfo shows them,
// which slab object an address is in, and every allocated object of a
// cache. Caches are struct kmem_cache objects.

// ForEachSlabCache yields every slab cache on slab_caches, in the order
// /proc/slabinfo lists them (list_for_each_entry(s, &slab_caches,
// list)). Merged caches (aliases) are not on the list: the cache they
// merged into is. A damaged link is yielded as a *objects.Damage (noted
// in the Program's damage log) and the walk goes on with what is still
// reachable; another error ends it.
func ForEachSlabCache(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		head, err := p.Variable("slab_caches")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("slab caches: %w", err))
			return
		}
		for s, err := range objects.ListForEachEntry(head, "struct kmem_cache", "list") {
			if d := p.DamageOf(err, "slab_caches"); d != nil {
				if !yield(objects.Value{}, d) {
					return
				}
				continue
			}
			if err != nil {
				yield(objects.Value{}, fmt.Errorf("slab caches: %w", err))
				return
			}
			if !yield(s, nil) {
				return
			}
		}
	}
}

// FindSlabCache returns the slab cache called name (find_slab_cache).
// Errors wrap ErrNotFound.
func FindSlabCache(p *objects.Program, name string) (objects.Value, error) {
	for s, err := range ForEachSlabCache(p) {
		if objects.IsDamage(err) {
			continue
		}
		if err != nil {
			return objects.Value{}, err
		}
		n, err := s.Member("name")
		if err != nil {
			return objects.Value{}, err
		}
		if c, err := n.CString(); err == nil && c == name {
			return s, nil
		}
	}
	return objects.Value{}, fmt.Errorf("no slab cache named %s (a merged cache goes by the name of the cache it merged into): %w", name, objects.ErrNotFound)
}

// The packing of struct kmem_cache_order_objects (mm/slub.c): order <<
// OO_SHIFT | objects.
const (
	ooShift = 16
	ooMask  = 1<<ooShift - 1
)

// SlabInfo is a slab cache as /proc/slabinfo shows it (SLUB's
// get_slabinfo): every object of a slab that is not free on a node's
// partial list counts as active, the per-CPU slabs' free objects too.
type SlabInfo struct {
	Cache objects.Hex `json:"cache"` // the struct kmem_cache
	Name  string      `json:"name"`
	// ActiveObjs are the objects in use; NumObjs all the slabs' objects.
	ActiveObjs uint64 `json:"active_objs"`
	NumObjs    uint64 `json:"num_objs"`
	// ObjSize is s->size, the space an object takes with its metadata
	// (slabinfo's objsize); ObjectSize is s->object_size, what
	// kmem_cache_alloc gives.
	ObjSize      uint64 `json:"objsize"`
	ObjectSize   uint64 `json:"object_size"`
	ObjPerSlab   uint64 `json:"objperslab"`
	PagesPerSlab uint64 `json:"pagesperslab"`
	ActiveSlabs  uint64 `json:"active_slabs"`
	NumSlabs     uint64 `json:"num_slabs"`
	// Refcount counts the caches merged into this one, plus one.
	Refcount int64 `json:"refcount"`
	// Error says why the cache could not be read (the counts are then
	// zero).
	Error string `json:"error,omitempty"`
}

// nrNodeIDs is nr_node_ids, the bound of kmem_cache.node[] (1 without
// NUMA).
func nrNodeIDs(p *objects.Program) int {
	v, err := p.Variable("nr_node_ids")
	if err != nil {
		return 1
	}
	n, err := v.Uint()
	if err != nil || n == 0 {
		return 1
	}
	return int(n)
}

// maxSlabs bounds a cache's node counts: no dump holds more slabs.
const maxSlabs = 1 << 40

// SlabCacheInfo computes what /proc/slabinfo shows of a cache (a struct
// kmem_cache, or a pointer to one), as SLUB's get_slabinfo: for each
// node (kmem_cache.node[0..nr_node_ids)), nr_slabs and total_objects,
// less the free objects of the slabs on its partial list (count_partial:
// objects - inuse of each). Errors name the cache.
func SlabCacheInfo(cache objects.Value) (*SlabInfo, error) {
	p := cache.Program()
	ca, err := objects.ObjectAddr(cache, "get_slabinfo")
	if err != nil {
		return nil, err
	}
	s, st, err := p.ReadStructBefore("struct kmem_cache", ca, "node")
	if err != nil {
		return nil, fmt.Errorf("slab cache %#x: %w", ca, err)
	}
	fail := func(err error) (*SlabInfo, error) { return nil, fmt.Errorf("slab cache %#x: %w", ca, err) }
	si := &SlabInfo{Cache: objects.Hex(ca), ObjSize: st.Uint("size"), ObjectSize: st.Uint("object_size"), Refcount: int64(int32(st.Uint("refcount")))}
	if err := st.Err(); err != nil {
		return fail(err)
	}
	oo, err := s.MemberUint("oo.x")
	if err != nil {
		return fail(err)
	}
	si.ObjPerSlab, si.PagesPerSlab = oo&ooMask, 1<<(oo>>ooShift)
	nv, err := s.Member("name")
	if err == nil {
		si.Name, err = nv.CString()
	}
	if err != nil {
		return fail(err)
	}
	nodes, err := s.Member("node")
	if err != nil {
		return fail(err)
	}
	var free uint64
	for nid := range nrNodeIDs(p) {
		np, err := nodes.Index(int64(nid))
		if err != nil {
			break // past the array
		}
		na, err := np.Uint()
		if err != nil {
			return fail(err)
		}
		if na == 0 {
			continue
		}
		n, err := np.Deref()
		if err != nil {
			return fail(err)
		}
		slabs, err := n.MemberUint("nr_slabs.counter")
		if err != nil {
			return fail(err)
		}
		objs, err := n.MemberUint("total_objects.counter")
		if err != nil {
			return fail(err)
		}
		if slabs > maxSlabs || objs > maxSlabs*ooMask {
			return fail(fmt.Errorf("node %d at %#x: %d slabs, %d objects: %w", nid, na, slabs, objs, objects.ErrCorrupt))
		}
		si.NumSlabs += slabs
		si.NumObjs += objs
		partial, err := n.Member("partial")
		if err != nil {
			return fail(err)
		}
		for sl, err := range objects.ListForEachEntry(partial, "struct slab", "slab_list") {
			if err != nil {
				return fail(fmt.Errorf("node %d partial list: %w", nid, err))
			}
			_, ss, err := p.ReadStruct("struct slab", sl.Addr())
			if err != nil {
				return fail(fmt.Errorf("node %d partial list: %w", nid, err))
			}
			o, in := ss.Uint("objects"), ss.Uint("inuse")
			if err := ss.Err(); err != nil {
				return fail(err)
			}
			if in <= o {
				free += o - in
			}
		}
	}
	si.ActiveObjs = si.NumObjs - min(free, si.NumObjs)
	si.ActiveSlabs = si.NumSlabs
	return si, nil
}

// SlabInfos reads every cache as /proc/slabinfo lists them. A cache
// that cannot be read is a row with its Error (and its name, when that
// could be read), noted in the Program's damage log, and the walk goes
// on; so does it past a damaged link of slab_caches. A walk that fails
// returns what it read before.
func SlabInfos(p *objects.Program) ([]SlabInfo, error) {
	var out []SlabInfo
	for s, err := range ForEachSlabCache(p) {
		if objects.IsDamage(err) {
			continue
		}
		if err != nil {
			return out, err
		}
		si, err := SlabCacheInfo(s)
		if err != nil {
			row := SlabInfo{Cache: objects.Hex(s.Addr()), Error: err.Error()}
			if n, nerr := s.Member("name"); nerr == nil {
				row.Name, _ = n.CString()
			}
			out = append(out, row)
			p.NoteDamage(&objects.Damage{Walk: "slab_caches", Addr: objects.Hex(s.Addr()),
				Object: "struct kmem_cache", Expected: "a readable slab cache", Err: err})
			continue
		}
		out = append(out, *si)
	}
	return out, nil
}

// slubCache is what decoding a cache's freelists needs.
type slubCache struct {
	p        *objects.Program
	addr     uint64
	name     string
	size     uint64 // s->size
	offset   uint64 // where the free pointer sits in an object
	random   uint64 // s->random, with CONFIG_SLAB_FREELIST_HARDENED
	hardened bool
	redLeft  uint64 // red_left_pad
	// cpuFree are the objects on the CPUs' lockless freelists
	// (kmem_cache_cpu.freelist of a CPU whose slab is this cache's).
	cpuFree map[uint64]bool
	cpuErr  error
}

func newSlubCache(cache objects.Value) (*slubCache, error) {
	p := cache.Program()
	ca, err := objects.ObjectAddr(cache, "slab cache")
	if err != nil {
		return nil, err
	}
	_, st, err := p.ReadStructBefore("struct kmem_cache", ca, "node")
	if err != nil {
		return nil, fmt.Errorf("slab cache %#x: %w", ca, err)
	}
	c := &slubCache{p: p, addr: ca, size: st.Uint("size"), offset: st.Uint("offset"), redLeft: st.OptUint("red_left_pad"), cpuFree: map[uint64]bool{}}
	if err := st.Err(); err != nil {
		return nil, fmt.Errorf("slab cache %#x: %w", ca, err)
	}
	if c.size == 0 {
		return nil, fmt.Errorf("slab cache %#x: size 0: %w", ca, objects.ErrCorrupt)
	}
	s, _ := p.ObjectOf("struct kmem_cache", ca)
	if nv, err := s.Member("name"); err == nil {
		c.name, _ = nv.CString()
	}
	// CONFIG_SLAB_FREELIST_HARDENED: kmem_cache has random.
	if r, err := s.MemberUint("random"); err == nil {
		c.random, c.hardened = r, true
	} else if !errors.Is(err, objects.ErrNotFound) {
		return nil, err
	}
	c.cpuErr = c.readCPUFreelists(s)
	return c, nil
}

// readCPUFreelists collects the objects on each CPU's lockless
// freelist of the cache (kmem_cache_cpu.freelist, whose slab is
// kmem_cache_cpu.slab).
func (c *slubCache) readCPUFreelists(s objects.Value) error {
	p := c.p
	cs, err := s.Member("cpu_slab")
	if errors.Is(err, objects.ErrNotFound) {
		return nil // CONFIG_SLUB_TINY
	}
	if err != nil {
		return err
	}
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return err
	}
	for _, cpu := range cpus {
		cc, err := p.PerCPU(cs, cpu)
		if err != nil {
			return err
		}
		slab, err := cc.MemberUint("slab")
		if err != nil {
			return err
		}
		if slab == 0 {
			continue
		}
		fl, err := cc.MemberUint("freelist")
		if err != nil {
			return err
		}
		if err := c.walkFreelist(fl, fmt.Sprintf("CPU %d", cpu), c.cpuFree); err != nil {
			return err
		}
	}
	return nil
}

// maxFreelist bounds a freelist: a slab holds at most 2^15 objects
// (struct slab's objects:15).
const maxFreelist = 1 << 15

// freePointer decodes the free pointer stored at ptrAddr, as
// freelist_ptr_decode: with CONFIG_SLAB_FREELIST_HARDENED, stored ^
// s->random ^ swab(ptrAddr) (5.7+, 1ad53d9fa3f6 "slub: improve bit
// diffusion for freelist ptr obfuscation").
func (c *slubCache) freePointer(stored, ptrAddr uint64) uint64 {
	if !c.hardened {
		return stored
	}
	return stored ^ c.random ^ bits.ReverseBytes64(ptrAddr)
}

// walkFreelist adds the objects of the freelist starting at first to
// set, stopping with an error on a fault, a cycle or an endless list.
func (c *slubCache) walkFreelist(first uint64, what string, set map[uint64]bool) error {
	var b [8]byte
	seen := 0
	for obj := first; obj != 0; {
		if set[obj] {
			return fmt.Errorf("slab cache %s at %#x: %s freelist: object %#x twice (a cycle): %w", c.name, c.addr, what, obj, objects.ErrCorrupt)
		}
		if seen++; seen > maxFreelist {
			return fmt.Errorf("slab cache %s at %#x: %s freelist longer than %d: %w", c.name, c.addr, what, maxFreelist, objects.ErrCorrupt)
		}
		set[obj] = true
		if err := c.p.Read(b[:], obj+c.offset); err != nil {
			return fmt.Errorf("slab cache %s at %#x: %s freelist: object %#x: %w", c.name, c.addr, what, obj, err)
		}
		obj = c.freePointer(binary.LittleEndian.Uint64(b[:]), obj+c.offset)
	}
	return nil
}

// slabFree returns the free objects of a slab: its freelist's and the
// CPUs'.
func (c *slubCache) slabFree(slab uint64) (map[uint64]bool, error) {
	fl, err := c.p.UintAt("struct slab", slab, "freelist")
	if err != nil {
		return nil, err
	}
	set := map[uint64]bool{}
	if err := c.walkFreelist(fl, fmt.Sprintf("slab %#x", slab), set); err != nil {
		return set, err
	}
	return set, nil
}

// SlabObject is what slab_object_info says of an address in a slab.
type SlabObject struct {
	Cache     objects.Hex `json:"cache"`
	CacheName string      `json:"cache_name"`
	Slab      objects.Hex `json:"slab"` // the struct slab (its head page)
	// Object is the start of the object holding the address; Offset is
	// the address's distance from it.
	Object objects.Hex `json:"object"`
	Offset uint64      `json:"offset"`
	// State is "allocated", "free", or "unknown" when a freelist could
	// not be read (FreelistErr says why).
	State       string `json:"state"`
	FreelistErr string `json:"freelist_error,omitempty"`
	// Padding: the address is in the slab past its last object.
	Padding bool `json:"padding,omitempty"`
}

// SlabObjectInfo says which slab object holds addr, an address in the
// direct map (drgn's slab_object_info): the slab of its page's compound
// head, the object there, and whether it is allocated, free on the
// slab's freelist or a CPU's. False when addr is not in a slab page.
func SlabObjectInfo(p *objects.Program, addr uint64) (*SlabObject, bool, error) {
	l, err := ReadMemLayout(p)
	if err != nil {
		return nil, false, err
	}
	if !l.InDirectMap(addr) {
		return nil, false, nil
	}
	pfn := (addr - l.PageOffset) >> PageShift
	head, err := CompoundHead(p, l.PFNToPage(pfn))
	if err != nil {
		return nil, false, err
	}
	ok, err := PageSlab(p, head)
	if err != nil || !ok {
		return nil, false, err
	}
	_, ss, err := p.ReadStruct("struct slab", head)
	if err != nil {
		return nil, false, err
	}
	cache, nobj := ss.Uint("slab_cache"), ss.Uint("objects")
	if err := ss.Err(); err != nil {
		return nil, false, fmt.Errorf("slab %#x: %w", head, err)
	}
	cv, err := p.ObjectOf("struct kmem_cache", cache)
	if err != nil {
		return nil, false, err
	}
	c, err := cacheFor(p, cv)
	if err != nil {
		return nil, false, fmt.Errorf("slab %#x: %w", head, err)
	}
	first := l.PhysToVirt(l.PageToPFN(head)<<PageShift) + c.redLeft
	out := &SlabObject{Cache: objects.Hex(cache), CacheName: c.name, Slab: objects.Hex(head)}
	if addr < first {
		out.Padding, out.State = true, "unknown"
		return out, true, nil
	}
	idx := (addr - first) / c.size
	out.Object = objects.Hex(first + idx*c.size)
	out.Offset = addr - uint64(out.Object)
	if idx >= nobj {
		out.Padding, out.State = true, "unknown"
		return out, true, nil
	}
	free, ferr := c.slabFree(head)
	switch {
	case c.cpuFree[uint64(out.Object)] || free[uint64(out.Object)]:
		out.State = "free"
	case ferr != nil || c.cpuErr != nil:
		out.State = "unknown"
		out.FreelistErr = errors.Join(ferr, c.cpuErr).Error()
	default:
		out.State = "allocated"
	}
	return out, true, nil
}

// cacheFor returns the cache's decoder, made once per cache.
func cacheFor(p *objects.Program, cache objects.Value) (*slubCache, error) {
	v, err := p.Memo(fmt.Sprintf("linux slub cache %#x", cache.Addr()), func() (any, error) {
		return newSlubCache(cache)
	})
	if err != nil {
		return nil, err
	}
	return v.(*slubCache), nil
}

// SlabCacheForEachAllocatedObject yields every allocated object of a
// slab cache (a struct kmem_cache, or a pointer to one) as an object of
// the named type, as drgn's slab_cache_for_each_allocated_object: it
// walks every struct page of memory (SLUB keeps no list of full slabs)
// for the head pages of the cache's slabs, and yields each object of
// each that is on no freelist. Pages whose struct page a dump lacks are
// skipped; a freelist that cannot be read ends the walk with an error.
func SlabCacheForEachAllocatedObject(cache objects.Value, typeName string) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		p := cache.Program()
		t, err := p.Type(typeName)
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		ca, err := objects.ObjectAddr(cache, "slab_cache_for_each_allocated_object")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		c, err := newSlubCache(cache)
		if err == nil {
			err = c.cpuErr
		}
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		for slab, err := range ForEachSlabPage(p) {
			if err != nil {
				yield(objects.Value{}, err)
				return
			}
			if slab.Cache != ca {
				continue
			}
			free, err := c.slabFree(slab.Page)
			if err != nil {
				yield(objects.Value{}, err)
				return
			}
			l, _ := ReadMemLayout(p)
			first := l.PhysToVirt(slab.PFN<<PageShift) + c.redLeft
			for i := range slab.Objects {
				o := first + i*c.size
				if free[o] || c.cpuFree[o] {
					continue
				}
				if !yield(p.Object(t, o), nil) {
					return
				}
			}
		}
	}
}

// SlabPage is a slab found by ForEachSlabPage.
type SlabPage struct {
	Page    uint64 // the head struct page (the struct slab)
	PFN     uint64
	Cache   uint64 // slab_cache
	Objects uint64 // objects
	InUse   uint64 // inuse
}

// ForEachSlabPage yields the slab of every head page that is a slab's,
// by pfn, reading the struct pages 64 at a time: the whole-memory walk
// under SlabCacheForEachAllocatedObject. A run of struct pages the dump
// lacks (holes in memory, filtered pages) is skipped.
func ForEachSlabPage(p *objects.Program) iter.Seq2[SlabPage, error] {
	return func(yield func(SlabPage, error) bool) {
		l, err := ReadMemLayout(p)
		if err != nil {
			yield(SlabPage{}, err)
			return
		}
		tl, err := readPageTypeLayout(p)
		if err != nil {
			yield(SlabPage{}, err)
			return
		}
		off := func(path string) uint64 {
			o, _, e := p.MemberOffset("struct page", path)
			if e != nil && err == nil {
				err = e
			}
			return o
		}
		flagsOff, chOff, ptOff := off("flags"), off("compound_head"), off("page_type")
		so := func(path string) (uint64, uint32, uint32) {
			v, e := p.ObjectOf("struct slab", 0)
			if e == nil {
				v, e = v.Path(path)
			}
			if e != nil {
				if err == nil {
					err = e
				}
				return 0, 0, 0
			}
			bo, bl, _ := v.BitField()
			return v.Addr(), bo, bl
		}
		cacheOff, _, _ := so("slab_cache")
		objOff, objBit, objLen := so("objects")
		inuseOff, inBit, inLen := so("inuse")
		if err != nil {
			yield(SlabPage{}, fmt.Errorf("slab pages: %w", err))
			return
		}
		field := func(b []byte, off uint64, bit, n uint32) uint64 {
			x := binary.LittleEndian.Uint64(b[off:])
			if n == 0 {
				return x
			}
			return x >> bit & (1<<n - 1)
		}
		// A filtered dump says which page frames it holds: a slab on a
		// frame it lacks has no object to read, so its struct pages are
		// not read either (on a -d 31 dump, most of the vmemmap).
		dumped, _ := p.Memory().(interface {
			AnyPageDumped(lo, hi uint64) (bool, bool)
		})
		const chunk = 64
		buf := make([]byte, chunk*l.PageSize)
		for base := uint64(0); base < l.MaxPFN; base += chunk {
			n := min(chunk, l.MaxPFN-base)
			if dumped != nil {
				if any, ok := dumped.AnyPageDumped(base, base+n); ok && !any {
					continue
				}
			}
			b := buf[:n*l.PageSize]
			if err := p.Read(b, l.PFNToPage(base)); err != nil {
				continue // a hole: no struct pages there
			}
			for i := range n {
				pg := b[i*l.PageSize : (i+1)*l.PageSize]
				if binary.LittleEndian.Uint64(pg[chOff:])&1 != 0 {
					continue // a tail page
				}
				slab := false
				if tl.slabFlag >= 0 {
					slab = binary.LittleEndian.Uint64(pg[flagsOff:])&(1<<tl.slabFlag) != 0
				} else {
					slab = tl.pageType(uint64(binary.LittleEndian.Uint32(pg[ptOff:]))) == "slab"
				}
				if !slab {
					continue
				}
				pfn := base + i
				sp := SlabPage{Page: l.PFNToPage(pfn), PFN: pfn, Cache: binary.LittleEndian.Uint64(pg[cacheOff:]),
					Objects: field(pg, objOff, objBit, objLen), InUse: field(pg, inuseOff, inBit, inLen)}
				if !yield(sp, nil) {
					return
				}
			}
		}
	}
}
