package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The command line, as bpftool's getopt_long reads it: the global
// options may come anywhere, before or after the command and its
// arguments ("kinspect prog show -c DUMP --json"); "--" ends them.
// After a command's name, its own options (-k FILE, -f, ...) are its
// own: where a command has an option of a global one's name, the
// command's wins (script --timeout); an option neither knows is left
// to the command, which rejects it. Before the command's name only
// global options are read. The words after script's FILE are the
// script's, options or not. With -e, the words that are not options
// are the expression's arguments (kinspect.args).

// option is an option of the command line: a global one or a command's.
type option struct {
	short, long string // "-c", "--core"; either may be empty
	// value names the option's value ("DUMP"); "" for a flag. A value
	// named FILE or DUMP completes as a file name.
	value string
	// choices are the values it takes, when they are a fixed few.
	choices []string
	help    string
	// set records a global option's value (v is "" for a flag).
	set func(g *globals, v string) error
}

// is says a spells the option.
func (o *option) is(a string) bool {
	return a != "" && (a == o.short || a == o.long)
}

// spelling is the option as the help writes it: "-c, --core DUMP".
func (o *option) spelling() string {
	var names []string
	for _, n := range []string{o.short, o.long} {
		if n != "" {
			names = append(names, n)
		}
	}
	s := strings.Join(names, ", ")
	if o.value != "" {
		s += " " + o.value
	}
	return s
}

// name is the option's longest spelling.
func (o *option) name() string {
	if o.long != "" {
		return o.long
	}
	return o.short
}

// globalOptions are kinspect's global options, in the help's order.
var globalOptions = []*option{
	{short: "-c", long: "--core", value: "DUMP", help: "read the kernel from DUMP (ELF vmcore, kdump-compressed, flattened)",
		set: func(g *globals, v string) error { g.dump = v; return nil }},
	{long: "--live", help: "read the running kernel (/proc/kcore, /proc/kallsyms, /sys/kernel/btf)",
		set: func(g *globals, _ string) error { g.live = true; return nil }},
	{short: "-j", long: "--json", help: "print JSON",
		set: func(g *globals, _ string) error { g.json = true; return nil }},
	{short: "-p", long: "--pretty", help: "print indented JSON (implies --json)",
		set: func(g *globals, _ string) error { g.json, g.pretty = true, true; return nil }},
	{long: "--page-cache", value: "MIB", help: fmt.Sprintf("MiB of decompressed kdump pages to keep (default %d; 0 = none)", defaultPageCacheMiB),
		set: func(g *globals, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("--page-cache %q: want a number of MiB", v)
			}
			g.cache = n
			return nil
		}},
	{long: "--declare", value: "DECL", help: "declare a global variable's type, e.g. 'struct foo bar' (repeatable)",
		set: func(g *globals, v string) error { g.declares = append(g.declares, v); return nil }},
	{long: "--declare-file", value: "FILE", help: "read declarations from FILE, one a line",
		set: func(g *globals, v string) error { g.declareFile = v; return nil }},
	{short: "-e", value: "EXPR", help: "evaluate a JavaScript expression over the kernel and print it",
		set: func(g *globals, v string) error { g.eval, g.evalGiven = v, true; return nil }},
	{long: "--timeout", value: "D", help: "stop a script (-e, script) after D, e.g. 30s",
		set: func(g *globals, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("--timeout %q: want a duration like 30s", v)
			}
			g.timeout = d
			return nil
		}},
	{short: "-h", long: "--help", help: "print the help (of the command, after its name)",
		set: func(g *globals, _ string) error { g.help = true; return nil }},
}

// cmdline is a command line taken apart.
type cmdline struct {
	globals
	// noun is the command's name as typed; cmd the command it names
	// (nil when it names none: lookupErr says why).
	noun      string
	cmd       *command
	lookupErr error
	// args are the command's: its verb, words and own options, in order.
	args []string
	// evalArgs are -e's arguments.
	evalArgs []string
	// pending is the option the line ends with, wanting a value;
	// literal says the line ends where options are not read ("--",
	// script's arguments), verbatim in a command's verbatim part
	// (script's arguments). Completion reads them.
	pending  *option
	literal  bool
	verbatim bool
}

