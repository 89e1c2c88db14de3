// Package triage answers the first question asked of a crash dump —
// what crashed, on which CPU, in which task, through which code — in
// one report, in the crashing kernel's own words where it said them: the
// crash report it logged (found in the printk ring in the dump), checked
// against and completed by what its memory holds (the panic CPU, its
// task, the stacks unwound by ORC, the registers of the exception, the
// taint and the modules behind it, BPF programs on any stack, tasks
// blocked for long).
package triage

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
	"github.com/kinspect/kinspect/x86dis"
)

// Report is the crash in one page.
type Report struct {
	// Kind is what the kernel reported: "oops", "bug" (BUG()),
	// "warning" (WARN with panic_on_warn), "soft_lockup", "hard_lockup",
	// "hung_task", "stack_overflow", "panic" (panic() called directly),
	// or "none" when the log holds no crash report.
	Kind string `json:"kind"`
	// FirstLine is the report's first line as logged ("BUG: kernel NULL
	// pointer dereference, address: 0000000000000000").
	FirstLine string `json:"first_line"`
	// PanicMessage is what follows "Kernel panic - not syncing: ".
	PanicMessage string `json:"panic_message"`
	CrashTime    string `json:"crash_time,omitempty"`
	// CPU, PID and Comm are the crashing CPU (the kernel's panic_cpu)
	// and the task it was running; Context what it was doing: "process",
	// "softirq", "hardirq", "NMI", or an exception stack ("#DF").
	CPU     int    `json:"cpu"`
	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	Context string `json:"context"`
	// Taint is print_tainted's text, as in the report's "Tainted: " ("G
	// ..." ; "" untainted), Taints each flag with the modules behind it.
	Taint  string            `json:"taint"`
	Taints []linux.TaintFlag `json:"taints"`
	// TaintNow is the taint when the dump was taken, where it differs
	// from the report's (Taints decodes it).
	TaintNow string `json:"taint_now,omitempty"`
	// RIP is where the report's registers point, as the kernel prints
	// it ("kicrash_oops+0xc/0x20 [kicrash]"); Regs those registers (the
	// exception's or interrupt's); Code the instructions around RIP, the
	// faulting one marked.
	RIP  string             `json:"rip,omitempty"`
	Regs *orc.BacktraceRegs `json:"regs,omitempty"`
	Code []CodeLine         `json:"code,omitempty"`
	// Fault is a page fault's address and access, from the report.
	Fault *Fault `json:"fault,omitempty"`
	// Stacks are every CPU's, the crashing one first.
	Stacks []*orc.Backtrace `json:"stacks"`
	// BPF are the BPF programs on any stack (every CPU's, every task's).
	BPF []BPFFrame `json:"bpf"`
	// Blocked are the tasks in D state, longest first; HungTask the one
	// the hung task detector named.
	Blocked  []Blocked `json:"blocked"`
	HungTask *Blocked  `json:"hung_task,omitempty"`
	// Lockup is what the soft lockup detector reported.
	Lockup *Lockup `json:"lockup,omitempty"`
	// Log is the end of the kernel log, from the report's first line.
	Log []string `json:"log"`
	// Problems are what could not be read.
	Problems []string `json:"problems,omitempty"`
}

// CodeLine is one instruction around the crash.
type CodeLine struct {
	Addr   objects.Hex `json:"addr"`
	Symbol string      `json:"symbol"`
	Bytes  []byte      `json:"bytes"`
	Text   string      `json:"text"`
	// Fault marks the instruction at RIP.
	Fault bool `json:"fault,omitempty"`
}

// Fault is a page fault as the report describes it.
type Fault struct {
	// Address is CR2, the faulting address.
	Address string `json:"address"`
	// Access is the #PF line: "supervisor write access in kernel mode".
	Access string `json:"access,omitempty"`
	// Error is the #PF error code line: "error_code(0x0002) - not-present page".
	Error string `json:"error,omitempty"`
}

// BPFFrame is a BPF program found on a stack.
type BPFFrame struct {
	ID     uint32 `json:"id"`
	Symbol string `json:"symbol"`
	// Line is the source line, file:line:col.
	Line  string `json:"line,omitempty"`
	CPU   int    `json:"cpu"`
	OnCPU bool   `json:"on_cpu"`
	PID   int    `json:"pid"`
	Comm  string `json:"comm"`
}

