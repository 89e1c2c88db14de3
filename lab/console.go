package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The crashing kernel's report, parsed from the serial console: the truth
// of a kdump scenario (truth/crash.json). Lines keep their words exactly as
// printed; only the printk timestamp ("[  12.345678] ") is dropped.

// crashReport is truth/crash.json.
type crashReport struct {
	// Source is where the report was read: "console" (the serial
	// console), or "vmcore-dmesg" (the crashed kernel's log, read from
	// the dump by makedumpfile --dump-dmesg) when the console shows none:
	// a report from the double fault handler is never printed.
	Source string `json:"source"`
	// Kind: panic, oops, bug, warning, soft_lockup, hung_task,
	// stack_overflow, or "other".
	Kind string `json:"kind"`
	// FirstLine is the report's first line, e.g. "BUG: kernel NULL
	// pointer dereference, address: 0000000000000000".
	FirstLine string `json:"first_line"`
	// Oops is the die line, e.g. "Oops: 0002 [#1] PREEMPT SMP NOPTI".
	Oops string `json:"oops,omitempty"`
	// Panic is MSG of "Kernel panic - not syncing: MSG", "" when none was
	// printed (the kernel kexec'ed from oops_end first).
	Panic string `json:"panic"`

	// The crashing context: from the report's own register dump or
	// stack dump (see Dumps[Main]).
	CPU     int    `json:"cpu"`
	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	Tainted string `json:"tainted"` // as printed after "Tainted: "; "" for "Not tainted"
	// TaintFlags: 6.12's line after the CPU line, e.g. "[O]=OOT_MODULE, [E]=UNSIGNED_MODULE".
	TaintFlags string `json:"taint_flags,omitempty"`
	Release    string `json:"release"`
	Version    string `json:"version"` // "#1", as printed
	Build      string `json:"build"`   // what follows, e.g. "Debian 6.1.192-2"
	// RIP, Code and Registers of the crashing context's register dump,
	// empty for a panic() (which prints no registers).
	RIP       string            `json:"rip,omitempty"`
	Code      string            `json:"code,omitempty"`
	Registers map[string]string `json:"registers,omitempty"`
	// CR2 is the "CR2:" line printed alone after "Modules linked in"
	// (the page fault's address).
	CR2 string `json:"cr2,omitempty"`
	// Modules is the "Modules linked in:" list.
	Modules string `json:"modules,omitempty"`
	// KernelOffset is the "Kernel Offset: ..." line's words (printed by a
	// panic notifier: only with crash_kexec_post_notifiers).
	KernelOffset string `json:"kernel_offset,omitempty"`
	// Main indexes Dumps: the crashing context's dump.
	Main int `json:"main"`
	// Dumps are the report's register and stack dumps, in order: each
	// "CPU: ..." line (or a hung task's "task:" line) with what follows.
	Dumps []*regDump `json:"dumps"`
	// Summary is the register dump oops_end prints again after "---[ end
	// trace" (only when it runs on to panic()).
	Summary *regSet `json:"summary,omitempty"`

	HungTasks  []hungTask  `json:"hung_tasks,omitempty"`
	SoftLockup *softLockup `json:"soft_lockup,omitempty"`
	Warning    *warning    `json:"warning,omitempty"`
	// Lines is the report without timestamps (truth/crash-console.txt has them).
	Lines []string `json:"lines"`
}

// regDump is one register or stack dump.
type regDump struct {
	// Context: "report" (the report's own), "nmi_backtrace" (after "NMI
	// backtrace for cpu N"), "panic" (panic()'s dump_stack), "task" (a
	// hung task's sched_show_task).
	Context string `json:"context"`
	Header  string `json:"header"` // the "CPU: ..." or "task: ..." line
	CPU     int    `json:"cpu"`
	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	Tainted string `json:"tainted,omitempty"`
	// TaintFlags is the line 6.12 prints after the CPU line, e.g.
	// "[O]=OOT_MODULE, [E]=UNSIGNED_MODULE".
	TaintFlags string `json:"taint_flags,omitempty"`
	Release    string `json:"release,omitempty"`
	Version    string `json:"version,omitempty"`
	Build      string `json:"build,omitempty"`
	// State is a task dump's state letter (D for a hung task).
	State string `json:"state,omitempty"`
	// Regs is the dump's register set (RIP: ... CR4:), when printed.
	Regs *regSet `json:"regs,omitempty"`
	// Trace is the Call Trace: entries and context markers in order.
	Trace []traceEntry `json:"trace"`
}

