package linux

import (
	"errors"
	"fmt"
	"math"

	"github.com/kinspect/kinspect/objects"
)

// RealMinusBoot returns CLOCK_REALTIME minus CLOCK_BOOTTIME in ns, the
// wall-clock time of boot: the timekeeper's offs_real - offs_boot. A
// load_time plus it is the wall-clock time bpftool prints as loaded_at
// (it takes the same difference from the live clocks).
//
// The timekeeper is Timekeeper's.
//
// It is computed once per Program.
func RealMinusBoot(p *objects.Program) (int64, error) {
	v, err := p.Memo("linux.RealMinusBoot", func() (any, error) { return realMinusBoot(p) })
	n, _ := v.(int64)
	return n, err
}

func realMinusBoot(p *objects.Program) (int64, error) {
	tk, err := Timekeeper(p)
	if err != nil {
		return 0, err
	}
	var offs [2]int64
	for i, name := range []string{"offs_real", "offs_boot"} {
		v, err := tk.Member(name)
		if err == nil {
			offs[i], err = v.Int()
		}
		if err != nil {
			return 0, fmt.Errorf("timekeeper %s: %w", name, err)
		}
	}
	return offs[0] - offs[1], nil
}

// Timekeeper returns the kernel's timekeeper (a struct timekeeper):
// tk_core.timekeeper, typed by BTF as struct tk_data where that exists
// (6.13+, "timekeeping: Define a struct type for tk_core to make it
// reusable"); before, tk_core's anonymous type has no BTF and the copy
// timekeeping_advance works on and mirrors, shadow_timekeeper, is read
// instead.
func Timekeeper(p *objects.Program) (objects.Value, error) {
	if t, err := p.Type("struct tk_data"); err == nil {
		addr, err := p.Symbol("tk_core")
		if err != nil {
			return objects.Value{}, fmt.Errorf("timekeeper: %w", err)
		}
		tk, err := p.Object(t, addr).Member("timekeeper")
		if err != nil {
			return objects.Value{}, fmt.Errorf("timekeeper: %w", err)
		}
		return tk, nil
	}
	t, err := p.Type("struct timekeeper")
	if err != nil {
		return objects.Value{}, fmt.Errorf("timekeeper: %w", err)
	}
	addr, err := p.Symbol("shadow_timekeeper")
	if err != nil {
		return objects.Value{}, fmt.Errorf("timekeeper: %w", err)
	}
	return p.Object(t, addr), nil
}

// Clocks are the kernel's clocks as its timekeeper last updated them
// (at its last tick; a dump has no clocksource to read the time since):
// CLOCK_MONOTONIC and CLOCK_BOOTTIME, in ns.
type Clocks struct {
	Monotonic int64
	Boottime  int64
}

// ReadClocks reads the timekeeper's clocks: CLOCK_MONOTONIC is
// tkr_mono.base plus tkr_mono.xtime_nsec >> tkr_mono.shift (the ns of
// its last update), CLOCK_BOOTTIME that plus offs_boot.
func ReadClocks(p *objects.Program) (Clocks, error) {
	tk, err := Timekeeper(p)
	if err != nil {
		return Clocks{}, err
	}
	base, e1 := tk.MemberInt("tkr_mono.base")
	xtime, e2 := tk.MemberUint("tkr_mono.xtime_nsec")
	shift, e3 := tk.MemberUint("tkr_mono.shift")
	boot, e4 := tk.MemberInt("offs_boot")
	if err := errors.Join(e1, e2, e3, e4); err != nil {
		return Clocks{}, fmt.Errorf("timekeeper at %#x: %w", tk.Addr(), err)
	}
	if shift >= 64 {
		return Clocks{}, fmt.Errorf("timekeeper at %#x: tkr_mono.shift %d: %w", tk.Addr(), shift, objects.ErrCorrupt)
	}
	mono := base + int64(xtime>>shift)
	return Clocks{Monotonic: mono, Boottime: mono + boot}, nil
}

