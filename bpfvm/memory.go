package bpfvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Memory is the read-only base of a Machine's address space: kernel
// virtual memory, such as kinspect's vmcore.KernelAS. A short read
// returns the bytes read before the first unreadable one, and an error.
type Memory interface {
	ReadVirt(p []byte, vaddr uint64) (int, error)
}

// The machine's own memory, in a user-space range no kernel address
// falls in (see the package documentation).
const (
	// StackBase is the start of the stacks: frame i's stack is the
	// StackSize bytes ending at StackBase + (i+1)*StackStride, its R10.
	StackBase   = 0x00007e0000000000
	StackStride = 0x1000
	// StackSize is MAX_BPF_STACK, each frame's stack.
	StackSize = 512
	// FuncBase is the start of the code addresses the machine gives BPF
	// functions whose JIT address it does not know.
	FuncBase = 0x00007e4000000000
	// AllocBase is the start of the regions Alloc returns.
	AllocBase = 0x00007e8000000000
	// AllocLimit is the most Alloc hands out, in all (Options.MaxAlloc
	// may lower it).
	AllocLimit = 1 << 30

	allocEnd = 0x00007f0000000000
	pageSize = 4096
)

// Region is memory the machine allocated (Alloc): a context, packet
// data, a helper's scratch space.
type Region struct {
	Name     string
	Addr     uint64
	ReadOnly bool
	data     []byte
}

// Size is the region's size in bytes.
func (r *Region) Size() int { return len(r.data) }

// End is the address after the region's last byte.
func (r *Region) End() uint64 { return r.Addr + uint64(len(r.data)) }

// Bytes returns the region's contents; writes to the slice are seen by
// the program.
func (r *Region) Bytes() []byte { return r.data }

// page is one page of the base memory as the run sees it.
type page struct {
	data [pageSize]byte
	// lim: bytes [0, lim) were read from the base; err says why byte lim
	// could not be.
	lim int
	err error
	// orig is data before the run's first write to the page, nil if it
	// was never written.
	orig *[pageSize]byte
	// owned: the page is the machine's own memory at a kernel address
	// (MapAt), not the base's: its writes are not Changes.
	owned bool
}

// Change is a range of base memory the runs changed: the bytes before the
// first write and now.
type Change struct {
	Addr   uint64
	Before []byte
	After  []byte
}

// mem is the address space: stacks, regions and the overlaid base.
type mem struct {
	base   Memory
	pages  map[uint64]*page
	lastPN uint64
	lastPg *page

	regions   []*Region // by Addr
	lastReg   *Region
	nextAlloc uint64
	allocated int

	stacks [MaxCallFrames][StackSize]byte
	depth  int // active frames: stacks[0:depth]
	// stackLo and stk are the top frame's stack, the fast path.
	stackLo uint64
	stk     *[StackSize]byte
}

func stackLo(frame int) uint64 { return StackBase + uint64(frame+1)*StackStride - StackSize }

// stackTop is frame's R10.
func stackTop(frame int) uint64 { return StackBase + uint64(frame+1)*StackStride }

// setDepth makes frames [0, d) active, d-1 the top; a newly active frame
// gets a zeroed stack.
func (s *mem) setDepth(d int) {
	for i := s.depth; i < d; i++ {
		s.stacks[i] = [StackSize]byte{}
	}
	s.depth = d
	if d > 0 {
		s.stackLo, s.stk = stackLo(d-1), &s.stacks[d-1]
	} else {
		s.stackLo, s.stk = 0, &s.stacks[0]
	}
}

