// Command kinspect inspects a Linux kernel, from a crash dump or live,
// without DWARF: BTF for types, kallsyms for symbols, ORC for stacks.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/kinspect/kinspect"
)

func main() {
	// Most of what a command keeps is the kernel's types and symbols,
	// read once; collecting at half the default growth keeps the peak
	// near that (a 6.12 kernel's triage: 55 MB, not up to 64) for a few
	// ms. GOGC still overrides it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// globals holds the global options (args.go reads them anywhere).
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
	// eval is -e: a JavaScript expression to evaluate (script.go);
	// evalGiven says -e was given.
	eval      string
	evalGiven bool
	// help is -h, --help.
	help bool
	// timeout is --timeout: how long a script may run (0: no limit).
	timeout time.Duration
}

// env is what a command runs with.
type env struct {
	globals
	stdout io.Writer
	stderr io.Writer
	// kernels are those the command opened, whose damage logs are
	// reported when it ends.
	kernels []*kinspect.Kernel
}

// errUsage marks an error whose fix is in the help text.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	cl, err := parseLine(args)
	e := &env{globals: cl.globals, stdout: stdout, stderr: stderr}
	switch {
	case err != nil:
		reportError(e, err)
		if cl.noun == "" && !e.json {
			fmt.Fprintln(stderr)
			printHelp(stderr)
		}
		return exitCode(cl.cmd, err)
	case cl.help && cl.cmd != nil && cl.cmd.help != "":
		fmt.Fprint(stdout, cl.cmd.help)
		return 0
	case cl.help && cl.noun == "":
		printHelp(stdout)
		return 0
	case cl.evalGiven:
		err = runEval(e, cl.eval, cl.evalArgs)
	case cl.noun == "":
		printHelp(stdout)
		return 2
	case cl.lookupErr != nil:
		err = cl.lookupErr
	default:
		err = cl.cmd.run(e, cl.args)
	}
	if err != nil {
		reportError(e, err)
	}
	if n := reportDamage(e); n > 0 && err == nil {
		return exitDamaged
	}
	return exitCode(cl.cmd, err)
}

// exitDamaged is the exit status of a command that finished but went
// past damaged kernel structures.
const exitDamaged = 3

// reportDamage prints what the command's walkers went past, on stderr:
// a summary, or under --json one JSON object per damaged element, per
// line. It returns how many there were.
func reportDamage(e *env) int {
	n := 0
	for _, k := range e.kernels {
		dm := k.Program().Damaged()
		if len(dm) == 0 {
			continue
		}
		n += len(dm)
		if e.json {
			enc := json.NewEncoder(e.stderr)
			for _, d := range dm {
				enc.Encode(d)
			}
			continue
		}
		fmt.Fprintf(e.stderr, "kinspect: went past %d damaged kernel structure%s; shown is what could still be reached:\n", len(dm), plural(len(dm)))
		for _, d := range dm {
			fmt.Fprintf(e.stderr, "  %v\n", d)
		}
	}
	return n
}

// exitCode is the exit status of a command's error: bpftool's 255 for
// its nouns (main returns -1), else 2 for a usage error and 1 for others.
func exitCode(c *command, err error) int {
	switch {
	case err == nil:
		return 0
	case c != nil && c.bpftool:
		return 255
	case errors.Is(err, errUsage):
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
  kinspect [OPTIONS] COMMAND [ARGS]
  kinspect [OPTIONS] -e EXPR [ARGS]

Options:
`)
	for _, o := range globalOptions {
		fmt.Fprintf(w, "  %-20s %s\n", o.spelling(), o.help)
	}
	fmt.Fprint(w, "\nCommands:\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, "\n"+lineHelp+"\n"+exitHelp)
}

// lineHelp is the grammar of the line, for the help and the man page.
const lineHelp = `Options may come anywhere on the line, before or after the command and
its arguments, as in bpftool: "kinspect prog show -c DUMP --json" is
"kinspect -c DUMP --json prog show". "--" ends them: the words after it
are taken as they are. A command's own options (-k FILE, -f, --pids,
...) follow its name; there, where a command has an option of a global
one's name, the command's wins (script --timeout). -f is each command's
own: the bpffs paths of prog, map and link show (bpftool's global -f),
the frame details of bt. The words after script's FILE are the script's,
options or not; with -e, the words are the expression's arguments
(kinspect.args).

Commands may be shortened to any unique prefix, as in bpftool.
Run "kinspect COMMAND help" for a command's own help; "kinspect
completion bash|zsh|fish" prints a completion script.
`

// exitHelp is the exit status, for the help and the man page.
const exitHelp = `Exit status:
  0    success
  255  an error of a bpftool command (prog, map, link, btf, struct_ops,
       feature), a usage error too, as bpftool's
  1    an error of another command
  2    a usage error of another command, or of the line itself
  3    the command finished but went past damaged kernel structures
       (a broken list, an unreadable object): what it printed is what
       could still be reached, and stderr names each damaged element
       (under --json, one JSON object per line)
`

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