// regSet is a register dump as printed: "RIP:", "Code:" and every
// "NAME: VALUE" of the lines that follow.
type regSet struct {
	RIP string `json:"rip"` // e.g. "0010:kicrash_oops+0x9/0x10 [kicrash]"
	// The RIP line parsed: CS, and the symbol when there is one.
	Segment string `json:"segment"`
	Func    string `json:"func,omitempty"`
	Offset  string `json:"offset,omitempty"`
	Size    string `json:"size,omitempty"`
	Module  string `json:"module,omitempty"`
	Code    string `json:"code,omitempty"`
	// Registers: RSP (as "SS:RSP"), EFLAGS, ORIG_RAX, RAX..R15, FS, GS
	// (with "(selector)"), knlGS, CS, DS, ES, CR0, CR2, CR3, CR4, PKRU...
	Registers map[string]string `json:"registers"`
	Lines     []string          `json:"lines"`
}

// traceEntry is one line of a Call Trace: a context marker, a frame, or a
// register set printed inside the trace (an interrupted context).
type traceEntry struct {
	Marker     string  `json:"marker,omitempty"` // "<IRQ>", "</IRQ>", "<NMI>", "<TASK>", "<#DF>", ...
	Func       string  `json:"func,omitempty"`
	Offset     string  `json:"offset,omitempty"`
	Size       string  `json:"size,omitempty"`
	Module     string  `json:"module,omitempty"`
	Unreliable bool    `json:"unreliable,omitempty"` // printed with "? "
	Regs       *regSet `json:"regs,omitempty"`
	Text       string  `json:"text,omitempty"`
}

type hungTask struct {
	Comm    string `json:"comm"`
	PID     int    `json:"pid"`
	Seconds int    `json:"seconds"`
	Line    string `json:"line"`
}

type softLockup struct {
	CPU     int    `json:"cpu"`
	Seconds int    `json:"seconds"`
	Comm    string `json:"comm"`
	PID     int    `json:"pid"`
}

