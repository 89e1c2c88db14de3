package linux

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// SymbolRow is a symbol as sym -l lists it: /proc/kallsyms's fields.
type SymbolRow struct {
	Name    string      `json:"name"`
	Address objects.Hex `json:"address"`
	// Type is nm's letter ("T", "t", "D", ...).
	Type string `json:"type"`
	// Module is "" for vmlinux's symbols, else the module's name ("bpf"
	// for BPF programs).
	Module string `json:"module"`
	// Size is the symbol's extent, 0 when unknown.
	Size uint64 `json:"size"`
	// Hidden: the address is unknown (zeros in a /proc/kallsyms copy).
	Hidden bool `json:"addresses_hidden,omitempty"`
}

// NewSymbolRow is a symbol's row; hidden says the table's addresses
// are unknown.
func NewSymbolRow(s kallsyms.Symbol, hidden bool) SymbolRow {
	return SymbolRow{Name: s.Name, Address: objects.Hex(s.Addr), Type: string(rune(s.Type)), Module: s.Module, Size: s.Size, Hidden: hidden}
}

// ListSymbols lists the symbols (vmlinux's, the modules' and the BPF
// programs') whose names match pattern (a glob with * ? [...], else a
// substring; "" matches all), sorted by address as crash's sym -l (those
// at one address in the table's order).
//
// Errors wrap path.ErrBadPattern, kallsyms.ErrNotFound (nothing matches
// a pattern) or the table's error.
func ListSymbols(t *kallsyms.Table, pattern string) ([]SymbolRow, error) {
	info, err := t.Info()
	if err != nil {
		return nil, err
	}
	glob := strings.ContainsAny(pattern, "*?[")
	if glob {
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, fmt.Errorf("symbols matching %q: %w", pattern, err)
		}
	}
	out := []SymbolRow{}
	for s := range t.All() {
		ok := pattern == ""
		if glob {
			ok, _ = path.Match(pattern, s.Name)
		} else if !ok {
			ok = strings.Contains(s.Name, pattern)
		}
		if ok {
			out = append(out, NewSymbolRow(s, info.Hidden))
		}
	}
	if len(out) == 0 && pattern != "" {
		return nil, fmt.Errorf("no symbol matches %q: %w", pattern, kallsyms.ErrNotFound)
	}
	slices.SortStableFunc(out, func(a, b SymbolRow) int { return cmp.Compare(a.Address, b.Address) })
	return out, nil
}
