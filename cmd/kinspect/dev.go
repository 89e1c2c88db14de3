package main

import (
	"bufio"
	"fmt"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "dev", summary: "character and block device majors, as /proc/devices (like crash's dev)", run: runDev,
		help: devHelp, opts: []*option{{short: "-v", help: "also each region's minors and its struct char_device_struct or blk_major_name"}, optKallsyms}})
}

const devHelp = `Usage: kinspect [-c DUMP | --live] [--json] dev [-v] [-k FILE]

Lists the registered device majors as /proc/devices does: "Character
devices:", each major and its name (a major once per region registered
under it, as there), then "Block devices:". They come from the kernel's
hashes chrdevs (fs/char_dev.c) and major_names (block/genhd.c).

Options:
  -v                   also each character region's base minor and count,
                       and the struct char_device_struct or blk_major_name
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"kind" ("char" or "block"), "major", "name",
"baseminor", "minors" (a character region's), "object"}.
`

func runDev(e *env, args []string) error {
	var file string
	verbose := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, devHelp)
			return nil
		case a == "-v":
			verbose = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("dev %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			return fmt.Errorf("dev: unexpected %q (see kinspect dev help): %w", a, errUsage)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	devs, derr := linux.Devices(k.Program())
	if derr != nil && len(devs) == 0 {
		return derr
	}
	if e.json {
		if devs == nil {
			devs = []linux.Device{}
		}
		writeJSON(e, devs)
		return derr
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	fmt.Fprintln(w, "Character devices:")
	block := false
	for _, d := range devs {
		if d.Kind == "block" && !block {
			block = true
			fmt.Fprintln(w, "\nBlock devices:")
		}
		fmt.Fprintf(w, "%3d %s", d.Major, d.Name)
		if verbose {
			if d.Kind == "char" {
				fmt.Fprintf(w, "  minors %d-%d", d.BaseMinor, d.BaseMinor+d.Minors-1)
			}
			fmt.Fprintf(w, "  %x", uint64(d.Object))
		}
		fmt.Fprintln(w)
	}
	if !block {
		fmt.Fprintln(w, "\nBlock devices:")
	}
	return derr
}
