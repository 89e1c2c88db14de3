package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The consoles in testdata/kdump are real: each from the guest's "lab:
// truth-done" line to the capture kernel's command line, as QEMU's serial
// console wrote them (CRLF line ends included).

func readConsole(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/kdump/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseConsoleFile(t *testing.T, name string) (string, *crashReport) {
	t.Helper()
	raw, r, err := parseCrashLog(readConsole(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw, r
}

// traceWords renders a trace as its markers and reliable frames, the
// sequence kinspect's bt must print.
func traceWords(tr []traceEntry) []string {
	var out []string
	for _, e := range tr {
		switch {
		case e.Marker != "":
			out = append(out, e.Marker)
		case e.Regs != nil:
			out = append(out, "RIP: "+e.Regs.RIP)
		case !e.Unreliable:
			out = append(out, e.Func)
		}
	}
	return out
}

func TestParseOops(t *testing.T) {
	raw, r := parseConsoleFile(t, "oops.console")
	if !strings.HasPrefix(raw, "[  194.886670] BUG: kernel NULL pointer dereference, address: 0000000000000000\n") ||
		!strings.HasSuffix(raw, "[  194.889148] CR2: 0000000000000000\n") {
		t.Errorf("raw report:\n%s", raw)
	}
	want := crashReport{Kind: "oops", FirstLine: "BUG: kernel NULL pointer dereference, address: 0000000000000000",
		Oops: "Oops: 0002 [#1] PREEMPT SMP NOPTI", CPU: 0, PID: 837, Comm: "init", Tainted: "G           OE     ",
		Release: "6.1.0-56-amd64", Version: "#1", Build: "Debian 6.1.192-2",
		RIP: "0010:kicrash_oops+0xc/0x20 [kicrash]", Code: "Unable to access opcode bytes at 0xffffffffc04fffe2.", CR2: "0000000000000000"}
	got := crashReport{Kind: r.Kind, FirstLine: r.FirstLine, Oops: r.Oops, Panic: r.Panic, CPU: r.CPU, PID: r.PID, Comm: r.Comm,
		Tainted: r.Tainted, Release: r.Release, Version: r.Version, Build: r.Build, RIP: r.RIP, Code: r.Code, CR2: r.CR2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	regs := map[string]string{"RSP": "0018:ffffd473c109bac8", "EFLAGS": "00000246", "RAX": "0000000000000000",
		"RCX": "c0000000ffffefff", "R11": "ffffffff9b8d4448", "R15": "ffffd473c109bbe8", "FS": "000000002d3ba3c0(0000)",
		"GS": "ffff8e6bbde00000(0000)", "knlGS": "0000000000000000", "CS": "0010", "CR0": "0000000080050033",
		"CR2": "ffffffffc04fffe2", "CR3": "0000000036dbc000", "CR4": "0000000000750ef0", "PKRU": "55555554"}
	for k, v := range regs {
		if r.Registers[k] != v {
			t.Errorf("register %s = %q, want %q", k, r.Registers[k], v)
		}
	}
	if n := len(r.Registers); n != 28 {
		t.Errorf("%d registers, want 28: %v", n, r.Registers)
	}
	if len(r.Dumps) != 1 || r.Summary != nil || r.Main != 0 {
		t.Fatalf("%d dumps, summary %v, main %d", len(r.Dumps), r.Summary, r.Main)
	}
	d := r.Dumps[0]
	wantTrace := []string{"<TASK>", "kicrash_write", "full_proxy_write", "vfs_write", "ksys_write", "do_syscall_64",
		"entry_SYSCALL_64_after_hwframe", "RIP: 0033:0x47b7a0", "</TASK>"}
	if got := traceWords(d.Trace); !reflect.DeepEqual(got, wantTrace) {
		t.Errorf("trace %q\nwant %q", got, wantTrace)
	}
	e := d.Trace[1]
	if e.Func != "kicrash_write" || e.Offset != "0x1cb" || e.Size != "0x220" || e.Module != "kicrash" || e.Unreliable {
		t.Errorf("first frame %+v", e)
	}
	unreliable := 0
	for _, e := range d.Trace {
		if e.Unreliable {
			unreliable++
			if e.Func == "" || e.Offset == "" || e.Size == "" {
				t.Errorf("? entry %+v", e)
			}
		}
	}
	if unreliable != 18 {
		t.Errorf("%d ? entries, want 18", unreliable)
	}
	user := d.Trace[len(d.Trace)-2].Regs
	if user == nil || user.Segment != "0033" || user.Registers["ORIG_RAX"] != "0000000000000001" || user.Registers["RSP"] != "002b:00007ffd828a00e8" {
		t.Errorf("user registers %+v", user)
	}
}

// An oops in softirq: the timer callback on the IRQ stack, then the
// interrupted task with its registers.
func TestParseSoftirq(t *testing.T) {
	_, r := parseConsoleFile(t, "softirq.console")
	if r.Kind != "oops" || r.PID != 838 || r.Panic != "" || r.RIP != "0010:kicrash_oops+0xc/0x20 [kicrash]" {
		t.Errorf("%s pid %d panic %q rip %q", r.Kind, r.PID, r.Panic, r.RIP)
	}
	want := []string{"<IRQ>", "call_timer_fn", "__run_timers", "run_timer_softirq", "handle_softirqs", "__irq_exit_rcu",
		"sysvec_apic_timer_interrupt", "</IRQ>", "<TASK>", "asm_sysvec_apic_timer_interrupt", "RIP: 0010:delay_tsc+0x33/0xa0",
		"kicrash_wait", "kicrash_write", "full_proxy_write", "vfs_write", "ksys_write", "do_syscall_64",
		"entry_SYSCALL_64_after_hwframe", "RIP: 0033:0x47b7a0", "</TASK>"}
	if got := traceWords(r.Dumps[0].Trace); !reflect.DeepEqual(got, want) {
		t.Errorf("trace %q\nwant %q", got, want)
	}
	for _, e := range r.Dumps[0].Trace {
		if e.Regs != nil && e.Regs.Func == "delay_tsc" {
			if e.Regs.Registers["RSP"] != "0018:ffffced00105bcb8" || e.Regs.Registers["R15"] != "ffffced00105bde8" || e.Regs.Registers["CR2"] != "" {
				t.Errorf("interrupted registers %v", e.Regs.Registers)
			}
		}
	}
}

// A panic() in an hrtimer callback: no register dump of its own; the
// dump_stack of panic() is the crashing context's.
func TestParseHardirqPanic(t *testing.T) {
	_, r := parseConsoleFile(t, "hardirq.console")
	if r.Kind != "panic" || r.Panic != "kicrash: panic in hardirq (hrtimer callback)" || r.FirstLine != "Kernel panic - not syncing: "+r.Panic {
		t.Errorf("%s %q %q", r.Kind, r.FirstLine, r.Panic)
	}
	if r.RIP != "" || r.Main != 0 || r.Dumps[0].Context != "panic" || r.PID != 836 {
		t.Errorf("rip %q main %d dumps %+v", r.RIP, r.Main, r.Dumps)
	}
	tr := r.Dumps[0].Trace
	var cold *traceEntry
	for i := range tr {
		if strings.HasPrefix(tr[i].Func, "kicrash_hrtimer_fn") {
			cold = &tr[i]
		}
	}
	if cold == nil || cold.Func != "kicrash_hrtimer_fn.cold" || cold.Offset != "0xc" || cold.Size != "0xc" || cold.Module != "kicrash" {
		t.Errorf("hrtimer callback frame %+v", cold)
	}
	if got := traceWords(tr); got[0] != "<IRQ>" || !contains(got, "</IRQ>") || !contains(got, "RIP: 0010:delay_tsc+0x33/0xa0") {
		t.Errorf("trace %q", got)
	}
}

func TestParseWarn(t *testing.T) {
	_, r := parseConsoleFile(t, "warn.console")
	want := &warning{CPU: 0, PID: 831, File: "kicrash.c", Line: 56, Func: "kicrash_warn", Offset: "0x11", Size: "0x20", Module: "kicrash"}
	if !reflect.DeepEqual(r.Warning, want) {
		t.Errorf("warning %+v", r.Warning)
	}
	if r.Kind != "warning" || r.Panic != "kernel: panic_on_warn set ..." || r.RIP != "0010:kicrash_warn+0x11/0x20 [kicrash]" {
		t.Errorf("%s %q %q", r.Kind, r.Panic, r.RIP)
	}
	// "Modules linked in" comes before the CPU line in a warning.
	if !strings.HasPrefix(r.Modules, "kicrash(OE) 9p") || len(r.Dumps) != 2 || r.Dumps[1].Context != "panic" {
		t.Errorf("modules %q, dumps %d", r.Modules, len(r.Dumps))
	}
}

// The soft lockup: the watchdog's dump of the interrupted task (in the
// BPF program), the NMI backtrace of the spinner's CPU, and panic()'s
// dump from the hrtimer interrupt.
func TestParseSoftLockup(t *testing.T) {
	_, r := parseConsoleFile(t, "lockup.console")
	if r.SoftLockup == nil || *r.SoftLockup != (softLockup{CPU: 0, Seconds: 3, Comm: "ki_lockup", PID: 136}) {
		t.Errorf("soft lockup %+v", r.SoftLockup)
	}
	if r.Panic != "softlockup: hung tasks" || r.Comm != "ki_lockup" || r.PID != 136 ||
		r.RIP != "0010:bpf_prog_7e977a0e8df462cb_ki_lockup_step+0x69/0x79" {
		t.Errorf("panic %q comm %s pid %d rip %q", r.Panic, r.Comm, r.PID, r.RIP)
	}
	var ctx []string
	for _, d := range r.Dumps {
		ctx = append(ctx, d.Context)
	}
	if !reflect.DeepEqual(ctx, []string{"report", "nmi_backtrace", "panic"}) {
		t.Fatalf("dumps %q", ctx)
	}
	if got := traceWords(r.Dumps[0].Trace); got[0] != "<TASK>" || got[1] != "bpf_prog_4ff54ba6a3d2710e_ki_lockup" || contains(got, "<IRQ>") {
		t.Errorf("watchdog's trace %q", got)
	}
	nmi := r.Dumps[1]
	if nmi.CPU != 1 || nmi.Comm != "ki_spinner" || nmi.Regs == nil || nmi.Regs.Func != "bpf_prog_b6cdc64c803f2990_ki_spin" || nmi.Regs.Offset != "0x6d" {
		t.Errorf("NMI backtrace %+v %+v", nmi, nmi.Regs)
	}
	p := r.Dumps[2]
	if p.Tainted != "G           OEL    " {
		t.Errorf("panic's taint %q", p.Tainted)
	}
	want := []string{"<IRQ>", "dump_stack_lvl", "panic", "watchdog_timer_fn.cold", "__hrtimer_run_queues", "hrtimer_interrupt",
		"__sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt", "</IRQ>", "<TASK>", "asm_sysvec_apic_timer_interrupt",
		"RIP: 0010:bpf_prog_7e977a0e8df462cb_ki_lockup_step+0x69/0x79", "bpf_prog_4ff54ba6a3d2710e_ki_lockup", "bpf_test_run",
		"bpf_prog_test_run_skb", "__sys_bpf", "__x64_sys_bpf", "do_syscall_64", "entry_SYSCALL_64_after_hwframe",
		"RIP: 0033:0x40a90e", "</TASK>"}
	if got := traceWords(p.Trace); !reflect.DeepEqual(got, want) {
		t.Errorf("panic's trace %q\nwant %q", got, want)
	}
}

// A console cut short: the spinner's CPU was printing its NMI backtrace
// when the panic's NMI stopped it; the capture kernel's first line begins
// in the middle of the last line.
func TestParseHungCut(t *testing.T) {
	raw, r := parseConsoleFile(t, "hung-cut.console")
	if !strings.HasSuffix(raw, "] RBP: 000009a60a3f69f8 R08: 0000000000000\n") {
		t.Errorf("raw report ends %q", raw[len(raw)-80:])
	}
	if len(r.HungTasks) != 1 || r.HungTasks[0].Comm != "init" || r.HungTasks[0].PID != 837 || r.HungTasks[0].Seconds != 3 {
		t.Errorf("hung tasks %+v", r.HungTasks)
	}
	if r.Dumps[0].Context != "task" || r.Dumps[0].State != "D" || r.Dumps[0].PID != 837 {
		t.Errorf("task dump %+v", r.Dumps[0])
	}
	// No panic() dump reached the console: khungtaskd's own backtrace stands in.
	if r.Panic != "" || r.Comm != "khungtaskd" || r.PID != 30 {
		t.Errorf("panic %q, crashing %s %d", r.Panic, r.Comm, r.PID)
	}
	want := []string{"<TASK>", "__schedule", "schedule", "kicrash_hang", "kicrash_write", "full_proxy_write", "vfs_write",
		"ksys_write", "do_syscall_64", "entry_SYSCALL_64_after_hwframe", "RIP: 0033:0x47b7a0", "</TASK>"}
	if got := traceWords(r.Dumps[0].Trace); !reflect.DeepEqual(got, want) {
		t.Errorf("hung task's trace %q\nwant %q", got, want)
	}
}

// Other output interleaved with the report (the lab's own lines, a line
// without a timestamp) is not the kernel's and is left out.
func TestParseInterleaved(t *testing.T) {
	console := readConsole(t, "oops.console")
	_, clean, err := parseCrashLog(console)
	if err != nil {
		t.Fatal(err)
	}
	noisy := strings.Replace(console, "[  194.889148]  full_proxy_write+0x53/0x80\r\n",
		"lab: something else (uptime 194.9)\r\n[  194.889148]  full_proxy_write+0x53/0x80\r\ngarbage\r\n", 1)
	if noisy == console {
		t.Fatal("no line to interleave with")
	}
	_, r, err := parseCrashLog(noisy)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, clean) {
		t.Errorf("interleaved output changed the report")
	}
	if _, _, err := parseCrashLog("lab: truth-done\nnothing else\n"); err == nil {
		t.Error("a console without a report parsed")
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
