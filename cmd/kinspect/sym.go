package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "sym", summary: "look symbols up by name or address (kallsyms)", run: runSym,
		help: symHelp, syntax: "SYMBOL...", opts: []*option{{short: "-l", long: "--list", help: "the symbols matching a pattern"}, optKallsyms}})
}

const symHelp = `Usage: kinspect [-c DUMP | --live] [--json] sym [-k FILE] NAME|ADDR|NAME+OFF ...
       kinspect [-c DUMP | --live] [--json] sym [-k FILE] --list [PATTERN]

Looks kernel symbols up. For a NAME, prints every symbol of that name:
address, type and module. For an ADDR (0x-prefixed, or 8 or more hex
digits) or NAME+OFF, prints the symbol holding it as the kernel prints stack
frames: name+0xoff/0xsize [module]. --list (crash's sym -l) prints the
symbols whose names match PATTERN (a glob with * ? [...], else a
substring), or all of them, as /proc/kallsyms lists them but sorted by
address (modules' and BPF programs' among vmlinux's).

Symbols come from the dump's memory (-c; Linux 6.0+, whose VMCOREINFO
locates the kallsyms tables), from the running kernel's /proc/kallsyms
(--live), or from a copy of /proc/kallsyms (-k FILE).

JSON: an array of {"query", "name", "address", "type", "module", "offset",
"size"}; address is a "0x..." string, offset and size are numbers.
With --list, an array of {"name", "address", "type", "module", "size"}.
`

// symResult is one answer of sym; the text and JSON printers render it.
type symResult struct {
	Query string `json:"query,omitempty"`
	linux.SymbolRow
	Offset uint64 `json:"offset"`
	// ByAddr: the query was an address; Address is the symbol's start.
	ByAddr bool `json:"-"`
}

func resultOf(query string, s kallsyms.Symbol, off uint64, byAddr, hidden bool) symResult {
	return symResult{Query: query, SymbolRow: linux.NewSymbolRow(s, hidden), Offset: off, ByAddr: byAddr}
}

func runSym(e *env, args []string) error {
	var file string
	var list bool
	var queries []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "help" && i == 0, a == "-h", a == "--help":
			fmt.Fprint(e.stdout, symHelp)
			return nil
		case a == "--list" || a == "-l":
			list = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("sym %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("sym: unknown option %q: %w", a, errUsage)
		default:
			queries = append(queries, a)
		}
	}
	if list && len(queries) > 1 {
		return fmt.Errorf("sym --list takes at most one pattern: %w", errUsage)
	}
	if !list && len(queries) == 0 {
		return fmt.Errorf("sym: give a NAME or an ADDR (see kinspect sym help): %w", errUsage)
	}
	syms, notes, closeSyms, err := openSymbolTable(e, file)
	if err != nil {
		return err
	}
	defer closeSyms()
	info, err := syms.Info()
	if err != nil {
		return err
	}
	if list {
		pattern := ""
		if len(queries) == 1 {
			pattern = queries[0]
		}
		rows, err := linux.ListSymbols(syms, pattern)
		if errors.Is(err, path.ErrBadPattern) {
			return fmt.Errorf("sym --list: %w: %w", err, errUsage)
		}
		if err != nil {
			return err
		}
		if e.json {
			return writeJSON(e, rows)
		}
		printSymList(e.stdout, rows)
		printSymNotes(e, notes, info.Hidden)
		return nil
	}
	results, err := symQueries(syms, queries, info.Hidden)
	if err == nil || len(results) > 0 && !e.json {
		if e.json {
			if results == nil {
				results = []symResult{}
			}
			writeJSON(e, results)
		} else {
			printSym(e.stdout, results)
		}
	}
	if !e.json {
		printSymNotes(e, notes, info.Hidden && err == nil)
	}
	return err
}

// printSymNotes says on stderr what the table lacks.
func printSymNotes(e *env, notes []string, hidden bool) {
	for _, n := range notes {
		fmt.Fprintf(e.stderr, "note: %s\n", n)
	}
	if hidden {
		fmt.Fprintf(e.stderr, "note: addresses unknown: %s\n", hiddenReason())
	}
}