// parseLine takes the command line apart. It reads all of it even
// after an error (to find the command, whose exit status it decides)
// and returns the first error.
func parseLine(args []string) (cl cmdline, err error) {
	cl.cache = defaultPageCacheMiB
	fail := func(e error) {
		if err == nil {
			err = fmt.Errorf("%w: %w", e, errUsage)
		}
	}
	literal := false // after "--": no option is read
	verbatim := false
	words := 0 // words after the command's name
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case verbatim:
			cl.args = append(cl.args, a)
			continue
		case cl.cmd != nil && cl.cmd.raw:
			cl.args = append(cl.args, args[i:]...)
			return cl, err
		case literal:
			cl.positional(a, &words, fail)
		case a == "--":
			if cl.cmd != nil && cl.cmd.dashdash {
				cl.args = append(cl.args, args[i:]...)
				cl.literal = true
				return cl, err
			}
			literal = true
		case len(a) > 1 && a[0] == '-':
			if o := cl.cmd.option(a); o != nil {
				cl.args = append(cl.args, a)
				if o.value != "" {
					if i+1 == len(args) {
						cl.pending = o // the command says it wants one
						break
					}
					i++
					cl.args = append(cl.args, args[i])
				}
				break
			}
			n, known, gerr := cl.global(args, i)
			if gerr != nil {
				fail(gerr)
			}
			if known {
				i += n - 1
				break
			}
			if cl.noun != "" {
				cl.args = append(cl.args, a) // the command says what it is
				break
			}
			fail(unknownOption(a))
		default:
			cl.positional(a, &words, fail)
		}
		if cl.cmd != nil && cl.cmd.verbatimAfter > 0 && words >= cl.cmd.verbatimAfter {
			verbatim = true
		}
	}
	cl.literal, cl.verbatim = literal || verbatim, verbatim
	return cl, err
}

// positional takes a word that is not an option: the command's name,
// one of its arguments, or one of -e's.
func (cl *cmdline) positional(a string, words *int, fail func(error)) {
	switch {
	case cl.evalGiven && cl.noun == "":
		cl.evalArgs = append(cl.evalArgs, a)
	case cl.noun == "":
		cl.noun = a
		cl.cmd, cl.lookupErr = lookup(commands, a)
	default:
		cl.args = append(cl.args, a)
		*words++
	}
}

// global reads the global option(s) at args[i]: "--name", "--name=V",
// "--name V", "-x", "-xV", "-x V" and clusters of flags ("-jp"). It
// returns how many words it took, and known=false when args[i] is not
// a global option.
func (cl *cmdline) global(args []string, i int) (n int, known bool, err error) {
	a := args[i]
	if strings.HasPrefix(a, "--") {
		name, v, hasV := strings.Cut(a, "=")
		o := findOption(globalOptions, name)
		if o == nil {
			return 0, false, nil
		}
		switch {
		case o.value == "" && hasV:
			return 1, true, fmt.Errorf("%s takes no value", name)
		case o.value == "":
			return 1, true, cl.apply(o, "")
		case hasV:
			return 1, true, cl.apply(o, v)
		case i+1 == len(args):
			cl.pending = o
			return 1, true, fmt.Errorf("%s wants a value (%s)", name, o.value)
		}
		return 2, true, cl.apply(o, args[i+1])
	}
	// A cluster of short options: each a global flag, the last maybe
	// one with a value (attached, or the next word).
	var opts []*option
	for j := 1; j < len(a); j++ {
		o := findOption(globalOptions, "-"+a[j:j+1])
		if o == nil {
			return 0, false, nil
		}
		opts = append(opts, o)
		if o.value != "" {
			break
		}
	}
	n = 1
	for _, o := range opts {
		if o.value == "" {
			if err := cl.apply(o, ""); err != nil {
				return n, true, err
			}
			continue
		}
		at := strings.Index(a, o.short[1:]) + 1
		switch {
		case at < len(a):
			return n, true, cl.apply(o, a[at:])
		case i+1 == len(args):
			cl.pending = o
			return n, true, fmt.Errorf("%s wants a value (%s)", o.short, o.value)
		}
		return 2, true, cl.apply(o, args[i+1])
	}
	return n, true, nil
}

// apply records a global option, refusing -e after a command's name.
func (cl *cmdline) apply(o *option, v string) error {
	if o.short == "-e" && cl.noun != "" {
		return fmt.Errorf("-e evaluates an expression and takes no command (%q): give -e's arguments after it", cl.noun)
	}
	return o.set(&cl.globals, v)
}

func findOption(opts []*option, a string) *option {
	for _, o := range opts {
		if o.is(a) {
			return o
		}
	}
	return nil
}

// unknownOption is the error for an option before the command's name
// that is not a global one; when a command has it, says where it goes.
func unknownOption(a string) error {
	name, _, _ := strings.Cut(a, "=")
	for _, c := range commands {
		if !c.hidden && c.option(name) != nil {
			return fmt.Errorf("unknown option %q (the options of a command, as %s's, follow its name)", a, c.name)
		}
	}
	return fmt.Errorf("unknown option %q", a)
}

// Options several commands share.
var (
	optKallsyms = &option{short: "-k", long: "--kallsyms", value: "FILE", help: "symbols from FILE, a copy of the kernel's /proc/kallsyms"}
	optBPFFS    = &option{short: "-f", long: "--bpffs", help: "each object's pinned paths, from the bpffs mounts in memory (bpftool -f)"}
	optPids     = &option{long: "--pids", help: "the processes holding an fd to each object"}
)
