package bpf

import (
	"encoding/hex"
	"fmt"

	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/kallsyms"
)

// TagCheck is the program's tag recomputed from its instructions as
// loaded (AsLoaded): "prog tag"'s result for one program.
type TagCheck struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	// Tag is the kernel's tag, Recomputed the one rebuilt, in hex.
	Tag        string `json:"tag"`
	Recomputed string `json:"recomputed_tag,omitempty"`
	// Equal says the recomputed tag is the kernel's: the instructions as
	// loaded were rebuilt byte for byte.
	Equal bool `json:"equal"`
	// Undone counts the verifier rewrites undone.
	Undone int `json:"undone"`
	// Kept are the rewrites that could not be undone.
	Kept []bpfinsn.Rewrite `json:"kept"`
	// Err says why the instructions could not be reconstructed.
	Err error `json:"error,omitempty"`
}

// RecomputeTag reconstructs the program's instructions as loaded and
// hashes them as bpf_prog_calc_tag does; syms (nil: none) names the
// helpers and map operations the verifier turned into addresses.
func (p *Prog) RecomputeTag(syms *kallsyms.Table) *TagCheck {
	r := &TagCheck{ID: p.ID, Name: p.FullName(), Tag: hex.EncodeToString(p.Tag[:])}
	var symName SymbolNamer
	if syms != nil {
		symName = syms.NameAt
	}
	l, err := p.AsLoaded(symName)
	if err != nil {
		r.Err = err
		return r
	}
	r.Recomputed, r.Equal, r.Undone, r.Kept = hex.EncodeToString(l.Tag[:]), l.Match, l.Undone, l.Kept
	return r
}

// String is the verdict: "tag X recomputed Y equal", or "differs" with
// the rewrites that could not be undone.
func (r *TagCheck) String() string {
	if r.Err != nil {
		return fmt.Sprintf("tag %s not recomputed: %v", r.Tag, r.Err)
	}
	s := fmt.Sprintf("tag %s recomputed %s ", r.Tag, r.Recomputed)
	if r.Equal {
		return s + "equal"
	}
	s += "differs"
	for i, k := range r.Kept {
		if i == 0 {
			s += ": "
		} else {
			s += "; "
		}
		s += k.String()
	}
	return s
}
