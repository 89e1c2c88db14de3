package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
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
			// A process above every truth PID started after the truth
			// (a kworker the workqueue pool added, on k612): not extra.
			maxPID := 0
			for _, p := range ps {
				maxPID = max(maxPID, p.PID)
			}
			for pid := range listed {
				if n, err := strconv.Atoi(pid); err == nil && n > maxPID {
					t.Logf("process %d started after the truth", n)
					delete(listed, pid)
				}
			}
			labdata.CompareSets(t, "processes", listed, truth)
			if r["damage"] != nil || r["error"] != nil {
				t.Errorf("damage %v, error %v", r["damage"], r["error"])
			}
		})
	}
}

// TestSearch: search's text and errors on a lab dump (what it finds is
// checked against the ELF dump's bytes by linux's TestLabSearch).
func TestSearch(t *testing.T) {
	s, d := labdata.Require(t, "basic"), basicELF(t)
	init := truthSymbols(t, s)["init_task"]
	out := strings.Split(strings.TrimSpace(string(runOK(t, "-c", d, "search", "--max", "3", "init_task"))), "\n")
	if len(out) != 3 || !strings.HasSuffix(out[0], ": "+init) {
		t.Errorf("search --max 3 init_task: %q, want 3 hits of %s", out, init)
	}
	// init_task's first 4 bytes (thread_info.flags) hold what rd reads.
	rd := strings.Fields(string(runOK(t, "-c", d, "rd", "-32", "init_task")))
	out = strings.Split(strings.TrimSpace(string(runOK(t, "-c", d, "search", "-s", "init_task", "-l", "4", "-32", "0x"+rd[1]))), "\n")
	if len(out) != 1 || out[0] != init+": "+rd[1] {
		t.Errorf("search -s init_task -l 4 -32 0x%s: %q", rd[1], out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"search"}, 2, "give a VALUE"},
		{[]string{"search", "-e", "init_task", "-l", "8", "1"}, 2, "not both"},
		{[]string{"search", "-s", "0x2000", "-e", "0x1000", "1"}, 1, "empty range"},
		{[]string{"search", "-s", "0x0", "-l", "0x100000000000", "1"}, 1, "over"},
		{[]string{"search", "no_such_symbol_x"}, 1, "no symbol"},
	} {
		var out strings.Builder
		if code := run(append([]string{"-c", d}, c.args...), &out, &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%q: exit %d, output %q; want %d and %q", c.args, code, out.String(), c.code, c.want)
		}
	}
}
