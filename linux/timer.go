package linux

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// The pending timers (include/linux/hrtimer.h, kernel/time/hrtimer.c,
// kernel/time/timer.c): each CPU's high-resolution timers, in the
// timerqueue of each clock base of hrtimer_bases, as /proc/timer_list
// lists them (kernel/time/timer_list.c), and the timer wheel's
// timer_list timers of timer_bases, as crash's timer lists them.

// HRTimer is a pending high-resolution timer (struct hrtimer).
type HRTimer struct {
	Timer objects.Hex `json:"timer"`
	// Function is the callback as %ps prints it ("tick_sched_timer",
	// "fn [module]"), its address where no symbol covers it.
	Function     string      `json:"function"`
	FunctionAddr objects.Hex `json:"function_addr"`
	State        uint64      `json:"state"`
	// SoftExpires and Expires are the expiry range, ns on the clock
	// base's clock.
	SoftExpires int64 `json:"soft_expires"`
	Expires     int64 `json:"expires"`
}

// ClockBase is one of a CPU's hrtimer clock bases.
type ClockBase struct {
	Index   int         `json:"index"`
	ClockID int         `json:"clockid"`
	Base    objects.Hex `json:"base"`
	GetTime string      `json:"get_time"`
	// Offset is the clock's offset from CLOCK_MONOTONIC (ns).
	Offset int64     `json:"offset"`
	Timers []HRTimer `json:"timers"`
}

// WheelTimer is a pending timer_list of the timer wheel.
type WheelTimer struct {
	Timer        objects.Hex `json:"timer"`
	Function     string      `json:"function"`
	FunctionAddr objects.Hex `json:"function_addr"`
	// Expires is in jiffies.
	Expires uint64 `json:"expires"`
	Flags   uint64 `json:"flags"`
	// Base is the wheel's index in timer_bases (0 BASE_STD, or
	// BASE_LOCAL where there are 3; the last is BASE_DEF, deferrable).
	Base int `json:"base"`
}

// CPUTimers are a CPU's pending timers.
type CPUTimers struct {
	CPU int `json:"cpu"`
	// HRTimerBase is the CPU's struct hrtimer_cpu_base.
	HRTimerBase objects.Hex `json:"hrtimer_cpu_base"`
	ClockBases  []ClockBase `json:"clock_bases"`
	// Wheels is how many timer bases the CPU has (NR_BASES: 2 in 6.1,
	// 3 from 6.9), Wheel their timers, by base then expiry.
	Wheels int          `json:"wheels"`
	Wheel  []WheelTimer `json:"wheel"`
}

// Timers are the pending timers of every online CPU.
type Timers struct {
	// Now is CLOCK_MONOTONIC (ns) as the timekeeper last updated it,
	// Jiffies the jiffies counter.
	Now     int64  `json:"now"`
	Jiffies uint64 `json:"jiffies"`
	// Resolution is hrtimer_resolution, ns (1 with high resolution
	// timers on).
	Resolution uint64      `json:"resolution"`
	CPUs       []CPUTimers `json:"cpus"`
}

// timerFunc names a callback as %ps does.
func timerFunc(syms *kallsyms.Table, a uint64) string {
	if syms != nil {
		if l, err := syms.LookupAddr(a); err == nil {
			s := l.Name
			if l.Offset != 0 {
				s += fmt.Sprintf("+%#x", l.Offset)
			}
			if l.Module != "" {
				s += " [" + l.Module + "]"
			}
			return s
		}
	}
	return fmt.Sprintf("%#x", a)
}