// Blocked is a task in uninterruptible sleep.
type Blocked struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Seconds since it last ran (jiffies - last_switch_time), when known.
	Seconds float64  `json:"seconds"`
	Stack   []string `json:"stack"`
}

// Lockup is a soft lockup as the watchdog reported it.
type Lockup struct {
	CPU     int    `json:"cpu"`
	Seconds int    `json:"seconds"`
	Comm    string `json:"comm"`
	PID     int    `json:"pid"`
}

// Build makes the report.
func Build(k *kinspect.Kernel) (*Report, error) {
	p := k.Program()
	if p == nil {
		return nil, fmt.Errorf("triage: no types: %w", k.TypesErr())
	}
	r := &Report{Kind: "none", CPU: -1, PID: -1, Stacks: []*orc.Backtrace{}, BPF: []BPFFrame{}, Blocked: []Blocked{}, Log: []string{}}
	problem := func(what string, err error) { r.Problems = append(r.Problems, fmt.Sprintf("%s: %v", what, err)) }
	if d := k.Dump(); d != nil {
		if t, ok := d.CrashTime(); ok {
			r.CrashTime = t.UTC().Format(time.RFC3339)
		}
	}
	// The kernel's words: its log.
	var lines []string
	if ring, err := linux.ReadPrintkRing(p); err != nil {
		problem("kernel log", err)
	} else {
		for _, rec := range ring.Records {
			lines = append(lines, strings.Split(rec.Text, "\n")...)
		}
	}
	log := parseLog(lines)
	r.Kind, r.FirstLine, r.PanicMessage, r.Lockup = log.kind, log.firstLine, log.panicMsg, log.lockup
	r.Log = lines[log.start:]
	if log.fault != nil {
		r.Fault = log.fault
	}
	// Memory: the panicking CPU and its task.
	cpu, panicked, err := linux.PanicCPU(p)
	if err != nil {
		problem("panic_cpu", err)
	}
	switch {
	case panicked:
		r.CPU = cpu
	case log.cpu >= 0:
		// A report without a panic (a dump taken after an oops the
		// kernel survived): its header's CPU.
		r.CPU = log.cpu
	}
	if r.CPU >= 0 {
		if t, err := linux.CurrentTask(p, r.CPU); err == nil {
			if ti, err := linux.NewTask(t); err == nil {
				r.PID, r.Comm = ti.TID, ti.Comm
			} else {
				problem(fmt.Sprintf("CPU %d's task %#x", r.CPU, t.Addr()), err)
				if log.cpu == r.CPU && log.pid >= 0 {
					// The dump lacks the task_struct (a misfiltered
					// page): the report's header named the task.
					r.PID, r.Comm = log.pid, log.comm
				}
			}
		} else {
			problem(fmt.Sprintf("CPU %d's task", r.CPU), err)
		}
	}
	if t, err := linux.ReadTaint(p); err != nil {
		problem("taint", err)
	} else {
		r.Taint, r.Taints = t.Text, t.Flags
		// The report's header says the taint as it was when printed;
		// the kernel may have added flags since (D, as it died: oops_end
		// adds TAINT_DIE after the report).
		if log.haveTaint && log.taint != t.Text {
			r.Taint, r.TaintNow = log.taint, t.Text
		}
	}
	r.Context = context(p, r.CPU)
	// The stacks.
	bt, err := orc.NewBacktracer(k)
	if err != nil {
		problem("stacks", err)
		return r, nil
	}
	stacks, err := bt.Collect(orc.Selection{AllCPUs: true})
	if err != nil {
		problem("stacks", err)
	}
	for _, s := range stacks {
		if s.CPU == r.CPU && s.OnCPU {
			r.Stacks = append([]*orc.Backtrace{s}, r.Stacks...)
		} else {
			r.Stacks = append(r.Stacks, s)
		}
	}
	if len(r.Stacks) > 0 && r.Stacks[0].CPU == r.CPU {
		if regs := reportedRegs(r.Stacks[0]); regs != nil {
			r.Regs = regs.Regs
			// As %pS prints it: a BPF program's symbol has no "[bpf]"
			// (bpf_address_lookup names no module).
			r.RIP = strings.TrimSuffix(regs.Symbol, " [bpf]")
			r.Code = code(k, uint64(regs.Regs.IP))
		}
		if r.Context == "" {
			r.Context = stackContext(r.Stacks[0])
		}
	}
	tasks, err := bt.Collect(orc.Selection{AllTasks: true})
	if err != nil {
		problem("task stacks", err)
	}
	r.BPF = bpfFrames(append(stacks, tasks...))
	r.Blocked, r.HungTask = blocked(p, tasks, log.hung)
	return r, nil
}

