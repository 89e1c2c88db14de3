package main

import (
	"bufio"
	"fmt"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "timer", summary: "pending timers per CPU: hrtimers as /proc/timer_list, and the timer wheel (like crash's timer)", run: runTimer,
		help: timerHelp, opts: []*option{{long: "--proc", help: "print the hrtimers as /proc/timer_list's active timers"}, optKallsyms}})
}

const timerHelp = `Usage: kinspect [-c DUMP | --live] [--json] timer [--proc] [-k FILE]

Lists each online CPU's pending timers: its high-resolution timers
(hrtimer_bases) by clock base, in expiry order, with the expiry (ns on
the base's clock) and the callback; then its timer wheel's timer_list
timers (timer_bases), by wheel (the last is the deferrable one) and
expiry (jiffies). "now" is CLOCK_MONOTONIC as the timekeeper last
updated it.

Options:
  --proc               print the hrtimers as /proc/timer_list's "active
                       timers" sections (each CPU's clock bases and
                       their timers, with expiries relative to now)
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"now", "jiffies", "resolution", "cpus": [{"cpu", "hrtimer_cpu_base",
"clock_bases": [{"index", "clockid", "base", "get_time", "offset",
"timers": [{"timer", "function", "function_addr", "state",
"soft_expires", "expires"}]}], "wheels" (how many timer bases),
"wheel": [{"timer", "function",
"function_addr", "expires", "flags", "base"}]}]}.
`

func runTimer(e *env, args []string) error {
	var file string
	proc := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, timerHelp)
			return nil
		case a == "--proc":
			proc = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("timer %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			return fmt.Errorf("timer: unexpected %q (see kinspect timer help): %w", a, errUsage)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	ts, terr := linux.ReadTimers(k.Program(), k.Symbols())
	if ts == nil {
		return terr
	}
	if e.json {
		writeJSON(e, ts)
		return terr
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	if proc {
		w.WriteString(ts.TimerListText())
		return terr
	}
	fmt.Fprintf(w, "NOW: %d ns  JIFFIES: %d\n", ts.Now, ts.Jiffies)
	for _, c := range ts.CPUs {
		fmt.Fprintf(w, "\nCPU %d  HRTIMER_CPU_BASE: %x\n", c.CPU, uint64(c.HRTimerBase))
		for _, cb := range c.ClockBases {
			if len(cb.Timers) == 0 {
				continue
			}
			fmt.Fprintf(w, "  CLOCK %d  BASE: %x  GET_TIME: %s\n", cb.Index, uint64(cb.Base), cb.GetTime)
			fmt.Fprintf(w, "  %20s %20s %16s  %s\n", "SOFTEXPIRES", "EXPIRES", "HRTIMER", "FUNCTION")
			for _, t := range cb.Timers {
				fmt.Fprintf(w, "  %20d %20d %016x  %s\n", t.SoftExpires, t.Expires, uint64(t.Timer), t.Function)
			}
		}
		fmt.Fprintf(w, "  TIMER WHEEL\n  %4s %20s %16s  %s\n", "BASE", "EXPIRES", "TIMER_LIST", "FUNCTION")
		for _, t := range c.Wheel {
			fmt.Fprintf(w, "  %4d %20d %016x  %s\n", t.Base, t.Expires, uint64(t.Timer), t.Function)
		}
	}
	return terr
}
