package linux_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// TestLabRunQueues: each CPU's runqueue has a current task (its idle
// task is swapper/N); the spinner, running in the truth (ps.json), is
// a CPU's current task or queued, CPU 1's current where no crash came
// after the truth; a task the truth saw running that is on no runqueue
// (a kthread woken for a moment, rcu_preempt) was switched out since,
// and a task queued that the truth saw asleep was woken since
// (labdata.PSTask.RanSince): the dump says so.
func TestLabRunQueues(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			ps, excluded := labdata.ReadPS(t, sc)
			truth := map[int]labdata.PSTask{}
			for _, tr := range ps {
				truth[tr.TID] = tr
			}
			rqs, err := linux.RunQueues(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(rqs) != sc.CPUs {
				t.Fatalf("%d runqueues, want %d", len(rqs), sc.CPUs)
			}
			where := map[int]string{} // TID: "current of CPU n" or "CFS of CPU n"
			var queued, notRunning []string
			for _, rq := range rqs {
				if rq.Current.PID == 0 && !rq.Idle || rq.Idle && rq.Current.Comm != fmt.Sprintf("swapper/%d", rq.CPU) {
					t.Errorf("CPU %d: current %+v, idle %v", rq.CPU, rq.Current, rq.Idle)
				}
				if !rq.Idle {
					where[rq.Current.PID] = fmt.Sprintf("current of CPU %d", rq.CPU)
				}
				for class, ts := range map[string][]linux.RQTask{"RT": rq.RT, "CFS": rq.CFS, "DL": rq.DL} {
					for _, q := range ts {
						where[q.PID] = fmt.Sprintf("%s of CPU %d", class, rq.CPU)
						queued = append(queued, fmt.Sprintf("%d(%s) %s CPU %d", q.PID, q.Comm, class, rq.CPU))
						if tr, ok := truth[q.PID]; ok && tr.State != "R" {
							why := ranSince(t, p, tr, false)
							notRunning = append(notRunning, fmt.Sprintf("%d(%s) %s: %s", q.PID, q.Comm, tr.State, why))
							if why == "" {
								t.Errorf("task %d (%s) queued on CPU %d, truth %s, and not woken or switched since", q.PID, q.Comm, rq.CPU, tr.State)
							}
						}
					}
				}
				if n := len(rq.RT) + len(rq.CFS) + len(rq.DL); !rq.Idle && n+1 > rq.NrRunning+countDelayed(rq) || rq.Idle && n > rq.NrRunning+countDelayed(rq) {
					t.Errorf("CPU %d: %d queued besides the current task, nr_running %d", rq.CPU, n, rq.NrRunning)
				}
			}
			t.Logf("current: %v; queued: %v; queued but not running in the truth: %v", currents(rqs), queued, notRunning)
			var slept []string
			for _, tr := range ps {
				if tr.State != "R" || tr.PID == excluded {
					continue
				}
				w, ok := where[tr.TID]
				switch {
				case tr.Comm == "ki_spinner" && !ok:
					t.Errorf("ki_spinner (%d) is on no runqueue", tr.TID)
				case tr.Comm == "ki_spinner" && !sc.Kdump && w != "current of CPU 1":
					t.Errorf("ki_spinner is the %s, want CPU 1's current", w)
				case !ok:
					// Gone to sleep (or exited) since: switched out.
					why := ranSince(t, p, tr, false)
					slept = append(slept, fmt.Sprintf("%d(%s): %s", tr.TID, tr.Comm, why))
					if why == "" {
						t.Errorf("task %d (%s) running in the truth is on no runqueue, and was not switched out since", tr.TID, tr.Comm)
					}
				}
			}
			t.Logf("running in the truth, on no runqueue in the dump (slept since): %v", slept)
		})
	}
}

func countDelayed(rq linux.RunQueue) int {
	n := 0
	for _, q := range rq.CFS {
		if q.Delayed {
			n++
		}
	}
	return n
}

func currents(rqs []linux.RunQueue) []string {
	var out []string
	for _, rq := range rqs {
		out = append(out, fmt.Sprintf("CPU %d: %d(%s)", rq.CPU, rq.Current.PID, rq.Current.Comm))
	}
	return out
}