// hzCandidates are the CONFIG_HZ values the kernel offers.
var hzCandidates = []uint64{100, 250, 300, 1000}

// HZ finds the kernel's tick rate, which neither BTF nor VMCOREINFO
// carries. tick_nsec (kernel/time/ntp.c) is the length of a tick in ns,
// NSEC_PER_SEC/HZ within NTP's ±500 ppm: the candidate it is nearest to
// is HZ. Without it, jiffies_64 against the monotonic clock: it starts at
// INITIAL_JIFFIES, (u32)(-300*HZ), and counts HZ per second, so only the
// true HZ puts the count since boot near HZ times the uptime — except
// around 300 s, where every HZ's count is near 2^32 (tick_nsec is read
// first for that).
func HZ(p *objects.Program) (uint64, error) {
	v, err := p.Memo("linux HZ", func() (any, error) {
		var tickErr error
		if a, err := p.Symbol("tick_nsec"); err != nil {
			tickErr = err
		} else if n, err := p.ReadU64(a); err != nil {
			tickErr = fmt.Errorf("tick_nsec at %#x: %w", a, err)
		} else if hz, ok := hzFromTick(n); ok {
			return hz, nil
		} else {
			tickErr = fmt.Errorf("tick_nsec at %#x is %d ns: no HZ of %v: %w", a, n, hzCandidates, objects.ErrCorrupt)
		}
		jiffies, err := jiffiesNow(p)
		if err != nil {
			return uint64(0), fmt.Errorf("HZ: %w; jiffies_64: %w", tickErr, err)
		}
		c, err := ReadClocks(p)
		if err != nil {
			return uint64(0), fmt.Errorf("HZ: %w; %w", tickErr, err)
		}
		secs := float64(c.Monotonic) / 1e9
		hz, ok := hzFrom(jiffies, secs)
		if !ok {
			return uint64(0), fmt.Errorf("HZ: %w; jiffies_64 %d fits no HZ of %v at %.3f s of monotonic time", tickErr, jiffies, hzCandidates, secs)
		}
		return hz, nil
	})
	return v.(uint64), err
}

// hzFromTick is the candidate HZ whose tick, NSEC_PER_SEC/HZ, is within
// 1% of tick ns (NTP moves it by 0.05% at most).
func hzFromTick(tick uint64) (uint64, bool) {
	for _, hz := range hzCandidates {
		want := 1e9 / float64(hz)
		if math.Abs(float64(tick)-want) <= want/100 {
			return hz, true
		}
	}
	return 0, false
}

// hzFrom is the candidate HZ whose ticks since boot come closest to its
// rate over secs of monotonic time (jiffies can trail the clock by
// seconds: ticks lost under an emulator), within 5% or two seconds'
// ticks.
func hzFrom(jiffies uint64, secs float64) (uint64, bool) {
	best, bestErr := uint64(0), math.Inf(1)
	for _, hz := range hzCandidates {
		initial := uint64(uint32(-300 * int64(hz)))
		if jiffies < initial {
			continue
		}
		ticks := float64(jiffies - initial)
		off := math.Abs(ticks - float64(hz)*secs)
		if rel := off / (float64(hz) * max(secs, 1)); (rel < 0.05 || off < 2*float64(hz)) && rel < bestErr {
			best, bestErr = hz, rel
		}
	}
	return best, best != 0
}

// JiffiesToClockT is jiffies_to_clock_t: jiffies in USER_HZ (100) units.
func JiffiesToClockT(p *objects.Program, j uint64) (uint64, error) {
	hz, err := HZ(p)
	if err != nil {
		return 0, err
	}
	// TICK_NSEC = (NSEC_PER_SEC + HZ/2) / HZ; clock_t = j * TICK_NSEC / (NSEC_PER_SEC / USER_HZ).
	tick := (1_000_000_000 + hz/2) / hz
	if tick%10_000_000 == 0 {
		return j / (hz / 100), nil
	}
	return j * tick / 10_000_000, nil
}