// openSymbolTable opens the symbols sym looks in: a /proc/kallsyms copy
// (file) alone, or the kernel's (kinspect.Open, which needs no types for
// it: what could not be added is returned as notes).
func openSymbolTable(e *env, file string) (*kallsyms.Table, []string, func(), error) {
	if file != "" && e.dump == "" && !e.live {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, nil, err
		}
		defer f.Close()
		t, err := kallsyms.ParseProcKallsyms(f)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		return t, nil, func() {}, nil
	}
	o, err := options(e, file)
	if err != nil {
		return nil, nil, nil, err
	}
	o.Partial = true
	k, err := e.open(o)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := k.SymbolsErr(); err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	var notes []string
	if err := k.SymbolErr(); err != nil {
		notes = append(notes, err.Error())
	}
	return k.Symbols(), notes, func() { k.Close() }, nil
}

// symQueries answers each query; the first failure ends the answers.
func symQueries(t *kallsyms.Table, queries []string, hidden bool) ([]symResult, error) {
	var out []symResult
	for _, q := range queries {
		addr, isAddr, err := parseSymAddr(t, q)
		if err != nil {
			return out, err
		}
		if !isAddr {
			found, err := t.Lookup(q)
			if err != nil {
				return out, err
			}
			for _, s := range found {
				out = append(out, resultOf(q, s, 0, false, hidden))
			}
			continue
		}
		if hidden {
			return out, fmt.Errorf("look up %s: %w", q, errHiddenAddrs())
		}
		l, err := t.LookupAddr(addr)
		if err != nil {
			return out, err
		}
		out = append(out, resultOf(q, l.Symbol, l.Offset, true, false))
	}
	return out, nil
}

// parseSymAddr reads an address query: 0xHEX, 8 or more hex digits, or
// NAME+OFF. Anything else is a name.
func parseSymAddr(t *kallsyms.Table, q string) (uint64, bool, error) {
	if rest, ok := strings.CutPrefix(strings.ToLower(q), "0x"); ok {
		v, err := strconv.ParseUint(rest, 16, 64)
		if err != nil {
			return 0, false, fmt.Errorf("sym: bad address %q: %w", q, errUsage)
		}
		return v, true, nil
	}
	if len(q) >= 8 && len(q) <= 16 && isHex(q) {
		v, _ := strconv.ParseUint(q, 16, 64)
		return v, true, nil
	}
	name, off, ok := strings.Cut(q, "+")
	if !ok || name == "" {
		return 0, false, nil
	}
	o, err := strconv.ParseUint(off, 0, 64)
	if err != nil {
		return 0, false, fmt.Errorf("sym: bad offset in %q: %w", q, errUsage)
	}
	base, err := t.Addr(name)
	if err != nil {
		return 0, false, err
	}
	return base + o, true, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func printSym(w io.Writer, rs []symResult) {
	for _, r := range rs {
		switch {
		case r.ByAddr:
			l := kallsyms.Location{Symbol: kallsyms.Symbol{Name: r.Name, Module: r.Module, Size: r.Size}, Offset: r.Offset}
			fmt.Fprintf(w, "%016x %s\n", uint64(r.Address)+r.Offset, l)
		case r.Size == 0:
			fmt.Fprintln(w, kallsymsLine(r.SymbolRow))
		default:
			fmt.Fprintf(w, "%s size %#x\n", kallsymsLine(r.SymbolRow), r.Size)
		}
	}
}

// printSymList prints sym --list as /proc/kallsyms.
func printSymList(w io.Writer, rows []linux.SymbolRow) {
	bw := bufio.NewWriter(w)
	for _, r := range rows {
		bw.WriteString(kallsymsLine(r))
		bw.WriteByte('\n')
	}
	bw.Flush()
}

// kallsymsLine is a symbol as /proc/kallsyms's line: "ADDR TYPE NAME
// [MODULE]" (a space before the module, not a tab).
func kallsymsLine(r linux.SymbolRow) string {
	addr := fmt.Sprintf("%016x", uint64(r.Address))
	if r.Hidden {
		addr = fmt.Sprintf("%-16s", "(hidden)")
	}
	if r.Module != "" {
		return fmt.Sprintf("%s %s %s [%s]", addr, r.Type, r.Name, r.Module)
	}
	return fmt.Sprintf("%s %s %s", addr, r.Type, r.Name)
}
