package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "print", summary: "evaluate a C expression on kernel objects and print it (like drgn)", run: runPrint,
		help: printCmdHelp, syntax: "EXPR...", dashdash: true,
		opts: []*option{optKallsyms, {long: "--max", value: "N", help: "show at most N elements of an array"}}})
}

const printCmdHelp = `Usage: kinspect [-c DUMP | --live] [--json] [--declare DECL]... print [-k FILE] [--max N] EXPR...

Evaluates each C-like expression against the kernel's objects and prints
the value as drgn does: structs with their members, nested; pointers in
hex; char arrays as strings; enums by name.

  init_task.comm                        a member of a global variable
  init_task.tasks.next                  a member path
  *(struct bpf_prog *)0xffff888004a1c000
  ((struct task_struct *)0xffff...)->pid
  &init_task                            an address
  prog_idr                              any declared global
  per_cpu(runqueues, 1).nr_running      a per-CPU variable of a CPU
  container_of(init_task.tasks.next, struct task_struct, tasks)->comm
  sizeof(struct task_struct)            works without memory too

Global variables have no BTF type, so each is declared: kinspect knows the
ones its walkers use (init_task, modules, prog_idr, map_idr, link_idr,
btf_idr, bpf_kallsyms, btf_modules, __per_cpu_offset, nr_cpu_ids, prb,
jiffies, ...); add others with --declare 'struct foo bar' (repeatable) or
--declare-file FILE. Per-CPU variables are typed by BTF.

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms
  --max N              show at most N elements of an array (default 1024)

JSON: one object per expression: {"expr", "type", "address" (a "0x..."
string, absent for a computed value), "value"}; structs are objects of
their members, pointers "0x..." strings, char arrays strings, enums names.
`

// printResult is one evaluated expression.
type printResult struct {
	Expr    string        `json:"expr"`
	Type    string        `json:"type"`
	Address *objects.Hex  `json:"address,omitempty"`
	Value   objects.Value `json:"value"`
}

func runPrint(e *env, args []string) error {
	var file string
	var exprs []string
	max := 0
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, printCmdHelp)
			return nil
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("print %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case a == "--max":
			if i+1 == len(args) {
				return fmt.Errorf("print --max: want a number: %w", errUsage)
			}
			i++
			if _, err := fmt.Sscan(args[i], &max); err != nil || max <= 0 {
				return fmt.Errorf("print --max %q: want a positive number: %w", args[i], errUsage)
			}
		case a == "--":
			exprs = append(exprs, args[i+1:]...)
			i = len(args)
		default:
			exprs = append(exprs, a)
		}
	}
	if len(exprs) == 0 {
		return fmt.Errorf("print: want an expression: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	var results []printResult
	for _, x := range exprs {
		v, err := k.Program().Eval(x)
		if err == nil && !e.json {
			var s string
			if s, err = objects.Format(v, objects.FormatOptions{MaxElements: max}); err == nil {
				fmt.Fprintln(e.stdout, s)
				continue
			}
		}
		if err != nil {
			return printError(k, x, err)
		}
		r := printResult{Expr: x, Type: v.TypeName(), Value: v}
		if a, ok := v.Address(); ok {
			r.Address = objects.HexPtr(a)
		}
		if _, err := v.Bytes(); err != nil {
			return printError(k, x, err)
		}
		results = append(results, r)
	}
	if e.json {
		if len(results) == 1 {
			return writeJSON(e, results[0])
		}
		return writeJSON(e, results)
	}
	return nil
}

// printError says what failed; without memory, why there is none.
func printError(k *kinspect.Kernel, expr string, err error) error {
	if k.MemoryErr() != nil {
		msg := k.MemoryErr().Error()
		if i := strings.Index(msg, "; commands that need"); i >= 0 {
			msg = msg[:i]
		}
		if errors.Is(err, objects.ErrNoMemory) {
			return fmt.Errorf("print %s: cannot read kernel memory: %s (types and sizeof still work)", expr, msg)
		}
		return fmt.Errorf("print %s: %w (and kernel memory could not be read anyway: %s)", expr, err, msg)
	}
	return fmt.Errorf("print %s: %w", expr, err)
}