// procTruth reads truth/proc/NAME of a scenario, skipping the test
// where the lab that built it did not capture that file yet (failing
// it under KINSPECT_LAB_REQUIRE=1: the lab builds capture it).
func procTruth(t *testing.T, name, file string) string {
	t.Helper()
	b, err := os.ReadFile(labkernel.Scenario(name).Path("truth/proc/" + file))
	if errors.Is(err, os.ErrNotExist) && os.Getenv(labdata.EnvRequire) != "1" {
		t.Skipf("%s: the truth has no proc/%s (a lab from before it was captured)", name, file)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLabDevices: the device majors are /proc/devices' lines, in its
// order.
func TestLabDevices(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			truth := procTruth(t, name, "devices.txt")
			devs, err := linux.Devices(p)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString("Character devices:\n")
			block := false
			for _, d := range devs {
				if d.Kind == "block" && !block {
					block = true
					b.WriteString("\nBlock devices:\n")
				}
				fmt.Fprintf(&b, "%3d %s\n", d.Major, d.Name)
			}
			if !block {
				b.WriteString("\nBlock devices:\n")
			}
			if got := b.String(); got != truth {
				t.Errorf("got\n%s\ntruth\n%s", got, truth)
			}
			t.Logf("%d lines equal", strings.Count(truth, "\n"))
		})
	}
}

// TestLabUptime: the uptime, idle time and load average against
// /proc/uptime and /proc/loadavg, read in the guest before the dump:
// the dump's uptime and idle time are no less than the truth's, and
// more by at most the time between the truth and the dump (measured:
// see the log; bounded by 120 s, 900 s on a kdump scenario, whose
// crash came later; idle grows by at most that on each CPU, each
// CPU's against /proc/stat's idle column where captured); the last
// PID is no less; each load average within 1.0 of the truth's (the
// spinner keeps it near 1-2, and it moves by a fraction of the
// difference every 5 s); the threads within 10 (the snapshot's own,
// the crash's trigger).
func TestLabUptime(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			up := strings.Fields(procTruth(t, name, "uptime.txt"))
			la := strings.Fields(procTruth(t, name, "loadavg.txt"))
			if len(up) != 2 || len(la) != 5 {
				t.Fatalf("truth: uptime %q, loadavg %q", up, la)
			}
			u, err := linux.ReadUptime(p)
			if err != nil {
				t.Fatal(err)
			}
			secs := func(s string) float64 {
				f, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			// The truth's last captures (the vmlinux BTF dump, every
			// process's files) take minutes under TCG on a loaded host:
			// 124 s seen between /proc/uptime and the dump on k612.
			bound := map[bool]float64{false: 600, true: 900}[sc.Kdump]
			dUp := float64(u.UptimeNS)/1e9 - secs(up[0])
			dIdle := float64(u.IdleNS)/1e9 - secs(up[1])
			t.Logf("dump %s / %s; truth %s / %s: uptime +%.2f s, idle +%.2f s", u.UptimeLine(), u.LoadavgLine(), strings.Join(up, " "), strings.Join(la, " "), dUp, dIdle)
			if dUp < 0 || dUp > bound {
				t.Errorf("uptime %.2f s past the truth's, want 0-%.0f", dUp, bound)
			}
			if dIdle < -0.01 || dIdle > dUp*float64(sc.CPUs)+0.01 {
				t.Errorf("idle %.2f s past the truth's, want 0-%.2f", dIdle, dUp*float64(sc.CPUs))
			}
			// /proc/stat's idle column (USER_HZ, 100 a second), each
			// CPU's: no less, and more by at most the time since.
			if stat, err := os.ReadFile(sc.Path("truth/proc/stat.txt")); err == nil {
				for cpu, idle := range u.CPUIdleNS {
					var f []string
					for _, l := range strings.Split(string(stat), "\n") {
						if strings.HasPrefix(l, fmt.Sprintf("cpu%d ", cpu)) {
							f = strings.Fields(l)
						}
					}
					if len(f) < 5 {
						t.Fatalf("stat has no line of CPU %d", cpu)
					}
					want := secs(f[4]) / 100
					d := float64(idle)/1e9 - want
					t.Logf("CPU %d: idle %.2f s, stat's %.2f s", cpu, float64(idle)/1e9, want)
					if d < -0.01 || d > dUp+0.01 {
						t.Errorf("CPU %d: idle %.2f s, stat's %.2f s", cpu, float64(idle)/1e9, want)
					}
				}
			}
			for i := range 3 {
				if d := secs(u.Load[i]) - secs(la[i]); d < -1 || d > 1 {
					t.Errorf("load %d: %s, truth %s", i, u.Load[i], la[i])
				}
			}
			nr := strings.SplitN(la[3], "/", 2)
			threads, _ := strconv.Atoi(nr[1])
			last, _ := strconv.Atoi(la[4])
			// nr_threads moves with the capture's own processes and the
			// kworkers that come and go (88 against 99 seen on kd-stack).
			if u.NrThreads < threads-20 || u.NrThreads > threads+20 || u.LastPID < last {
				t.Errorf("threads %d, last PID %d; truth %d, %d", u.NrThreads, u.LastPID, threads, last)
			}
		})
	}
}

