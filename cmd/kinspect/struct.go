package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	for _, kind := range []string{"struct", "union"} {
		register(&command{name: kind, summary: "a " + kind + " type, or one in memory, from BTF (like crash's " + kind + ")",
			run:  func(e *env, args []string) error { return runStruct(e, kind, args) },
			help: strings.ReplaceAll(structHelp, "KIND", kind), syntax: "TYPE [ADDR]",
			opts: []*option{{short: "-o", help: "the members' offsets (and addresses)"}, optKallsyms}})
	}
	register(&command{name: "whatis", summary: "what a name is: a type's definition, a function's or a variable's declaration (like crash's whatis)",
		run: runWhatis, help: whatisHelp, syntax: "NAME"})
}

const structHelp = `Usage: kinspect [-c DUMP | --live] [--json] KIND [-o] [-k FILE] TYPE [ADDR]

Shows a KIND type from the kernel's BTF, or the object of that type at
ADDR, as crash's KIND: with ADDR, the object's members and their values
(as print shows them); without, the type's definition in C. With -o,
each member's offset ([0], [8], ...), or with ADDR its address, as
crash's KIND -o, then the size. TYPE is the KIND's name (with or
without "KIND"), or a typedef of one. ADDR is hex (0x-prefixed, or 8
or more digits), a symbol, or SYMBOL+OFF.

Options:
  -o                   the members' offsets (with ADDR, their addresses)
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"type", "size", "address", "members" (-o: btf dump --layout's
members, with offsets in bytes from the start), "definition" (no ADDR),
"value" (ADDR: as print --json shows it)}.
`

const whatisHelp = `Usage: kinspect [-c DUMP | --live] [--json] whatis NAME

Says what NAME is, as crash's whatis, from the kernel's BTF: a type's
definition in C and its size (a struct, union, enum, typedef or base
type; "struct NAME" for the struct alone), a function's prototype, or a
global variable's declaration (as kinspect declares it, see print; a
per-CPU variable's from BTF).

JSON: {"name", "kind" (struct, union, enum, typedef, type, function,
variable), "decl", "size"}.
`

func runStruct(e *env, kind string, args []string) error {
	var file string
	var words []string
	offsets := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, strings.ReplaceAll(structHelp, "KIND", kind))
			return nil
		case a == "-o":
			offsets = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("%s %s: want a file: %w", kind, a, errUsage)
			}
			i++
			file = args[i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("%s: unknown option %q (see kinspect %s help): %w", kind, a, kind, errUsage)
		default:
			words = append(words, a)
		}
	}
	// "struct struct list_head ADDR" and "struct list_head ADDR" both.
	if len(words) > 1 && words[0] == kind {
		words = words[1:]
	}
	if len(words) == 0 || len(words) > 2 {
		return fmt.Errorf("%s: give a TYPE and an ADDR: %w", kind, errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	var addr *uint64
	if len(words) == 2 {
		a, err := parseAddr(k, words[1])
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		addr = &a
	}
	sv, err := linux.ViewStruct(k.Program(), kind, words[0], addr, offsets)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, sv)
	}
	return printStruct(e.stdout, sv)
}

// printStruct prints as crash's struct: the value, the definition, or
// the members' places.
func printStruct(w io.Writer, sv *linux.StructView) error {
	switch {
	case sv.Value != nil:
		s, err := objects.Format(*sv.Value, objects.FormatOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, s)
	case sv.Definition != "":
		fmt.Fprintln(w, sv.Definition)
		fmt.Fprintf(w, "SIZE: %d\n", sv.Size)
	default:
		fmt.Fprintf(w, "%s {\n", sv.Type)
		printPlaces(w, sv.Members, sv.Addr, 1)
		fmt.Fprintln(w, "}")
		fmt.Fprintf(w, "SIZE: %d\n", sv.Size)
	}
	return nil
}

// printPlaces prints members as crash's struct -o: "[OFFSET] DECL;", or
// "[ADDRESS] DECL;" with an address; anonymous structs and unions
// nested.
func printPlaces(w io.Writer, ms []btfload.MemberPlace, addr *objects.Hex, depth int) {
	in := strings.Repeat("  ", depth)
	for _, m := range ms {
		place := fmt.Sprintf("[%d]", m.Offset)
		if addr != nil {
			place = fmt.Sprintf("[%x]", uint64(*addr)+uint64(m.Offset))
		}
		if m.Nested != nil {
			fmt.Fprintf(w, "%s%6s %s {\n", in, place, strings.Fields(m.Nested.Type)[0])
			printPlaces(w, m.Nested.Members, addr, depth+1)
			fmt.Fprintf(w, "%s%6s };\n", in, "")
			continue
		}
		bits := ""
		if m.BitfieldSize > 0 {
			bits = fmt.Sprintf(" : %d", m.BitfieldSize)
		}
		fmt.Fprintf(w, "%s%6s %s%s;\n", in, place, m.Decl, bits)
	}
}

func runWhatis(e *env, args []string) error {
	var words []string
	for i, a := range args {
		switch {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, whatisHelp)
			return nil
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("whatis: unknown option %q: %w", a, errUsage)
		}
		words = append(words, a)
	}
	if len(words) == 0 {
		return fmt.Errorf("whatis: give a NAME: %w", errUsage)
	}
	k, err := openKernel(e, "")
	if err != nil {
		return err
	}
	defer k.Close()
	// "whatis struct task_struct": the words are one name.
	w, err := linux.WhatIs(k.Program(), strings.Join(words, " "))
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, w)
	}
	fmt.Fprintln(e.stdout, w.Decl)
	if w.Size != nil && w.Kind != "variable" {
		fmt.Fprintf(e.stdout, "SIZE: %d\n", *w.Size)
	}
	return nil
}
