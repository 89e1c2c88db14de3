package main

import (
	"bufio"
	"fmt"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "path", summary: "look paths up in the dentry cache (like drgn's path_lookup): mount, dentry, inode", run: runPath,
		help: pathHelp, syntax: "PATH...", opts: []*option{optKallsyms}})
}

const pathHelp = `Usage: kinspect [-c DUMP | --live] [--json] path [-k FILE] PATH...

Looks each absolute PATH up as a process of init's mount namespace would
(drgn's path_lookup): name by name among each directory's children in the
dentry cache, "." and ".." as the kernel takes them, crossing into what is
mounted on a directory (the last mount on it). Shows the struct mount,
dentry and inode reached, the inode's number, type, mode and size, the
mount's filesystem type, and the pages of its page cache
(i_mapping->nrpages).

A dump has no filesystem to read a directory from: a name the kernel
never looked up, or evicted from the dentry cache, is not found, and a
negative dentry (a name looked up and not there) says no such file.

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"path", "mount", "dentry", "inode", "ino", "type",
"mode", "size", "fstype", "pages", "error"}.
`

func runPath(e *env, args []string) error {
	var file string
	var paths []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, pathHelp)
			return nil
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("path %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		default:
			paths = append(paths, a)
		}
	}
	if len(paths) == 0 {
		return fmt.Errorf("path: want a path: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	var out []linux.PathInfo
	failed := 0
	for _, p := range paths {
		pi := linux.ReadPathInfo(k.Program(), p)
		if pi.Error != "" {
			failed++
		}
		out = append(out, pi)
	}
	var perr error
	if failed > 0 {
		perr = fmt.Errorf("path: %d of %d paths not found: %w", failed, len(paths), objects.ErrNotFound)
	}
	if e.json {
		writeJSON(e, out)
		return perr
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	fmt.Fprintf(w, "%-16s %-16s %-16s %10s %-4s %6s %12s %8s %-10s %s\n", "MOUNT", "DENTRY", "INODE", "INO", "TYPE", "MODE", "SIZE", "PAGES", "FSTYPE", "PATH")
	for _, pi := range out {
		if pi.Dentry == 0 {
			fmt.Fprintf(w, "%-16s %-16s %-16s %10s %-4s %6s %12s %8s %-10s %s: %s\n", "-", "-", "-", "-", "-", "-", "-", "-", "-", pi.Path, pi.Error)
			continue
		}
		fmt.Fprintf(w, "%016x %016x %016x %10d %-4s %6o %12d %8d %-10s %s\n", uint64(pi.Mount), uint64(pi.Dentry), uint64(pi.Inode), pi.Ino, pi.Type, pi.Mode&0o7777, pi.Size, pi.Pages, pi.FSType, pi.Path)
	}
	return perr
}
