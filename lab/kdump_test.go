package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// These tests check the kdump scenarios' own outputs: the crash report
// parsed from the console, and the notes of the capture kernel's ELF
// dumps, as readelf shows them.

// wantKind is the report each crash makes.
var wantKind = map[string]string{
	"sysrq": "panic", "oops": "oops", "bug": "bug", "hardirq-panic": "panic", "softirq-oops": "oops",
	"warn": "warning", "stack": "stack_overflow", "lockup": "soft_lockup", "hung": "hung_task",
}

func kdumpScenarios(t *testing.T) []*labdata.Scenario {
	out := labdata.BuiltKdump(t)
	if len(out) == 0 {
		t.Skipf("no kdump scenario built in %s (go run ./lab kd-oops)", labdata.Root())
	}
	return out
}

func TestKdumpCrash(t *testing.T) {
	for _, s := range kdumpScenarios(t) {
		t.Run(s.Scenario, func(t *testing.T) {
			sc, ok := findScenario(s.Scenario)
			if !ok {
				t.Fatalf("no scenario %s in the lab", s.Scenario)
			}
			if !s.Kdump || s.Crash == nil {
				t.Fatalf("manifest: kdump %v, crash %v", s.Kdump, s.Crash)
			}
			if s.Crash.Trigger != sc.Crash || s.Crash.PostNotifiers != sc.PostNotifiers {
				t.Errorf("manifest crash %s (post notifiers %v), scenario %s (%v)", s.Crash.Trigger, s.Crash.PostNotifiers, sc.Crash, sc.PostNotifiers)
			}
			var r crashReport
			labdata.ReadJSON(t, s.Path("truth/crash.json"), &r)
			if want := wantKind[sc.Crash]; r.Kind != want {
				t.Errorf("crash.json kind %q, want %q (first line %q)", r.Kind, want, r.FirstLine)
			}
			if r.Kind != s.Crash.Kind || r.FirstLine != s.Crash.FirstLine || r.PID != s.Crash.PID || r.Panic != s.Crash.Panic {
				t.Errorf("manifest and crash.json differ: %+v", s.Crash)
			}
			// The report as printed, where crash.json read it.
			src := map[string]string{"console": "truth/crash-console.txt", "vmcore-dmesg": "truth/crash-dmesg.txt"}[r.Source]
			if src == "" {
				t.Fatalf("crash.json source %q", r.Source)
			}
			if r.Source != "console" && sc.Crash != "stack" {
				t.Errorf("report read from %s, not from the console", r.Source)
			}
			raw, err := os.ReadFile(s.Path(src))
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(raw), "\n")
			if r.FirstLine == "" || !strings.HasSuffix(first, "] "+r.FirstLine) {
				t.Errorf("%s starts %q, crash.json's first line is %q", src, first, r.FirstLine)
			}
			if r.PID <= 0 || r.Comm == "" || r.Release != s.Release || r.Main < 0 || r.Main >= len(r.Dumps) {
				t.Fatalf("crashing context: cpu %d pid %d comm %q release %q (manifest %q), main dump %d of %d",
					r.CPU, r.PID, r.Comm, r.Release, s.Release, r.Main, len(r.Dumps))
			}
			// The crash runs on CPU 0; the spinner keeps CPU 1.
			if r.CPU != 0 {
				t.Errorf("crashed on CPU %d, want 0", r.CPU)
			}
			if !strings.Contains(r.Tainted, "O") || !strings.Contains(r.Tainted, "E") {
				t.Errorf("taint %q: kicrash is out of tree (O) and unsigned (E)", r.Tainted)
			}
			main := r.Dumps[r.Main]
			if len(frames(main.Trace)) == 0 {
				t.Errorf("the crashing context's Call Trace has no reliable frame: %+v", main.Trace)
			}
			wantPanic := map[bool]string{true: "Fatal exception", false: ""}[sc.PostNotifiers]
			switch sc.Crash {
			case "sysrq":
				wantPanic = "sysrq triggered crash"
			case "hardirq-panic":
				wantPanic = "kicrash: panic in hardirq (hrtimer callback)"
			case "softirq-oops":
				wantPanic = "" // an oops in interrupt kexecs from oops_end
			case "warn":
				wantPanic = "kernel: panic_on_warn set ..."
			case "lockup":
				wantPanic = "softlockup: hung tasks"
			case "hung":
				wantPanic = "hung_task: blocked tasks"
			case "stack":
				wantPanic = ""
			}
			if r.Panic != wantPanic {
				t.Errorf("panic message %q, want %q", r.Panic, wantPanic)
			}
			hasFunc := func(d *regDump, fn string) bool {
				for _, e := range d.Trace {
					if strings.HasPrefix(e.Func, fn) || e.Regs != nil && strings.HasPrefix(e.Regs.Func, fn) {
						return true
					}
				}
				return d.Regs != nil && strings.HasPrefix(d.Regs.Func, fn)
			}
			switch sc.Crash {
			case "oops", "bug", "stack", "softirq-oops":
				if r.Registers["RSP"] == "" || r.Registers["CR4"] == "" || !strings.Contains(r.RIP, "[kicrash]") {
					t.Errorf("oops: RIP %q, registers %v", r.RIP, r.Registers)
				}
			case "warn":
				if r.Warning == nil || r.Warning.Func != "kicrash_warn" || r.Warning.Module != "kicrash" {
					t.Errorf("warning %+v", r.Warning)
				}
			case "lockup":
				if r.SoftLockup == nil || r.SoftLockup.Comm != "ki_lockup" || r.SoftLockup.PID != r.PID {
					t.Errorf("soft lockup %+v, crashing pid %d", r.SoftLockup, r.PID)
				}
				if !hasFunc(main, "bpf_prog_") {
					t.Errorf("the soft lockup's stack has no BPF program")
				}
			case "hung":
				if len(r.HungTasks) == 0 || r.Comm != "khungtaskd" {
					t.Errorf("hung tasks %+v, panicking task %s", r.HungTasks, r.Comm)
				}
			}
			switch sc.Crash {
			case "hardirq-panic", "softirq-oops", "lockup":
				// The soft lockup's own dump is of the interrupted task;
				// panic()'s, from the watchdog's hrtimer, has the <IRQ>.
				irq := false
				for _, d := range r.Dumps {
					if d.CPU == r.CPU && d.Context != "nmi_backtrace" && hasMarker(d.Trace, "<IRQ>") {
						irq = true
					}
				}
				if !irq {
					t.Errorf("no <IRQ> in a Call Trace of the crashing CPU")
				}
			}
			// An NMI backtrace of the spinner's CPU, where the console has one,
			// is inside its program.
			for _, d := range r.Dumps {
				if d.Context == "nmi_backtrace" && d.CPU == 1 && !hasFunc(d, "bpf_prog_") {
					t.Errorf("NMI backtrace of CPU 1 (%s) has no BPF program", d.Comm)
				}
			}
			t.Logf("%s: cpu %d pid %d comm %s: %s; panic %q", s.Scenario, r.CPU, r.PID, r.Comm, r.FirstLine, r.Panic)
		})
	}
}

