// Package labdata finds the lab's scenarios — real kernel dumps and the
// truth captured inside the guest — for tests. The lab (go run ./lab)
// writes them; see lab/README.md for the layout.
package labdata

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// EnvDir names the variable that overrides the lab's cache directory.
const EnvDir = "KINSPECT_LAB_DIR"

// EnvRequire, when "1", turns a missing scenario from a skip into a test
// failure. CI sets it after building the scenarios.
const EnvRequire = "KINSPECT_LAB_REQUIRE"

// EnvScenarios lists (comma-separated) the scenarios that must be built
// when EnvRequire is set.
const EnvScenarios = "KINSPECT_LAB_SCENARIOS"

// Root returns the lab's cache directory: $KINSPECT_LAB_DIR, or
// $HOME/.cache/kinspect-lab.
func Root() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kinspect-lab")
	}
	return filepath.Join(os.TempDir(), "kinspect-lab")
}

// Manifest describes one built scenario. It is written by the lab as
// manifest.json at the top of the scenario's directory.
type Manifest struct {
	Scenario      string `json:"scenario"`
	Key           string `json:"key"`            // hash of every input
	Kernel        string `json:"kernel"`         // Debian package, e.g. linux-image-6.1.0-56-amd64
	KernelVersion string `json:"kernel_version"` // its Debian version
	Release       string `json:"release"`        // uname -r inside the guest
	MemoryMB      int    `json:"memory_mb"`
	CPUs          int    `json:"cpus"`
	LA57          bool   `json:"la57"`  // 5-level paging
	Panic         bool   `json:"panic"` // dumped after a real panic
	Scale         bool   `json:"scale"` // workload run with -scale
	Live          bool   `json:"live"`  // kinspect was run inside the guest; no dumps
	// NoVMCOREINFO: QEMU ran without -device vmcoreinfo, so its dumps
	// have no VMCOREINFO note, and only QEMU's formats were made.
	NoVMCOREINFO bool `json:"no_vmcoreinfo,omitempty"`
	// BuiltAt is when the lab finished the scenario (RFC 3339).
	BuiltAt string `json:"built_at"`
	// Seconds is how long building it took.
	Seconds float64 `json:"seconds"`
	// Formats lists the dump files of this scenario.
	Formats []Format `json:"formats"`
	// Captures lists the forensic captures of the guest (LiME, AVML), taken
	// after the dumps of Formats with the guest running again: they hold
	// what the capture added (truth/lime.json names it). Format finds
	// them too.
	Captures []Format `json:"captures,omitempty"`
	// Stops records the attempts to stop the VM with the spinner's CPU
	// inside a BPF program.
	Stops []Stop `json:"stops"`
	// Checks lists what the lab verified of its own outputs, e.g. the
	// notes readelf finds in the ELF dumps.
	Checks []string `json:"checks,omitempty"`
	// Notes says what the lab could not do on this kernel, and why.
	Notes []string `json:"notes,omitempty"`
	// Kdump is set when the dumps were saved by a kdump capture kernel
	// (kexec -p) after a real crash: the kd* scenarios. Crash says what
	// crashed; truth/crash.json has the crashing kernel's report.
	Kdump bool   `json:"kdump,omitempty"`
	Crash *Crash `json:"crash,omitempty"`
}