// ReadTimers reads the pending timers of every online CPU: its
// hrtimers by clock base, in expiry order (the timerqueue's), and its
// timer wheel's. syms names the callbacks (nil: addresses). A damaged
// link of a queue or wheel is noted in the Program's damage log and
// the walk goes on; an error is for a CPU whose bases cannot be read,
// with the CPUs read before.
func ReadTimers(p *objects.Program, syms *kallsyms.Table) (*Timers, error) {
	clocks, err := ReadClocks(p)
	if err != nil {
		return nil, fmt.Errorf("timers: %w", err)
	}
	out := &Timers{Now: clocks.Monotonic, CPUs: []CPUTimers{}}
	if j, err := p.Variable("jiffies"); err == nil {
		out.Jiffies, _ = j.Uint()
	}
	if r, err := p.Variable("hrtimer_resolution"); err == nil {
		out.Resolution, _ = r.Uint()
	}
	cpus, err := OnlineCPUs(p)
	if err != nil {
		return nil, fmt.Errorf("timers: %w", err)
	}
	for _, cpu := range cpus {
		ct, err := readCPUTimers(p, syms, cpu)
		if err != nil {
			return out, fmt.Errorf("timers of CPU %d: %w", cpu, err)
		}
		out.CPUs = append(out.CPUs, *ct)
	}
	return out, nil
}

func readCPUTimers(p *objects.Program, syms *kallsyms.Table, cpu int) (*CPUTimers, error) {
	cb, err := perCPUMember(p, cpu, "hrtimer_bases", "")
	if err != nil {
		return nil, err
	}
	ct := &CPUTimers{CPU: cpu, HRTimerBase: objects.Hex(cb.Addr()), ClockBases: []ClockBase{}, Wheel: []WheelTimer{}}
	bases, err := cb.Member("clock_base")
	if err != nil {
		return nil, err
	}
	n, err := bases.Len()
	if err != nil {
		return nil, err
	}
	for i := range n {
		b, err := bases.Index(int64(i))
		if err != nil {
			return nil, err
		}
		base := ClockBase{Index: i, Base: objects.Hex(b.Addr()), Timers: []HRTimer{}}
		id, e1 := b.MemberInt("clockid")
		gt, e2 := b.MemberUint("get_time")
		off, e3 := b.MemberInt("offset")
		if e := firstErr(e1, e2, e3); e != nil {
			return nil, fmt.Errorf("clock base %d at %#x: %w", i, b.Addr(), e)
		}
		base.ClockID, base.Offset, base.GetTime = int(id), off, timerFunc(syms, gt)
		q, err := b.Path("active.rb_root")
		if err != nil {
			return nil, err
		}
		for t, err := range objects.RBTreeForEachEntry(q, "struct hrtimer", "node.node") {
			if err != nil {
				if d := objects.AsDamage(err); d != nil {
					p.NoteDamage(d)
					continue
				}
				return nil, fmt.Errorf("clock base %d at %#x: %w", i, b.Addr(), err)
			}
			_, s, err := p.ReadStruct("struct hrtimer", t.Addr())
			if err != nil {
				p.NoteDamage(&objects.Damage{Walk: fmt.Sprintf("hrtimers of CPU %d clock %d", cpu, i), Addr: objects.Hex(t.Addr()),
					Object: "struct hrtimer", Expected: "a readable timer", Err: err})
				continue
			}
			ht := HRTimer{Timer: objects.Hex(t.Addr()), FunctionAddr: objects.Hex(s.Uint("function")), State: s.Uint("state"),
				SoftExpires: int64(s.Uint("_softexpires"))}
			if e, err := t.MemberInt("node.expires"); err == nil {
				ht.Expires = e
			}
			ht.Function = timerFunc(syms, uint64(ht.FunctionAddr))
			base.Timers = append(base.Timers, ht)
		}
		ct.ClockBases = append(ct.ClockBases, base)
	}
	wheels, err := perCPUMember(p, cpu, "timer_bases", "")
	if err != nil {
		return ct, nil // a kernel without the wheel's per-CPU bases in BTF
	}
	nw, err := wheels.Len()
	if err != nil {
		return nil, err
	}
	ct.Wheels = nw
	for w := range nw {
		base, err := wheels.Index(int64(w))
		if err == nil {
			err = wheelTimers(p, syms, base, cpu, w, &ct.Wheel)
		}
		if err != nil {
			return nil, fmt.Errorf("timer wheel %d: %w", w, err)
		}
	}
	return ct, nil
}

