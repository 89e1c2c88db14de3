package main

import (
	"errors"
	"fmt"
	"regexp"
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
  runqueues:a                           ... of every possible CPU (crash's
  irq_stat:0,2-3                        SYMBOL:CPUSPEC: a, all, or a list)
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

A per-CPU expression followed by :CPUSPEC (a per-CPU variable, or a
__percpu pointer) prints its copy on each CPU of the spec, as
"per_cpu(EXPR, CPU) = VALUE".

JSON: one object per expression (per CPU of a :CPUSPEC): {"expr", "cpu"
(with :CPUSPEC), "type", "address" (a "0x..." string, absent for a
computed value), "value"}; structs are objects of their members, pointers
"0x..." strings, char arrays strings, enums names.
`

// printResult is one evaluated expression.
type printResult struct {
	Expr    string        `json:"expr"`
	CPU     *int          `json:"cpu,omitempty"` // EXPR:CPUSPEC
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
	p := k.Program()
	for _, x := range exprs {
		vals, err := evalPrint(p, x)
		if err != nil {
			return printError(k, x, err)
		}
		for _, cv := range vals {
			v := cv.Value
			if !e.json {
				s, err := objects.Format(v, objects.FormatOptions{MaxElements: max})
				if err != nil {
					return printError(k, x, err)
				}
				if cv.CPU >= 0 {
					s = fmt.Sprintf("per_cpu(%s, %d) = %s", cv.expr, cv.CPU, s)
				}
				fmt.Fprintln(e.stdout, s)
				continue
			}
			r := printResult{Expr: cv.expr, Type: v.TypeName(), Value: v}
			if cv.CPU >= 0 {
				r.CPU = &cv.CPU
			}
			if a, ok := v.Address(); ok {
				r.Address = objects.HexPtr(a)
			}
			if _, err := v.Bytes(); err != nil {
				return printError(k, x, err)
			}
			results = append(results, r)
		}
	}
	if e.json {
		if len(results) == 1 {
			return writeJSON(e, results[0])
		}
		return writeJSON(e, results)
	}
	return nil
}

// printValue is one value print shows: of an expression, or (CPU >= 0)
// of its copy on one CPU.
type printValue struct {
	objects.CPUValue
	expr string // without the :CPUSPEC
}

// cpuSpecSuffix matches crash's :CPUSPEC after a per-CPU expression.
var cpuSpecSuffix = regexp.MustCompile(`^(.*[^:\s]):(a|all|[0-9][0-9,-]*)$`)

// evalPrint evaluates one argument of print: an expression, or a per-CPU
// expression with :CPUSPEC, each CPU's copy then (objects.PerCPUEach).
func evalPrint(p *objects.Program, x string) ([]printValue, error) {
	m := cpuSpecSuffix.FindStringSubmatch(x)
	if m == nil {
		v, err := p.Eval(x)
		return []printValue{{CPUValue: objects.CPUValue{CPU: -1, Value: v}, expr: x}}, err
	}
	v, err := p.Eval(m[1])
	if err != nil {
		return nil, err
	}
	if !v.IsPerCPU() && !v.IsPointer() {
		return nil, fmt.Errorf("%s is a %s, not a per-CPU variable or pointer: %w", m[1], v.TypeName(), objects.ErrType)
	}
	cpus, err := p.ParseCPUSpec(m[2])
	if err != nil {
		return nil, err
	}
	cvs, err := p.PerCPUEach(v, cpus)
	if err != nil {
		return nil, err
	}
	out := make([]printValue, len(cvs))
	for i, cv := range cvs {
		out[i] = printValue{CPUValue: cv, expr: m[1]}
	}
	return out, nil
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
