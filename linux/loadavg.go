package linux

import (
	"errors"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// The load average (include/linux/sched/loadavg.h, kernel/sched/loadavg.c)
// and the uptime, as /proc/loadavg and /proc/uptime show them
// (fs/proc/loadavg.c, fs/proc/uptime.c).

// The load average's fixed point: FSHIFT bits of fraction.
const (
	fshift = 11
	fixed1 = 1 << fshift
)

// Uptime is what /proc/uptime and /proc/loadavg show.
type Uptime struct {
	// UptimeNS is CLOCK_BOOTTIME, the ns since boot, at the
	// timekeeper's last update; IdleNS the ns every CPU spent idle,
	// summed (at the same time for an idle CPU).
	UptimeNS int64 `json:"uptime_ns"`
	IdleNS   int64 `json:"idle_ns"`
	// CPUIdleNS is each possible CPU's idle time, in the order of
	// PossibleCPUs (/proc/stat's idle column, in ns).
	CPUIdleNS []int64 `json:"cpu_idle_ns"`
	// Avenrun are the 1, 5 and 15 minute load averages in the kernel's
	// fixed point (11 bits of fraction); Load the same as /proc/loadavg
	// prints them ("0.42").
	Avenrun [3]uint64 `json:"avenrun"`
	Load    [3]string `json:"load"`
	// NrRunning is the tasks runnable on every runqueue (nr_running());
	// NrThreads every thread (nr_threads); LastPID the last PID
	// allocated in the initial PID namespace.
	NrRunning int `json:"nr_running"`
	NrThreads int `json:"nr_threads"`
	LastPID   int `json:"last_pid"`
}

// LoadavgLine is the line of /proc/loadavg.
func (u *Uptime) LoadavgLine() string {
	return fmt.Sprintf("%s %s %s %d/%d %d", u.Load[0], u.Load[1], u.Load[2], u.NrRunning, u.NrThreads, u.LastPID)
}

// UptimeLine is the line of /proc/uptime: seconds, and hundredths.
func (u *Uptime) UptimeLine() string {
	return fmt.Sprintf("%d.%02d %d.%02d", u.UptimeNS/1e9, u.UptimeNS%1e9/1e7, u.IdleNS/1e9, u.IdleNS%1e9/1e7)
}

// formatLoad prints a fixed-point load as /proc/loadavg does: rounded
// to hundredths (get_avenrun's offset FIXED_1/200), LOAD_INT.LOAD_FRAC.
func formatLoad(x uint64) string {
	x += fixed1 / 200
	return fmt.Sprintf("%d.%02d", x>>fshift, ((x&(fixed1-1))*100)>>fshift)
}

// ReadUptime reads the uptime, the idle time and the load average.
// The uptime is the timekeeper's (ReadClocks); the idle time each
// possible CPU's as get_idle_time counts it: with NO_HZ active, the
// tick's idle_sleeptime (plus, for a CPU idle at the last update, the
// time since it went idle), else kernel_cpustat's CPUTIME_IDLE.
func ReadUptime(p *objects.Program) (*Uptime, error) {
	u := &Uptime{}
	clocks, err := ReadClocks(p)
	if err != nil {
		return nil, fmt.Errorf("uptime: %w", err)
	}
	u.UptimeNS = clocks.Boottime
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return nil, fmt.Errorf("uptime: %w", err)
	}
	for _, cpu := range cpus {
		idle, err := cpuIdleNS(p, cpu, clocks.Monotonic)
		if err != nil {
			return nil, fmt.Errorf("uptime: idle time of CPU %d: %w", cpu, err)
		}
		u.IdleNS += idle
		u.CPUIdleNS = append(u.CPUIdleNS, idle)
		rq, err := CPURQ(p, cpu)
		if err != nil {
			return nil, fmt.Errorf("loadavg: %w", err)
		}
		n, err := rq.MemberUint("nr_running")
		if err != nil {
			return nil, fmt.Errorf("loadavg: runqueue of CPU %d: %w", cpu, err)
		}
		u.NrRunning += int(n)
	}
	av, err := p.Variable("avenrun")
	if err != nil {
		return nil, fmt.Errorf("loadavg: %w", err)
	}
	for i := range u.Avenrun {
		e, err := av.Index(int64(i))
		if err == nil {
			u.Avenrun[i], err = e.Uint()
		}
		if err != nil {
			return nil, fmt.Errorf("loadavg: avenrun[%d]: %w", i, err)
		}
		u.Load[i] = formatLoad(u.Avenrun[i])
	}
	nt, err := p.Variable("nr_threads")
	if err != nil {
		return nil, fmt.Errorf("loadavg: %w", err)
	}
	n, err := nt.Int()
	if err != nil {
		return nil, fmt.Errorf("loadavg: nr_threads: %w", err)
	}
	u.NrThreads = int(n)
	// idr_get_cursor(&ns->idr) - 1: the next ID the PID IDR allocates.
	ns, err := p.Variable("init_pid_ns")
	if err != nil {
		return nil, fmt.Errorf("loadavg: %w", err)
	}
	next, err := ns.MemberUint("idr.idr_next")
	if err != nil {
		return nil, fmt.Errorf("loadavg: init_pid_ns.idr.idr_next: %w", err)
	}
	u.LastPID = int(int32(next)) - 1
	return u, nil
}

// tsFlagIdleActive is TS_FLAG_IDLE_ACTIVE of struct tick_sched's flags
// (kernel/time/tick-sched.h; 6.1 has the bitfield idle_active instead).
const tsFlagIdleActive = 1 << 2

// cpuIdleNS is get_idle_time: the ns CPU cpu spent idle, up to now (ns
// of CLOCK_MONOTONIC).
func cpuIdleNS(p *objects.Program, cpu int, now int64) (int64, error) {
	nohz := false
	if v, err := p.Variable("tick_nohz_active"); err == nil {
		if b, err := v.Uint(); err == nil {
			nohz = b != 0
		}
	}
	if nohz {
		ts, err := perCPUMember(p, cpu, "tick_cpu_sched", "")
		if err != nil {
			return 0, err
		}
		sleep, err := ts.MemberInt("idle_sleeptime")
		if err != nil {
			return 0, err
		}
		// idle_active: a bitfield in 6.1, a bit of flags
		// (TS_FLAG_IDLE_ACTIVE) in newer kernels (6.12).
		var active bool
		if f, err := ts.MemberUint("idle_active"); err == nil {
			active = f != 0
		} else if !errors.Is(err, objects.ErrNotFound) {
			return 0, err
		} else if f, err := ts.MemberUint("flags"); err == nil {
			active = f&tsFlagIdleActive != 0
		} else {
			return 0, err
		}
		if active {
			entry, err := ts.MemberInt("idle_entrytime")
			if err != nil {
				return 0, err
			}
			if now > entry {
				sleep += now - entry
			}
		}
		return sleep, nil
	}
	ks, err := perCPUMember(p, cpu, "kernel_cpustat", "cpustat")
	if err != nil {
		return 0, err
	}
	i, err := p.Enumerator("CPUTIME_IDLE")
	if err != nil {
		return 0, err
	}
	e, err := ks.Index(int64(i))
	if err != nil {
		return 0, err
	}
	n, err := e.Int()
	return n, err
}
