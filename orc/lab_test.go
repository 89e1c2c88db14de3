package orc

import (
	"bufio"
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// labKernel is one lab dump opened as the CLI opens it.
type labKernel struct {
	dump *vmcore.Dump
	syms *kallsyms.Table
	prog *objects.Program
	orc  *Kernel
}

func openLab(t testing.TB, sc *labdata.Scenario, format string) *labKernel {
	t.Helper()
	kk := labkernel.Open(t, sc, format)
	k, err := Load(kk.Program(), kk.Release())
	if err != nil {
		t.Fatal(err)
	}
	return &labKernel{dump: kk.Dump(), syms: kk.Symbols(), prog: kk.Program(), orc: k}
}

// truthKallsyms reads the guest's /proc/kallsyms: the first address of
// each name.
func truthKallsyms(t testing.TB, sc *labdata.Scenario) map[string]uint64 {
	t.Helper()
	f, err := os.Open(sc.Path("truth/kallsyms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]uint64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) < 3 {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if _, dup := out[fs[2]]; err == nil && !dup {
			out[fs[2]] = a
		}
	}
	return out
}

// funcName strips "+0xoff/0xsize [module]" from a frame as /proc prints
// it.
func funcName(s string) string {
	if i := strings.IndexByte(s, '+'); i >= 0 {
		return s[:i]
	}
	return s
}

// names symbolizes a trace's frames, leaving out what /proc/PID/stack
// leaves out: the kernel saves it with stack_trace_save_tsk, whose
// consumer for another task (stack_trace_consume_entry_nosched) skips
// addresses in_sched_functions: __sched_text and __lock_text.
func names(lk *labKernel, tr *Trace, skip [][2]uint64) []string {
	var out []string
	for _, f := range tr.Frames {
		in := false
		for _, r := range skip {
			in = in || f.PC >= r[0] && f.PC < r[1]
		}
		if !in {
			out = append(out, lk.orc.Symbolize(lk.syms, f).Name)
		}
	}
	return out
}

// TestLabSleepingTasks unwinds every task of each scenario and compares
// the functions, in order, with the guest's /proc/PID/task/TID/stack.
// Tasks whose truth is empty were running when it was read; a task
// running on a CPU in the dump has no /proc stack to compare. A task
// whose stack differs must have run since the snapshot (its context
// switches in the dump are above the snapshot's) and still unwind
// cleanly; every other task's stack must be /proc's.
// A scenario without VMCOREINFO has QEMU's kdump file checked too, and a
// forensic capture (LiME or AVML, taken later, the guest running) is
// checked the same way, with the one task whose stack it changed by
// design: the parent of the capture's process (the insmod, or avml;
// truth/lime.json), in the truth reading the console, now waiting for it.
func TestLabSleepingTasks(t *testing.T) {
	for _, sc := range labdata.Built(t) {
		if sc.Live {
			continue
		}
		formats := []string{"elf", "kdump-lzo-d31.flat"}
		if sc.NoVMCOREINFO {
			formats = append(formats, "qemu-kdump-zlib.flat")
		}
		for _, c := range sc.Captures {
			formats = append(formats, c.Name)
		}
		for _, format := range formats {
			t.Run(sc.Scenario+"/"+format, func(t *testing.T) {
				f, ok := sc.Format(format)
				if !ok {
					t.Skipf("no %s dump", format)
				}
				lk := openLab(t, sc, format)
				capture := slices.Contains(sc.Captures, f)
				changed := 0 // the parent of the capture's process
				if capture {
					changed = sc.LiME(t).Parent
				}
				ks := truthKallsyms(t, sc)
				skip := [][2]uint64{{ks["__sched_text_start"], ks["__sched_text_end"]}, {ks["__lock_text_start"], ks["__lock_text_end"]}}
				var truth map[string][]string
				labdata.ReadJSON(t, sc.Path("truth/stacks.json"), &truth)
				ps, _ := labdata.ReadPS(t, sc)
				snap := map[int]labdata.PSTask{}
				for _, tr := range ps {
					snap[tr.TID] = tr
				}
				running := map[uint64]bool{}
				cpus := []int{}
				for _, c := range lk.dump.CPUs() {
					cpus = append(cpus, c.Index)
				}
				if capture {
					// No CPU notes: the runqueues say who runs.
					for c := range sc.CPUs {
						cpus = append(cpus, c)
					}
				}
				for _, c := range cpus {
					if cur, err := linux.CurrentTask(lk.prog, c); err == nil {
						a, _ := cur.Address()
						running[a] = true
					}
				}
				compared, matched := 0, 0
				seen := 0
				explained, torn := 0, 0
				for task, err := range linux.ForEachTask(lk.prog) {
					if errors.Is(err, vmcore.ErrPageExcluded) && sc.Misfiltered(f) != "" {
						// makedumpfile before 1.7.6 takes 6.10+ slab pages
						// (PG_slab became a page type) for free pages and
						// filters them out with -d 16.
						t.Skipf("the filtered dump lacks a task: %v", err)
					}
					if capture && objects.IsDamage(err) {
						// Memory copied while the kernel ran: a task
						// exiting meanwhile tears the task lists.
						t.Logf("the task walks torn by the capture: %v", err)
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					info, err := linux.NewTask(task)
					if err != nil {
						t.Fatal(err)
					}
					want, ok := truth[strconv.Itoa(info.TID)]
					if !ok || len(want) == 0 || running[info.Addr] {
						continue
					}
					if info.TID == changed {
						// Was reading the console; now waits for the
						// capture's process: busybox's wait builtin sleeps in
						// rt_sigsuspend (a foreground command in wait4).
						tr, err := lk.orc.UnwindTask(task)
						if err != nil {
							t.Fatalf("task %d: %v", info.TID, err)
						}
						got := names(lk, tr, skip)
						t.Logf("task %d %s, the parent of the capture's process: %s", info.TID, info.Comm, strings.Join(got, " "))
						waits := slices.ContainsFunc(got, func(n string) bool { return n == "do_wait" || strings.HasSuffix(n, "_sys_rt_sigsuspend") })
						if !waits || tr.Err != nil || !tr.Reliable {
							t.Errorf("task %d %s, the parent of the capture's process, does not wait (wait4 or rt_sigsuspend): %s (err %v)", info.TID, info.Comm, strings.Join(got, " "), tr.Err)
						}
						continue
					}
					if sc.Crash != nil && info.Comm == "init" && info.TID != 1 && slices.ContainsFunc(want, func(w string) bool { return funcName(w) == "do_sys_poll" }) {
						// The crash trigger (init.sh's subshell reading
						// the console): told to crash after the snapshot,
						// it ran the crash (or, for lockup, waits on a
						// sleep) since.
						t.Logf("task %d %s: the crash trigger, not compared", info.TID, info.Comm)
						continue
					}
					seen++
					tr, err := lk.orc.UnwindTask(task)
					if err != nil && capture && info.State == linux.TaskDead {
						// Exited while the capture copied memory (a
						// destroyed idle kworker): no stack left.
						t.Logf("task %d %s exited during the capture: %v", info.TID, info.Comm, err)
						continue
					}
					if err != nil {
						t.Fatalf("task %d: %v", info.TID, err)
					}
					compared++
					got := names(lk, tr, skip)
					var wantNames []string
					for _, w := range want {
						wantNames = append(wantNames, funcName(w))
					}
					if strings.Join(got, " ") == strings.Join(wantNames, " ") {
						matched++
						if tr.Err != nil || !tr.Reliable {
							t.Errorf("task %d %s: matches but err %v reliable %v", info.TID, info.Comm, tr.Err, tr.Reliable)
						}
						continue
					}
					t.Logf("task %d %s changed state since the snapshot?\n  /proc: %s\n  dump:  %s (end %q)", info.TID, info.Comm, strings.Join(wantNames, " "), strings.Join(got, " "), tr.End)
					if capture && (tr.Err != nil || tr.End == "" || !tr.Reliable) && torn < max(3, len(truth)/10) {
						// A capture copies memory for seconds while the
						// kernel runs (avml: 36 s here): a task that ran
						// meanwhile may have its stack copied at another
						// moment than its task_struct. The workload's Go
						// threads wake on their own. A tenth of the
						// tasks at most.
						t.Logf("task %d: torn by the capture? err %v", info.TID, tr.Err)
						torn++
						continue
					}
					if tr.Err != nil || tr.End == "" || !tr.Reliable {
						t.Errorf("task %d %s: a mismatch that does not unwind cleanly: err %v end %q", info.TID, info.Comm, tr.Err, tr.End)
					}
					// Only a task that ran since the snapshot may sleep
					// elsewhere: its context switches say so.
					vol, invol, err := linux.ContextSwitches(task)
					if err != nil {
						t.Fatal(err)
					}
					sw := vol + invol
					if why := snap[info.TID].RanSince(string(info.State.Letter()), false, sw); why != "" {
						t.Logf("task %d: %s", info.TID, why)
						explained++
					} else {
						t.Errorf("task %d %s: not switched out since the snapshot (%d switches), yet its stack differs", info.TID, info.Comm, sw)
					}
				}
				if compared == 0 {
					t.Fatal("no sleeping task to compare")
				}
				t.Logf("%s %s: %d/%d sleeping tasks match /proc; %d more ran since the snapshot (switched out since); %d torn by a capture", sc.Scenario, format, matched, compared-explained-torn, explained, torn)
			})
		}
	}
}

// nmiBacktrace returns the functions of "NMI backtrace for cpu N" in
// the guest's dmesg (sysrq l) after the RIP line: the reliable frames
// (those without "? ").
func nmiBacktrace(t testing.TB, sc *labdata.Scenario, cpu int) (rip string, frames []string) {
	t.Helper()
	b, err := os.ReadFile(sc.Path("truth/dmesg.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	head := regexp.MustCompile(`NMI backtrace for cpu ` + strconv.Itoa(cpu) + `$`)
	frame := regexp.MustCompile(`^\[[ 0-9.]+\]  ([A-Za-z_][A-Za-z0-9_.]*)\+0x`)
	for i, l := range lines {
		if !head.MatchString(l) {
			continue
		}
		for _, l := range lines[i+1:] {
			if strings.Contains(l, "RIP: 0010:") && rip == "" {
				rip = funcName(l[strings.Index(l, "RIP: 0010:")+len("RIP: 0010:"):])
			}
			if strings.Contains(l, "</TASK>") || strings.Contains(l, "NMI backtrace for cpu") {
				return rip, frames
			}
			if m := frame.FindStringSubmatch(l); m != nil {
				frames = append(frames, m[1])
			}
		}
	}
	return rip, frames
}

type workload struct {
	Progs []struct {
		Name string `json:"name"`
		ID   uint32 `json:"id"`
		Tag  string `json:"tag"`
	} `json:"progs"`
}

type jitedLinfo struct {
	Addrs []string `json:"jited_line_info"`
	Lines []struct {
		File string `json:"file"`
		Line uint32 `json:"line"`
		Col  uint32 `json:"col"`
	} `json:"line_info"`
}

// TestLabSpinner unwinds the spinner's CPU (inside the BPF program
// ki_spin at the dump, or stopped in it by the panic's NMI) from the
// dump's registers: the BPF frame must be named as the guest's
// /proc/kallsyms names it, with the program's ID and the source line of
// its JIT line info, and the frames below it must be those of the
// guest's NMI backtrace of that CPU.
func TestLabSpinner(t *testing.T) {
	for _, sc := range labdata.Built(t) {
		if sc.Live || len(sc.Stops) == 0 {
			continue
		}
		for _, f := range sc.Formats {
			t.Run(sc.Scenario+"/"+f.Name, func(t *testing.T) {
				if why := sc.Misfiltered(f); why != "" {
					t.Skip(why)
				}
				lk := openLab(t, sc, f.Name)
				cpu := sc.Stops[len(sc.Stops)-1].CPU
				var wl workload
				labdata.ReadJSON(t, sc.Path("truth/workload.json"), &wl)
				var id uint32
				for _, p := range wl.Progs {
					if p.Name == "ki_spin" {
						id = p.ID
					}
				}
				var lines jitedLinfo
				labdata.ReadJSON(t, sc.Path("truth/jited/prog-"+strconv.Itoa(int(id))+"-jited-linfo.json"), &lines)
				ks := truthKallsyms(t, sc)
				var progName string
				for n := range ks {
					if strings.HasPrefix(n, "bpf_prog_") && strings.HasSuffix(n, "_ki_spin") {
						progName = n
					}
				}
				var regs *vmcore.CPU
				for i, c := range lk.dump.CPUs() {
					if c.Index == cpu {
						regs = &lk.dump.CPUs()[i]
					}
				}
				if regs == nil || !regs.HasRegs {
					t.Fatalf("no registers for CPU %d", cpu)
				}
				task, err := linux.CurrentTask(lk.prog, cpu)
				if err != nil {
					t.Fatal(err)
				}
				tr, err := lk.orc.UnwindRegs(regs.Regs, cpu, task)
				if err != nil {
					t.Fatal(err)
				}
				if tr.Err != nil {
					t.Errorf("unwind error: %v", tr.Err)
				}
				if tr.End != "user mode" {
					t.Errorf("end %q, want user mode (the bpf syscall's pt_regs)", tr.End)
				}
				at := -1
				var got []string
				for i, fr := range tr.Frames {
					s := lk.orc.Symbolize(lk.syms, fr)
					if at < 0 && s.Name == progName {
						at = i
						if s.BPF == nil || s.BPF.ID != id {
							t.Errorf("BPF frame %s: program %+v, want id %d", s, s.BPF, id)
						}
						// The truth's line: the last JIT line address at or
						// below the PC.
						best := -1
						for j, a := range lines.Addrs {
							v, _ := strconv.ParseUint(a, 0, 64)
							if v <= fr.PC && (best < 0 || v >= mustHex(lines.Addrs[best])) {
								best = j
							}
						}
						if best < 0 || s.BPF == nil || s.BPF.Line == nil {
							t.Errorf("BPF frame %s: no line (truth record %d)", s, best)
						} else if w := lines.Lines[best]; s.BPF.Line.File != w.File || s.BPF.Line.Line != w.Line || s.BPF.Line.Col != w.Col {
							t.Errorf("BPF frame line %v, want %s:%d:%d", s.BPF.Line, w.File, w.Line, w.Col)
						}
						if !fr.Signal {
							t.Errorf("BPF frame is not an interrupted instruction")
						}
						continue
					}
					if at >= 0 {
						got = append(got, s.Name)
					}
				}
				if at < 0 {
					t.Fatalf("no frame in %s", progName)
				}
				if sc.Panic && at == 0 {
					t.Errorf("the NMI-stopped CPU starts in the BPF program: no NMI frames")
				}
				if sc.Panic {
					// Stopped by crash_smp_send_stop's NMI: the frames
					// before the program are on the NMI stack.
					for _, fr := range tr.Frames[:at] {
						if fr.Stack != "NMI" {
							t.Errorf("frame %#x before the program is on the %q stack, want NMI", fr.PC, fr.Stack)
						}
					}
					if tr.Frames[at].Regs == nil || tr.Frames[at].Regs.Addr == 0 {
						t.Errorf("the program's frame does not come from the NMI's pt_regs")
					}
				}
				rip, want := nmiBacktrace(t, sc, cpu)
				if rip != progName {
					t.Skipf("the guest's NMI backtrace of CPU %d was taken in %s, not the program", cpu, rip)
				}
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("below the program:\n got  %s\n want %s (dmesg NMI backtrace)", strings.Join(got, " "), strings.Join(want, " "))
				}
			})
		}
	}
}

func mustHex(s string) uint64 { v, _ := strconv.ParseUint(s, 0, 64); return v }

// TestLabPanic unwinds the panicking CPU of the panic scenario: the task
// that wrote 'c' to /proc/sysrq-trigger, through panic() back to the
// write syscall.
func TestLabPanic(t *testing.T) {
	sc := labdata.Require(t, "panic")
	lk := openLab(t, sc, "kdump-zlib")
	v, err := lk.prog.Variable("panic_cpu")
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Member("counter")
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Int()
	if err != nil || n < 0 {
		t.Fatalf("panic_cpu %d, %v", n, err)
	}
	cpu := int(n)
	var regs vmcore.Regs
	for _, c := range lk.dump.CPUs() {
		if c.Index == cpu {
			regs = c.Regs
		}
	}
	task, err := linux.CurrentTask(lk.prog, cpu)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := lk.orc.UnwindRegs(regs, cpu, task)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Err != nil || tr.End != "user mode" || !tr.Reliable {
		t.Errorf("err %v end %q reliable %v", tr.Err, tr.End, tr.Reliable)
	}
	var got []string
	for _, f := range tr.Frames {
		got = append(got, strings.SplitN(lk.orc.Symbolize(lk.syms, f).Name, ".", 2)[0])
	}
	want := []string{"panic", "sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger", "proc_reg_write", "vfs_write", "ksys_write", "do_syscall_64", "entry_SYSCALL_64_after_hwframe"}
	j := 0
	for _, g := range got {
		if j < len(want) && g == want[j] {
			j++
		}
	}
	if j < len(want) {
		t.Errorf("panic path %s lacks %s (in order %s)", strings.Join(got, " "), want[j], strings.Join(want, " "))
	}
}

// labSeeds gives the fuzz target real ORC blocks of vmlinux.
type labSeed struct {
	ips, orcs  []byte
	ipAddr, ip uint64
	format     Format
}

func labSeeds(f *testing.F) []labSeed {
	var out []labSeed
	for _, name := range []string{"basic", "k612"} {
		sc, err := labdata.Load(name)
		if err != nil {
			continue
		}
		lk := openLab(f, sc, "elf")
		e, src, err := lk.orc.Find(lk.orc.textStart + 0x1000)
		if err != nil {
			f.Fatal(err, e)
		}
		start := max(src.Index-8, 0)
		tab, err := lk.orc.readTable("vmlinux", lk.orc.ipStart, lk.orc.orcStart, start, start+32)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, labSeed{tab.ips, tab.orcs, tab.ipAddr, src.IP, lk.orc.layout.Format})
	}
	return out
}

// TestLabLayout checks each kernel's entry layout, decided by BTF, is the
// one its release's orc_types.h declares.
func TestLabLayout(t *testing.T) {
	for _, sc := range labdata.Built(t) {
		if sc.Live {
			continue
		}
		t.Run(sc.Scenario, func(t *testing.T) {
			lk := openLab(t, sc, "elf")
			want, err := LayoutFromRelease(sc.Release)
			if errors.Is(err, ErrNotSupported) {
				want = Layout{Format: FormatTypes} // 6.4+
			}
			l := lk.orc.Layout()
			if l.Format != want.Format || l.Source != "BTF struct orc_entry" {
				t.Errorf("layout %v from %s, want %v", l.Format, l.Source, want.Format)
			}
			// 6.4+: the orc_header hash must name the same layout.
			if a, err := lk.prog.Symbol("__start_orc_header"); err == nil {
				hash := make([]byte, 20)
				if _, err := lk.prog.Memory().ReadVirt(hash, a); err != nil {
					t.Fatal(err)
				}
				h, err := LayoutFromHeader(hash)
				if err != nil || h.Format != l.Format || h.spReg != l.spReg || h.typ != l.typ || h.signal != l.signal {
					t.Errorf("orc_header layout %+v, %v; BTF's %+v", h, err, l)
				}
			}
		})
	}
}
