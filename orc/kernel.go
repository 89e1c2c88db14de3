package orc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// Kernel is a kernel's ORC data and the stacks its unwinder walks, read
// from memory through prog: the vmlinux tables (__start_orc_unwind_ip,
// __start_orc_unwind and the orc_lookup fast table, read a 256-byte text
// block at a time as lookups need them) and each module's
// (mod->arch.orc_unwind_ip, orc_unwind, num_orcs, read when a module
// address is first looked up). Safe for concurrent use.
type Kernel struct {
	prog   *objects.Program
	layout Layout

	// vmlinux
	ipStart, orcStart uint64 // __start_orc_unwind_ip, __start_orc_unwind
	num               int    // entries
	textStart         uint64 // LOOKUP_START_IP (_stext)
	textStop          uint64 // LOOKUP_STOP_IP (_etext)
	numBlocks         int    // lookup_num_blocks
	lookupAddr        uint64 // orc_lookup

	mu      sync.Mutex
	lookup  []uint32 // orc_lookup, read on first use
	lookErr error
	blocks  map[int]*Table
	whole   *Table // the full vmlinux table, for .init text (rare)

	mods     moduleCache
	bpf      bpfCache
	lcache   layoutCache
	stacks   stackCache
	syms     symbolCache
	maxDepth int
	symtab   *kallsyms.Table // for code analysis (WithSymbols)
}

// Option configures a Kernel.
type Option func(*Kernel)

// WithMaxFrames bounds a trace to n frames (default 256).
func WithMaxFrames(n int) Option { return func(k *Kernel) { k.maxDepth = n } }

// Load finds the kernel's ORC tables and decides their layout, asking
// BTF (struct orc_entry) first, then the orc_header hash (v6.4+), then
// release (the kernel's OSRELEASE, "6.1.0-56-amd64"). Nothing else is
// read until a lookup needs it. Errors wrap ErrNotSupported (no ORC
// tables, an unknown layout), ErrFormat (tables whose sizes disagree), or
// the symbol or memory error.
func Load(prog *objects.Program, release string, opts ...Option) (*Kernel, error) {
	k := &Kernel{prog: prog, blocks: map[int]*Table{}, maxDepth: 256}
	for _, o := range opts {
		o(k)
	}
	sym := func(name string) (uint64, error) {
		a, err := prog.Symbol(name)
		if err != nil {
			return 0, fmt.Errorf("load ORC: symbol %s: %w", name, err)
		}
		return a, nil
	}
	var err error
	if k.ipStart, err = sym("__start_orc_unwind_ip"); err != nil {
		return nil, fmt.Errorf("%w (a kernel without CONFIG_UNWINDER_ORC?): %w", err, ErrNotSupported)
	}
	ipStop, err := sym("__stop_orc_unwind_ip")
	if err != nil {
		return nil, err
	}
	if k.orcStart, err = sym("__start_orc_unwind"); err != nil {
		return nil, err
	}
	orcStop, err := sym("__stop_orc_unwind")
	if err != nil {
		return nil, err
	}
	if ipStop < k.ipStart || orcStop < k.orcStart || (ipStop-k.ipStart)%rawIPSize != 0 || (orcStop-k.orcStart)%rawEntrySize != 0 ||
		(ipStop-k.ipStart)/rawIPSize != (orcStop-k.orcStart)/rawEntrySize || (ipStop-k.ipStart)/rawIPSize > maxEntries {
		return nil, formatErr("vmlinux", -1, k.ipStart, ".orc_unwind_ip %#x-%#x and .orc_unwind %#x-%#x do not hold the same number of entries", k.ipStart, ipStop, k.orcStart, orcStop)
	}
	k.num = int((ipStop - k.ipStart) / rawIPSize)
	if k.textStart, err = sym("_stext"); err != nil {
		return nil, err
	}
	if k.textStop, err = sym("_etext"); err != nil {
		return nil, err
	}
	if k.lookupAddr, err = sym("orc_lookup"); err != nil {
		return nil, err
	}
	lookupEnd, err := sym("orc_lookup_end")
	if err != nil {
		return nil, err
	}
	nb, err := sym("lookup_num_blocks")
	if err != nil {
		return nil, err
	}
	v, err := prog.ObjectOf("unsigned int", nb)
	if err == nil {
		var n uint64
		n, err = v.Uint()
		k.numBlocks = int(n)
	}
	if err != nil {
		return nil, fmt.Errorf("load ORC: read lookup_num_blocks: %w", err)
	}
	if lookupEnd < k.lookupAddr || k.numBlocks == 0 || uint64(k.numBlocks) > (lookupEnd-k.lookupAddr)/rawLookupSize {
		// lookup_num_blocks is 0 when unwind_init found the tables bad and
		// disabled the unwinder.
		return nil, formatErr("orc_lookup", -1, k.lookupAddr, "lookup_num_blocks is %d for a table of %d slots (the kernel disables its unwinder when its tables are bad)", k.numBlocks, (lookupEnd-k.lookupAddr)/rawLookupSize)
	}
	if k.layout, err = decideLayout(prog, release); err != nil {
		return nil, err
	}
	return k, nil
}

