// Command kinspect inspects a Linux kernel, from a crash dump or live,
// without DWARF: BTF for types, kallsyms for symbols, ORC for stacks.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
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
	return exitCode(cl.cmd, err)
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
`
