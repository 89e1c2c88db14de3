package kallsyms

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Info describes where a table's vmlinux symbols came from.
type Info struct {
	Source string // "kernel memory" or "/proc/kallsyms"
	// Located says how tables in memory were found: "VMCOREINFO", or "by
	// shape (kallsyms_token_table at ADDR)" (FindLocations); "" when the
	// caller gave the Locations.
	Located  string
	Encoding Encoding
	Symbols  int // vmlinux symbols
	// BigNames counts the kallsyms_names entries with a two-byte length
	// (6.1+).
	BigNames int
	// NameIndex says how names are indexed: "kallsyms_seqs_of_names at
	// ADDR" (6.2+) or "sorted".
	NameIndex string
	// Checked counts the symbols whose decoded address agreed with
	// another source (VMCOREINFO), and Disagreed names those whose did
	// not (e.g. SYMBOL(mem_section), a pointer's value).
	Checked   int
	Disagreed []string
	// Hidden: every address read as zero (/proc/kallsyms under
	// kptr_restrict).
	Hidden bool
}

// Table is a kernel's symbol table: the vmlinux symbols (decoded from
// memory or parsed from /proc/kallsyms) merged with module and BPF
// symbols added by the callers that walk those lists (objects/). The
// vmlinux symbols are decoded on first use; module and BPF symbols are
// indexed on the first lookup after they change. A Table is safe for
// concurrent use.
type Table struct {
	once sync.Once
	load func() (*image, error)
	core *image
	err  error

	mu     sync.RWMutex
	extra  []Symbol // module and BPF symbols, by address once indexed
	byName []uint32 // extra's indices by name, then address
	dirty  bool
}

// maxImpliedSize bounds the extent of a module or BPF symbol whose size
// is unknown and that is the last of its module.
const maxImpliedSize = 1 << 20

func newTable(load func() (*image, error)) *Table { return &Table{load: load} }

// FromMemory returns a table whose vmlinux symbols are decoded from the
// kallsyms tables in mem on first use (see Decode).
func FromMemory(mem Memory, loc Locations) *Table {
	return newTable(func() (*image, error) { return decode(mem, loc) })
}

// Load decodes the vmlinux symbols now, if that has not been done, and
// returns the error of decoding them, which every lookup returns too:
// Decode's errors (ErrNotSupported, ErrFormat, or a memory read error).
func (t *Table) Load() error {
	_, err := t.image()
	return err
}

func (t *Table) image() (*image, error) {
	t.once.Do(func() {
		if t.load == nil {
			t.core = &image{}
			t.core.finish()
			return
		}
		t.core, t.err = t.load()
		t.load = nil
	})
	return t.core, t.err
}

// Info describes the vmlinux symbols, decoding them if needed; errors
// are Load's.
func (t *Table) Info() (Info, error) {
	im, err := t.image()
	if err != nil {
		return Info{}, err
	}
	return im.info, nil
}

// AddModule adds the symbols of a loaded module, replacing any it had.
// Each symbol's Module is set to name. Sizes should be given (st_size);
// a symbol of size 0 extends to the module's next symbol.
func (t *Table) AddModule(name string, syms []Symbol) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.extra = slices.DeleteFunc(t.extra, func(s Symbol) bool { return s.Module == name })
	for _, s := range syms {
		s.Module = name
		t.extra = append(t.extra, s)
	}
	t.dirty = true
}

// AddBPF adds the symbol of a BPF program or other BPF image (trampoline,
// dispatcher) of size bytes at addr, as bpf_ksym lists them; name is what
// /proc/kallsyms shows, for programs BPFProgName(tag, name). Its module
// is BPFModule and its type BPFSymbolType. Adding a symbol already
// present (same name and address) does nothing.
func (t *Table) AddBPF(name string, addr, size uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.extra {
		if s.Module == BPFModule && s.Addr == addr && s.Name == name {
			return
		}
	}
	t.extra = append(t.extra, Symbol{Name: name, Addr: addr, Size: size, Type: BPFSymbolType, Module: BPFModule})
	t.dirty = true
}

// indexExtra sorts the module and BPF symbols if they changed; called
// with t.mu held for reading, it returns with it held for reading.
func (t *Table) indexExtra() {
	if !t.dirty {
		return
	}
	t.mu.RUnlock()
	t.mu.Lock()
	if t.dirty {
		slices.SortStableFunc(t.extra, func(a, b Symbol) int { return cmp.Compare(a.Addr, b.Addr) })
		t.byName = make([]uint32, len(t.extra))
		for i := range t.byName {
			t.byName[i] = uint32(i)
		}
		slices.SortStableFunc(t.byName, func(a, b uint32) int { return strings.Compare(t.extra[a].Name, t.extra[b].Name) })
		t.dirty = false
	}
	t.mu.Unlock()
	t.mu.RLock()
}

// Lookup returns every symbol called name: vmlinux's by address, then
// modules' and BPF's. Sizes are filled as Symbol documents.
//
// Errors wrap ErrNotFound (a *NotFoundError with up to five close names)
// or the error of decoding the vmlinux symbols.
func (t *Table) Lookup(name string) ([]Symbol, error) {
	im, err := t.image()
	if err != nil {
		return nil, err
	}
	var out []Symbol
	for _, i := range im.lookup(name) {
		out = append(out, im.symbol(int(i)))
	}
	t.mu.RLock()
	t.indexExtra()
	k := sort.Search(len(t.byName), func(k int) bool { return t.extra[t.byName[k]].Name >= name })
	for ; k < len(t.byName) && t.extra[t.byName[k]].Name == name; k++ {
		out = append(out, t.extraSymbol(int(t.byName[k])))
	}
	t.mu.RUnlock()
	if len(out) == 0 {
		return nil, &NotFoundError{Name: name, suggest: func() []string { return t.suggest(name, maxSuggestions) }}
	}
	return out, nil
}

