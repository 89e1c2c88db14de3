package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "rd", summary: "read memory in hex and ASCII, or symbolically (like crash's rd)", run: runRd,
		help: rdHelp, syntax: "{ ADDR | SYMBOL } [N]", opts: []*option{
			{short: "-8", help: "bytes"}, {short: "-16", help: "16-bit units"}, {short: "-32", help: "32-bit units"},
			{short: "-64", help: "64-bit units (the default)"}, {short: "-s", help: "name the units that are kernel addresses"},
			{short: "-p", help: "ADDR is physical"}, optKallsyms}})
}

const rdHelp = `Usage: kinspect [-c DUMP | --live] [--json] rd [-8 | -16 | -32 | -64] [-s] [-p] [-k FILE] ADDR|SYMBOL [N]

Reads N units of memory (1 by default) at a kernel virtual address, as
crash's rd: each line its address, the units in hex (little-endian) and
its bytes as ASCII ('.' for those not printable). With -s, each 8-byte
unit that is an address in a symbol (of the kernel, a module or a BPF
program) is shown as the symbol ("schedule+0x5"), two units a line. With
-p, ADDR is a physical address. ADDR is hex (0x-prefixed, or 8 or more
digits), a symbol, or SYMBOL+OFF. At most 16 MiB are read; a fault after
the first line ends the output with an error naming the address.

Options:
  -8, -16, -32, -64    the unit: 1, 2, 4 or 8 bytes (default 8)
  -s                   symbols for the units that are kernel addresses
  -p                   ADDR is physical
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"start", "physical", "size", "lines": [{"address", "values",
"symbols" (-s), "ascii"}], "error"}; values are "0x..." strings.
`

func runRd(e *env, args []string) error {
	var file string
	var words []string
	var o linux.RdOptions
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, rdHelp)
			return nil
		case a == "-8" || a == "-16" || a == "-32" || a == "-64":
			bits, _ := strconv.Atoi(a[1:])
			o.Size = bits / 8
		case a == "-s":
			o.Symbolic = true
		case a == "-p":
			o.Physical = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("rd %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("rd: unknown option %q (see kinspect rd help): %w", a, errUsage)
		default:
			words = append(words, a)
		}
	}
	if len(words) == 0 || len(words) > 2 {
		return fmt.Errorf("rd: give an ADDR, and a count N: %w", errUsage)
	}
	if len(words) == 2 {
		n, err := strconv.Atoi(words[1])
		if err != nil || n <= 0 {
			return fmt.Errorf("rd: N %q is not a positive number: %w", words[1], errUsage)
		}
		o.Count = n
	}
	if o.Symbolic && o.Size != 0 && o.Size != 8 {
		return fmt.Errorf("rd -s: symbols are of 64-bit units: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	addr, err := parseAddr(k, words[0])
	if err != nil {
		return fmt.Errorf("rd: %w", err)
	}
	read := linux.ReadFunc(k.Program().Read)
	if o.Physical {
		read = k.ReadPhys
	}
	r, err := linux.ReadMemory(read, k.Symbols(), addr, o)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, r)
	}
	printRd(e.stdout, r)
	if r.Error != "" {
		return fmt.Errorf("%s", r.Error)
	}
	return nil
}

// printRd prints as crash's rd: "ADDR:  UNITS   ASCII", or under -s
// "ADDR:  UNIT-OR-SYMBOL ...".
func printRd(w io.Writer, r *linux.RdResult) {
	per := 16 / r.Size
	for _, l := range r.Lines {
		fmt.Fprintf(w, "%x: ", uint64(l.Addr))
		if l.Symbols != nil {
			for i, v := range l.Values {
				if s := l.Symbols[i]; s != "" {
					fmt.Fprintf(w, " %-16s", s)
				} else {
					fmt.Fprintf(w, " %016x", uint64(v))
				}
			}
			fmt.Fprintln(w)
			continue
		}
		for _, v := range l.Values {
			fmt.Fprintf(w, " %0*x", r.Size*2, uint64(v))
		}
		fmt.Fprintf(w, "%*s   %s\n", (per-len(l.Values))*(r.Size*2+1), "", l.ASCII)
	}
}
