package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "list", summary: "walk a list_head list: its entries, or their structs (like crash's list -H)", run: runList,
		help: listHelp, syntax: "{ ADDR | SYMBOL | EXPR }", opts: []*option{
			{short: "-H", help: "HEAD is the list's head (the default; crash's -H)"},
			{short: "-o", value: "OFFSET", help: "the list_head's offset in each entry: a number or TYPE.MEMBER"},
			{short: "-s", value: "TYPE", help: "show each entry as a TYPE (TYPE.MEMBER,...: those members)"},
			optKallsyms}})
}

const listHelp = `Usage: kinspect [-c DUMP | --live] [--json] list [-H] [-o OFFSET] [-s TYPE[.MEMBER[,MEMBER]...]] [-k FILE] HEAD

Walks the circular list of struct list_head whose head is at HEAD, as
crash's list -H, and prints each entry's address: its node's, less
OFFSET, the offset of the list_head in the entries (a number, or
TYPE.MEMBER: "-o task_struct.tasks"). With -s TYPE each entry is shown
as a TYPE at that address (as print shows it); with -s TYPE.MEMBER,...
only those members (paths: "se.vruntime").

HEAD is an address (0x-prefixed, or 8 or more hex digits), a symbol,
SYMBOL+OFF, or an expression whose object is the head (init_task.tasks,
as print takes it). The walk is bounded and stops at a cycle; a broken
link is reported (on stderr, and the exit status is 3) and the entries
after it are found walking back from the head, as the other walkers do.

Options:
  -H                   HEAD is the head of the list (the only form)
  -o OFFSET            the offset of the list_head in each entry
  -s TYPE[.MEMBER,...] show each entry as a TYPE, or those members of it
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"head", "offset", "type", "entries": [{"address", "node", "value"
(-s TYPE), "members": [{"name", "value"}] (-s TYPE.MEMBER)}], "damage",
"error"}.
`

func runList(e *env, args []string) error {
	var file, offset, show string
	var words []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, listHelp)
			return nil
		case a == "-H":
		case a == "-o" || a == "-s" || a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("list %s: want a value: %w", a, errUsage)
			}
			i++
			switch a {
			case "-o":
				offset = args[i]
			case "-s":
				show = args[i]
			default:
				file = args[i]
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("list: unknown option %q (see kinspect list help): %w", a, errUsage)
		default:
			words = append(words, a)
		}
	}
	if len(words) != 1 {
		return fmt.Errorf("list: give the HEAD of a list: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	var o linux.ListOptions
	if offset != "" {
		if o.Offset, err = linux.ListOffset(p, offset); err != nil {
			return fmt.Errorf("list -o: %w", err)
		}
	}
	if show != "" {
		typ, members, _ := strings.Cut(show, ".")
		o.Type = typ
		if members != "" {
			o.Members = strings.Split(members, ",")
		}
	}
	head, err := objectAddr(k, words[0])
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	r, err := linux.WalkList(p, head, o)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, r)
	}
	if err := printList(e.stdout, r); err != nil {
		return err
	}
	if r.Error != "" {
		return fmt.Errorf("%s", r.Error)
	}
	return nil
}

// objectAddr reads an address as parseAddr does or, failing that, as an
// expression whose object's address it is (init_task.tasks).
func objectAddr(k *kinspect.Kernel, s string) (uint64, error) {
	a, err := parseAddr(k, s)
	if err == nil {
		return a, nil
	}
	v, err2 := k.Program().Eval(s)
	if err2 != nil {
		return 0, err
	}
	if a, ok := v.Address(); ok {
		return a, nil
	}
	return 0, fmt.Errorf("%s is a value, not an object: %w", s, objects.ErrType)
}

// printList prints as crash's list: each entry's address, then its
// struct or members.
func printList(w io.Writer, r *linux.ListResult) error {
	for _, en := range r.Entries {
		fmt.Fprintf(w, "%x\n", uint64(en.Addr))
		if en.Value != nil {
			s, err := objects.Format(*en.Value, objects.FormatOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintln(w, s)
		}
		for _, m := range en.Members {
			s, err := objects.Format(m.Value, objects.FormatOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  %s = %s\n", m.Name, s)
		}
	}
	return nil
}
