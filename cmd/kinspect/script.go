package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/script"
)

func init() {
	register(&command{name: "script", summary: "run a JavaScript file over the kernel (docs/scripting.md)", run: runScript,
		help: scriptHelp, syntax: "FILE [ARG...]", verbatimAfter: 1, dashdash: true,
		opts: []*option{{short: "-t", long: "--timeout", value: "D", help: "stop the script after D, e.g. 30s"}, {long: "--overwrite", help: "let kinspect.writeFile replace files"}}})
}

const scriptHelp = `Usage: kinspect [-c DUMP | --live] script [--timeout DURATION] [--overwrite] FILE.js [ARGS...]
       kinspect [-c DUMP | --live] [--timeout DURATION] -e 'EXPRESSION'

Runs a JavaScript program over the kernel. The globals are kernel (symbols,
variables, typed objects, tasks, lists, trees, BPF objects, stacks), print,
console.log and kinspect (kinspect.args holds ARGS). Struct members are
properties (task.comm, prog.aux.name); a value's own accessors end in an
underscore (.addr_, .type_, .deref_(), .member_(path)). Scripts cannot
write kernel memory; kinspect.writeFile writes a file, never replacing one
unless --overwrite or {overwrite: true} is given.

  --timeout D   stop the script after D (e.g. 30s, 2m); Ctrl-C stops it too
  --overwrite   let kinspect.writeFile replace existing files

-e evaluates one expression (or statements) and prints its value as the
REPL does. See docs/scripting.md for the API and samples/ for examples.
`

type scriptOptions struct {
	timeout   time.Duration
	overwrite bool
}

func runScript(e *env, args []string) error {
	var o scriptOptions
	o.timeout = e.timeout
	i := 0
loop:
	for i < len(args) {
		a := args[i]
		switch {
		case a == "help" && i == 0, a == "-h", a == "--help":
			fmt.Fprint(e.stdout, scriptHelp)
			return nil
		case a == "--timeout" || a == "-t":
			if i+1 == len(args) {
				return fmt.Errorf("script %s: want a duration: %w", a, errUsage)
			}
			i++
			d, err := time.ParseDuration(args[i])
			if err != nil || d < 0 {
				return fmt.Errorf("script --timeout %q: want a duration like 30s: %w", args[i], errUsage)
			}
			o.timeout = d
		case a == "--overwrite":
			o.overwrite = true
		case a == "--":
			i++
			break loop
		case strings.HasPrefix(a, "-") && a != "-":
			return fmt.Errorf("script: unknown option %q (see kinspect script help): %w", a, errUsage)
		default:
			break loop
		}
		i++
	}
	if i >= len(args) {
		return fmt.Errorf("script: want a FILE.js: %w", errUsage)
	}
	file, rest := args[i], args[i+1:]
	var src []byte
	var err error
	if file == "-" {
		src, err = io.ReadAll(os.Stdin)
		file = "<stdin>"
	} else {
		src, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	return withEngine(e, rest, o, func(ctx context.Context, en *script.Engine) error {
		text := string(src)
		if strings.HasPrefix(text, "#!") {
			text = "//" + text
		}
		_, err := en.Run(ctx, file, text)
		return err
	})
}

// runEval is -e: evaluate and print the value; args are kinspect.args.
func runEval(e *env, expr string, args []string) error {
	return withEngine(e, args, scriptOptions{timeout: e.timeout}, func(ctx context.Context, en *script.Engine) error {
		s, err := en.Eval(ctx, expr)
		if err != nil {
			return err
		}
		if s != "" {
			fmt.Fprintln(e.stdout, s)
		}
		return nil
	})
}

// withEngine opens the kernel, makes an engine writing to a buffered
// stdout, and runs f under Ctrl-C and the timeout.
func withEngine(e *env, args []string, o scriptOptions, f func(context.Context, *script.Engine) error) error {
	k, err := openKernel(e, "")
	if err != nil {
		return err
	}
	defer k.Close()
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	defer w.Flush()
	en, err := newEngine(k, w, e.stderr, args, o.overwrite)
	if err != nil {
		return err
	}
	defer en.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := script.WithTimeout(ctx, o.timeout)
	defer cancel()
	return f(ctx, en)
}

func newEngine(k *kinspect.Kernel, w, stderr io.Writer, args []string, overwrite bool) (*script.Engine, error) {
	script.Version = version
	return script.New(script.Config{Kernel: k, Stdout: w, Stderr: stderr, Args: args, Overwrite: overwrite})
}