// truthUptime is the first number of truth/proc/uptime.txt, seconds.
func truthUptime(t *testing.T, name string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.Fields(procTruth(t, name, "uptime.txt"))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestLabInterrupts: the lines of /proc/interrupts, read in the guest
// before the dump: the same lines (IRQ numbers and architecture
// counters) in the same order, each with the same chip, hardware IRQ,
// flow handler and actions, byte for byte; every count no less than
// the truth's, and more by at most 10,000 for each second between the
// truth and the dump (measured on basic, 64 s after the truth: the
// virtio queue's +238,185 and CPU 0's function calls +229,826, 3,700/s
// while the lab copied files over 9p; the local timers +13,490 and
// +14,770; the log says by how much each moved).
func TestLabInterrupts(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			truth := strings.Split(strings.TrimRight(procTruth(t, name, "interrupts.txt"), "\n"), "\n")
			in, err := linux.ReadInterrupts(p)
			if err != nil {
				t.Fatal(err)
			}
			u, err := linux.ReadUptime(p)
			if err != nil {
				t.Fatal(err)
			}
			dt := float64(u.UptimeNS)/1e9 - truthUptime(t, name)
			ncpu := len(strings.Fields(truth[0]))
			if ncpu != len(in.CPUs) {
				t.Fatalf("%d CPUs, truth %d: %q", len(in.CPUs), ncpu, truth[0])
			}
			got := strings.Split(strings.TrimRight(in.Text(), "\n"), "\n")
			if got[0] != truth[0] {
				t.Errorf("header %q, truth %q", got[0], truth[0])
			}
			names := func(lines []string) []string {
				var out []string
				for _, l := range lines[1:] {
					out = append(out, strings.TrimSpace(l[:strings.Index(l, ":")]))
				}
				return out
			}
			if g, w := names(got), names(truth); strings.Join(g, " ") != strings.Join(w, " ") {
				t.Fatalf("lines %v, truth %v", g, w)
			}
			bound := uint64(10000 * (dt + 1))
			var moved []string
			equal := 0
			for i, tl := range truth[1:] {
				l := in.Lines[i]
				cols := strings.Fields(tl[strings.Index(tl, ":")+1:])
				n := len(l.Counts)
				off := in.Prec + 2 + 11*n
				if n == 1 && l.Description == "" {
					off = in.Prec + 2 + 10
				}
				gl := got[i+1]
				if len(tl) < off || len(gl) < off || tl[off:] != gl[off:] {
					t.Errorf("%s: %q, truth %q", l.Name, gl, tl)
					continue
				}
				equal++
				for c := range n {
					want, err := strconv.ParseUint(cols[c], 10, 64)
					if err != nil {
						t.Fatalf("%s: %q", l.Name, tl)
					}
					if l.Counts[c] < want || l.Counts[c]-want > bound {
						t.Errorf("%s CPU %d: %d, truth %d (bound %d)", l.Name, c, l.Counts[c], want, bound)
					}
					if l.Counts[c] != want {
						moved = append(moved, fmt.Sprintf("%s/%d+%d", l.Name, c, l.Counts[c]-want))
					}
				}
			}
			t.Logf("%d/%d lines equal but for the counts; %.1f s after the truth, counts moved: %v", equal, len(truth)-1, dt, moved)
		})
	}
}

