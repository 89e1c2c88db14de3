package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// TestLinkShow: link show's JSON and text equal bpftool 7.1's byte for
// byte; what --details adds (ifindex, target ids, perf event details) is
// checked against the workload's attach targets.
func TestLinkShow(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			d := s.Path("dumps/elf")
			// bpftool cannot list the hidden link (TestHiddenProg).
			hidden := s.Hidden(t).Links
			if got, want := labdata.DropJSON(runOK(t, "-c", d, "--json", "link", "show"), hidden), readTruth(t, s.Path("truth/bpftool/link.json")); !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
				t.Errorf("link show --json:\n%s\nbpftool:\n%s", got, want)
			}
			if got, want := labdata.DropText(runOK(t, "-c", d, "link", "show"), hidden), readTruth(t, s.Path("truth/bpftool/link.txt")); !bytes.Equal(got, want) {
				t.Errorf("link show:\n%s\nbpftool:\n%s", got, want)
			}
			var got, want []map[string]any
			json.Unmarshal(labdata.DropJSON(runOK(t, "-c", d, "--json", "link", "show", "--details"), hidden), &got)
			json.Unmarshal(readTruth(t, s.Path("truth/bpftool/link.json")), &want)
			if len(got) != len(want) {
				t.Fatalf("%d links, bpftool %d", len(got), len(want))
			}
			var wl struct {
				Links []struct {
					ID     int
					Target string
				}
			}
			json.Unmarshal(readTruth(t, s.Path("truth/workload.json")), &wl)
			targets := map[float64]string{}
			for _, l := range wl.Links {
				targets[float64(l.ID)] = l.Target
			}
			for i := range want {
				for k, v := range want[i] {
					if !reflect.DeepEqual(got[i][k], v) {
						t.Errorf("link %v: %s = %v, bpftool %v", want[i]["id"], k, got[i][k], v)
					}
				}
				target := targets[got[i]["id"].(float64)]
				switch {
				case strings.HasPrefix(target, "kprobe:"):
					if got[i]["func"] != strings.TrimPrefix(target, "kprobe:") || got[i]["retprobe"] != false {
						t.Errorf("kprobe link %v", got[i])
					}
				case strings.HasPrefix(target, "tracepoint:"):
					if tp := target[strings.LastIndexByte(target, '/')+1:]; got[i]["tracepoint"] != tp {
						t.Errorf("tracepoint link %v, want %s", got[i], tp)
					}
				case strings.HasPrefix(target, "xdp:lo"):
					if got[i]["devname"] != "lo" || got[i]["ifindex"] != 1.0 {
						t.Errorf("xdp link %v", got[i])
					}
				case strings.HasPrefix(target, "fentry:"):
					if got[i]["target_obj_id"] != 1.0 || got[i]["target_btf_id"] == 0.0 {
						t.Errorf("fentry link %v (vmlinux is BTF object 1)", got[i])
					}
				}
			}
		})
	}
}