// reportedRegs is the frame whose registers the kernel printed in its
// report: the innermost register set of an exception or interrupt taken
// in kernel mode. The registers kexec saved in __crash_kexec
// (crash_setup_regs) are not a report's; the CPU's note is, when the
// kernel kexec'd from the exception itself (oops_end).
func reportedRegs(t *orc.Backtrace) *orc.BacktraceFrame {
	for i := range t.Frames {
		f := &t.Frames[i]
		if f.Regs == nil || f.Regs.CS&3 != 0 {
			continue
		}
		if i == 0 && (f.Function == "__crash_kexec" || f.Function == "crash_kexec" || strings.HasPrefix(f.Function, "machine_crash")) {
			continue
		}
		if i == 0 && len(t.Frames) > 1 {
			// The CPU's note: a report's only when it is not a panic's
			// own registers (panic and the NMI that stopped a CPU
			// also leave notes).
			if next := t.Frames[1].Function; next == "panic" || strings.HasPrefix(next, "nmi") {
				continue
			}
		}
		return f
	}
	return nil
}

// code disassembles the function holding ip up to a few instructions past
// it, keeping the last instructions before.
func code(k *kinspect.Kernel, ip uint64) []CodeLine {
	syms := k.Symbols()
	loc, err := syms.LookupAddr(ip)
	if err != nil || loc.Offset > 64<<10 {
		return nil
	}
	start := ip - loc.Offset
	b := make([]byte, loc.Offset+32)
	if err := k.Program().Read(b, start); err != nil {
		return nil
	}
	var out []CodeLine
	for _, in := range x86dis.Disassemble(b, start) {
		if in.Addr+uint64(len(in.Bytes)) > start+uint64(len(b)) {
			break
		}
		out = append(out, CodeLine{Addr: objects.Hex(in.Addr), Symbol: fmt.Sprintf("%s+%#x", loc.Name, in.Addr-start), Bytes: in.Bytes, Text: in.Text, Fault: in.Addr == ip})
	}
	at := -1
	for i, c := range out {
		if c.Fault {
			at = i
		}
	}
	if at < 0 {
		return nil
	}
	return out[max(at-8, 0):min(at+4, len(out))]
}

// preempt_count's bits (include/linux/preempt.h): softirq 8-15, hardirq
// 16-19, NMI 20-23.
const (
	softirqOffset = 1 << 8
	hardirqMask   = 0xf << 16
	nmiMask       = 0xf << 20
)

// context reads what the CPU was doing from its preempt count
// (pcpu_hot.preempt_count, 6.2+; __preempt_count before): in_nmi(),
// in_hardirq(), in_serving_softirq(); "" when unreadable.
func context(p *objects.Program, cpu int) string {
	if cpu < 0 {
		return ""
	}
	var v objects.Value
	var err error
	if v, err = p.Variable("pcpu_hot"); err == nil {
		v, err = v.Member("preempt_count")
	} else {
		v, err = p.Variable("__preempt_count")
	}
	if err != nil {
		return ""
	}
	pv, err := p.PerCPU(v, cpu)
	if err != nil {
		return ""
	}
	n, err := pv.Uint()
	if err != nil {
		return ""
	}
	switch {
	case n&nmiMask != 0:
		return "NMI"
	case n&hardirqMask != 0:
		return "hardirq"
	case n&softirqOffset != 0:
		return "softirq"
	}
	return "process"
}

// stackContext names the context from the stack the crash is on.
func stackContext(t *orc.Backtrace) string {
	if len(t.Frames) == 0 {
		return ""
	}
	switch s := t.Frames[0].Stack; s {
	case "task":
		return "process"
	case "IRQ":
		for _, f := range t.Frames {
			if f.Stack == "IRQ" && (f.Function == "__do_softirq" || f.Function == "handle_softirqs") {
				return "softirq"
			}
		}
		return "hardirq"
	case "NMI":
		return "NMI"
	default:
		return "#" + s
	}
}