// truthClockBase is a clock base of /proc/timer_list: its get_time
// and offset lines.
type truthClockBase struct {
	cpu, clock int
	getTime    string
	offset     int64
}

// truthHRTimer is a timer of /proc/timer_list's "active timers".
type truthHRTimer struct {
	cpu, clock int
	function   string
	soft, hard int64
}

// parseTimerList reads /proc/timer_list's now and active timers.
func parseTimerList(t *testing.T, text string) (int64, []truthClockBase, []truthHRTimer) {
	t.Helper()
	var now int64
	var out []truthHRTimer
	var bases []truthClockBase
	cpu, clock := -1, -1
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "now at "):
			fmt.Sscanf(l, "now at %d nsecs", &now)
		case strings.HasPrefix(l, "cpu: "):
			fmt.Sscanf(l, "cpu: %d", &cpu)
		case strings.HasPrefix(l, " clock "):
			fmt.Sscanf(l, " clock %d:", &clock)
			bases = append(bases, truthClockBase{cpu: cpu, clock: clock})
		case strings.HasPrefix(l, "  .get_time:"):
			bases[len(bases)-1].getTime = strings.TrimSpace(strings.TrimPrefix(l, "  .get_time:"))
		case strings.HasPrefix(l, "  .offset:"):
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "  .offset:")), "%d nsecs", &bases[len(bases)-1].offset)
		case strings.HasPrefix(l, " #") && !strings.HasPrefix(l, " # "):
			// " #0: <ffff...>, tick_sched_timer, S:01"
			f := strings.Split(l, ", ")
			if len(f) < 3 {
				t.Fatalf("timer_list: %q", l)
			}
			out = append(out, truthHRTimer{cpu: cpu, clock: clock, function: strings.Join(f[1:len(f)-1], ", ")})
		case strings.HasPrefix(l, " # expires at "):
			fmt.Sscanf(l, " # expires at %d-%d", &out[len(out)-1].soft, &out[len(out)-1].hard)
		}
	}
	return now, bases, out
}

