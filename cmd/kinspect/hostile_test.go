package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/internal/dumpedit"
	"github.com/kinspect/kinspect/internal/labdata"
)

// hostileCopy is a copy of a lab dump stripped of what kinspect used to
// need, made by internal/dumpedit.
type hostileCopy struct {
	name string
	from string // the lab format it is made from, and compared with
	make func(src, dst string) error
	// vmcoreinfo and symbols are what info must say of the copy
	// (prefixes).
	vmcoreinfo, symbols string
	// noRegs: the copy has no CPU notes (forensic captures).
	noRegs bool
}

var hostileCopies = []hostileCopy{
	{name: "elf-no-vmcoreinfo", from: "elf", make: dumpedit.ELFWithoutVMCOREINFO,
		vmcoreinfo: "found in memory at phys 0x", symbols: "kallsyms tables in memory, located by VMCOREINFO"},
	{name: "elf-no-kallsyms-lines", from: "elf", make: withoutKallsymsLines,
		vmcoreinfo: "ELF note", symbols: "kallsyms tables in memory, located by shape"},
	{name: "kdump-no-kallsyms-lines", from: "kdump-zlib", make: withoutKallsymsLines,
		vmcoreinfo: "kdump sub-header", symbols: "kallsyms tables in memory, located by shape"},
	{name: "elf-no-vmcoreinfo-anywhere", from: "elf", make: func(src, dst string) error {
		_, err := dumpedit.ELFWithoutAnyVMCOREINFO(src, dst)
		return err
	}, vmcoreinfo: "", symbols: "kallsyms tables in memory, located by shape"},
	{name: "lime", from: "elf", make: dumpedit.ELFToLiME, noRegs: true,
		vmcoreinfo: "found in memory at phys 0x", symbols: "kallsyms tables in memory, located by VMCOREINFO"},
	{name: "avml", from: "elf", make: dumpedit.ELFToAVML, noRegs: true,
		vmcoreinfo: "found in memory at phys 0x", symbols: "kallsyms tables in memory, located by VMCOREINFO"},
}

func withoutKallsymsLines(src, dst string) error {
	_, err := dumpedit.WithoutKallsymsLines(src, dst)
	return err
}

// runOut runs the command line and returns its stdout, failing the test
// on a non-zero exit.
func runOut(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("kinspect %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.Bytes()
}

// btTasks indexes bt --all-tasks --json by task address.
func btTasks(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var traces []json.RawMessage
	if err := json.Unmarshal(b, &traces); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, tr := range traces {
		var h struct {
			Task  string `json:"task"`
			PID   int    `json:"pid"`
			OnCPU bool   `json:"on_cpu"`
		}
		if err := json.Unmarshal(tr, &h); err != nil {
			t.Fatal(err)
		}
		out[h.Task] = tr
	}
	return out
}

// TestHostileCopies: copies of lab dumps without VMCOREINFO (the note
// gone; the note and the page in memory gone), without the kallsyms lines
// of VMCOREINFO (ELF and kdump), and the guest's memory as LiME and AVML
// captures, open with no flags and give what the original gives: ps, prog
// show, bt of every CPU and of every task, the same JSON. The captures
// have no CPU registers: their bt of a task running on a CPU cannot be
// the original's, and bt -a has nothing to show; the other tasks'
// backtraces must be the same. A 6.1 and a 6.12 kernel.
func TestHostileCopies(t *testing.T) {
	for _, name := range []string{"basic", "k612"} {
		s := labdata.Require(t, name)
		want := map[string]map[string][]byte{} // from -> command -> output
		commands := []string{"ps", "prog show", "bt -a", "bt --all-tasks"}
		for _, hc := range hostileCopies {
			t.Run(name+"/"+hc.name, func(t *testing.T) {
				f, ok := s.Format(hc.from)
				if !ok {
					t.Skipf("no %s dump", hc.from)
				}
				orig := s.Path(f.Path)
				if want[hc.from] == nil {
					want[hc.from] = map[string][]byte{}
					for _, c := range commands {
						want[hc.from][c] = runOut(t, append([]string{"-c", orig, "--json"}, strings.Fields(c)...)...)
					}
				}
				path := filepath.Join(t.TempDir(), hc.name)
				if err := hc.make(orig, path); err != nil {
					t.Fatal(err)
				}
				var info, oinfo kinspect.Info
				if err := json.Unmarshal(runOut(t, "-c", path, "--json", "info"), &info); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(runOut(t, "-c", orig, "--json", "info"), &oinfo); err != nil {
					t.Fatal(err)
				}
				t.Logf("VMCOREINFO: %q; symbols: %q; problems: %q", info.VMCOREINFO, info.Symbols, info.Problems)
				if !strings.HasPrefix(info.VMCOREINFO, hc.vmcoreinfo) || hc.vmcoreinfo == "" && info.VMCOREINFO != "" {
					t.Errorf("VMCOREINFO from %q, want %q", info.VMCOREINFO, hc.vmcoreinfo)
				}
				if !strings.HasPrefix(info.Symbols, hc.symbols) {
					t.Errorf("symbols from %q, want %q", info.Symbols, hc.symbols)
				}
				if info.Release != oinfo.Release || *info.KASLROffset != *oinfo.KASLROffset || *info.PhysBase != *oinfo.PhysBase || *info.PageOffset != *oinfo.PageOffset {
					t.Errorf("info: release %q, KASLR %v, phys_base %v, page offset %v; original %q, %v, %v, %v",
						info.Release, info.KASLROffset, info.PhysBase, info.PageOffset, oinfo.Release, oinfo.KASLROffset, oinfo.PhysBase, oinfo.PageOffset)
				}
				for _, c := range commands {
					args := append([]string{"-c", path, "--json"}, strings.Fields(c)...)
					if hc.noRegs && c == "bt -a" {
						var out, errb bytes.Buffer
						if code := run(args, &out, &errb); code == 0 || !strings.Contains(out.String()+errb.String(), "no CPU registers") {
							t.Errorf("bt -a on a capture without CPU notes: exit %d, %s%s", code, out.String(), errb.String())
						}
						continue
					}
					got := runOut(t, args...)
					if hc.noRegs && c == "bt --all-tasks" {
						gt, wt := btTasks(t, got), btTasks(t, want[hc.from][c])
						compared := 0
						for task, w := range wt {
							var h struct {
								PID   int  `json:"pid"`
								OnCPU bool `json:"on_cpu"`
							}
							json.Unmarshal(w, &h)
							if h.OnCPU || h.PID == 0 {
								continue // a CPU's: its registers, or its idle task
							}
							compared++
							if !bytes.Equal(gt[task], w) {
								t.Errorf("bt of task %s differs:\n got: %.300s\nwant: %.300s", task, gt[task], w)
							}
						}
						t.Logf("bt --all-tasks: %d tasks not on a CPU compared", compared)
						continue
					}
					if !bytes.Equal(got, want[hc.from][c]) {
						t.Errorf("%s differs from the original's:\n%s", c, firstDiff(string(got), string(want[hc.from][c])))
					}
				}
			})
		}
	}
}
