package kallsyms

import (
	"cmp"
	"slices"
	"sort"
	"strings"
)

// image holds the symbols of vmlinux, decoded once, in kallsyms order
// (the kernel's index order, which scripts/kallsyms sorts by address), as
// parallel arrays: one string for every name and no string header per
// symbol.
type image struct {
	names  string   // every name, concatenated
	ends   []uint32 // ends[i] is where name i ends in names; it starts at ends[i-1]
	addrs  []uint64
	types  []byte
	byAddr []uint32 // nil when addrs is sorted; else the indices in address order
	byName []uint32 // the indices sorted by name, then address, then index
	// lo and hi bound the addresses an address lookup answers from
	// vmlinux: _text (or _stext, else the first symbol) to the last
	// symbol (which may lie past _end: sme_workarea). Per-CPU symbols below _text (x86-64 before 6.15) are
	// offsets, not addresses, and are found by name only.
	lo, hi uint64
	info   Info
}

func (im *image) len() int { return len(im.addrs) }

func (im *image) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = im.ends[i-1]
	}
	return im.names[start:im.ends[i]]
}

// idxAt returns the index of the k-th symbol in address order.
func (im *image) idxAt(k int) int {
	if im.byAddr == nil {
		return k
	}
	return int(im.byAddr[k])
}

func (im *image) addrAt(k int) uint64 { return im.addrs[im.idxAt(k)] }

// finish indexes a filled image: address order when the table is not
// sorted, the name index unless one is set, and the lookup range.
func (im *image) finish() {
	n := im.len()
	if !slices.IsSorted(im.addrs) {
		im.byAddr = make([]uint32, n)
		for i := range im.byAddr {
			im.byAddr[i] = uint32(i)
		}
		slices.SortStableFunc(im.byAddr, func(a, b uint32) int { return cmp.Compare(im.addrs[a], im.addrs[b]) })
	}
	if im.byName == nil {
		im.sortNames()
	}
	if n == 0 {
		return
	}
	im.lo, im.hi = im.addrAt(0), im.addrAt(n-1)
	if i := im.first("_text"); i >= 0 {
		im.lo = im.addrs[i]
	} else if i := im.first("_stext"); i >= 0 {
		im.lo = im.addrs[i]
	}
}

// sortNames builds the name index by sorting.
func (im *image) sortNames() {
	idx := make([]uint32, im.len())
	for i := range idx {
		idx[i] = uint32(i)
	}
	slices.SortFunc(idx, im.compareNames)
	im.byName = idx
	im.info.NameIndex = "sorted"
}

// compareNames orders symbol indices by name, then address, then index,
// as scripts/kallsyms orders kallsyms_seqs_of_names.
func (im *image) compareNames(a, b uint32) int {
	if c := strings.Compare(im.name(int(a)), im.name(int(b))); c != 0 {
		return c
	}
	if c := cmp.Compare(im.addrs[a], im.addrs[b]); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// lookup returns the indices of the symbols called name, by address.
func (im *image) lookup(name string) []uint32 {
	k := sort.Search(len(im.byName), func(k int) bool { return im.name(int(im.byName[k])) >= name })
	e := k
	for e < len(im.byName) && im.name(int(im.byName[e])) == name {
		e++
	}
	return im.byName[k:e]
}

// first returns the index of the lowest-addressed symbol called name, or -1.
func (im *image) first(name string) int {
	if ix := im.lookup(name); len(ix) > 0 {
		return int(ix[0])
	}
	return -1
}

// symbol returns symbol i with its implied size.
func (im *image) symbol(i int) Symbol {
	return Symbol{Name: im.name(i), Addr: im.addrs[i], Type: im.types[i], Size: im.sizeOf(im.addrs[i])}
}

// sizeOf returns the distance from addr to the next higher symbol
// address, 0 when there is none or when it crosses from below lo (the
// per-CPU offsets) into the image.
func (im *image) sizeOf(addr uint64) uint64 {
	k := sort.Search(im.len(), func(k int) bool { return im.addrAt(k) > addr })
	if k == im.len() {
		return 0
	}
	next := im.addrAt(k)
	if addr < im.lo && next >= im.lo {
		return 0
	}
	return next - addr
}

// locate finds the symbol holding addr: the first (in kallsyms order) of
// the symbols at the highest address not above addr, as the kernel's
// get_symbol_pos. The last symbol holds only its own address.
func (im *image) locate(addr uint64) (Location, bool) {
	if im.len() == 0 || addr < im.lo || addr > im.hi {
		return Location{}, false
	}
	k := sort.Search(im.len(), func(k int) bool { return im.addrAt(k) > addr }) - 1
	if k < 0 {
		return Location{}, false
	}
	for k > 0 && im.addrAt(k-1) == im.addrAt(k) {
		k--
	}
	s := im.symbol(im.idxAt(k))
	if s.Size == 0 && addr != s.Addr {
		return Location{}, false
	}
	return Location{Symbol: s, Offset: addr - s.Addr}, true
}

// builder fills an image symbol by symbol.
type builder struct {
	im    *image
	names []byte
}

func newBuilder(n int) *builder {
	return &builder{im: &image{
		ends:  make([]uint32, 0, n),
		addrs: make([]uint64, 0, n),
		types: make([]byte, 0, n),
	}, names: make([]byte, 0, n*24)}
}

func (b *builder) add(name []byte, addr uint64, typ byte) {
	b.names = append(b.names, name...)
	b.im.ends = append(b.im.ends, uint32(len(b.names)))
	b.im.addrs = append(b.im.addrs, addr)
	b.im.types = append(b.im.types, typ)
}

// done returns the image with its names; the caller indexes it (finish).
func (b *builder) done() *image {
	b.im.names = string(b.names)
	b.names = nil
	return b.im
}
