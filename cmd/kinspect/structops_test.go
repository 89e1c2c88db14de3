package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/vmcore"
)

// TestStructOpsTruth runs "struct_ops show" and "struct_ops dump", text
// and JSON, on every dump format of every scenario whose truth has them
// (truth/bpftool/struct_ops*.{json,txt}, bpftool 7.1 in the guest) and
// compares the output byte for byte. A filtered dump that makedumpfile
// misfiltered (labdata's Misfiltered) may lack the maps' pages: there a
// read of an excluded page skips instead of failing.
func TestStructOpsTruth(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		if _, err := os.Stat(s.Path("truth/bpftool/struct_ops_dump.json")); err != nil {
			t.Logf("%s: no struct_ops truth (built before the lab captured it)", s.Scenario)
			continue
		}
		for _, f := range s.Formats {
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				for _, tc := range []struct{ args, truth string }{
					{"struct_ops show", "struct_ops.txt"},
					{"--json struct_ops show", "struct_ops.json"},
					{"struct_ops dump", "struct_ops_dump.txt"},
					{"--json struct_ops dump", "struct_ops_dump.json"},
				} {
					path := s.Path("truth/bpftool/" + tc.truth)
					want := readTruth(t, path)
					if rc := strings.TrimSpace(string(readTruth(t, path+".rc"))); rc != "0" {
						t.Fatalf("%s: bpftool exited %s", tc.truth, rc)
					}
					var out, errb bytes.Buffer
					args := append([]string{"-c", s.Path(f.Path)}, strings.Fields(tc.args)...)
					code := run(args, &out, &errb)
					if code != 0 {
						msg := errb.String() + out.String()
						if why := s.Misfiltered(f); why != "" && strings.Contains(msg, vmcore.ErrPageExcluded.Error()) {
							t.Skipf("%s: %s", msg, why)
						}
						t.Fatalf("%s: exit %d: %s", tc.args, code, msg)
					}
					if !bytes.Equal(out.Bytes(), want) {
						t.Errorf("%s differs from bpftool's:\n%s", tc.args, firstDiff(out.String(), string(want)))
					}
				}
			})
		}
	}
}

// TestStructOpsSelect: "id" and "name" select like bpftool's
// do_one_id and do_search: one object (not a list) by id, a list by
// name, bpftool's errors otherwise. The expected objects are the
// truth's.
func TestStructOpsSelect(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		var list []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		}
		if _, err := os.Stat(s.Path("truth/bpftool/struct_ops.json")); err != nil {
			continue
		}
		labdata.ReadJSON(t, s.Path("truth/bpftool/struct_ops.json"), &list)
		if len(list) == 0 {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			d := s.Path("dumps/elf")
			id := strconv.Itoa(list[0].ID)
			truth := readTruth(t, s.Path("truth/bpftool/struct_ops.json"))
			// The list's first object, as show by id prints it alone.
			one := truth[1 : bytes.Index(truth, []byte("}"))+1]
			if got := runOK(t, "-c", d, "--json", "struct_ops", "show", "id", id); !bytes.Equal(got, append(one, '\n')) {
				t.Errorf("show id %s: %s, want %s", id, got, one)
			}
			if got := runOK(t, "-c", d, "--json", "struct_ops", "show", "name", list[0].Name); !bytes.Equal(got, []byte("["+string(one)+"]\n")) {
				t.Errorf("show name %s: %s", list[0].Name, got)
			}
			// dump id: the two objects of the list, without the list.
			dump := readTruth(t, s.Path("truth/bpftool/struct_ops_dump.json"))
			if len(list) == 1 {
				if got := runOK(t, "-c", d, "--json", "struct_ops", "dump", "id", id); !bytes.Equal(got, append(dump[1:len(dump)-2], '\n')) {
					t.Errorf("dump id %s:\n%s\nwant\n%s", id, got, dump[1:len(dump)-2])
				}
			}
			// A map of another type, from the truth's map list.
			var maps []struct {
				ID   int    `json:"id"`
				Type string `json:"type"`
				Name string `json:"name"`
			}
			labdata.ReadJSON(t, s.Path("truth/bpftool/map.json"), &maps)
			other := maps[0]
			if other.Type == "struct_ops" {
				other = maps[len(maps)-1]
			}
			for _, tc := range []struct {
				args    []string
				out     string
				errText string
			}{
				{[]string{"struct_ops", "show", "name", "nosuch"}, "", "no struct_ops found for nosuch"},
				{[]string{"--json", "struct_ops", "show", "name", "nosuch"}, "[]\n", ""},
				{[]string{"--json", "struct_ops", "dump", "name", "nosuch"}, "[]\n", ""},
				{[]string{"struct_ops", "show", "id", "0"}, "", "invalid id 0"},
				{[]string{"struct_ops", "show", "id", "4000000"}, "", "can't get map by id (4000000)"},
				{[]string{"struct_ops", "show", "id", strconv.Itoa(other.ID)}, "", other.Name + " id " + strconv.Itoa(other.ID) + " is not a struct_ops map"},
			} {
				var out, errb bytes.Buffer
				if code := run(append([]string{"-c", d}, tc.args...), &out, &errb); code == 0 {
					t.Errorf("%v: exit 0", tc.args)
				}
				if out.String() != tc.out || !strings.Contains(errb.String(), tc.errText) {
					t.Errorf("%v: stdout %q stderr %q, want %q and %q", tc.args, out.String(), errb.String(), tc.out, tc.errText)
				}
			}
		})
	}
}
