package main

import (
	"fmt"
	"io"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "dmesg", summary: "print the kernel log from the printk ring buffer (like dmesg)", run: runDmesg,
		help: dmesgHelp, opts: []*option{optKallsyms}})
	register(&command{name: "log", summary: "the kernel log: dmesg under crash's name", run: runDmesg,
		help: dmesgHelp, opts: []*option{optKallsyms}})
}

const dmesgHelp = `Usage: kinspect [-c DUMP | --live] [--json] dmesg [-k FILE]
       kinspect [-c DUMP | --live] [--json] log [-k FILE]

Prints the kernel log from the printk ring buffer, as the kernel's dmesg
prints it (log is the same, under crash's name): each line of a record
after its time since boot, "[%5lu.%06lu] text". A dump taken after a panic shows the panic's last
messages, including a record still open (not yet finalized).

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"seq", "timestamp_ns", "level" (0-7), "facility",
"text", "caller" ("T<pid>" or "C<cpu>"), "subsystem", "device" (of
dev_printk, when set), "finalized"}.
`

func runDmesg(e *env, args []string) error {
	var file string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, dmesgHelp)
			return nil
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("dmesg %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			return fmt.Errorf("dmesg: unexpected %q (see kinspect dmesg help): %w", a, errUsage)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	ring, err := linux.ReadPrintkRing(k.Program())
	if err != nil {
		return fmt.Errorf("dmesg: %w", err)
	}
	if e.json {
		return writeJSON(e, ring.Dmesg())
	}
	// Records that could not be read are in the damage report.
	printDmesg(e.stdout, ring.Records)
	return nil
}

func printDmesg(w io.Writer, recs []linux.PrintkRecord) {
	for _, r := range recs {
		for _, l := range r.DmesgLines() {
			fmt.Fprintln(w, l)
		}
	}
}
