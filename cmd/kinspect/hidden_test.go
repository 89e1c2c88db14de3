package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// TestHiddenProg: the workload's ki_hide (lab/workload/hide.go), a BPF
// LSM program on the bpf() hook, fails BPF_PROG_GET_FD_BY_ID of itself
// and BPF_LINK_GET_FD_BY_ID of its link with ENOENT. The guest's bpftool
// lists neither (truth/bpftool/{prog,link}.{json,txt}), though it lists
// the programs and links made after them; kinspect, which reads prog_idr
// and link_idr from the dump, lists both: prog show (JSON, text, by id),
// link show, prog tag, with the id, name and tag the workload read from
// the kernel through its own file descriptors (truth/workload.json).
func TestHiddenProg(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			h := s.RequireHidden(t)
			p, l := h.Prog, h.Link
			if l.ProgID != p.ID {
				t.Fatalf("workload.json: hidden link %d is of program %d, the hidden program is %d", l.ID, l.ProgID, p.ID)
			}
			hiddenFromBpftool(t, s, "prog", p.ID, p.Name)
			hiddenFromBpftool(t, s, "link", l.ID, "")
			for _, fm := range s.Formats {
				if s.Scenario != "basic" && fm.Name != "elf" {
					continue
				}
				t.Run(fm.Name, func(t *testing.T) {
					if why := s.Misfiltered(fm); why != "" {
						t.Skip(why)
					}
					listedByKinspect(t, s.Path(fm.Path), p, l)
				})
			}
		})
	}
}

// hiddenFromBpftool checks that the guest's bpftool listed no object
// id of noun (its JSON and its text), and did list objects of higher ids:
// its walk over the ids went on past the hidden one.
func hiddenFromBpftool(t *testing.T, s *labdata.Scenario, noun string, id uint32, name string) {
	t.Helper()
	var objs []struct {
		ID   uint32 `json:"id"`
		Name string `json:"name"`
	}
	labdata.ReadJSON(t, s.Path("truth/bpftool/"+noun+".json"), &objs)
	above := 0
	for _, o := range objs {
		if o.ID == id || name != "" && o.Name == name {
			t.Errorf("the guest's bpftool %s show lists the hidden %s %d (%+v)", noun, noun, id, o)
		}
		if o.ID > id {
			above++
		}
	}
	if above == 0 {
		t.Errorf("the guest's bpftool %s show lists no %s above the hidden %d: nothing shows its walk went past it", noun, noun, id)
	}
	txt, err := os.ReadFile(s.Path("truth/bpftool/" + noun + ".txt"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(txt, fmt.Appendf(nil, "%d: ", id)) || bytes.Contains(txt, fmt.Appendf(nil, "\n%d: ", id)) {
		t.Errorf("the guest's bpftool %s show (text) lists the hidden %s %d", noun, noun, id)
	}
	if rc, err := os.ReadFile(s.Path("truth/bpftool/" + noun + ".json.rc")); err == nil && string(bytes.TrimSpace(rc)) != "0" {
		t.Errorf("the guest's bpftool %s show --json exited %s", noun, bytes.TrimSpace(rc))
	}
	t.Logf("bpftool %s show: %d objects, %d of them above the hidden id %d", noun, len(objs), above, id)
}

// listedByKinspect checks that kinspect lists the hidden program and link
// in the dump, as the workload described them.
func listedByKinspect(t *testing.T, dump string, p labdata.HiddenProg, l labdata.HiddenLink) {
	t.Helper()
	type prog struct {
		ID     uint32   `json:"id"`
		Type   string   `json:"type"`
		Name   string   `json:"name"`
		Tag    string   `json:"tag"`
		MapIDs []uint32 `json:"map_ids"`
	}
	var progs []prog
	if err := json.Unmarshal(runOK(t, "-c", dump, "--json", "prog", "show"), &progs); err != nil {
		t.Fatal(err)
	}
	var found *prog
	for i := range progs {
		if progs[i].ID == p.ID {
			found = &progs[i]
		}
	}
	// BPF_PROG_TYPE_LSM, which bpftool 7.1 names "lsm".
	switch {
	case found == nil:
		t.Errorf("prog show: the hidden program %d (%s) is not listed", p.ID, p.Name)
	case found.Name != p.Name || found.Tag != p.Tag || found.Type != "lsm":
		t.Errorf("prog show: hidden program %+v; the workload's: name %s, tag %s, type lsm", *found, p.Name, p.Tag)
	default:
		t.Logf("prog show: %d: %s name %s tag %s map_ids %v", found.ID, found.Type, found.Name, found.Tag, found.MapIDs)
	}

	head := fmt.Sprintf("%d: lsm  name %s  tag %s  gpl\n", p.ID, p.Name, p.Tag)
	if txt := runOK(t, "-c", dump, "prog", "show"); !bytes.Contains(txt, []byte("\n"+head)) && !bytes.HasPrefix(txt, []byte(head)) {
		t.Errorf("prog show (text) has no line %q", head)
	}
	var one prog
	if err := json.Unmarshal(runOK(t, "-c", dump, "--json", "prog", "show", "id", strconv.Itoa(int(p.ID))), &one); err != nil || one.ID != p.ID || one.Name != p.Name {
		t.Errorf("prog show id %d: %+v, %v", p.ID, one, err)
	}

	// A type bpftool 7.1 does not know is a number (tcx on 6.12).
	var links []struct {
		ID     uint32 `json:"id"`
		Type   any    `json:"type"`
		ProgID uint32 `json:"prog_id"`
	}
	if err := json.Unmarshal(runOK(t, "-c", dump, "--json", "link", "show"), &links); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range links {
		if k.ID != l.ID {
			continue
		}
		n++
		// An LSM program's link is a bpf_tracing_link.
		if k.ProgID != p.ID || k.Type != "tracing" {
			t.Errorf("link show: hidden link %+v, want tracing of program %d", k, p.ID)
		}
	}
	if n != 1 {
		t.Errorf("link show: the hidden link %d is listed %d times", l.ID, n)
	}

	var tags []struct {
		ID         uint32 `json:"id"`
		Tag        string `json:"tag"`
		Recomputed string `json:"recomputed_tag"`
		Equal      bool   `json:"equal"`
		Kept       []any  `json:"kept"`
	}
	if err := json.Unmarshal(runOK(t, "-c", dump, "--json", "prog", "tag", "id", strconv.Itoa(int(p.ID))), &tags); err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 || tags[0].Tag != p.Tag || !tags[0].Equal && len(tags[0].Kept) == 0 {
		t.Errorf("prog tag id %d: %+v; the workload's tag %s", p.ID, tags, p.Tag)
	} else {
		t.Logf("prog tag: recomputed %s, equal %v", tags[0].Recomputed, tags[0].Equal)
	}
}