// Alloc allocates a zeroed region of size bytes at AllocBase or above,
// followed by an unmapped guard page. Errors wrap ErrNoMemory.
func (m *Machine) Alloc(name string, size int, readOnly bool) (*Region, error) {
	limit := AllocLimit
	if m.opts.MaxAlloc > 0 && m.opts.MaxAlloc < limit {
		limit = m.opts.MaxAlloc
	}
	if size < 0 || size > limit-m.allocated {
		return nil, fmt.Errorf("bpfvm: alloc %q of %d bytes: %d bytes already allocated of %d: %w", name, size, m.allocated, limit, ErrNoMemory)
	}
	if m.nextAlloc == 0 {
		m.nextAlloc = AllocBase
	}
	r := &Region{Name: name, Addr: m.nextAlloc, ReadOnly: readOnly, data: make([]byte, size)}
	m.nextAlloc += (uint64(size)+pageSize-1)&^(pageSize-1) + pageSize
	m.allocated += size
	m.regions = append(m.regions, r)
	return r, nil
}

// MapAt makes the pages holding [addr, addr+size) the machine's own
// zeroed, writable memory at those kernel addresses: memory a helper
// allocates where the kernel would have allocated it at an address
// computed from others, as the copies of a per-CPU value sit at the
// value's address plus each CPU's per-CPU offset. Only pages the base
// memory cannot read at all may be mapped (a page mapped already is
// kept): what the base holds is never hidden. Writes to them are not
// Changes and Revert keeps them. Errors wrap ErrFault (a page readable in
// the base, or an address of the machine's own ranges) or ErrNoMemory.
func (m *Machine) MapAt(addr uint64, size int) error {
	if size <= 0 {
		return nil
	}
	end := addr + uint64(size)
	if end < addr || addr < 1<<63 {
		return fmt.Errorf("bpfvm: map %d bytes at %#x: not a kernel address range: %w", size, addr, ErrFault)
	}
	first, last := addr/pageSize, (end-1)/pageSize
	limit := AllocLimit
	if m.opts.MaxAlloc > 0 && m.opts.MaxAlloc < limit {
		limit = m.opts.MaxAlloc
	}
	var fresh []*page
	for pn := first; pn <= last; pn++ {
		pg := m.page(pn)
		if pg.owned {
			continue
		}
		if pg.lim > 0 || pg.orig != nil {
			return &MemError{Addr: pn * pageSize, Size: pageSize, Write: true, Reason: "map: the base memory holds this page"}
		}
		fresh = append(fresh, pg)
	}
	if len(fresh)*pageSize > limit-m.allocated {
		return fmt.Errorf("bpfvm: map %d pages at %#x: %d bytes already allocated of %d: %w", len(fresh), addr, m.allocated, limit, ErrNoMemory)
	}
	for _, pg := range fresh {
		*pg = page{lim: pageSize, owned: true}
		m.allocated += pageSize
	}
	return nil
}

// Regions returns the regions allocated, by address.
func (m *Machine) Regions() []*Region { return append([]*Region(nil), m.regions...) }

// RegionAt returns the region holding addr.
func (m *Machine) RegionAt(addr uint64) (*Region, bool) {
	if r := m.lastReg; r != nil && addr-r.Addr < uint64(len(r.data)) {
		return r, true
	}
	k := sort.Search(len(m.regions), func(k int) bool { return m.regions[k].Addr > addr })
	if k == 0 {
		return nil, false
	}
	r := m.regions[k-1]
	if addr-r.Addr >= uint64(len(r.data)) {
		return nil, false
	}
	m.lastReg = r
	return r, true
}

// Read reads len(p) bytes at addr as the program would. Errors are
// *MemError values wrapping ErrFault.
func (m *Machine) Read(addr uint64, p []byte) error { return m.access(addr, p, false) }

// Write writes p at addr as the program would: base memory through the
// overlay. Errors are *MemError values wrapping ErrFault.
func (m *Machine) Write(addr uint64, p []byte) error { return m.access(addr, p, true) }

// ReadUint reads a little-endian integer of size 1, 2, 4 or 8 bytes.
func (m *Machine) ReadUint(addr uint64, size int) (uint64, error) { return m.load(addr, size) }

// WriteUint writes the low size bytes (1, 2, 4 or 8) of v, little-endian.
func (m *Machine) WriteUint(addr uint64, size int, v uint64) error { return m.store(addr, size, v) }