type warning struct {
	CPU    int    `json:"cpu"`
	PID    int    `json:"pid"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	Func   string `json:"func"`
	Offset string `json:"offset"`
	Size   string `json:"size"`
	Module string `json:"module,omitempty"`
}

var (
	consoleStamp = regexp.MustCompile(`^\[ *[0-9]+\.[0-9]+\] ?`)
	// The first lines of the reports the lab makes.
	reportStart = regexp.MustCompile(`^(BUG: |kernel BUG at |WARNING: CPU: |watchdog: BUG: soft lockup|INFO: task |Kernel panic - not syncing: |Oops: |general protection fault|invalid opcode: )`)
	cpuLine     = regexp.MustCompile(`^CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (.*?) (?:Kdump: loaded )?(Not tainted|Tainted: (.*)) (\d+\.\d+\S*) (#\S+)(.*)$`)
	taskLine    = regexp.MustCompile(`^task:(\S+)\s+state:(\S+).*\spid:\s*(\d+)`)
	symRe       = regexp.MustCompile(`^(\S+)\+(0x[0-9a-f]+)/(0x[0-9a-f]+)(?: \[(\S+?)(?: [0-9a-f]+)?\])?$`)
	regPair     = regexp.MustCompile(`([A-Za-z][A-Za-z0-9_]*):\s*([0-9a-fA-F]+(?::[0-9a-fA-F]+)?(?:\s*\([0-9a-fA-F]+\))?)`)
	softRe      = regexp.MustCompile(`soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.*):(\d+)\]`)
	hungRe      = regexp.MustCompile(`^INFO: task (.*):(\d+) blocked for more than (\d+) seconds\.`)
	warnRe      = regexp.MustCompile(`^WARNING: CPU: (\d+) PID: (\d+) at (\S+):(\d+) (.*)$`)
	// The capture kernel's first line: it may start in the middle of a
	// line the crashing kernel was printing when it was stopped.
	captureBoot = regexp.MustCompile(`\[ *0\.000000\] Linux version `)
)

// crashLog is the part of a kernel log (the serial console, or the
// crashed kernel's log read from the dump) after the guest's last "lab:
// crashing" line (or its "lab: truth-done"), up to the capture kernel's
// first line: the crashing kernel's last words.
func crashLog(log string) ([]string, error) {
	lines := strings.Split(strings.ReplaceAll(log, "\r", ""), "\n")
	from := -1
	for _, mark := range []string{"lab: crashing ", "lab: truth-done"} {
		for i, l := range lines {
			if strings.Contains(l, mark) {
				from = i + 1
			}
		}
		if from >= 0 {
			break
		}
	}
	if from < 0 {
		return nil, fmt.Errorf("no \"lab: crashing\" or \"lab: truth-done\" line")
	}
	lines = lines[from:]
	for i, l := range lines {
		if loc := captureBoot.FindStringIndex(l); loc != nil {
			if loc[0] == 0 {
				return lines[:i], nil
			}
			// The crashing kernel's last, unfinished line.
			lines[i] = l[:loc[0]]
			return lines[:i+1], nil
		}
	}
	return lines, nil
}

// parseCrashLog finds the crash report in a kernel log (see crashLog),
// from the report's first line to the end. It returns the report's lines
// as printed (with timestamps) and parsed. Lines without a timestamp (the
// lab's own on the console) are not the kernel's and are left out.
func parseCrashLog(log string) (string, *crashReport, error) {
	lines, err := crashLog(log)
	if err != nil {
		return "", nil, err
	}
	var raw, text []string
	for _, l := range lines {
		if !consoleStamp.MatchString(l) {
			continue
		}
		t := consoleStamp.ReplaceAllString(l, "")
		if len(text) == 0 && !reportStart.MatchString(t) {
			continue
		}
		raw = append(raw, l)
		text = append(text, t)
	}
	if len(text) == 0 {
		return "", nil, fmt.Errorf("no crash report after the \"lab: crashing\" line")
	}
	return strings.Join(raw, "\n") + "\n", parseReport(text), nil
}

// parseReport parses a report's lines (without timestamps).
func parseReport(lines []string) *crashReport {
	r := &crashReport{Lines: lines, Main: -1}
	r.FirstLine = lines[0]
	r.Kind = reportKind(lines[0])
	var cur *regDump // the dump being read
	var regs *regSet // the register set being read
	inTrace := false // reading cur's Call Trace
	context := "report"
	afterPanic := false
	afterModules := false
	for _, l := range lines {
		if m := cpuLine.FindStringSubmatch(l); m != nil {
			cur = &regDump{Context: context, Header: l, Comm: m[3], Release: m[6], Version: m[7], Build: strings.TrimSpace(m[8])}
			if afterPanic && context == "report" {
				cur.Context = "panic"
			}
			cur.CPU, _ = strconv.Atoi(m[1])
			cur.PID, _ = strconv.Atoi(m[2])
			if m[4] != "Not tainted" {
				cur.Tainted = m[5]
			}
			r.Dumps = append(r.Dumps, cur)
			context, regs, inTrace, afterModules = "report", nil, false, false
			continue
		}
		if m := taskLine.FindStringSubmatch(l); m != nil {
			cur = &regDump{Context: "task", Header: l, Comm: m[1], State: m[2], CPU: -1}
			cur.PID, _ = strconv.Atoi(m[3])
			r.Dumps = append(r.Dumps, cur)
			regs, inTrace = nil, false
			continue
		}
		if flags, ok := strings.CutPrefix(l, "Tainted: ["); ok && cur != nil {
			cur.TaintFlags = "[" + flags
			continue
		}
		if off, ok := strings.CutPrefix(l, "Kernel Offset: "); ok {
			r.KernelOffset = off
			continue
		}
		if strings.HasPrefix(l, "NMI backtrace for cpu ") {
			context, cur, regs, inTrace = "nmi_backtrace", nil, nil, false
			continue
		}
		if msg, ok := strings.CutPrefix(l, "Kernel panic - not syncing: "); ok {
			if r.Panic == "" {
				r.Panic = msg
			}
			afterPanic, context, cur, regs, inTrace = true, "report", nil, nil, false
			continue
		}
		if strings.HasPrefix(l, "Oops: ") || strings.HasPrefix(l, "invalid opcode: ") ||
			strings.HasPrefix(l, "general protection fault") || strings.HasPrefix(l, "stack guard page: ") {
			if r.Oops == "" {
				r.Oops = l
			}
			continue
		}
		if mods, ok := strings.CutPrefix(l, "Modules linked in:"); ok {
			if r.Modules == "" {
				r.Modules = strings.TrimSpace(mods)
			}
			regs, inTrace, afterModules = nil, false, true
			continue
		}
		if strings.HasPrefix(l, "---[ end trace") {
			regs, inTrace, afterModules = nil, false, false
			continue
		}
		if strings.HasPrefix(l, "Call Trace:") && cur != nil {
			regs, inTrace = nil, true
			continue
		}
		if rip, ok := strings.CutPrefix(l, "RIP: "); ok {
			regs = newRegSet(rip, l)
			switch {
			case inTrace:
				cur.Trace = append(cur.Trace, traceEntry{Regs: regs})
			case cur != nil && cur.Regs == nil && !afterModules:
				cur.Regs = regs
			case r.Summary == nil:
				r.Summary = regs
			}
			continue
		}
		if regs != nil {
			if code, ok := strings.CutPrefix(l, "Code: "); ok {
				regs.Code = code
				regs.Lines = append(regs.Lines, l)
				continue
			}
			if isRegLine(l) {
				for _, m := range regPair.FindAllStringSubmatch(l, -1) {
					regs.Registers[m[1]] = m[2]
				}
				regs.Lines = append(regs.Lines, l)
				continue
			}
			regs = nil
		}
		if afterModules && strings.HasPrefix(l, "CR2: ") && r.CR2 == "" {
			r.CR2 = strings.TrimSpace(strings.TrimPrefix(l, "CR2: "))
			continue
		}
		if inTrace && strings.HasPrefix(l, " ") {
			cur.Trace = append(cur.Trace, parseTraceLine(l))
			continue
		}
		inTrace = false
	}
	// The crashing context: the report's first own dump (not an NMI
	// backtrace of another CPU, not a hung task); for a hung task, the
	// dump of panic() (khungtaskd).
	for i, d := range r.Dumps {
		if d.Context == "report" || d.Context == "panic" && r.Kind == "hung_task" {
			if r.Kind == "hung_task" && d.Context != "panic" {
				continue
			}
			r.Main = i
			break
		}
	}
	if r.Main < 0 {
		for i, d := range r.Dumps {
			if d.Context != "task" {
				r.Main = i
				break
			}
		}
	}
	if r.Main >= 0 {
		d := r.Dumps[r.Main]
		r.CPU, r.PID, r.Comm, r.Tainted, r.Release, r.Version, r.Build = d.CPU, d.PID, d.Comm, d.Tainted, d.Release, d.Version, d.Build
		r.TaintFlags = d.TaintFlags
		if d.Regs != nil {
			r.RIP, r.Code, r.Registers = d.Regs.RIP, d.Regs.Code, d.Regs.Registers
		}
	}
	switch r.Kind {
	case "soft_lockup":
		if m := softRe.FindStringSubmatch(r.FirstLine); m != nil {
			sl := &softLockup{Comm: m[3]}
			sl.CPU, _ = strconv.Atoi(m[1])
			sl.Seconds, _ = strconv.Atoi(m[2])
			sl.PID, _ = strconv.Atoi(m[4])
			r.SoftLockup = sl
		}
	case "warning":
		if m := warnRe.FindStringSubmatch(r.FirstLine); m != nil {
			w := &warning{File: m[3]}
			w.CPU, _ = strconv.Atoi(m[1])
			w.PID, _ = strconv.Atoi(m[2])
			w.Line, _ = strconv.Atoi(m[4])
			if s := symRe.FindStringSubmatch(m[5]); s != nil {
				w.Func, w.Offset, w.Size, w.Module = s[1], s[2], s[3], s[4]
			}
			r.Warning = w
		}
	}
	for _, l := range lines {
		if m := hungRe.FindStringSubmatch(l); m != nil {
			h := hungTask{Comm: m[1], Line: l}
			h.PID, _ = strconv.Atoi(m[2])
			h.Seconds, _ = strconv.Atoi(m[3])
			r.HungTasks = append(r.HungTasks, h)
		}
	}
	return r
}

func reportKind(first string) string {
	switch {
	case strings.HasPrefix(first, "Kernel panic - not syncing: "):
		return "panic"
	case strings.HasPrefix(first, "kernel BUG at "):
		return "bug"
	case strings.HasPrefix(first, "WARNING: "):
		return "warning"
	case strings.Contains(first, "soft lockup"):
		return "soft_lockup"
	case strings.HasPrefix(first, "INFO: task "):
		return "hung_task"
	case strings.Contains(first, "stack guard page was hit"):
		return "stack_overflow"
	case strings.HasPrefix(first, "BUG: kernel NULL pointer dereference"), strings.HasPrefix(first, "BUG: unable to handle"),
		strings.HasPrefix(first, "Oops: "), strings.HasPrefix(first, "general protection fault"):
		return "oops"
	}
	return "other"
}

// isRegLine tells a line of a register dump after RIP: and Code:.
func isRegLine(l string) bool {
	for _, p := range []string{"RSP: ", "RAX: ", "RDX: ", "RBP: ", "R10: ", "R13: ", "FS: ", "CS: ", "CR2: ", "DR0: ", "DR3: ", "PKRU: "} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func newRegSet(rip, line string) *regSet {
	rs := &regSet{RIP: rip, Registers: map[string]string{}, Lines: []string{line}}
	seg, sym, _ := strings.Cut(rip, ":")
	rs.Segment = seg
	if m := symRe.FindStringSubmatch(sym); m != nil {
		rs.Func, rs.Offset, rs.Size, rs.Module = m[1], m[2], m[3], m[4]
	}
	return rs
}

// parseTraceLine parses " ? func+0xoff/0xsize [module]" or " <IRQ>".
func parseTraceLine(l string) traceEntry {
	t := strings.TrimSpace(l)
	e := traceEntry{Text: t}
	if strings.HasPrefix(t, "<") && strings.HasSuffix(t, ">") {
		e.Marker = t
		return e
	}
	if rest, ok := strings.CutPrefix(t, "? "); ok {
		e.Unreliable = true
		t = rest
	}
	if m := symRe.FindStringSubmatch(t); m != nil {
		e.Func, e.Offset, e.Size, e.Module = m[1], m[2], m[3], m[4]
	}
	return e
}
