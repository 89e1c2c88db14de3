package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "info", summary: "describe the kernel and the dump (like crash's sys)", run: runInfo, help: infoHelp})
}

const infoHelp = `Usage: kinspect [-c DUMP | --live] [--json] info

Describes the kernel and its dump, like crash's "sys": kernel release and
build id, the dump's format and compression, where its VMCOREINFO and
symbols came from, paging mode, KASLR offset, memory size, each CPU's RIP
and RSP, and the crash time and panicking CPU where the dump records
them.

A dump without a VMCOREINFO note of its own (QEMU without -device
vmcoreinfo, virsh dump, LiME and AVML captures) has the kernel's own copy
found in its memory: VMCOREINFO then says "found in memory at phys ADDR".
Symbols come from the kallsyms tables in memory, located by VMCOREINFO or,
for kernels before 6.0 whose VMCOREINFO does not say, by their shape.
`

func runInfo(e *env, args []string) error {
	if len(args) > 0 {
		if args[0] == "help" {
			fmt.Fprint(e.stdout, infoHelp)
			return nil
		}
		return fmt.Errorf("info takes no arguments: %w", errUsage)
	}
	o, err := options(e, "")
	if err != nil {
		return err
	}
	// Partial: the dump's own facts need neither symbols nor types.
	o.Partial = true
	k, err := e.open(o)
	if err != nil {
		return err
	}
	defer k.Close()
	r := k.Info()
	if e.json {
		return writeJSON(e, r)
	}
	printInfo(e.stdout, r)
	return nil
}

func printInfo(w io.Writer, r *kinspect.Info) {
	row := func(k, v string) { fmt.Fprintf(w, "%14s: %s\n", k, v) }
	orNone := func(s string) string {
		if s == "" {
			return "(unknown)"
		}
		return s
	}
	hexOr := func(h *objects.Hex, none string) string {
		if h == nil {
			return none
		}
		return fmt.Sprintf("%#x", uint64(*h))
	}
	desc := r.Dump.Format
	if r.Dump.Compression != "none" {
		desc += ", " + r.Dump.Compression
	}
	if r.Dump.DumpLevel != nil {
		desc += fmt.Sprintf(", dump level %d", *r.Dump.DumpLevel)
	}
	row("DUMPFILE", fmt.Sprintf("%s (%s)", r.Dump.File, desc))
	row("RELEASE", orNone(r.Release))
	row("BUILD ID", orNone(r.BuildID))
	row("VMCOREINFO", orNoneMsg(r.VMCOREINFO, "(none)"))
	row("SYMBOLS", orNone(r.Symbols))
	row("PAGE SIZE", fmt.Sprint(r.PageSize))
	if r.Paging != 0 {
		row("PAGE TABLES", fmt.Sprintf("%d levels", r.Paging))
	} else {
		row("PAGE TABLES", "(unknown)")
	}
	row("KASLR OFFSET", hexOr(r.KASLROffset, "(unknown)"))
	row("PHYS BASE", hexOr(r.PhysBase, "(unknown)"))
	row("PAGE OFFSET", hexOr(r.PageOffset, "(unknown)"))
	if r.MemoryBytes != 0 {
		row("MEMORY", fmt.Sprintf("%s (%d bytes)", humanBytes(r.MemoryBytes), r.MemoryBytes))
	} else {
		row("MEMORY", "(unknown)")
	}
	row("CPUS", fmt.Sprint(r.NumCPUs))
	row("BOOT TIME", orNoneMsg(r.BootTime, "(unknown)"))
	row("CRASH TIME", orNoneMsg(r.CrashTime, "(not recorded in the dump)"))
	if r.EraseInfo != "" {
		row("ERASED", strings.ReplaceAll(strings.TrimSpace(r.EraseInfo), "\n", "; "))
	}
	switch {
	case r.PanicCPU != nil:
		row("PANIC CPU", fmt.Sprint(*r.PanicCPU))
	case r.PanicErr != "":
		row("PANIC CPU", "(unknown: "+r.PanicErr+")")
	default:
		row("PANIC CPU", "(none: no CPU panicked)")
	}
	if len(r.CPUs) > 0 {
		fmt.Fprintf(w, "\n%4s %7s  %-18s  %-18s  %-18s  %s\n", "CPU", "PID", "RIP", "RSP", "RBP", "COMMAND")
		for _, c := range r.CPUs {
			pid, comm := strconv.Itoa(c.PID), c.Comm
			if c.TaskError != "" {
				pid, comm = "?", "? ("+c.TaskError+")"
			}
			fmt.Fprintf(w, "%4d %7s  0x%016x  0x%016x  0x%016x  %s\n", c.CPU, pid, uint64(c.RIP), uint64(c.RSP), uint64(c.RBP), comm)
		}
	}
	if r.Unavailable != "" {
		fmt.Fprintf(w, "\nnot shown: %s\n", r.Unavailable)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "note: %s\n", p)
	}
}

func orNoneMsg(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func humanBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