// ReadCString reads the NUL-terminated string at addr, at most max bytes
// with the NUL. It returns the bytes before the NUL and whether the NUL
// was found; an error (wrapping ErrFault) if a byte before it could not
// be read.
func (m *Machine) ReadCString(addr uint64, max int) ([]byte, bool, error) {
	var out []byte
	var b [64]byte
	for len(out) < max {
		n := min(len(b), max-len(out), int(pageSize-(addr+uint64(len(out)))%pageSize))
		if err := m.Read(addr+uint64(len(out)), b[:n]); err != nil {
			// Byte by byte up to the fault.
			for i := 0; i < n; i++ {
				if err := m.Read(addr+uint64(len(out)), b[:1]); err != nil {
					return out, false, err
				}
				if b[0] == 0 {
					return out, true, nil
				}
				out = append(out, b[0])
			}
			continue
		}
		for i := 0; i < n; i++ {
			if b[i] == 0 {
				return append(out, b[:i]...), true, nil
			}
		}
		out = append(out, b[:n]...)
	}
	return out, false, nil
}

// Changes returns the base memory the runs changed, by address: the
// bytes whose value differs from before the first write, in maximal
// ranges.
func (m *Machine) Changes() []Change {
	var pns []uint64
	for pn, pg := range m.pages {
		if pg.orig != nil {
			pns = append(pns, pn)
		}
	}
	sort.Slice(pns, func(a, b int) bool { return pns[a] < pns[b] })
	var out []Change
	for _, pn := range pns {
		pg := m.pages[pn]
		for i := 0; i < pageSize; {
			if pg.data[i] == pg.orig[i] {
				i++
				continue
			}
			j := i
			for j < pageSize && pg.data[j] != pg.orig[j] {
				j++
			}
			addr := pn*pageSize + uint64(i)
			if k := len(out) - 1; k >= 0 && out[k].Addr+uint64(len(out[k].After)) == addr {
				out[k].Before = append(out[k].Before, pg.orig[i:j]...)
				out[k].After = append(out[k].After, pg.data[i:j]...)
			} else {
				out = append(out, Change{Addr: addr, Before: append([]byte(nil), pg.orig[i:j]...), After: append([]byte(nil), pg.data[i:j]...)})
			}
			i = j
		}
	}
	return out
}

// Revert undoes every write to base memory.
func (m *Machine) Revert() {
	for _, pg := range m.pages {
		if pg.orig != nil {
			pg.data = *pg.orig
			pg.orig = nil
		}
	}
}

func (m *Machine) fault(addr uint64, n int, write bool, reason string, cause error) *MemError {
	return &MemError{Addr: addr, Size: n, Write: write, Reason: reason, Cause: cause}
}

// load reads a little-endian integer of size 1, 2, 4 or 8 bytes.
func (m *Machine) load(a uint64, size int) (uint64, error) {
	if o := a - m.stackLo; o < StackSize && o+uint64(size) <= StackSize {
		return getLE(m.stk[o:], size), nil
	}
	var b [8]byte
	if err := m.access(a, b[:size], false); err != nil {
		return 0, err
	}
	return getLE(b[:], size), nil
}

// store writes the low size bytes of v.
func (m *Machine) store(a uint64, size int, v uint64) error {
	if o := a - m.stackLo; o < StackSize && o+uint64(size) <= StackSize {
		putLE(m.stk[o:], size, v)
		return nil
	}
	var b [8]byte
	putLE(b[:], size, v)
	return m.access(a, b[:size], true)
}