// Addr returns the address of the symbol called name, when exactly one
// symbol has it, or when one of them is global (upper-case type) in
// vmlinux. Errors wrap ErrNotFound, or are an "ambiguous" error listing
// the candidates.
func (t *Table) Addr(name string) (uint64, error) {
	syms, err := t.Lookup(name)
	if err != nil {
		return 0, err
	}
	if len(syms) == 1 {
		return syms[0].Addr, nil
	}
	var global []Symbol
	for _, s := range syms {
		if s.Module == "" && s.Type >= 'A' && s.Type <= 'Z' {
			global = append(global, s)
		}
	}
	if len(global) == 1 {
		return global[0].Addr, nil
	}
	var where []string
	for _, s := range syms {
		where = append(where, fmt.Sprintf("%#x", s.Addr))
	}
	return 0, fmt.Errorf("symbol %q is ambiguous: %d symbols, at %s", name, len(syms), strings.Join(where, ", "))
}

// Resolve picks one address for name, as a typed object engine needs
// it (it satisfies objects.Symbolizer and btfload.Symbolizer): Addr's
// answer, or, when several symbols share the name (static variables of
// several files), vmlinux's first data symbol of that name. Errors are
// Addr's.
func (t *Table) Resolve(name string) (uint64, error) {
	a, err := t.Addr(name)
	if err == nil || errors.Is(err, ErrNotFound) {
		return a, err
	}
	all, lerr := t.Lookup(name)
	if lerr != nil {
		return 0, err
	}
	for _, sym := range all {
		if sym.Module == "" && strings.ContainsRune("dDbBrR", rune(sym.Type)) {
			return sym.Addr, nil
		}
	}
	return 0, err
}

// NameAt returns the name of the symbol that starts exactly at addr: a
// call target, an operations table entry.
func (t *Table) NameAt(addr uint64) (string, bool) {
	l, err := t.LookupAddr(addr)
	if err != nil || l.Offset != 0 {
		return "", false
	}
	return l.Name, true
}

// Names calls f with every symbol's name, for suggestions of close
// names (objects.SymbolLister).
func (t *Table) Names(f func(string)) {
	for s := range t.All() {
		f(s.Name)
	}
}

// extraSymbol returns extra[i] with its size: given, else to the next
// symbol of the same module, else 0. Called with t.mu held.
func (t *Table) extraSymbol(i int) Symbol {
	s := t.extra[i]
	if s.Size != 0 {
		return s
	}
	for j := i + 1; j < len(t.extra); j++ {
		if t.extra[j].Addr > s.Addr && t.extra[j].Module == s.Module {
			s.Size = t.extra[j].Addr - s.Addr
			break
		}
	}
	return s
}

// LookupAddr finds the symbol holding addr: in vmlinux the nearest
// symbol at or below it (the first of aliases, as the kernel's
// kallsyms_lookup), within _text to the last symbol; in modules and BPF
// the nearest symbol at or below it whose size covers it. A module
// symbol of unknown size (from /proc/kallsyms) extends to its module's
// next symbol; the last one of its module, whose Size stays 0, to the next
// symbol of any module, at most maxImpliedSize bytes.
//
// Errors wrap ErrNotFound (a *NotFoundError), ErrHidden when the table's
// addresses are all zero, or the error of decoding the vmlinux symbols.
func (t *Table) LookupAddr(addr uint64) (Location, error) {
	im, err := t.image()
	if err != nil {
		return Location{}, err
	}
	if im.info.Hidden {
		return Location{}, fmt.Errorf("look up %#x: %w", addr, ErrHidden)
	}
	if l, ok := im.locate(addr); ok {
		return l, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	t.indexExtra()
	k := sort.Search(len(t.extra), func(k int) bool { return t.extra[k].Addr > addr }) - 1
	// Among symbols at the same address prefer one whose size covers addr.
	for ; k >= 0; k-- {
		s := t.extraSymbol(k)
		end := s.Addr + s.Size
		if s.Size == 0 {
			// Unknown size (/proc/kallsyms text), and no later symbol
			// in its module: up to the next symbol, within a bound.
			end = s.Addr + maxImpliedSize
			if next := sort.Search(len(t.extra), func(j int) bool { return t.extra[j].Addr > s.Addr }); next < len(t.extra) {
				end = min(end, t.extra[next].Addr)
			}
		}
		if addr < end || addr == s.Addr {
			return Location{Symbol: s, Offset: addr - s.Addr}, nil
		}
		if k == 0 || t.extra[k-1].Addr != t.extra[k].Addr {
			break
		}
	}
	return Location{}, &NotFoundError{Addr: addr, ByAddr: true}
}

// Len returns the number of symbols, vmlinux's and the others.
func (t *Table) Len() int {
	im, err := t.image()
	n := 0
	if err == nil {
		n = im.len()
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return n + len(t.extra)
}

// All yields every symbol with its size: vmlinux's in kallsyms order
// (nothing when they cannot be decoded; see Load), then the modules' and
// BPF's by address. Symbols added while iterating may not be seen.
func (t *Table) All() iter.Seq[Symbol] {
	return func(yield func(Symbol) bool) {
		if im, err := t.image(); err == nil {
			for i := range im.len() {
				if !yield(im.symbol(i)) {
					return
				}
			}
		}
		t.mu.RLock()
		t.indexExtra()
		extra := make([]Symbol, len(t.extra))
		for i := range t.extra {
			extra[i] = t.extraSymbol(i)
		}
		t.mu.RUnlock()
		for _, s := range extra {
			if !yield(s) {
				return
			}
		}
	}
}