// decideLayout asks BTF, then the orc_header hash, then the release.
func decideLayout(prog *objects.Program, release string) (Layout, error) {
	l, err := LayoutFromBTF(prog.Types())
	if err == nil || !errors.Is(err, ErrNotFound) {
		return l, err
	}
	// .orc_header: v6.4+ (b9f174c811e3 "x86/unwind/orc: add ELF section
	// with ORC version identifier").
	if a, serr := prog.Symbol("__start_orc_header"); serr == nil {
		hash := make([]byte, 20)
		if _, rerr := prog.Memory().ReadVirt(hash, a); rerr != nil {
			return Layout{}, fmt.Errorf("read the ORC header at %#x: %w", a, rerr)
		}
		return LayoutFromHeader(hash)
	}
	return LayoutFromRelease(release)
}

// Layout returns the entry layout in use and how it was decided.
func (k *Kernel) Layout() Layout { return k.layout }

// Program returns the program the Kernel reads.
func (k *Kernel) Program() *objects.Program { return k.prog }

// read reads exactly len(p) bytes at addr.
func (k *Kernel) read(p []byte, addr uint64) error {
	n, err := k.prog.Memory().ReadVirt(p, addr)
	if err != nil {
		return err
	}
	if n < len(p) {
		return fmt.Errorf("read %d bytes at %#x: short read of %d: %w", len(p), addr, n, ErrCorrupt)
	}
	return nil
}

// readTable reads entries [start, stop) of an image's tables.
func (k *Kernel) readTable(name string, ipStart, orcStart uint64, start, stop int) (*Table, error) {
	ips := make([]byte, (stop-start)*rawIPSize)
	orcs := make([]byte, (stop-start)*rawEntrySize)
	ipAddr := ipStart + uint64(start*rawIPSize)
	if err := k.read(ips, ipAddr); err != nil {
		return nil, fmt.Errorf("read %s .orc_unwind_ip[%d:%d]: %w", name, start, stop, err)
	}
	if err := k.read(orcs, orcStart+uint64(start*rawEntrySize)); err != nil {
		return nil, fmt.Errorf("read %s .orc_unwind[%d:%d]: %w", name, start, stop, err)
	}
	return NewTable(name, ipAddr, ips, orcs, k.layout)
}

// Source says which table an entry came from.
type Source struct {
	Image string // "vmlinux", a module's name, or "" for a built-in entry
	Index int    // the entry's index in the image's table; -1 for built-ins
	IP    uint64 // the entry's start address
}

