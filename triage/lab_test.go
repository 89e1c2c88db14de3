package triage_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/orc"
	"github.com/kinspect/kinspect/triage"
)

// The kdump scenarios' truth is the crashing kernel's own console
// (truth/crash.json, parsed by the lab from the serial console): these
// tests hold kinspect's bt and triage to it, on every format each
// scenario wrote.

// crashTruth is truth/crash.json.
type crashTruth struct {
	Kind      string            `json:"kind"`
	FirstLine string            `json:"first_line"`
	Panic     string            `json:"panic"`
	CPU       int               `json:"cpu"`
	PID       int               `json:"pid"`
	Comm      string            `json:"comm"`
	Tainted   string            `json:"tainted"`
	RIP       string            `json:"rip"`
	Registers map[string]string `json:"registers"`
	Dumps     []consoleDump     `json:"dumps"`
	Lockup    *struct {
		CPU     int    `json:"cpu"`
		Seconds int    `json:"seconds"`
		Comm    string `json:"comm"`
		PID     int    `json:"pid"`
	} `json:"soft_lockup"`
	HungTask *struct {
		Comm string `json:"comm"`
		PID  int    `json:"pid"`
	} `json:"hung_task"`
}

// consoleDump is one register or stack dump the kernel printed: the
// report's, a panic's, another CPU's NMI backtrace.
type consoleDump struct {
	Context string        `json:"context"`
	CPU     int           `json:"cpu"`
	PID     int           `json:"pid"`
	Comm    string        `json:"comm"`
	Tainted string        `json:"tainted"`
	Regs    *consoleRegs  `json:"regs"`
	Trace   []consoleLine `json:"trace"`
}

type consoleLine struct {
	Marker     string       `json:"marker"`
	Func       string       `json:"func"`
	Unreliable bool         `json:"unreliable"`
	Regs       *consoleRegs `json:"regs"`
	Text       string       `json:"text"`
}

type consoleRegs struct {
	RIP       string            `json:"rip"`
	Segment   string            `json:"segment"`
	Func      string            `json:"func"`
	Registers map[string]string `json:"registers"`
}

// step is one function of a trace and the stack the kernel said it is
// on ("IRQ", "TASK", "NMI", "#DF").
type step struct{ fn, stack string }

// expected turns a console trace into its reliable steps: the functions
// not marked "?", and the kernel-mode register dumps' functions, each
// with the stack marker open at that point.
func expected(d consoleDump) []step {
	var out []step
	stack := ""
	for _, l := range d.Trace {
		switch {
		case l.Marker != "":
			if !strings.HasPrefix(l.Marker, "</") {
				stack = strings.Trim(l.Marker, "<>")
			}
		case l.Regs != nil:
			if l.Regs.Segment == "0010" && l.Regs.Func != "" {
				out = append(out, step{l.Regs.Func, stack})
			}
		case l.Func != "" && !l.Unreliable:
			out = append(out, step{l.Func, stack})
		}
	}
	return out
}

// markerOf is the kernel's name of a stack kinspect names.
func markerOf(s string) string {
	return map[string]string{"task": "TASK", "IRQ": "IRQ", "NMI": "NMI", "DF": "#DF", "DB": "#DB", "MCE": "#MC"}[s]
}

// steps are a backtrace's frames as steps.
func steps(b *orc.Backtrace) []step {
	var out []step
	for _, f := range b.Frames {
		out = append(out, step{f.Function, markerOf(f.Stack)})
	}
	return out
}

