package labdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Hidden is what the workload hid from bpftool (ki_hide,
// lab/workload/hide.go): a BPF LSM program on the bpf() hook that fails
// BPF_PROG_GET_FD_BY_ID of itself and BPF_LINK_GET_FD_BY_ID of its link
// with ENOENT, which bpftool takes for an object gone meanwhile. Both
// stay in the kernel's IDRs, so kinspect lists them from the dump, and
// the truth's bpftool files lack them: comparisons with bpftool drop
// exactly these ids from kinspect's output (DropJSON, DropText,
// DropBTFText).
type Hidden struct {
	// Progs maps a hidden program's id to its name.
	Progs map[uint32]string
	// Links maps a hidden link's id to its program's name.
	Links map[uint32]string
	// Prog and Link are the records of workload.json, the first hidden
	// program and link (zero ID when none).
	Prog HiddenProg
	Link HiddenLink
}

// HiddenProg is a program record of workload.json.
type HiddenProg struct {
	Name    string `json:"name"`
	TypeNum uint32 `json:"type_num"`
	ID      uint32 `json:"id"`
	Tag     string `json:"tag"`
	Attach  string `json:"attach"`
	Hidden  bool   `json:"hidden"`
}

// HiddenLink is a link record of workload.json.
type HiddenLink struct {
	ID      uint32 `json:"id"`
	TypeNum uint32 `json:"type_num"`
	Prog    string `json:"prog"`
	ProgID  uint32 `json:"prog_id"`
	Target  string `json:"target"`
	Hidden  bool   `json:"hidden"`
}

// Hidden reads the scenario's hidden programs and links from
// truth/workload.json, failing the test when it cannot. A scenario built
// before the workload hid anything has none.
func (s *Scenario) Hidden(tb testing.TB) Hidden {
	tb.Helper()
	h, err := s.ReadHidden()
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// ReadHidden is Hidden for callers without a testing.TB.
func (s *Scenario) ReadHidden() (Hidden, error) {
	var w struct {
		Progs []HiddenProg `json:"progs"`
		Links []HiddenLink `json:"links"`
	}
	h := Hidden{Progs: map[uint32]string{}, Links: map[uint32]string{}}
	path := s.Path("truth/workload.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return h, fmt.Errorf("labdata: %w", err)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return h, fmt.Errorf("labdata: %s: %w", path, err)
	}
	for _, p := range w.Progs {
		if p.Hidden {
			h.Progs[p.ID] = p.Name
			if h.Prog.ID == 0 {
				h.Prog = p
			}
		}
	}
	for _, l := range w.Links {
		if l.Hidden {
			h.Links[l.ID] = l.Prog
			if h.Link.ID == 0 {
				h.Link = l
			}
		}
	}
	return h, nil
}

// DropJSON removes from a JSON array of objects (bpftool's "prog show
// --json", "link show --json", compact) the elements whose "id" is in
// ids. The other elements keep their bytes, joined as bpftool writes
// them; b is returned as it is when it is not such an array or nothing is
// dropped. A trailing newline is kept.
func DropJSON(b []byte, ids map[uint32]string) []byte {
	if len(ids) == 0 {
		return b
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		return b
	}
	var kept [][]byte
	for _, e := range elems {
		var o struct {
			ID *uint32 `json:"id"`
		}
		if json.Unmarshal(e, &o) == nil && o.ID != nil {
			if _, ok := ids[*o.ID]; ok {
				continue
			}
		}
		kept = append(kept, e)
	}
	if len(kept) == len(elems) {
		return b
	}
	out := append([]byte("["), bytes.Join(kept, []byte(","))...)
	out = append(out, ']')
	if bytes.HasSuffix(b, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}

// DropText removes from bpftool's plain listing ("prog show", "link
// show", with -f too) the entries of the objects whose ids are in ids: an
// entry is its line "ID: ..." and the indented lines after it.
func DropText(b []byte, ids map[uint32]string) []byte {
	if len(ids) == 0 {
		return b
	}
	var out bytes.Buffer
	drop := false
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) > 0 && line[0] != ' ' && line[0] != '\t' && line[0] != '\n' {
			drop = false
			if idStr, _, ok := bytes.Cut(line, []byte(": ")); ok {
				if id, err := strconv.ParseUint(string(idStr), 10, 32); err == nil {
					_, drop = ids[uint32(id)]
				}
			}
		}
		if !drop {
			out.Write(line)
		}
	}
	return out.Bytes()
}

var btfProgIDs = regexp.MustCompile(`  prog_ids ([0-9,]+)`)

// DropBTFText removes the hidden programs' ids from the prog_ids of
// bpftool's "btf show" lines ("ID: name N  size SB  prog_ids A,B  map_ids
// C"), and the prog_ids field where none is left, as bpftool, which
// cannot open the hidden programs, prints it.
func DropBTFText(b []byte, ids map[uint32]string) []byte {
	if len(ids) == 0 {
		return b
	}
	return btfProgIDs.ReplaceAllFunc(b, func(m []byte) []byte {
		var kept []string
		for _, f := range strings.Split(string(btfProgIDs.FindSubmatch(m)[1]), ",") {
			id, err := strconv.ParseUint(f, 10, 32)
			if _, hidden := ids[uint32(id)]; err == nil && hidden {
				continue
			}
			kept = append(kept, f)
		}
		if len(kept) == 0 {
			return nil
		}
		return []byte("  prog_ids " + strings.Join(kept, ","))
	})
}

// DropBTFJSON removes the hidden programs' ids from the "prog_ids"
// arrays of "btf show --json" (decoded; the result is re-encoded, for a
// comparison as JSON values).
func DropBTFJSON(b []byte, ids map[uint32]string) []byte {
	if len(ids) == 0 {
		return b
	}
	var objs []map[string]any
	if err := json.Unmarshal(b, &objs); err != nil {
		return b
	}
	for _, o := range objs {
		pids, ok := o["prog_ids"].([]any)
		if !ok {
			continue
		}
		kept := []any{}
		for _, p := range pids {
			if f, ok := p.(float64); ok {
				if _, hidden := ids[uint32(f)]; hidden {
					continue
				}
			}
			kept = append(kept, p)
		}
		o["prog_ids"] = kept
	}
	out, err := json.Marshal(objs)
	if err != nil {
		return b
	}
	return out
}

// RequireHidden returns the scenario's hidden objects for a test about
// them. A scenario without any was built before the workload hid a
// program: the test is skipped, or fails with KINSPECT_LAB_REQUIRE=1.
func (s *Scenario) RequireHidden(tb testing.TB) Hidden {
	tb.Helper()
	h := s.Hidden(tb)
	if len(h.Progs) == 0 || len(h.Links) == 0 {
		msg := s.Scenario + ": truth/workload.json names no hidden program and link (built before the workload's ki_hide? rebuild: go run ./lab " + s.Scenario + ")"
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return h
}
