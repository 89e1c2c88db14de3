// Command kinspect inspects a Linux kernel, from a crash dump or live,
// without DWARF: BTF for types, kallsyms for symbols, ORC for stacks.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// globals holds the options that come before the command.
type globals struct {
	dump   string // -c: path of a dump file
	live   bool   // --live: the running kernel
	json   bool   // --json
	pretty bool   // --pretty: indented JSON
	cache  int    // --page-cache: MiB of decompressed pages kept (kdump files)
	// declares are --declare's global variable declarations, in order.
	declares []string
	// declareFile is --declare-file: a file of declarations.
	declareFile string
	// eval is -e: a JavaScript expression to evaluate (script.go).
	eval string
	// timeout is --timeout: how long a script may run (0: no limit).
	timeout time.Duration
}

// env is what a command runs with.
type env struct {
	globals
	stdout io.Writer
	stderr io.Writer
}

// errUsage marks an error whose fix is in the help text.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kinspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var g globals
	fs.StringVar(&g.dump, "c", "", "")
	fs.StringVar(&g.dump, "core", "", "")
	fs.BoolVar(&g.live, "live", false, "")
	fs.BoolVar(&g.json, "json", false, "")
	fs.BoolVar(&g.json, "j", false, "")
	fs.BoolVar(&g.pretty, "pretty", false, "")
	fs.BoolVar(&g.pretty, "p", false, "")
	fs.IntVar(&g.cache, "page-cache", defaultPageCacheMiB, "")
	fs.Func("declare", "", func(s string) error { g.declares = append(g.declares, s); return nil })
	fs.StringVar(&g.declareFile, "declare-file", "", "")
	fs.StringVar(&g.eval, "e", "", "")
	fs.DurationVar(&g.timeout, "timeout", 0, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "kinspect: %v\n\n", err)
		printHelp(stderr)
		return 2
	}
	if g.pretty {
		g.json = true
	}
	rest := fs.Args()
	if g.eval != "" && !*help {
		e := &env{globals: g, stdout: stdout, stderr: stderr}
		if err := runEval(e, g.eval); err != nil {
			reportError(e, err)
			if errors.Is(err, errUsage) {
				return 2
			}
			return 1
		}
		return 0
	}
	if *help || len(rest) == 0 {
		printHelp(stdout)
		if len(rest) == 0 && !*help {
			return 2
		}
		return 0
	}
	e := &env{globals: g, stdout: stdout, stderr: stderr}
	cmd, err := lookup(commands, rest[0])
	if err == nil {
		err = cmd.run(e, rest[1:])
	}
	if err == nil {
		return 0
	}
	reportError(e, err)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// reportError prints err as text, or as {"error": ...} under --json,
// unless the JSON already printed says it (an error with a quiet method
// returning true, as bpftool's empty "[]" for a name nothing has).
func reportError(e *env, err error) {
	var q interface{ quiet() bool }
	if e.json && errors.As(err, &q) && q.quiet() {
		return
	}
	if e.json {
		writeJSON(e, struct {
			Error string `json:"error"`
		}{err.Error()})
		return
	}
	fmt.Fprintf(e.stderr, "kinspect: %v\n", err)
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `kinspect inspects a Linux kernel, from a crash dump or live, without DWARF.

Usage:
  kinspect [-c DUMP | --live] [--json | --pretty] COMMAND [ARGS]

Options:
  -c, --core DUMP   read the kernel from DUMP (ELF vmcore, kdump-compressed, flattened)
  --live            read the running kernel (/proc/kcore, /proc/kallsyms, /sys/kernel/btf)
  -j, --json        print JSON
  -p, --pretty      print indented JSON
  --page-cache MIB  MiB of decompressed kdump pages to keep (default 4; 0 = none)
  --declare DECL    declare a global variable's type, e.g. 'struct foo bar' (repeatable)
  --declare-file F  read declarations from F, one a line
  -e EXPR           evaluate a JavaScript expression over the kernel and print it
  --timeout D       stop a script (-e, script) after D, e.g. 30s

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Commands may be shortened to any unique prefix, as in bpftool.
Run "kinspect COMMAND help" for a command's own help.
`)
}
