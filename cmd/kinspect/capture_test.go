package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// TestCaptureLab: real forensic captures of a lab guest, taken after
// QEMU's dumps (LiME: lime.ko, lab/guest/lime.sh; AVML: avml --compress,
// lab/guest/avml.sh), open with no flags and pass the checks of the
// dumps: info finds VMCOREINFO in memory and the truth's KASLR offset; ps
// lists the truth's tasks, and one more, exactly the process that ran the
// capture (truth/lime.json: the insmod, or avml), a child of the truth's
// trigger subshell; prog show prints what bpftool printed in
// the guest, byte for byte. bt -a has no registers to show (a capture has
// no CPU notes); the tasks' backtraces are checked in orc
// (TestLabSleepingTasks).
func TestCaptureLab(t *testing.T) {
	n := 0
	for _, s := range labdata.Built(t) {
		for _, f := range s.Captures {
			n++
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				lc := s.LiME(t)
				path := s.Path(f.Path)

				var info kinspect.Info
				runJSON(t, &info, "--json", "-c", path, "info")
				t.Logf("VMCOREINFO: %q; symbols: %q; problems: %q", info.VMCOREINFO, info.Symbols, info.Problems)
				uname, err := os.ReadFile(s.Path("truth/uname.txt"))
				if err != nil {
					t.Fatal(err)
				}
				if info.Release != strings.TrimSpace(string(uname)) {
					t.Errorf("release %q, truth %q", info.Release, uname)
				}
				if !strings.HasPrefix(info.VMCOREINFO, "found in memory at phys 0x") || info.Symbols != "kallsyms tables in memory, located by VMCOREINFO" {
					t.Errorf("VMCOREINFO from %q, symbols from %q", info.VMCOREINFO, info.Symbols)
				}
				if info.Dump.Format != f.Layout {
					t.Errorf("dump format %q, want %q", info.Dump.Format, f.Layout)
				}
				checkInfoKASLR(t, s, f.Name, &info)

				truth, excluded := readTruthPs(t, s)
				var got []linux.PSRow
				runCaptureJSON(t, &got, "--json", "-c", path, "ps")
				d := comparePs(got, truth, excluded, dumpSwitches(t, path))
				t.Logf("%d truth tasks, %d listed: %d match; extra %v; kworkers that changed workqueue: %v; states differ where the task ran since: %v; threads started since: %v",
					len(truth), len(got), d.matched, d.extra, d.descs, d.ran, d.newThreads)
				var capturer *linux.PSRow
				for i, g := range got {
					if g.TID == lc.PID {
						capturer = &got[i]
					}
				}
				wantExtra := fmt.Sprintf("%d(%s)", lc.PID, "?")
				if capturer != nil {
					wantExtra = fmt.Sprintf("%d(%s)", lc.PID, capturer.Name)
				}
				// The capture's process started after the truth, a truth
				// process's child: comparePs counts it with the tasks
				// started since.
				others := slices.DeleteFunc(slices.Clone(d.extra), func(e string) bool { return e == wantExtra })
				found := slices.Contains(d.extra, wantExtra) || slices.Contains(d.newThreads, wantExtra)
				if capturer == nil || capturer.PPID != lc.Parent || !found || len(others) > 0 {
					t.Errorf("extra tasks %v (started since: %v), want only the capture's process %s, child of %d (%+v)", d.extra, d.newThreads, wantExtra, lc.Parent, capturer)
				}
				if lc.AVML() && capturer != nil && capturer.Name != "avml" {
					t.Errorf("the capture's process %d is %q, want avml", lc.PID, capturer.Name)
				}
				if len(d.missing)+len(d.wrong) > 0 {
					t.Errorf("missing %v, wrong %v", d.missing, d.wrong)
				}
				if len(d.states) > 0 {
					t.Errorf("states differ of tasks that did not run since the snapshot: %v", d.states)
				}

				for _, tc := range []struct{ args, truth string }{
					{"--json prog show", "truth/bpftool/prog.json"},
					{"prog show", "truth/bpftool/prog.txt"},
				} {
					want, err := os.ReadFile(s.Path(tc.truth))
					if err != nil {
						t.Fatal(err)
					}
					out := runOut(t, append([]string{"-c", path}, strings.Fields(tc.args)...)...)
					// bpftool cannot list the hidden program (TestHiddenProg).
					if strings.HasPrefix(tc.args, "--json") {
						out = labdata.DropJSON(out, s.Hidden(t).Progs)
					} else {
						out = labdata.DropText(out, s.Hidden(t).Progs)
					}
					if !bytes.Equal(out, want) {
						t.Errorf("%s differs from bpftool's:\n%s", tc.args, firstDiff(string(out), string(want)))
					}
				}

				var out, errb bytes.Buffer
				if code := run([]string{"-c", path, "bt", "-a"}, &out, &errb); code == 0 || !strings.Contains(out.String()+errb.String(), "no CPU registers") {
					t.Errorf("bt -a on a capture without CPU notes: exit %d, %s%s", code, out.String(), errb.String())
				}
				var traces []json.RawMessage
				runCaptureJSON(t, &traces, "--json", "-c", path, "bt", "--all-tasks")
				// A trace for every task ps lists but the idle tasks (the
				// truth's count would also hold kworkers exited since).
				tasks := slices.DeleteFunc(slices.Clone(got), func(g linux.PSRow) bool { return g.TID == 0 })
				if len(traces) != len(tasks) {
					t.Errorf("bt --all-tasks: %d traces, ps lists %d tasks besides the idle tasks", len(traces), len(tasks))
				}
			})
		}
	}
	if n == 0 {
		t.Skip("no scenario with a capture built")
	}
}

// runCaptureJSON runs a command on a capture: memory copied page by page
// while the kernel ran, so a task that exited meanwhile (an idle kworker
// the pool destroyed) can leave the task lists torn in the copy. Exit 3
// is accepted when every damaged element the report names is on the task
// walks (the task list, a task's threads or children, a PID's tasks);
// stdout must be the usual JSON.
func runCaptureJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	if code == 3 {
		for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
			var d objects.DamageReport
			if json.Unmarshal([]byte(l), &d) != nil {
				continue // the summary line
			}
			if !slices.ContainsFunc([]string{"init_task.tasks", "tasks", "children of task", "threads of task"}, func(w string) bool { return strings.HasPrefix(d.Walk, w) }) {
				t.Errorf("%v: damage off the task walks: %s", args, l)
			}
		}
		t.Logf("%v: the task walks torn by the capture: %s", args, errb.String())
	} else if code != 0 {
		t.Fatalf("%v: exit %d: %s%s", args, code, out.String(), errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out.String())
	}
}
