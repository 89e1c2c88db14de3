package kallsyms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/vmcore"
)

// LocationsFromVMCOREINFO finds the kallsyms tables through VMCOREINFO,
// whose SYMBOL(kallsyms_*) lines (kernel/vmcore_info.c; added in 6.0 by
// commit 5fd8fea935a1, "vmcoreinfo: include kallsyms symbols") give their
// run-time addresses. Every other SYMBOL() line goes to Known, to check
// the decoding.
//
// Errors wrap ErrNotSupported: no VMCOREINFO, or one without the
// kallsyms symbols (Linux before 6.0).
func LocationsFromVMCOREINFO(vi *vmcore.VMCoreInfo) (Locations, error) {
	if vi == nil {
		return Locations{}, fmt.Errorf("find kallsyms: the dump has no VMCOREINFO: %w", ErrNotSupported)
	}
	sym := func(name string) uint64 { a, _ := vi.Symbol(name); return a }
	loc := Locations{
		NumSyms:      sym("kallsyms_num_syms"),
		Names:        sym("kallsyms_names"),
		TokenTable:   sym("kallsyms_token_table"),
		TokenIndex:   sym("kallsyms_token_index"),
		Addresses:    sym("kallsyms_addresses"),
		Offsets:      sym("kallsyms_offsets"),
		RelativeBase: sym("kallsyms_relative_base"),
		Markers:      sym("kallsyms_markers"),
		SeqsOfNames:  sym("kallsyms_seqs_of_names"),
	}
	var missing []string
	for _, name := range []string{"kallsyms_names", "kallsyms_num_syms", "kallsyms_token_table", "kallsyms_token_index"} {
		if sym(name) == 0 {
			missing = append(missing, "SYMBOL("+name+")")
		}
	}
	if loc.Addresses == 0 && loc.Offsets == 0 {
		missing = append(missing, "SYMBOL(kallsyms_offsets) or SYMBOL(kallsyms_addresses)")
	}
	if len(missing) > 0 {
		return Locations{}, fmt.Errorf("find kallsyms: VMCOREINFO of %s has no %s (Linux 6.0 added them); read symbols from /proc/kallsyms instead: %w",
			orUnknown(vi.OSRelease), strings.Join(missing, ", "), ErrNotSupported)
	}
	loc.Known = knownSymbols(vi)
	return loc, nil
}

// pointerValued lists SYMBOL() lines that give a pointer's value, not
// the symbol's address: VMCOREINFO_SYMBOL_ARRAY(mem_section) prints
// mem_section, a struct mem_section ** under SPARSEMEM_EXTREME.
var pointerValued = map[string]bool{"mem_section": true}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown kernel"
	}
	return s
}

// FromDump returns the symbol table of the kernel in a dump, decoded from
// its kallsyms tables on first use. It holds the vmlinux symbols; module
// and BPF symbols are added by their walkers (objects/). The tables are
// located by VMCOREINFO; where it does not locate them (Linux before 6.0,
// or a dump without VMCOREINFO), they are searched for by their shape in
// the kernel image from _stext (FindLocations), on first use too; Info's
// Located says which.
//
// Errors wrap ErrNotSupported (the tables cannot be located: neither
// VMCOREINFO nor the kernel's text address) or are the dump's error of
// building the kernel address space; the table's Load returns those of
// searching and decoding.
func FromDump(d *vmcore.Dump) (*Table, error) {
	vi := d.VMCOREINFO()
	loc, err := LocationsFromVMCOREINFO(vi)
	if err != nil && !errors.Is(err, ErrNotSupported) {
		return nil, err
	}
	k, kerr := d.Kernel()
	if kerr != nil {
		if err != nil {
			return nil, fmt.Errorf("%w; nor can they be searched for: %v", err, kerr)
		}
		return nil, fmt.Errorf("find kallsyms: %w", kerr)
	}
	if err == nil {
		return newTable(func() (*image, error) {
			im, err := decode(k, loc)
			if err == nil {
				im.info.Located = "VMCOREINFO"
			}
			return im, err
		}), nil
	}
	start, ok := k.TextStart()
	if !ok {
		return nil, fmt.Errorf("%w; nor can they be searched for: the kernel's text address is unknown", err)
	}
	known := knownSymbols(vi)
	why := err
	return newTable(func() (*image, error) {
		loc, err := FindLocations(k, start, DefaultSearchSize, known)
		if err != nil {
			return nil, fmt.Errorf("%v; %w", why, err)
		}
		im, err := decode(k, loc)
		if err != nil {
			return nil, fmt.Errorf("decode the kallsyms tables found by their shape (kallsyms_token_table at %#x): %w", loc.TokenTable, err)
		}
		im.info.Located = fmt.Sprintf("by shape (kallsyms_token_table at %#x)", loc.TokenTable)
		return im, nil
	}), nil
}

// knownSymbols are VMCOREINFO's SYMBOL() lines that check a decoding.
func knownSymbols(vi *vmcore.VMCoreInfo) map[string]uint64 {
	known := map[string]uint64{}
	if vi == nil {
		return known
	}
	for name, addr := range vi.Symbols {
		if !strings.HasPrefix(name, "kallsyms_") && !pointerValued[name] {
			known[name] = addr
		}
	}
	return known
}
