package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// command is one noun or verb of the command line.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

// commands is the top-level table; each noun's file adds its entry.
var commands []*command

func register(c *command) { commands = append(commands, c) }

// lookup finds the command named name or uniquely prefixed by it.
func lookup(table []*command, name string) (*command, error) {
	var found []*command
	for _, c := range table {
		if c.name == name {
			return c, nil
		}
		if strings.HasPrefix(c.name, name) {
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

// writeJSON renders v on stdout, indented under --pretty.
func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	if e.pretty {
		enc.SetIndent("", "    ")
	}
	return enc.Encode(v)
}
