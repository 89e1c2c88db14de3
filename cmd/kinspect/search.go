package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "search", summary: "search memory for values (like crash's search)", run: runSearch,
		help: searchHelp, syntax: "VALUE...", opts: []*option{
			{short: "-s", value: "ADDR", help: "where the search starts"},
			{short: "-e", value: "ADDR", help: "where it ends (not included)"},
			{short: "-l", value: "N", help: "how many bytes it covers, instead of -e"},
			{short: "-8", help: "byte units"}, {short: "-16", help: "16-bit units"}, {short: "-32", help: "32-bit units"},
			{short: "-64", help: "64-bit units (the default)"},
			{short: "-p", help: "the addresses are physical"},
			{long: "--max", value: "N", help: "report at most N hits (default 1000)"},
			optKallsyms}})
}

const searchHelp = `Usage: kinspect [-c DUMP | --live] [--json] search [-s ADDR] [-e ADDR | -l N] [-8 | -16 | -32 | -64] [-p] [--max N] [-k FILE] VALUE...

Searches memory for units (8 bytes, or 1, 2 or 4) equal to one of the
VALUEs, at addresses aligned to the unit, as crash's search, and prints
each address and the value found there. The range is [-s, -e) (or -l
bytes from -s); without one, all RAM through the direct map (with -p,
physical memory from 0), up to max_pfn. Pages that cannot be read (not
mapped, not in the dump) are skipped and counted. At most 64 GiB are
searched and --max hits reported (1000 by default).

A VALUE is a number (decimal, or 0x-prefixed hex), or a symbol
(SYMBOL+OFF), whose address is searched for; ADDR is hex (0x-prefixed, or
8 or more digits), a symbol, or SYMBOL+OFF.

Options:
  -s ADDR              where the search starts
  -e ADDR              where it ends (not included)
  -l N                 how many bytes from -s it covers
  -8, -16, -32, -64    the unit: 1, 2, 4 or 8 bytes (default 8)
  -p                   the addresses are physical (crash's search -p)
  --max N              report at most N hits
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"start", "end", "physical", "size", "values", "hits": [{"address",
"value"}], "truncated", "unreadable_pages"}.
`

func runSearch(e *env, args []string) error {
	var file, start, end, length string
	var words []string
	var o linux.SearchOptions
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, searchHelp)
			return nil
		case a == "-8" || a == "-16" || a == "-32" || a == "-64":
			bits, _ := strconv.Atoi(a[1:])
			o.Size = bits / 8
		case a == "-p":
			o.Physical = true
		case a == "-s" || a == "-e" || a == "-l" || a == "--max" || a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("search %s: want a value: %w", a, errUsage)
			}
			i++
			switch a {
			case "-s":
				start = args[i]
			case "-e":
				end = args[i]
			case "-l":
				length = args[i]
			case "--max":
				n, err := strconv.Atoi(args[i])
				if err != nil || n <= 0 {
					return fmt.Errorf("search --max %q: want a positive number: %w", args[i], errUsage)
				}
				o.Max = n
			default:
				file = args[i]
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("search: unknown option %q (see kinspect search help): %w", a, errUsage)
		default:
			words = append(words, a)
		}
	}
	switch {
	case len(words) == 0:
		return fmt.Errorf("search: give a VALUE: %w", errUsage)
	case end != "" && length != "":
		return fmt.Errorf("search: -e or -l, not both: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	for _, w := range words {
		v, err := searchValue(k, w)
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		o.Values = append(o.Values, v)
	}
	if start != "" {
		if o.Start, err = parseAddr(k, start); err != nil {
			return fmt.Errorf("search -s: %w", err)
		}
	}
	if end != "" {
		if o.End, err = parseAddr(k, end); err != nil {
			return fmt.Errorf("search -e: %w", err)
		}
	}
	if length != "" {
		if o.Length, err = strconv.ParseUint(length, 0, 64); err != nil || o.Length == 0 {
			return fmt.Errorf("search -l %q: not a positive number: %w", length, errUsage)
		}
	}
	read := linux.ReadFunc(k.Program().Read)
	if o.Physical {
		read = k.ReadPhys
	}
	r, err := linux.SearchMemory(k.Program(), read, o)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, r)
	}
	for _, h := range r.Hits {
		fmt.Fprintf(e.stdout, "%x: %0*x\n", uint64(h.Addr), r.Size*2, uint64(h.Value))
	}
	if r.Truncated {
		fmt.Fprintf(e.stderr, "note: stopped at %d hits (--max)\n", len(r.Hits))
	}
	if r.Unreadable > 0 {
		fmt.Fprintf(e.stderr, "note: %d pages of the range could not be read\n", r.Unreadable)
	}
	return nil
}

// searchValue reads a VALUE: a number, else an address (a symbol).
func searchValue(k *kinspect.Kernel, s string) (uint64, error) {
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		return v, nil
	}
	return parseAddr(k, s)
}
