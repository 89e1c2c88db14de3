package main

import (
	"fmt"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "uptime", summary: "time since boot and load average, as uptime, /proc/uptime and /proc/loadavg", run: runUptime,
		help: uptimeHelp, opts: []*option{{long: "--proc", help: "print /proc/uptime's and /proc/loadavg's own lines"}, optKallsyms}})
}

const uptimeHelp = `Usage: kinspect [-c DUMP | --live] [--json] uptime [--proc] [-k FILE]

Prints how long the kernel had been up, and its load average over 1, 5
and 15 minutes, as uptime(1): "up 1 day, 2:03, load average: 0.42,
0.20, 0.08", then the tasks runnable and the threads (as /proc/loadavg
counts them). The time is CLOCK_BOOTTIME as the timekeeper last updated
it (at its last tick: a dump has no clock to read the time since); the
load average is the kernel's avenrun, as it last computed it (every 5
seconds).

Options:
  --proc               print /proc/uptime's line (seconds up, and idle
                       summed over the CPUs) and /proc/loadavg's
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"uptime_ns", "idle_ns", "cpu_idle_ns" (each possible CPU's),
"avenrun" (fixed point, 11 bits of
fraction), "load" (as /proc/loadavg prints them), "nr_running",
"nr_threads", "last_pid"}.
`

func runUptime(e *env, args []string) error {
	var file string
	proc := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, uptimeHelp)
			return nil
		case a == "--proc":
			proc = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("uptime %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			return fmt.Errorf("uptime: unexpected %q (see kinspect uptime help): %w", a, errUsage)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	u, err := linux.ReadUptime(k.Program())
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, u)
	}
	if proc {
		fmt.Fprintln(e.stdout, u.UptimeLine())
		fmt.Fprintln(e.stdout, u.LoadavgLine())
		return nil
	}
	fmt.Fprintf(e.stdout, "up %s,  load average: %s, %s, %s  (%d runnable, %d threads)\n",
		formatUp(u.UptimeNS), u.Load[0], u.Load[1], u.Load[2], u.NrRunning, u.NrThreads)
	return nil
}

// formatUp spells an uptime as procps' uptime: "3 days, 2:05", "7 min".
func formatUp(ns int64) string {
	m := ns / 60e9
	days, hours, mins := m/(24*60), m/60%24, m%60
	s := ""
	switch days {
	case 0:
	case 1:
		s = "1 day, "
	default:
		s = fmt.Sprintf("%d days, ", days)
	}
	if hours > 0 {
		return s + fmt.Sprintf("%2d:%02d", hours, mins)
	}
	return s + fmt.Sprintf("%d min", mins)
}
