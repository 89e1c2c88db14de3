package main

import (
	"encoding/json"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// TestFeature: the program and map types bpftool's probe tested have the
// same availability; every helper bpftool found available is known.
func TestFeature(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			var got struct {
				ProgramTypes map[string]bool `json:"program_types"`
				MapTypes     map[string]bool `json:"map_types"`
				Helpers      []string
			}
			var want struct {
				ProgramTypes map[string]bool            `json:"program_types"`
				MapTypes     map[string]bool            `json:"map_types"`
				Helpers      map[string][]string        `json:"helpers"`
				Misc         map[string]json.RawMessage `json:"misc"`
			}
			json.Unmarshal(runOK(t, "-c", s.Path("dumps/elf"), "--json", "feature"), &got)
			if err := json.Unmarshal(readTruth(t, s.Path("truth/bpftool/feature.json")), &want); err != nil {
				t.Skipf("no feature probe truth: %v", err)
			}
			for k, v := range want.ProgramTypes {
				if g, ok := got.ProgramTypes[k]; !ok || g != v {
					t.Errorf("%s: %v, bpftool %v", k, g, v)
				}
			}
			for k, v := range want.MapTypes {
				if g, ok := got.MapTypes[k]; !ok || g != v {
					t.Errorf("%s: %v, bpftool %v", k, g, v)
				}
			}
			have := map[string]bool{}
			for _, h := range got.Helpers {
				have[h] = true
			}
			var missing []string
			for _, hs := range want.Helpers {
				for _, h := range hs {
					if !have[h] {
						missing = append(missing, h)
					}
				}
			}
			// Helpers whose prototypes have no kallsyms entry in 6.12
			// (bpf_override_return) or sit in a module not loaded
			// (rc_core's bpf_rc_*): the enum has them, the table not.
			for _, h := range missing {
				switch h {
				case "bpf_override_return", "bpf_rc_keydown", "bpf_rc_pointer_rel", "bpf_rc_repeat":
				default:
					t.Errorf("helper %s: bpftool found it, kinspect does not", h)
				}
			}
		})
	}
}
