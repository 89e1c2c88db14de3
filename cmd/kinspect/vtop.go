package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "vtop", summary: "translate virtual addresses through the page tables (like crash's vtop)", run: runVtop,
		help: vtopHelp, syntax: "ADDR...", opts: []*option{{long: "--pid", value: "PID", help: "in the address space of process PID"}, optKallsyms}})
	register(&command{name: "ptov", summary: "the direct map's address of physical addresses (like crash's ptov)", run: runPtov,
		help: ptovHelp, syntax: "PADDR..."})
}

const vtopHelp = `Usage: kinspect [-c DUMP | --live] [--json] vtop [--pid PID] [-k FILE] ADDR...

Translates each virtual address by walking the x86-64 page tables as the
MMU does, as crash's vtop: the kernel's (init_mm.pgd), or with --pid PID
the process's (mm->pgd), for a user address (crash's vtop -c). Prints
the physical address and page size, each level's table, entry and its
value, the leaf's RW, USER and NX bits, and the struct page of the
physical page.
ADDR is hex (0x-prefixed, or 8 or more digits), a symbol, or SYMBOL+OFF.

Options:
  --pid PID            the page tables of process PID (crash's vtop -c)
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"virt", "phys", "page_size", "levels": [{"name",
"table", "entry", "value"}], "writable", "user", "nx", "page", "error"
(an address not mapped: the levels read up to the entry not present)}.
`

const ptovHelp = `Usage: kinspect [-c DUMP | --live] [--json] ptov PADDR...

Gives the direct map's virtual address of each physical address (__va),
as crash's ptov, and the struct page of its page when it is RAM. PADDR
is a number (0x-prefixed for hex).

JSON: an array of {"phys", "virt", "page"}.
`

// vtopResult is a translation, or how far it got.
type vtopResult struct {
	*linux.Translation
	Error string `json:"error,omitempty"`
}

func runVtop(e *env, args []string) error {
	var file string
	var words []string
	pid := -1
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, vtopHelp)
			return nil
		case a == "--pid":
			if i+1 == len(args) {
				return fmt.Errorf("vtop --pid: want a PID: %w", errUsage)
			}
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 0 {
				return fmt.Errorf("vtop --pid %q: not a PID: %w", args[i], errUsage)
			}
			pid = n
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("vtop %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("vtop: unknown option %q (see kinspect vtop help): %w", a, errUsage)
		default:
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		return fmt.Errorf("vtop: give an ADDR: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	var pgd uint64
	if pid >= 0 {
		t, err := linux.FindTask(p, pid)
		if err != nil {
			return fmt.Errorf("vtop --pid %d: %w", pid, err)
		}
		mm, ok, err := linux.TaskMM(t)
		if err != nil {
			return fmt.Errorf("vtop --pid %d: %w", pid, err)
		}
		if !ok {
			return fmt.Errorf("vtop --pid %d: a kernel thread has no address space of its own: %w", pid, objects.ErrNotFound)
		}
		if pgd, err = mm.MemberUint("pgd"); err != nil {
			return fmt.Errorf("vtop --pid %d: %w", pid, err)
		}
	} else if pgd, err = linux.KernelPgd(p); err != nil {
		return fmt.Errorf("vtop: %w", err)
	}
	var out []vtopResult
	for _, w := range words {
		a, err := parseAddr(k, w)
		if err != nil {
			return fmt.Errorf("vtop: %w", err)
		}
		tr, err := linux.Vtop(p, pgd, a)
		r := vtopResult{Translation: tr}
		if err != nil {
			if tr == nil {
				return fmt.Errorf("vtop %s: %w", w, err)
			}
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	if e.json {
		return writeJSON(e, out)
	}
	for i, r := range out {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		printVtop(e.stdout, r)
	}
	return nil
}

func printVtop(w io.Writer, r vtopResult) {
	fmt.Fprintf(w, "%-16s  %s\n", "VIRTUAL", "PHYSICAL")
	if r.Error != "" {
		fmt.Fprintf(w, "%016x  (not mapped)\n", uint64(r.Virt))
	} else {
		fmt.Fprintf(w, "%016x  %x\n", uint64(r.Virt), uint64(r.Phys))
	}
	fmt.Fprintln(w)
	for _, l := range r.Levels {
		fmt.Fprintf(w, "  %-3s  table %x  entry %x => %016x\n", l.Name, uint64(l.Table), uint64(l.Entry), uint64(l.Value))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  %s\n", r.Error)
		return
	}
	bits := []string{fmt.Sprintf("%dK page", r.PageSize>>10)}
	for _, b := range []struct {
		on   bool
		name string
	}{{r.Writable, "RW"}, {r.User, "USER"}, {r.NX, "NX"}} {
		if b.on {
			bits = append(bits, b.name)
		}
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(bits, " "))
	if r.Page != nil {
		printPage(w, r.Page)
	}
}

func runPtov(e *env, args []string) error {
	var addrs []uint64
	for i, a := range args {
		switch {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, ptovHelp)
			return nil
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("ptov: unknown option %q: %w", a, errUsage)
		}
		n, err := strconv.ParseUint(a, 0, 64)
		if err != nil {
			return fmt.Errorf("ptov: %q is not a physical address: %w", a, errUsage)
		}
		addrs = append(addrs, n)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("ptov: give a PADDR: %w", errUsage)
	}
	k, err := openKernel(e, "")
	if err != nil {
		return err
	}
	defer k.Close()
	var out []*linux.PhysAddr
	for _, a := range addrs {
		r, err := linux.Ptov(k.Program(), a)
		if err != nil {
			return fmt.Errorf("ptov %#x: %w", a, err)
		}
		out = append(out, r)
	}
	if e.json {
		return writeJSON(e, out)
	}
	fmt.Fprintf(e.stdout, "%-16s  %s\n", "VIRTUAL", "PHYSICAL")
	for _, r := range out {
		fmt.Fprintf(e.stdout, "%016x  %x\n", uint64(r.Virt), uint64(r.Phys))
	}
	return nil
}