// Crash describes the crash of a kdump scenario: how the lab caused it
// and what the crashing kernel printed (the details, parsed from the
// serial console, are in truth/crash.json; the report as printed in
// truth/crash-console.txt).
type Crash struct {
	// Trigger is how the lab crashed the guest (lab/guest/kdump.sh):
	// sysrq, oops, bug, warn, hardirq-panic, softirq-oops, stack, lockup, hung.
	Trigger string `json:"trigger"`
	// PostNotifiers: crash_kexec_post_notifiers was on the command line.
	PostNotifiers bool `json:"crash_kexec_post_notifiers"`
	// Source is where the report was read: "console", or "vmcore-dmesg"
	// (the crashed kernel's log in the dump) when the console shows none.
	Source string `json:"source"`
	// Kind is the kind of report the kernel printed: panic, oops, bug,
	// warning, soft_lockup, hung_task, stack_overflow.
	Kind string `json:"kind"`
	// FirstLine is the report's first line, e.g. "BUG: kernel NULL pointer
	// dereference, address: 0000000000000000".
	FirstLine string `json:"first_line"`
	// Panic is the message of "Kernel panic - not syncing: MSG", empty
	// when the kernel kexec'ed before printing one (an oops without
	// crash_kexec_post_notifiers).
	Panic string `json:"panic"`
	// The crashing context as the report's "CPU: N PID: P Comm: C" line says.
	CPU     int    `json:"cpu"`
	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	Tainted string `json:"tainted"` // as printed after "Tainted: " ("" if "Not tainted")
	// RIP is the first "RIP:" line's value as printed, e.g.
	// "0010:kicrash_oops+0x9/0x10 [kicrash]"; empty for a panic().
	RIP string `json:"rip,omitempty"`
	// CaptureCmdline is the capture kernel's command line (kexec adds elfcorehdr=).
	CaptureCmdline string `json:"capture_cmdline"`
	// Seconds: crash to capture kernel's /init, and each capture step.
	Seconds map[string]float64 `json:"seconds,omitempty"`
}

// Format is one dump file.
type Format struct {
	Name        string `json:"name"`        // e.g. "kdump-zlib-d31"
	Path        string `json:"path"`        // relative to the scenario directory
	Layout      string `json:"layout"`      // "elf", "kdump", "kdump-flat", "lime" or "avml"
	Compression string `json:"compression"` // "none", "zlib", "lzo", "snappy", "zstd"
	DumpLevel   int    `json:"dump_level"`  // makedumpfile -d; 0 = every page
	Producer    string `json:"producer"`    // "qemu", "makedumpfile", "lab-recompress", "kdump" (cp /proc/vmcore), "lime" (lime.ko), "avml"
	Bytes       int64  `json:"bytes,omitempty"`
}

// Stop is one attempt to pause the VM inside the spinner's BPF program.
type Stop struct {
	Attempt int    `json:"attempt"`
	CPU     int    `json:"cpu"`
	RIP     string `json:"rip"`
	Symbol  string `json:"symbol"` // from the truth's /proc/kallsyms
	InBPF   bool   `json:"in_bpf"` // inside the spinner's BPF program
	// Note says how InBPF was decided when not from RIP (the panic
	// scenario looks for the program on the stack of the stopped CPU).
	Note string `json:"note,omitempty"`
}

// Scenario is a built scenario on disk.
type Scenario struct {
	Dir string
	Manifest
}

// ErrNotBuilt is returned by Load when the scenario has not been built.
var ErrNotBuilt = errors.New("scenario not built")

// Load reads the scenario called name from the lab's cache directory.
func Load(name string) (*Scenario, error) {
	dir := filepath.Join(Root(), name)
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("labdata: %s in %s (run: go run ./lab %s): %w", name, Root(), name, ErrNotBuilt)
	}
	if err != nil {
		return nil, fmt.Errorf("labdata: %w", err)
	}
	s := &Scenario{Dir: dir}
	if err := json.Unmarshal(b, &s.Manifest); err != nil {
		return nil, fmt.Errorf("labdata: %s/manifest.json: %w", dir, err)
	}
	return s, nil
}

// Path returns the absolute path of a file of the scenario, given
// relative to its directory (e.g. "truth/kallsyms.txt").
func (s *Scenario) Path(rel string) string { return filepath.Join(s.Dir, rel) }