// sameTrace says where kinspect's steps differ from the console's: from
// the first console function kinspect has (the frames above it, such as
// dump_stack_lvl, had returned by the time of the dump) to the end,
// every function and stack must be the same.
func sameTrace(want []step, got []step) error {
	for i, w := range want {
		for j, g := range got {
			if g != w { // the same function on the same stack
				continue
			}
			rest, have := want[i:], got[j:]
			if len(rest) != len(have) {
				return fmt.Errorf("from %s: %d frames, the console %d:\n got  %v\n want %v", w.fn, len(have), len(rest), have, rest)
			}
			for k := range rest {
				if rest[k] != have[k] {
					return fmt.Errorf("frame %d: %v, the console %v:\n got  %v\n want %v", j+k, have[k], rest[k], have, rest)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("no console function is in the trace:\n got  %v\n want %v", got, want)
}

// sameRegs compares a console register dump with registers kinspect
// read, exactly.
func sameRegs(r *orc.BacktraceRegs, c map[string]string) error {
	got := map[string]uint64{"RSP": uint64(r.SP), "EFLAGS": uint64(r.Flags), "RAX": uint64(r.AX), "RBX": uint64(r.BX),
		"RCX": uint64(r.CX), "RDX": uint64(r.DX), "RSI": uint64(r.SI), "RDI": uint64(r.DI), "RBP": uint64(r.BP),
		"R08": uint64(r.R8), "R09": uint64(r.R9), "R10": uint64(r.R10), "R11": uint64(r.R11), "R12": uint64(r.R12),
		"R13": uint64(r.R13), "R14": uint64(r.R14), "R15": uint64(r.R15), "ORIG_RAX": uint64(r.OrigAX)}
	n := 0
	for name, text := range c {
		g, ok := got[name]
		if !ok {
			continue
		}
		if i := strings.IndexByte(text, ':'); i >= 0 {
			text = text[i+1:] // "0018:ffff..." is SS:RSP
		}
		w, err := strconv.ParseUint(text, 16, 64)
		if err != nil {
			return fmt.Errorf("%s: console %q: %v", name, text, err)
		}
		if g != w {
			return fmt.Errorf("%s: %#x, the console %#x", name, g, w)
		}
		n++
	}
	if n < 17 {
		return fmt.Errorf("only %d registers compared", n)
	}
	return nil
}

// TestKdumpBacktraces: on every kdump scenario and format, bt of the
// crashing CPU follows the console's last Call Trace of it (functions
// and stacks, the "?" entries aside), the registers of each interrupt
// or exception frame equal the console's dump of them, and the CPU the
// lab's BPF spinner ran on unwinds from the BPF program (named, with its
// id and source line) through its callers, as its NMI backtrace did.
func TestKdumpBacktraces(t *testing.T) {
	for _, s := range labdata.BuiltKdump(t) {
		var truth crashTruth
		labdata.ReadJSON(t, s.Path("truth/crash.json"), &truth)
		var work struct {
			Spinner struct {
				ProgID uint32 `json:"prog_id"`
				CPU    int    `json:"cpu"`
			} `json:"spinner"`
		}
		labdata.ReadJSON(t, s.Path("truth/workload.json"), &work)
		for _, f := range s.Formats {
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				k := labkernel.Open(t, s, f.Name)
				bt, err := orc.NewBacktracer(k)
				if err != nil {
					t.Fatal(err)
				}
				all, err := bt.Collect(orc.Selection{AllCPUs: true})
				if err != nil {
					t.Fatal(err)
				}
				byCPU := map[int]*orc.Backtrace{}
				for _, b := range all {
					byCPU[b.CPU] = b
				}
				crashed := byCPU[truth.CPU]
				if crashed == nil {
					t.Fatalf("no trace of the crashing CPU %d", truth.CPU)
				}
				// The console's last trace of the crashing CPU.
				var last *consoleDump
				for i := range truth.Dumps {
					d := &truth.Dumps[i]
					if d.CPU == truth.CPU && len(expected(*d)) > 0 && d.Context != "nmi_backtrace" {
						last = d
					}
				}
				if last == nil {
					t.Fatalf("the console has no trace of CPU %d", truth.CPU)
				}
				if err := sameTrace(expected(*last), steps(crashed)); err != nil {
					t.Errorf("CPU %d (%s): %v", truth.CPU, last.Context, err)
				}
				checkRegs(t, "CPU "+strconv.Itoa(truth.CPU), crashed, *last)
				if truth.Registers != nil && last.Regs != nil && last.Context == "report" {
					// The report's own registers: the frame with registers
					// at the report's RIP (the crash's first frame, or, when
					// panic() ran first, the exception's further down).
					rip := truth.RIP[strings.IndexByte(truth.RIP, ':')+1:]
					var regs *orc.BacktraceRegs
					for _, f := range crashed.Frames {
						if f.Regs != nil && strings.TrimSuffix(f.Symbol, " [bpf]") == rip {
							regs = f.Regs
							break
						}
					}
					if regs == nil {
						t.Errorf("report registers: no frame with registers at %s", rip)
					} else if err := sameRegs(regs, truth.Registers); err != nil {
						t.Errorf("report registers: %v", err)
					}
				}
				// The spinner's CPU: stopped by the NMI inside its BPF
				// program.
				sp := byCPU[work.Spinner.CPU]
				if work.Spinner.CPU == truth.CPU || sp == nil {
					return
				}
				// It passes through the NMI that stopped it (the handler's
				// frames on the NMI stack), into the BPF program.
				nmi := 0
				for nmi < len(sp.Frames) && sp.Frames[nmi].Stack == "NMI" {
					nmi++
				}
				if nmi == 0 && s.Misfiltered(f) != "" {
					// makedumpfile 1.7.2 dropped pages of 6.12's slab (the
					// spinner's task_struct, bpf_kallsyms nodes: lab
					// README): bt starts from the CPU note's registers,
					// the interrupted context, and names no BPF program.
					t.Logf("CPU %d: no NMI frames on a misfiltered dump (%s)", work.Spinner.CPU, s.Misfiltered(f))
					return
				}
				if nmi == 0 || nmi == len(sp.Frames) {
					t.Fatalf("CPU %d: %d frames on the NMI stack of %d", work.Spinner.CPU, nmi, len(sp.Frames))
				}
				f0 := sp.Frames[nmi]
				// The line info's pages may be what makedumpfile misfiltered
				// (6.12 -d 31): then the frame says why it has no line.
				lineOK := f0.BPF != nil && (f0.BPF.File != "" || s.Misfiltered(f) != "" && strings.Contains(f0.BPF.LineError, "excluded"))
				if f0.BPF == nil || f0.BPF.ID != work.Spinner.ProgID || !lineOK || !strings.HasSuffix(f0.Function, "_ki_spin") {
					t.Errorf("CPU %d's first frame past the NMI: %s %+v, want the spinner prog %d with its line", work.Spinner.CPU, f0.Symbol, f0.BPF, work.Spinner.ProgID)
				}
				for _, d := range truth.Dumps {
					// An NMI backtrace the kernel could not unwind (every
					// entry "?", as when the NMI hit a BPF program's
					// first instruction) names no function to follow.
					if d.Context == "nmi_backtrace" && d.CPU == work.Spinner.CPU && len(expected(d)) > 0 {
						if err := sameTrace(expected(d), steps(sp)); err != nil {
							t.Errorf("CPU %d (NMI backtrace): %v", d.CPU, err)
						}
					}
				}
			})
		}
	}
}

// checkRegs compares each register dump of a console trace with the
// frame kinspect read it from: a kernel-mode dump with the frame of its
// function, the user-mode one with the trace's user registers.
func checkRegs(t *testing.T, what string, b *orc.Backtrace, d consoleDump) {
	t.Helper()
	for _, l := range d.Trace {
		if l.Regs == nil {
			continue
		}
		if l.Regs.Segment != "0010" {
			if b.UserRegs == nil {
				t.Errorf("%s: the console shows user registers (RIP %s), kinspect none", what, l.Regs.RIP)
			} else if err := sameRegs(b.UserRegs, l.Regs.Registers); err != nil {
				t.Errorf("%s: user registers: %v", what, err)
			}
			continue
		}
		found := false
		for _, f := range b.Frames {
			if f.Function != l.Regs.Func || f.Regs == nil {
				continue
			}
			found = true
			// %pS names no module for a BPF program; kinspect says [bpf].
			if want := strings.TrimPrefix(l.Regs.RIP, "0010:"); strings.TrimSuffix(f.Symbol, " [bpf]") != want {
				t.Errorf("%s: RIP %s, the console %s", what, f.Symbol, want)
			}
			if err := sameRegs(f.Regs, l.Regs.Registers); err != nil {
				t.Errorf("%s: registers at %s: %v", what, f.Symbol, err)
			}
		}
		if !found {
			t.Errorf("%s: no frame with registers in %s (the console's RIP %s)", what, l.Regs.Func, l.Regs.RIP)
		}
	}
}

// TestKdumpTriage: triage says what the console said: the report's kind
// and first line, the panic message, the crashing CPU, task and taint as
// the last report's header printed them, RIP as printed, the lockup's or
// hung task's task, and the BPF program the console's trace names.
func TestKdumpTriage(t *testing.T) {
	for _, s := range labdata.BuiltKdump(t) {
		var truth crashTruth
		labdata.ReadJSON(t, s.Path("truth/crash.json"), &truth)
		for _, f := range s.Formats {
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				r, err := triage.Build(labkernel.Open(t, s, f.Name))
				if err != nil {
					t.Fatal(err)
				}
				want := map[string][2]string{
					"kind":          {r.Kind, truth.Kind},
					"first_line":    {r.FirstLine, truth.FirstLine},
					"panic_message": {r.PanicMessage, truth.Panic},
					"cpu":           {strconv.Itoa(r.CPU), strconv.Itoa(truth.CPU)},
				}
				// The crashing task and taint as the last header printed
				// them (a soft lockup's panic adds L to the report's taint).
				pid, comm, taint := truth.PID, truth.Comm, truth.Tainted
				for _, d := range truth.Dumps {
					if d.CPU == truth.CPU && d.Context != "nmi_backtrace" && d.Comm != "" {
						pid, comm, taint = d.PID, d.Comm, d.Tainted
					}
				}
				want["pid"] = [2]string{strconv.Itoa(r.PID), strconv.Itoa(pid)}
				want["comm"] = [2]string{r.Comm, comm}
				want["taint"] = [2]string{r.Taint, taint}
				if truth.RIP != "" {
					want["rip"] = [2]string{r.RIP, truth.RIP[strings.IndexByte(truth.RIP, ':')+1:]}
				}
				for k, v := range want {
					if v[0] != v[1] {
						t.Errorf("%s: %q, the console %q", k, v[0], v[1])
					}
				}
				if l := truth.Lockup; l != nil {
					if r.Lockup == nil || *r.Lockup != (triage.Lockup{CPU: l.CPU, Seconds: l.Seconds, Comm: l.Comm, PID: l.PID}) {
						t.Errorf("lockup %+v, the console %+v", r.Lockup, *l)
					}
				}
				if h := truth.HungTask; h != nil {
					if r.HungTask == nil || r.HungTask.PID != h.PID || r.HungTask.Comm != h.Comm {
						t.Errorf("hung task %+v, the console %+v", r.HungTask, *h)
					}
				}
				// A BPF program in the crashing CPU's console trace is in
				// triage's list, on that CPU.
				for _, d := range truth.Dumps {
					if d.CPU != truth.CPU || d.Context == "nmi_backtrace" {
						continue
					}
					for _, st := range expected(d) {
						if !bpfProgSym.MatchString(st.fn) {
							continue
						}
						found := false
						for _, b := range r.BPF {
							found = found || b.CPU == truth.CPU && strings.HasPrefix(b.Symbol, st.fn+"+")
						}
						if !found {
							t.Errorf("the console names %s on CPU %d; triage's BPF: %+v", st.fn, truth.CPU, r.BPF)
						}
					}
				}
			})
		}
	}
}

// bpfProgSym matches a BPF program's kallsyms name (bpf_prog_TAG_NAME),
// not a kernel function such as bpf_prog_test_run_skb.
var bpfProgSym = regexp.MustCompile(`^bpf_prog_[0-9a-f]{16}(_|$)`)
