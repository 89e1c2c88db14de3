package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "mod", summary: "loaded modules, as /proc/modules (like crash's mod)", run: runMod,
		help: modHelp, syntax: "[NAME...]", opts: []*option{{long: "--proc", help: "print /proc/modules' own lines"},
			{short: "-t", long: "--taint", help: "the kernel's taint and the modules that brought each flag"}, optKallsyms}})
}

const modHelp = `Usage: kinspect [-c DUMP | --live] [--json] mod [--proc | -t] [-k FILE] [NAME...]

Lists the loaded modules (every one, or those named), newest first as
/proc/modules lists them: the struct module, name, base (the core
text's address), size (of all its memory), reference count, the modules
using it, its state (Live, Loading, Unloading) and the taint letters it
brought, in parentheses as /proc/modules shows them ("(OE)").

With -t (crash's mod -t), the kernel's taint instead: tainted_mask (as
/proc/sys/kernel/tainted), the letters the kernel prints after "Tainted:"
in its reports, and each flag set, read through the kernel's own
taint_flags[] table, with the modules that brought it.

Options:
  --proc               print /proc/modules' own lines
  -t, --taint          the kernel's taint and the modules that brought each flag
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"name", "size", "refcount", "used_by", "state" (enum
module_state), "status" (Live, Loading, Unloading), "base", "taints",
"module", "error" (why used_by may lack modules)}. With -t: {"mask",
"text" (the letters, "" when not tainted), "flags": [{"bit", "char",
"desc", "modules"}]}.
`

func runMod(e *env, args []string) error {
	var file string
	var names []string
	proc, taint := false, false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, modHelp)
			return nil
		case a == "--proc":
			proc = true
		case a == "-t" || a == "--taint":
			taint = true
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("mod %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("mod: unknown option %q (see kinspect mod help): %w", a, errUsage)
		default:
			names = append(names, a)
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	if taint {
		if len(names) > 0 || proc {
			return fmt.Errorf("mod -t takes no module names and no --proc: %w", errUsage)
		}
		return writeTaint(e, k.Program())
	}
	mods, merr := linux.ProcModules(k.Program())
	if merr != nil && len(mods) == 0 {
		return fmt.Errorf("mod: %w", merr)
	}
	if len(names) > 0 {
		var sel []linux.ModuleInfo
		for _, n := range names {
			found := false
			for _, m := range mods {
				if m.Name == n {
					sel, found = append(sel, m), true
				}
			}
			if !found {
				return fmt.Errorf("mod: no module named %s: %w", n, objects.ErrNotFound)
			}
		}
		mods = sel
	}
	if e.json {
		if mods == nil {
			mods = []linux.ModuleInfo{}
		}
		writeJSON(e, mods)
		return merr
	}
	w := bufio.NewWriter(e.stdout)
	defer func() {
		w.Flush()
		for _, m := range mods {
			if m.Err != "" {
				fmt.Fprintf(e.stderr, "note: %s\n", m.Err)
			}
		}
	}()
	if proc {
		for _, m := range mods {
			fmt.Fprintln(w, m.Line())
		}
		return merr
	}
	fmt.Fprintf(w, "%-16s  %-24s %-16s %8s %4s  %-9s %s\n", "MODULE", "NAME", "BASE", "SIZE", "REFS", "STATE", "USED BY")
	for _, m := range mods {
		used := strings.Join(m.UsedBy, ",")
		if m.Taints != "" {
			used = strings.TrimSpace(m.Taints + " " + used)
		}
		fmt.Fprintf(w, "%016x  %-24s %016x %8d %4d  %-9s %s\n", uint64(m.Module), m.Name, uint64(m.Base), m.Size, m.Refcount, m.Status, used)
	}
	return merr
}

// writeTaint prints mod -t: linux.ReadTaint.
func writeTaint(e *env, p *objects.Program) error {
	t, err := linux.ReadTaint(p)
	if err != nil && t == nil {
		return fmt.Errorf("mod -t: %w", err)
	}
	if e.json {
		if t.Flags == nil {
			t.Flags = []linux.TaintFlag{}
		}
		writeJSON(e, t)
		return err
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	if t.Mask == 0 {
		fmt.Fprintf(w, "TAINTED: 0 (Not tainted)\n")
		return err
	}
	fmt.Fprintf(w, "TAINTED: %d (%s)\n", t.Mask, t.Text)
	for _, f := range t.Flags {
		fmt.Fprintf(w, "  %s  bit %-2d  %s", f.Char, f.Bit, f.Desc)
		if len(f.Modules) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(f.Modules, ", "))
		}
		fmt.Fprintln(w)
	}
	return err
}