// Format returns the dump format or capture called name.
func (s *Scenario) Format(name string) (Format, bool) {
	for _, f := range append(slices.Clone(s.Formats), s.Captures...) {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// Names lists the scenarios the lab knows, in the order tests use them.
var Names = []string{"basic", "la57", "k612", "panic", "scale", "noinfo", "avml"}

// KdumpNames lists the kdump scenarios: a real crash, saved by a capture
// kernel. Built returns them after Names; BuiltKdump only them.
var KdumpNames = []string{"kd-sysrq", "kd-oops", "kd-oops-post", "kd-bug", "kd-hardirq", "kd-softirq",
	"kd-warn", "kd-stack", "kd-lockup", "kd-hung", "kd612-sysrq", "kd612-oops", "kd612-bug"}

// Require loads a scenario for a test. A scenario that is not built skips
// the test, unless KINSPECT_LAB_REQUIRE=1, when it fails it.
func Require(tb testing.TB, name string) *Scenario {
	tb.Helper()
	s, err := Load(name)
	if err == nil {
		return s
	}
	if errors.Is(err, ErrNotBuilt) && os.Getenv(EnvRequire) != "1" {
		tb.Skip(err)
	}
	tb.Fatal(err)
	return nil
}

// Built returns every scenario that is built, in the order of Names and
// then KdumpNames (a kdump scenario's Kdump field is set: its formats are
// elf and the makedumpfile -d 31 ones, its truth is taken before the
// crash, whose trigger adds a task; see lab/README.md). With
// KINSPECT_LAB_REQUIRE=1 it fails the test when none is, or when a
// scenario listed in KINSPECT_LAB_SCENARIOS (comma-separated) is missing.
func Built(tb testing.TB) []*Scenario {
	tb.Helper()
	var out []*Scenario
	for _, n := range append(slices.Clone(Names), KdumpNames...) {
		s, err := Load(n)
		if err == nil {
			out = append(out, s)
		} else if !errors.Is(err, ErrNotBuilt) {
			tb.Fatal(err)
		}
	}
	if len(out) == 0 {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("labdata: no scenario built in %s", Root())
		}
		tb.Skipf("labdata: no scenario built in %s (run: go run ./lab basic)", Root())
	}
	if os.Getenv(EnvRequire) == "1" {
		for _, n := range strings.Split(os.Getenv(EnvScenarios), ",") {
			if n = strings.TrimSpace(n); n == "" {
				continue
			}
			if _, err := Load(n); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}

// Misfiltered says why a filtered dump of this scenario lacks pages the
// kernel was using, or "" when it does not. makedumpfile 1.7.2 takes the
// slab pages of 6.10+ kernels (PG_slab became a page type in 6.10) for
// free pages when it excludes free pages (dump level bit 16), so walkers
// over slab objects may meet excluded pages there. See lab/README.md.
func (s *Scenario) Misfiltered(f Format) string {
	if f.Producer != "makedumpfile" || f.DumpLevel&16 == 0 {
		return ""
	}
	var major, minor int
	fmt.Sscanf(s.Release, "%d.%d", &major, &minor)
	if major > 6 || major == 6 && minor >= 10 {
		return fmt.Sprintf("%s: makedumpfile 1.7.2 filtered %s's slab pages as free (kernel %s)", f.Name, s.Scenario, s.Release)
	}
	return ""
}

// BuiltKdump returns the kdump scenarios that are built. A missing one
// is only an error when KINSPECT_LAB_SCENARIOS names it (and the test
// also calls Built, which checks that).
func BuiltKdump(tb testing.TB) []*Scenario {
	tb.Helper()
	var out []*Scenario
	for _, n := range KdumpNames {
		s, err := Load(n)
		if err == nil {
			out = append(out, s)
		} else if !errors.Is(err, ErrNotBuilt) {
			tb.Fatal(err)
		}
	}
	return out
}

// BuiltLive returns the live variants (NAME-live of each scenario) that
// are built; Built leaves them out. A missing one is only an error when
// KINSPECT_LAB_SCENARIOS names it (Built checks that).
func BuiltLive(tb testing.TB) []*Scenario {
	tb.Helper()
	var out []*Scenario
	for _, n := range Names {
		s, err := Load(n + "-live")
		if err == nil {
			out = append(out, s)
		} else if !errors.Is(err, ErrNotBuilt) {
			tb.Fatal(err)
		}
	}
	return out
}

// LiMECapture is truth/lime.json: what a forensic capture (Captures,
// taken after the truth) holds that the truth does not.
// lab/guest/lime.sh writes it for LiME, lab/guest/avml.sh for AVML.
type LiMECapture struct {
	// Tool is "avml" for an AVML capture, empty for LiME's.
	Tool string `json:"tool"`
	// PID is the process that ran the capture, so it is in the capture
	// and not in the truth: the insmod that loaded lime.ko (the capture
	// ran inside its init_module call), or avml.
	PID int `json:"pid"`
	// Parent is its parent, the trigger subshell of /init: in the truth
	// reading the console, in the capture waiting for the capture's process.
	Parent int `json:"parent"`
	RC     int `json:"rc"` // the capture process's exit status
}

// AVML tells whether the capture was taken by avml (no module of its own).
func (c LiMECapture) AVML() bool { return c.Tool == "avml" }

// LiMEModule is the module a LiME capture adds: lime.ko, still in its
// init function (MODULE_STATE_COMING) while it captures.
const LiMEModule = "lime"

// LiME reads truth/lime.json of a scenario with a LiME capture.
func (s *Scenario) LiME(tb testing.TB) LiMECapture {
	tb.Helper()
	var c LiMECapture
	ReadJSON(tb, s.Path("truth/lime.json"), &c)
	if c.PID == 0 || c.Parent == 0 {
		tb.Fatalf("%s: truth/lime.json names no capture process (%+v)", s.Scenario, c)
	}
	return c
}

// ReadJSON decodes the JSON file at path into v, failing the test when
// it cannot: truth files are part of a built scenario.
func ReadJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// KallsymsLines reads truth/kallsyms.txt's lines of modules (and [bpf])
// as "ADDR TYPE NAME [MOD]" strings.
func KallsymsLines(t testing.TB, path string, bpf bool) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 || fs[3] == "[__builtin__ftrace]" || (fs[3] == "[bpf]") != bpf {
			continue
		}
		out[strings.Join(fs, " ")] = true
	}
	return out
}

// CompareSets fails the test when got and truth differ, naming up to ten
// missing and extra elements.
func CompareSets(t testing.TB, what string, got, truth map[string]bool) {
	t.Helper()
	var missing, extra []string
	for k := range truth {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !truth[k] {
			extra = append(extra, k)
		}
	}
	t.Logf("%s: %d in the truth, %d read, %d missing, %d extra", what, len(truth), len(got), len(missing), len(extra))
	if len(truth) == 0 {
		t.Errorf("%s: none in the truth", what)
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: missing %d %v; extra %d %v", what, len(missing), head(missing, 10), len(extra), head(extra, 10))
	}
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "... "+strconv.Itoa(len(s)-n)+" more")
	}
	return s
}

// StartedAfterTruth says whether a task the dump holds and the truth's
// ps lacks was started after the truth: its TID is above maxTID (every
// truth task's), and it is a kernel worker (a kworker child of kthreadd)
// or a child of a truth process (inTruth(ppid)), such as kd-lockup's
// crash trigger's sleep.
func StartedAfterTruth(tid, ppid int, name string, maxTID int, inTruth func(pid int) bool) bool {
	return tid > maxTID && (ppid == 2 && strings.HasPrefix(name, "kworker/") || inTruth(ppid))
}

// ExitedAfterTruth says whether a truth task the dump lacks may have
// exited between the truth and the dump: a kernel worker (a kworker
// child of kthreadd, not a rescuer), which its workqueue pool destroys
// after five minutes idle (IDLE_WORKER_TIMEOUT); a slow guest's truth
// and dump are that far apart.
func ExitedAfterTruth(ppid int, name string) bool {
	return ppid == 2 && strings.HasPrefix(name, "kworker/") && !strings.HasPrefix(name, "kworker/R-")
}