func frames(tr []traceEntry) []traceEntry {
	var out []traceEntry
	for _, e := range tr {
		if e.Func != "" && !e.Unreliable {
			out = append(out, e)
		}
	}
	return out
}

func hasMarker(tr []traceEntry, m string) bool {
	for _, e := range tr {
		if e.Marker == m {
			return true
		}
	}
	return false
}

// TestKdumpELFNotes runs readelf -n on the capture kernel's ELF dumps: an
// NT_PRSTATUS per CPU, and VMCOREINFO with CRASHTIME.
func TestKdumpELFNotes(t *testing.T) {
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Skip("no readelf")
	}
	for _, s := range kdumpScenarios(t) {
		t.Run(s.Scenario, func(t *testing.T) {
			for _, name := range []string{"elf", "elf-d31"} {
				out, err := exec.Command("readelf", "-n", s.Path("dumps/"+name)).CombinedOutput()
				if err != nil {
					t.Fatalf("readelf -n %s: %v\n%s", name, err, out)
				}
				if n := strings.Count(string(out), "NT_PRSTATUS"); n != s.CPUs {
					t.Errorf("%s: %d NT_PRSTATUS notes, want %d", name, n, s.CPUs)
				}
				info := vmcoreinfoFromReadelf(string(out))
				if !bytes.Contains(info, []byte("\nCRASHTIME=")) || !bytes.Contains(info, []byte("OSRELEASE="+s.Release+"\n")) {
					t.Errorf("%s: VMCOREINFO without CRASHTIME or OSRELEASE=%s:\n%s", name, s.Release, info)
				}
			}
		})
	}
}

// vmcoreinfoFromReadelf decodes the VMCOREINFO note's "description data"
// as readelf -n prints it (hex bytes).
func vmcoreinfoFromReadelf(out string) []byte {
	_, after, ok := strings.Cut(out, "VMCOREINFO")
	if !ok {
		return nil
	}
	_, data, ok := strings.Cut(after, "description data:")
	if !ok {
		return nil
	}
	line, _, _ := strings.Cut(data, "\n")
	b, _ := hex.DecodeString(strings.ReplaceAll(line, " ", ""))
	return b
}
