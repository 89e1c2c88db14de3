package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "irq", summary: "interrupts: counts per CPU, chips and handlers, as /proc/interrupts (like crash's irq)", run: runIRQ,
		help: irqHelp, opts: []*option{{short: "-v", help: "also each IRQ's struct irq_desc"}, optKallsyms}})
}

const irqHelp = `Usage: kinspect [-c DUMP | --live] [--json] irq [-v] [-k FILE]

Prints the interrupts as /proc/interrupts does: a column per online CPU,
then for each interrupt number with a handler or a count its count on
each CPU, its chip, its number in the chip's domain, its flow handler
("edge", "fasteoi") and the names of its actions; then the
architecture's counters (x86: NMI, LOC local timer, RES rescheduling,
CAL function call, TLB shootdowns, ..., ERR, MIS). The counts are the
kernel's when the dump was taken. A chip that prints its own name
(irq_print_chip) is shown by its name field, and a note says so.

Options:
  -v                   also each IRQ's struct irq_desc
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"cpus" (the online CPUs), "prec" (the first column's width),
"lines": [{"irq" (-1 for an architecture's line), "name", "counts"
(per online CPU; ERR's and MIS's a total), "chip", "hwirq", "handler",
"actions", "description" (an architecture line's), "desc" (the struct
irq_desc), "print_chip"}]}.
`

func runIRQ(e *env, args []string) error {
	var file string
	verbose := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, irqHelp)
			return nil
		case a == "-v":
			verbose = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("irq %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			return fmt.Errorf("irq: unexpected %q (see kinspect irq help): %w", a, errUsage)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	in, ierr := linux.ReadInterrupts(k.Program())
	if in == nil {
		return ierr
	}
	if e.json {
		writeJSON(e, in)
		return ierr
	}
	w := bufio.NewWriter(e.stdout)
	var printed []string
	if !verbose {
		w.WriteString(in.Text())
	} else {
		fmt.Fprintf(w, "%*s", in.Prec+8, "")
		for _, c := range in.CPUs {
			fmt.Fprintf(w, "CPU%-8d", c)
		}
		fmt.Fprintln(w)
		for _, l := range in.Lines {
			fmt.Fprint(w, l.Text(in.Prec))
			if l.Desc != 0 {
				fmt.Fprintf(w, "  [%x]", uint64(l.Desc))
			}
			fmt.Fprintln(w)
		}
	}
	for _, l := range in.Lines {
		if l.PrintChip {
			printed = append(printed, l.Name)
		}
	}
	w.Flush()
	if len(printed) > 0 {
		fmt.Fprintf(e.stderr, "note: IRQ %s: the chip prints its own name; shown is its name field\n", strings.Join(printed, ", "))
	}
	return ierr
}