func getLE(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func putLE(b []byte, size int, v uint64) {
	switch size {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
}

// errNoBase is the cause of a fault on base memory when there is none.
var errNoBase = errors.New("no base memory")

// access reads or writes p at addr, whatever it is.
func (m *Machine) access(addr uint64, p []byte, write bool) error {
	return m.span(addr, len(p), p, write)
}

// Check says whether n bytes at addr can be read (write false) or
// written, as Read and Write would, without copying: helpers check their
// buffers before allocating their size. Errors are *MemError values
// wrapping ErrFault.
func (m *Machine) Check(addr uint64, n int, write bool) error {
	if n < 0 {
		return m.fault(addr, n, write, "negative size", nil)
	}
	return m.span(addr, n, nil, write)
}

// span reads or writes n bytes at addr from or to p; only checks them if p
// is nil.
func (m *Machine) span(addr uint64, n int, p []byte, write bool) error {
	if n == 0 {
		return nil
	}
	if addr+uint64(n) < addr {
		return m.fault(addr, n, write, "range wraps around the address space", nil)
	}
	switch {
	case addr >= StackBase && addr < FuncBase:
		off := addr - StackBase
		frame := off / StackStride
		in := off % StackStride
		lo := uint64(StackStride - StackSize)
		switch {
		case frame >= MaxCallFrames:
			return m.fault(addr, n, write, "not mapped (beyond the stacks)", nil)
		case in < lo:
			return m.fault(addr, n, write, fmt.Sprintf("below frame %d's stack (stack guard)", frame), nil)
		case in+uint64(n) > StackStride:
			return m.fault(addr, n, write, fmt.Sprintf("crosses the end of frame %d's stack", frame), nil)
		case int(frame) >= m.depth:
			return m.fault(addr, n, write, fmt.Sprintf("stack of frame %d, which is not active", frame), nil)
		}
		s := m.stacks[frame][in-lo:]
		switch {
		case p == nil:
		case write:
			copy(s, p)
		default:
			copy(p, s)
		}
		return nil
	case addr >= FuncBase && addr < AllocBase:
		return m.fault(addr, n, write, "the code address of a BPF function", nil)
	case addr >= AllocBase && addr < allocEnd:
		r, ok := m.RegionAt(addr)
		if !ok {
			return m.fault(addr, n, write, "not in any allocated region", nil)
		}
		off := addr - r.Addr
		if off+uint64(n) > uint64(len(r.data)) {
			return m.fault(addr, n, write, fmt.Sprintf("crosses the end of region %q (%#x-%#x)", r.Name, r.Addr, r.End()), nil)
		}
		if write && r.ReadOnly {
			return m.fault(addr, n, write, fmt.Sprintf("region %q is read-only", r.Name), nil)
		}
		switch {
		case p == nil:
		case write:
			copy(r.data[off:], p)
		default:
			copy(p, r.data[off:])
		}
		return nil
	}
	if addr < pageSize {
		return m.fault(addr, n, write, "NULL pointer dereference", nil)
	}
	// Base memory, page by page.
	for done := 0; done < n; {
		a := addr + uint64(done)
		pg := m.page(a / pageSize)
		off := int(a % pageSize)
		k := min(n-done, pageSize-off)
		if off+k > pg.lim {
			bad := a
			if off < pg.lim {
				bad += uint64(pg.lim - off)
			}
			reason := "not readable in the base memory"
			if bad != addr {
				reason = fmt.Sprintf("byte at %#x not readable in the base memory", bad)
			}
			if write {
				reason += ", so the bytes before the write are unknown"
			}
			return m.fault(addr, n, write, reason, pg.err)
		}
		switch {
		case p == nil:
		case write:
			if pg.orig == nil && !pg.owned {
				o := pg.data
				pg.orig = &o
			}
			copy(pg.data[off:off+k], p[done:])
		default:
			copy(p[done:], pg.data[off:off+k])
		}
		done += k
	}
	return nil
}

// page returns base page pn, read on first use.
func (m *Machine) page(pn uint64) *page {
	if m.lastPg != nil && m.lastPN == pn {
		return m.lastPg
	}
	pg := m.pages[pn]
	if pg == nil {
		pg = new(page)
		if m.base == nil {
			pg.err = errNoBase
		} else {
			n, err := m.base.ReadVirt(pg.data[:], pn*pageSize)
			n = max(0, min(n, pageSize))
			pg.lim = n
			if n < pageSize {
				pg.err = err
				if err == nil {
					pg.err = errors.New("short read")
				}
			}
		}
		if m.pages == nil {
			m.pages = map[uint64]*page{}
		}
		m.pages[pn] = pg
	}
	m.lastPN, m.lastPg = pn, pg
	return pg
}