// wheelTimers appends the timers of a struct timer_base's wheel
// (vectors: hlists of timer_list by entry).
func wheelTimers(p *objects.Program, syms *kallsyms.Table, base objects.Value, cpu, w int, out *[]WheelTimer) error {
	vec, err := base.Member("vectors")
	if err != nil {
		return err
	}
	b, err := vec.Bytes()
	if err != nil {
		return err
	}
	for i := 0; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) == 0 {
			continue
		}
		head, err := vec.Index(int64(i / 8))
		if err != nil {
			return err
		}
		for t, err := range objects.HlistForEachEntry(head, "struct timer_list", "entry") {
			if err != nil {
				if d := objects.AsDamage(err); d != nil {
					p.NoteDamage(d)
					continue
				}
				p.NoteDamage(&objects.Damage{Walk: fmt.Sprintf("timer wheel %d of CPU %d, bucket %d", w, cpu, i/8),
					Addr: objects.Hex(head.Addr()), Expected: "a readable list", Err: err})
				break
			}
			_, s, err := p.ReadStruct("struct timer_list", t.Addr())
			if err != nil {
				p.NoteDamage(&objects.Damage{Walk: fmt.Sprintf("timer wheel %d of CPU %d", w, cpu), Addr: objects.Hex(t.Addr()),
					Object: "struct timer_list", Expected: "a readable timer", Err: err})
				continue
			}
			wt := WheelTimer{Timer: objects.Hex(t.Addr()), FunctionAddr: objects.Hex(s.Uint("function")), Expires: s.Uint("expires"),
				Flags: s.Uint("flags"), Base: w}
			wt.Function = timerFunc(syms, uint64(wt.FunctionAddr))
			*out = append(*out, wt)
		}
	}
	// By base (already), then expiry, as crash sorts them.
	sortWheel(*out)
	return nil
}

func sortWheel(ts []WheelTimer) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Base == ts[j-1].Base && ts[j].Expires < ts[j-1].Expires; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// TimerListText renders the hrtimers as /proc/timer_list's per-CPU
// "active timers" sections list them: for each CPU and clock base, its
// timers with their expiry ranges relative to now (the CPU's base
// details and the tick devices, which /proc/timer_list also prints,
// are left out). Addresses print as %pK does for a reader allowed to
// see them.
func (ts *Timers) TimerListText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "now at %d nsecs\n", ts.Now)
	for _, c := range ts.CPUs {
		fmt.Fprintf(&b, "\ncpu: %d\n", c.CPU)
		for _, cb := range c.ClockBases {
			fmt.Fprintf(&b, " clock %d:\n", cb.Index)
			fmt.Fprintf(&b, "  .base:       %016x\n", uint64(cb.Base))
			fmt.Fprintf(&b, "  .index:      %d\n", cb.Index)
			fmt.Fprintf(&b, "  .resolution: %d nsecs\n", ts.Resolution)
			fmt.Fprintf(&b, "  .get_time:   %s\n", cb.GetTime)
			fmt.Fprintf(&b, "  .offset:     %d nsecs\n", cb.Offset)
			b.WriteString("active timers:\n")
			now := ts.Now + cb.Offset
			for i, t := range cb.Timers {
				fmt.Fprintf(&b, " #%d: <%016x>, %s, S:%02x\n", i, uint64(t.Timer), t.Function, t.State)
				fmt.Fprintf(&b, " # expires at %d-%d nsecs [in %d to %d nsecs]\n", t.SoftExpires, t.Expires, t.SoftExpires-now, t.Expires-now)
			}
		}
	}
	return b.String()
}