// Find returns the ORC entry for ip as the kernel's orc_find: the null
// entry for ip 0; vmlinux text through the orc_lookup block of ip; .init
// text by the whole table; a module's text by its table. Errors wrap
// ErrNotFound (no table covers ip: BPF or other generated code, or not
// text), ErrFormat (a bad lookup block or table) or a memory error.
func (k *Kernel) Find(ip uint64) (Entry, Source, error) {
	if ip == 0 {
		return nullEntry, Source{Index: -1}, nil
	}
	if ip >= k.textStart && ip < k.textStop {
		return k.findVmlinux(ip)
	}
	if k.initText(ip) {
		t, err := k.wholeVmlinux()
		if err != nil {
			return Entry{}, Source{}, err
		}
		e, i, _ := t.Find(ip)
		return e, Source{Image: "vmlinux", Index: i, IP: t.IP(i)}, nil
	}
	m, err := k.moduleAt(ip)
	if err != nil {
		return Entry{}, Source{}, err
	}
	if m != nil {
		t, err := k.moduleTable(m)
		if err != nil {
			return Entry{}, Source{}, err
		}
		if t != nil {
			if e, i, ok := t.Find(ip); ok {
				return e, Source{Image: m.Name, Index: i, IP: t.IP(i)}, nil
			}
		}
	}
	return Entry{}, Source{}, fmt.Errorf("ORC entry for %#x: no table covers it: %w", ip, ErrNotFound)
}

func (k *Kernel) initText(ip uint64) bool {
	s, err1 := k.prog.Symbol("_sinittext")
	e, err2 := k.prog.Symbol("_einittext")
	return err1 == nil && err2 == nil && ip >= s && ip < e
}

func (k *Kernel) readLookup() ([]uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lookup == nil && k.lookErr == nil {
		b := make([]byte, k.numBlocks*rawLookupSize)
		if err := k.read(b, k.lookupAddr); err != nil {
			k.lookErr = fmt.Errorf("read orc_lookup (%d blocks): %w", k.numBlocks, err)
		} else {
			k.lookup = make([]uint32, k.numBlocks)
			for i := range k.lookup {
				k.lookup[i] = binary.LittleEndian.Uint32(b[i*rawLookupSize:])
			}
		}
	}
	return k.lookup, k.lookErr
}

func (k *Kernel) findVmlinux(ip uint64) (Entry, Source, error) {
	lookup, err := k.readLookup()
	if err != nil {
		return Entry{}, Source{}, err
	}
	idx := int((ip - k.textStart) / lookupBlock)
	if idx >= len(lookup)-1 {
		return Entry{}, Source{}, formatErr("orc_lookup", idx, k.lookupAddr+uint64(idx*rawLookupSize), "block of %#x is past lookup_num_blocks-1 (%d)", ip, len(lookup)-1)
	}
	start, stop := int(lookup[idx]), int(lookup[idx+1])+1
	if start >= k.num || stop > k.num || start >= stop {
		return Entry{}, Source{}, formatErr("orc_lookup", idx, k.lookupAddr+uint64(idx*rawLookupSize), "block of %#x spans entries %d-%d of %d", ip, start, stop, k.num)
	}
	k.mu.Lock()
	t := k.blocks[idx]
	k.mu.Unlock()
	if t == nil {
		t, err = k.readTable("vmlinux", k.ipStart, k.orcStart, start, stop)
		if err != nil {
			return Entry{}, Source{}, err
		}
		k.mu.Lock()
		k.blocks[idx] = t
		k.mu.Unlock()
	}
	e, i, ok := t.Find(ip)
	if !ok {
		return Entry{}, Source{}, fmt.Errorf("ORC entry for %#x: %w", ip, ErrNotFound)
	}
	return e, Source{Image: "vmlinux", Index: start + i, IP: t.IP(i)}, nil
}

func (k *Kernel) wholeVmlinux() (*Table, error) {
	k.mu.Lock()
	t := k.whole
	k.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := k.readTable("vmlinux", k.ipStart, k.orcStart, 0, k.num)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.whole = t
	k.mu.Unlock()
	return t, nil
}