// bpfFrames lists the BPF programs on the stacks, each once per task.
func bpfFrames(stacks []*orc.Backtrace) []BPFFrame {
	out := []BPFFrame{}
	seen := map[string]bool{}
	for _, s := range stacks {
		for _, f := range s.Frames {
			if f.BPF == nil {
				continue
			}
			key := fmt.Sprintf("%d/%d/%s", s.TID, f.BPF.ID, f.Symbol)
			if seen[key] {
				continue
			}
			seen[key] = true
			b := BPFFrame{ID: f.BPF.ID, Symbol: f.Symbol, CPU: s.CPU, OnCPU: s.OnCPU, PID: s.TID, Comm: s.Comm}
			if f.BPF.File != "" {
				b.Line = fmt.Sprintf("%s:%d:%d", f.BPF.File, f.BPF.LineNum, f.BPF.LineCol)
			}
			out = append(out, b)
		}
	}
	return out
}

// blocked lists the tasks in D state with how long they have not run
// (jiffies - last_switch_time, in seconds of the kernel's HZ), longest
// first, and the one the hung task report names.
func blocked(p *objects.Program, tasks []*orc.Backtrace, hung *hungReport) ([]Blocked, *Blocked) {
	out := []Blocked{}
	var named *Blocked
	jiffies, jerr := readUint(p, "jiffies")
	hz, _ := linux.HZ(p)
	for _, s := range tasks {
		t, err := p.ObjectOf("struct task_struct", uint64(s.Task))
		if err != nil {
			continue
		}
		st, err := linux.ReadTaskState(t)
		if err != nil || st != linux.TaskDiskSleep {
			continue
		}
		b := Blocked{PID: s.TID, Comm: s.Comm, Seconds: -1, Stack: []string{}}
		if ls, err := t.MemberUint("last_switch_time"); err == nil && ls != 0 && jerr == nil && hz > 0 && jiffies >= ls {
			b.Seconds = float64(jiffies-ls) / float64(hz)
		}
		for _, f := range s.Frames {
			b.Stack = append(b.Stack, f.Symbol)
		}
		out = append(out, b)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Seconds > out[j-1].Seconds; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if hung != nil {
		for i := range out {
			if out[i].PID == hung.pid {
				named = &out[i]
			}
		}
	}
	return out, named
}

func readUint(p *objects.Program, name string) (uint64, error) {
	v, err := p.Variable(name)
	if err != nil {
		return 0, err
	}
	return v.Uint()
}

// The report's lines.
var (
	rePanic   = regexp.MustCompile(`^Kernel panic - not syncing: (.*)$`)
	reLockup  = regexp.MustCompile(`^watchdog: BUG: soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.*):(\d+)\]`)
	reHard    = regexp.MustCompile(`^watchdog: Watchdog detected hard LOCKUP on cpu (\d+)`)
	reHung    = regexp.MustCompile(`^INFO: task (.*):(\d+) blocked for more than (\d+) seconds\.`)
	reWarn    = regexp.MustCompile(`^WARNING: CPU: (\d+) PID: (\d+) at `)
	reOops    = regexp.MustCompile(`^Oops: |^invalid opcode: |^general protection fault|^stack segment: |^double fault: |^int3: `)
	reBugLine = regexp.MustCompile(`^BUG: |^kernel BUG at |^general protection fault|^traps: PANIC: double fault|^kernel stack overflow`)
	reHeader  = regexp.MustCompile(`^CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (\S+)`)
	// print_tainted's flags (letters and spaces), then the release.
	reTaint = regexp.MustCompile(` Tainted: ([A-Z ]*?) (\d+\.\d+)`)
	rePF    = regexp.MustCompile(`^#PF: (.*)$`)
	reCR2   = regexp.MustCompile(`^CR2: ([0-9a-f]+)$`)
	reAddr  = regexp.MustCompile(`address: ([0-9a-f]+)`)
)

type hungReport struct {
	comm string
	pid  int
}

// logReport is what the kernel's log says of the last crash.
type logReport struct {
	kind, firstLine, panicMsg string
	start                     int // the report's first line
	cpu                       int // from the report's header, -1
	// taint is print_tainted's text in the last header of the report's
	// CPU ("CPU: 0 PID: 1 Comm: x Tainted: G   OE  6.1.0 #1 ...").
	taint     string
	haveTaint bool
	// pid and comm are the task that header names (-1, "": none).
	pid    int
	comm   string
	lockup *Lockup
	hung   *hungReport
	fault  *Fault
}

// parseLog finds the last crash report in the log's lines: the panic
// line, and before it the report that led to it.
func parseLog(lines []string) logReport {
	r := logReport{kind: "none", cpu: -1, pid: -1, start: max(len(lines)-40, 0)}
	end := len(lines)
	for i := len(lines) - 1; i >= 0; i-- {
		if m := rePanic.FindStringSubmatch(lines[i]); m != nil {
			r.panicMsg = strings.TrimRight(m[1], " ")
			r.kind, r.firstLine, r.start, end = "panic", strings.TrimRight(lines[i], " "), i, i
			break
		}
	}
	// The report before the panic (or at the log's end without one):
	// the last report line, walked back to its first line.
	lo := max(end-400, 0)
	for i := end - 1; i >= lo; i-- {
		l := lines[i]
		kind := ""
		switch {
		case reLockup.MatchString(l):
			kind = "soft_lockup"
		case reHard.MatchString(l):
			kind = "hard_lockup"
		case reHung.MatchString(l):
			kind = "hung_task"
		case reWarn.MatchString(l):
			kind = "warning"
		case reOops.MatchString(l):
			kind = "oops"
		case reBugLine.MatchString(l):
			kind = "oops"
		}
		if kind == "" {
			continue
		}
		first := i
		if kind == "oops" {
			// "BUG: ..." / "kernel BUG at ..." lead an Oops line.
			for j := i - 1; j >= max(i-6, 0); j-- {
				if reBugLine.MatchString(lines[j]) || reOops.MatchString(lines[j]) {
					first = j
				}
			}
			switch {
			case strings.HasPrefix(lines[first], "kernel BUG at"):
				kind = "bug"
			case strings.Contains(lines[first], "stack guard page") || strings.HasPrefix(lines[first], "traps: PANIC: double fault") || strings.HasPrefix(lines[first], "kernel stack overflow"):
				kind = "stack_overflow"
			}
		}
		r.kind, r.firstLine, r.start = kind, strings.TrimRight(lines[first], " "), first
		if m := reLockup.FindStringSubmatch(lines[first]); m != nil {
			cpu, _ := strconv.Atoi(m[1])
			secs, _ := strconv.Atoi(m[2])
			pid, _ := strconv.Atoi(m[4])
			r.lockup = &Lockup{CPU: cpu, Seconds: secs, Comm: m[3], PID: pid}
		}
		if m := reHung.FindStringSubmatch(lines[first]); m != nil {
			pid, _ := strconv.Atoi(m[2])
			r.hung = &hungReport{comm: m[1], pid: pid}
		}
		break
	}
	for i := r.start; i < len(lines) && i < r.start+200; i++ {
		l := lines[i]
		if m := reHeader.FindStringSubmatch(l); m != nil && r.cpu < 0 {
			r.cpu, _ = strconv.Atoi(m[1])
		}
		if m := rePF.FindStringSubmatch(l); m != nil {
			if r.fault == nil {
				r.fault = &Fault{}
			}
			if strings.HasPrefix(m[1], "error_code") {
				r.fault.Error = m[1]
			} else {
				r.fault.Access = m[1]
			}
		}
		if m := reCR2.FindStringSubmatch(strings.TrimSpace(l)); m != nil && r.fault != nil {
			r.fault.Address = m[1]
		}
	}
	if r.fault != nil && r.fault.Address == "" {
		if m := reAddr.FindStringSubmatch(r.firstLine); m != nil {
			r.fault.Address = m[1]
		}
	}
	// The taint as the report's CPU last printed it (a soft lockup's
	// panic prints it again, with L).
	for i := r.start; i < len(lines) && r.cpu >= 0; i++ {
		m := reHeader.FindStringSubmatch(lines[i])
		if m == nil || m[1] != strconv.Itoa(r.cpu) {
			continue
		}
		r.pid, _ = strconv.Atoi(m[2])
		r.comm = m[3]
		if t := reTaint.FindStringSubmatch(lines[i]); t != nil {
			r.taint, r.haveTaint = t[1], true
		} else if strings.Contains(lines[i], " Not tainted ") {
			r.taint, r.haveTaint = "", true
		}
	}
	return r
}
