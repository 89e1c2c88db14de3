package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// TestListLab: list walks the kernel's lists as the guest saw them: the
// module list (list -H modules -o module.list) is each module's struct
// module (its __this_module in the guest's /proc/kallsyms) in the order
// of /proc/modules; the task list from init_task (-s task_struct.pid) is
// every process of the guest's ps (but the one taking the snapshot,
// which exited before the dump).
func TestListLab(t *testing.T) {
	for s, d := range labDumps(t, "kdump-zlib") {
		t.Run(s.Scenario, func(t *testing.T) {
			syms := truthSymbols(t, s)
			b, err := os.ReadFile(s.Path("truth/modules.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				want = append(want, scalar("0x"+syms["__this_module ["+strings.Fields(l)[0]+"]"]))
			}
			var got []string
			r := cliJSON(t, d, "list", "-H", "modules", "-o", "module.list").(map[string]any)
			for _, e := range r["entries"].([]any) {
				got = append(got, scalar(e.(map[string]any)["address"]))
			}
			if !slices.Equal(got, want) {
				t.Errorf("list -H modules: %v, /proc/modules' __this_module %v", got, want)
			}
			var ps []struct {
				PID int `json:"pid"`
				TID int `json:"tid"`
			}
			labdata.ReadJSON(t, s.Path("truth/ps.json"), &ps)
			var meta struct {
				Excluded int `json:"excluded_pid"`
			}
			labdata.ReadJSON(t, s.Path("truth/snapshot-meta.json"), &meta)
			truth := map[string]bool{}
			for _, p := range ps {
				if p.PID == p.TID && p.PID != meta.Excluded {
					truth[fmt.Sprint(p.PID)] = true
				}
			}
			listed := map[string]bool{}
			r = cliJSON(t, d, "list", "-o", "task_struct.tasks", "-s", "task_struct.pid", "init_task.tasks").(map[string]any)
			for _, e := range r["entries"].([]any) {
				m := e.(map[string]any)["members"].([]any)[0].(map[string]any)
				listed[scalar(m["value"])] = true
			}
			labdata.CompareSets(t, "processes", listed, truth)
			if r["damage"] != nil || r["error"] != nil {
				t.Errorf("damage %v, error %v", r["damage"], r["error"])
			}
		})
	}
}
