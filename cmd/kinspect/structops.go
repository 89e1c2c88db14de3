package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
)

func init() {
	register(&command{name: "struct_ops", summary: "show and dump struct_ops maps (like bpftool struct_ops)", run: runStructOps,
		help: structOpsHelp, verbs: structOpsCommands, opts: []*option{optKallsyms}, bpftool: true})
}

const structOpsHelp = `Usage: kinspect [-c DUMP | --live] [--json | --pretty] struct_ops COMMAND [-k FILE]

Commands (bpftool 7.1's grammar and output; any unique prefix works):
  struct_ops { show | list } [STRUCT_OPS_MAP]
                     the struct_ops maps: id, map name, and the kernel
                     struct they implement ("tcp_congestion_ops")
  struct_ops dump [STRUCT_OPS_MAP]
                     each map's struct bpf_map_info, then its value as
                     bpf_map_lookup_elem returns it (refcnt, state and the
                     kernel struct, function pointers printed as their
                     signature and program, "NAME/prog_id:ID"), through
                     the kernel's BTF; text is the same JSON, indented
  struct_ops help    this help

  STRUCT_OPS_MAP := id ID | name NAME

A struct_ops map registers kernel ops (a TCP congestion control, ...)
whose function pointers are BPF programs: by updating the map (before
6.4) or through a struct_ops link (6.4+, "link show"). Everything is read
from memory: bpf_map_info as bpf_map_get_info_by_fd fills it, the value
as bpf_struct_ops_map_sys_lookup_elem builds it (st_map->uvalue, with the
state and reference count of the kernel's copy).

Options:
  -k, --kallsyms FILE  symbols from FILE instead of the dump's own kallsyms
`

var structOpsCommands = []*command{
	{name: "show", summary: "list struct_ops maps", run: runStructOpsShow, syntax: "[STRUCT_OPS_MAP]"},
	{name: "list", summary: "list struct_ops maps", run: runStructOpsShow, syntax: "[STRUCT_OPS_MAP]"},
	{name: "dump", summary: "dump struct_ops maps", run: runStructOpsDump, syntax: "[STRUCT_OPS_MAP]"},
	{name: "help", summary: "this help", run: func(e *env, _ []string) error { fmt.Fprint(e.stdout, structOpsHelp); return nil }},
}

func runStructOps(e *env, args []string) error {
	if len(args) == 0 {
		return runStructOpsShow(e, nil)
	}
	c, err := lookup(structOpsCommands, args[0])
	if err != nil {
		return fmt.Errorf("struct_ops: %w", err)
	}
	return c.run(e, args[1:])
}

// structOpsArgs are "[id ID | name NAME] [-k FILE]".
type structOpsArgs struct {
	kallsyms string
	byID     bool
	id       uint32
	name     string // by name when != "" and !byID
}

// parseStructOpsArgs parses as bpftool's do_work_on_struct_ops: a
// prefix of "id" or "name" and its argument.
func parseStructOpsArgs(verb string, args []string) (structOpsArgs, error) {
	var a structOpsArgs
	var rest []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-k" || args[i] == "--kallsyms" {
			if i+1 == len(args) {
				return a, fmt.Errorf("struct_ops %s %s: want a file: %w", verb, args[i], errUsage)
			}
			i++
			a.kallsyms = args[i]
			continue
		}
		rest = append(rest, args[i])
	}
	switch {
	case len(rest) == 0:
		return a, nil
	case len(rest) != 2:
		return a, fmt.Errorf("struct_ops %s: want id ID or name NAME: %w", verb, errUsage)
	case rest[0] != "" && strings.HasPrefix("id", rest[0]):
		n, err := strconv.ParseUint(rest[1], 0, 64)
		if err != nil || n == 0 || n > 1<<32-1 {
			return a, fmt.Errorf("invalid id %s", rest[1])
		}
		a.byID, a.id = true, uint32(n)
	case rest[0] != "" && strings.HasPrefix("name", rest[0]):
		a.name = rest[1]
	default:
		return a, fmt.Errorf("struct_ops %s: %q: want id ID or name NAME: %w", verb, rest[0], errUsage)
	}
	return a, nil
}

// findStructOps returns the struct_ops maps the arguments select.
func findStructOps(k *kinspect.Kernel, a structOpsArgs) ([]*bpf.StructOps, error) {
	s := bpf.Selector{}
	switch {
	case a.byID:
		s = bpf.Selector{Kind: bpf.SelectID, ID: a.id}
	case a.name != "":
		s = bpf.Selector{Kind: bpf.SelectName, Name: a.name}
	}
	return bpf.SelectStructOps(k.Program(), s)
}

// errNoneNamed is bpftool's "no struct_ops found for NAME". Under
// --json bpftool prints only the empty list "[]" and fails.
type errNoneNamed string

func (e errNoneNamed) Error() string { return "no struct_ops found for " + string(e) }

// quiet says the JSON output already says it all (reportError prints
// nothing more under --json).
func (errNoneNamed) quiet() bool { return true }

func runStructOpsShow(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, structOpsHelp)
		return nil
	}
	a, err := parseStructOpsArgs("show", args)
	if err != nil {
		return err
	}
	k, err := openKernel(e, a.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	list, ferr := findStructOps(k, a)
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if ferr != nil && len(list) == 0 && a.byID {
		return ferr
	}
	if e.json {
		j := newJSONW(bw, e.pretty)
		if !a.byID {
			j.BeginArray()
		}
		for _, s := range list {
			j.BeginObject()
			j.UintField("id", uint64(s.Map.ID))
			j.StringField("name", s.Map.Name)
			j.StringField("kernel_struct_ops", s.KernelStruct)
			j.EndObject()
		}
		if !a.byID {
			j.EndArray()
		}
		bw.WriteByte('\n')
	} else {
		for _, s := range list {
			fmt.Fprintf(bw, "%d: %-15s %-32s\n", s.Map.ID, s.Map.Name, s.KernelStruct)
		}
	}
	if ferr != nil {
		return ferr
	}
	if a.name != "" && len(list) == 0 {
		return errNoneNamed(a.name)
	}
	return nil
}

func runStructOpsDump(e *env, args []string) error {
	a, err := parseStructOpsArgs("dump", args)
	if err != nil {
		return err
	}
	k, err := openKernel(e, a.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	list, ferr := findStructOps(k, a)
	if ferr != nil && a.byID {
		return ferr
	}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	// bpftool writes text as the same JSON through an indenting writer.
	j := newJSONW(bw, !e.json || e.pretty)
	if !a.byID {
		j.BeginArray()
	}
	var werr error
	for _, s := range list {
		if werr = s.WriteDump(j, !e.json); werr != nil {
			break
		}
	}
	if !a.byID && werr == nil {
		j.EndArray()
	}
	bw.WriteByte('\n')
	switch {
	case werr != nil:
		bw.Flush()
		return werr
	case ferr != nil:
		return ferr
	case a.name != "" && len(list) == 0:
		return errNoneNamed(a.name)
	}
	return nil
}
