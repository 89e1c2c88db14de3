package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// command is one noun or verb of the command line. Besides what runs it,
// the table declares what the command accepts (syntax, opts), which
// the line's parser, completion and the man page read.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
	// help is a noun's help text ("kinspect NOUN help", -h, its man page).
	help string
	// syntax is what the command takes after its name (after its verb,
	// for a noun with verbs), in bpftool's notation: see syntax.go.
	syntax string
	// verbs is a noun's table of subcommands, when it has them.
	verbs []*command
	// opts are the command's own options; a noun's apply to its verbs.
	opts []*option
	// bpftool: the noun is one of bpftool's; its errors exit 255, as
	// bpftool's (it returns -1 from main).
	bpftool bool
	// verbatimAfter: after this many words the rest of the line is the
	// command's, read by nobody else (script FILE ARGS...).
	verbatimAfter int
	// dashdash: the command reads "--" itself (print, script): the
	// line's parser passes it, and what follows, on.
	dashdash bool
	// raw: every word after the command's name is its own, unread.
	raw bool
	// hidden: not listed in the help, completion or man page, and
	// found by its whole name only.
	hidden bool
}

// commands is the top-level table; each noun's file adds its entry.
var commands []*command

func register(c *command) { commands = append(commands, c) }

// lookup finds the command named name or uniquely prefixed by it (a
// hidden command by its whole name only).
func lookup(table []*command, name string) (*command, error) {
	var found []*command
	for _, c := range table {
		if c.name == name {
			return c, nil
		}
		if !c.hidden && strings.HasPrefix(c.name, name) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("unknown command %q (see kinspect --help): %w", name, errUsage)
	}
	names := make([]string, len(found))
	for i, c := range found {
		names[i] = c.name
	}
	return nil, fmt.Errorf("ambiguous command %q: %s: %w", name, strings.Join(names, ", "), errUsage)
}

// option finds the command's own option spelled a (verbs' included).
func (c *command) option(a string) *option {
	if c == nil {
		return nil
	}
	for _, o := range c.opts {
		if o.is(a) {
			return o
		}
	}
	for _, v := range c.verbs {
		if o := v.option(a); o != nil {
			return o
		}
	}
	return nil
}

// optionsOf are the options of a noun's verb v (the noun's and the
// verb's), or of the noun itself (v == noun).
func optionsOf(noun, v *command) []*option {
	if noun == v {
		return v.opts
	}
	return append(slices.Clone(noun.opts), v.opts...)
}

// writeJSON renders v on stdout, indented under --pretty.
func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	if e.pretty {
		enc.SetIndent("", "    ")
	}
	return enc.Encode(v)
}