// TestLabTimers: the hrtimers against /proc/timer_list, read in the
// guest before the dump. The same CPUs and clock bases, each with the
// same get_time and offset (the realtime clocks' is the boot's wall
// time, which nobody set since); each CPU's tick (tick_sched_timer,
// tick_nohz_handler on 6.12) and softlockup watchdog timer
// (watchdog_timer_fn, re-armed every 4 s) are on its clock 0 in both,
// when the truth has them; and of the truth's timers that expire after
// the dump was taken (that cannot have fired since), those still
// pending are found with the same callback and expiry: the log says
// how many, and at least half must be (the rest were cancelled: a
// poll or sleep that another event ended).
func TestLabTimers(t *testing.T) {
	for name, k := range labkernel.All(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			truthNow, truthBases, truth := parseTimerList(t, procTruth(t, name, "timer_list.txt"))
			ts, err := linux.ReadTimers(k.Program(), k.Symbols())
			if err != nil {
				t.Fatal(err)
			}
			type key struct {
				cpu, clock int
				function   string
				soft, hard int64
			}
			got := map[key]bool{}
			type fn struct {
				cpu      int
				function string
			}
			clock0 := map[fn]bool{}
			var bases []truthClockBase
			for _, c := range ts.CPUs {
				for _, cb := range c.ClockBases {
					bases = append(bases, truthClockBase{c.CPU, cb.Index, cb.GetTime, cb.Offset})
					for _, h := range cb.Timers {
						got[key{c.CPU, cb.Index, h.Function, h.SoftExpires, h.Expires}] = true
						if cb.Index == 0 {
							clock0[fn{c.CPU, h.Function}] = true
						}
					}
				}
			}
			if fmt.Sprint(bases) != fmt.Sprint(truthBases) {
				t.Errorf("clock bases %v, truth %v", bases, truthBases)
			}
			truthCPUs := map[int]bool{}
			for _, tr := range truth {
				truthCPUs[tr.cpu] = true
			}
			if len(truthCPUs) != len(ts.CPUs) {
				t.Errorf("%d CPUs, truth %d", len(ts.CPUs), len(truthCPUs))
			}
			for _, tr := range truth {
				switch tr.function {
				case "tick_sched_timer", "tick_nohz_handler", "watchdog_timer_fn":
					// A soft lockup's panic runs in watchdog_timer_fn:
					// that hrtimer is running at the dump, not queued.
					if tr.function == "watchdog_timer_fn" && sc.Crash != nil && sc.Crash.Kind == "soft_lockup" {
						continue
					}
					if tr.clock == 0 && !clock0[fn{tr.cpu, tr.function}] {
						t.Errorf("CPU %d: no %s on clock 0", tr.cpu, tr.function)
					}
				}
			}
			var later, found int
			var gone []string
			for _, tr := range truth {
				// The clock bases' now differ by their offsets; clocks
				// 0 and 4 (monotonic) compare with now as it is.
				if (tr.clock != 0 && tr.clock != 4) || tr.soft <= ts.Now {
					continue
				}
				later++
				if got[key(tr)] {
					found++
				} else {
					gone = append(gone, fmt.Sprintf("CPU %d %s@%d", tr.cpu, tr.function, tr.soft))
				}
			}
			t.Logf("truth: %d timers at %d ns; dump %.2f s later: %d of the %d monotonic timers expiring after it found, not: %v",
				len(truth), truthNow, float64(ts.Now-truthNow)/1e9, found, later, gone)
			if found*2 < later {
				t.Errorf("found %d of %d", found, later)
			}
		})
	}
}

// TestLabTimerWheel: the timer wheel is not in /proc/timer_list; each
// of its timers' flags name the CPU whose base holds it (TIMER_CPUMASK)
// and, deferrable (TIMER_DEFERRABLE), put it on the last base,
// BASE_DEF (6.1 has 2 bases, 6.12 3).
func TestLabTimerWheel(t *testing.T) {
	for name, k := range labkernel.All(t, "elf") {
		t.Run(name, func(t *testing.T) {
			ts, err := linux.ReadTimers(k.Program(), k.Symbols())
			if err != nil {
				t.Fatal(err)
			}
			wheel := 0
			for _, c := range ts.CPUs {
				for _, w := range c.Wheel {
					wheel++
					last := w.Base == c.Wheels-1
					if int(w.Flags&0x3ffff) != c.CPU || (w.Flags&0x80000 != 0) != last {
						t.Errorf("CPU %d wheel %d: timer %#x (%s) flags %#x", c.CPU, w.Base, uint64(w.Timer), w.Function, w.Flags)
					}
				}
			}
			if wheel == 0 {
				t.Error("no timer on the wheel")
			}
			t.Logf("%d timers on %d CPUs' wheels (%d bases)", wheel, len(ts.CPUs), ts.CPUs[0].Wheels)
		})
	}
}

// ranSince is tr.RanSince for the task the dump holds with tr's TID, or
// "exited since" where it holds none that a kworker's pool may have
// destroyed; "" where nothing explains a change.
func ranSince(t *testing.T, p *objects.Program, tr labdata.PSTask, onCPU bool) string {
	t.Helper()
	task, err := linux.FindTask(p, tr.TID)
	if err != nil {
		if labdata.ExitedAfterTruth(tr.PPID, tr.Comm) {
			return "exited since"
		}
		t.Errorf("task %d: %v", tr.TID, err)
		return ""
	}
	tk, err := linux.NewTask(task)
	if err != nil {
		t.Errorf("task %d: %v", tr.TID, err)
		return ""
	}
	vol, invol, err := linux.ContextSwitches(task)
	if err != nil {
		t.Error(err)
		return ""
	}
	return tr.RanSince(string(tk.State.Letter()), onCPU, vol+invol)
}
