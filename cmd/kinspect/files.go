package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "files", summary: "a task's open files, root and working directory; -p: an inode's page cache (like crash's files)", run: runFiles,
		help: filesHelp, syntax: "PID... | -p INODE...", opts: []*option{{short: "-p", value: "INODE", help: "the pages of an inode's page cache (an address, or a path)"}, optKallsyms}})
}

const filesHelp = `Usage: kinspect [-c DUMP | --live] [--json] files [-k FILE] PID...
       kinspect [-c DUMP | --live] [--json] files [-k FILE] -p INODE|PATH...

Lists the open files of each task (a thread ID), as crash's files: the
task's root and working directory, then each fd with its struct file,
dentry and inode, the inode's type (REG, DIR, CHR, BLK, FIFO, SOCK, LNK,
UNKN for an anonymous inode) and the path /proc/PID/fd/FD links to
(d_path: "pipe:[INODE]", "socket:[INODE]", "anon_inode:NAME" for pseudo
files, " (deleted)" after an unlinked file), and how it is open (r, w,
rw: what ls -l shows as the link's permissions).

With -p (crash's files -p), the page cache of each inode instead (a
struct inode address, or a path, looked up as the path command does):
the kernel's count (i_mapping->nrpages), then each page of i_pages in
file order: its struct page, physical address, index (in pages), flags
and reference count.

Options:
  -p INODE|PATH        the pages of an inode's page cache
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"task", "pid", "tid", "comm", "root", "cwd", "files":
[{"fd", "file", "dentry", "inode", "type", "path", "mode", "flags",
"pos", "error"}], "error" (the root or cwd that could not be read)}.
With -p: an array of {"inode", "mapping", "nrpages",
"pages": [pages as kmem --page shows them], "shadows" (value entries:
evicted pages' workingset shadows), "errors"}.
`

// parsePIDs reads PID arguments, options aside (opt reads one: it
// returns how many words it took, 0 for none it knows).
func parsePIDs(cmd string, args []string, help string, e *env, opt func(i int) (int, error)) ([]int, bool, error) {
	var pids []int
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, help)
			return nil, true, nil
		}
		if opt != nil {
			n, err := opt(i)
			if err != nil {
				return nil, false, err
			}
			if n > 0 {
				i += n - 1
				continue
			}
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return nil, false, fmt.Errorf("%s: unknown option %q (see kinspect %s help): %w", cmd, a, cmd, errUsage)
		}
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			return nil, false, fmt.Errorf("%s: %q is not a PID: %w", cmd, a, errUsage)
		}
		pids = append(pids, n)
	}
	return pids, false, nil
}

// kallsymsOpt reads -k FILE into file.
func kallsymsOpt(cmd string, args []string, file *string) func(i int) (int, error) {
	return func(i int) (int, error) {
		if a := args[i]; a == "-k" || a == "--kallsyms" {
			if i+1 == len(args) {
				return 0, fmt.Errorf("%s %s: want a file: %w", cmd, a, errUsage)
			}
			*file = args[i+1]
			return 2, nil
		}
		return 0, nil
	}
}

// findTasks finds the tasks of pids (thread IDs; 0 is CPU 0's idle
// task).
func findTasks(p *objects.Program, cmd string, pids []int) ([]objects.Value, error) {
	var out []objects.Value
	for _, pid := range pids {
		var t objects.Value
		var err error
		if pid == 0 {
			t, err = linux.IdleTask(p, 0)
		} else {
			t, err = linux.FindTask(p, pid)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// openTasks parses a command's PIDs (and -k FILE), opens the kernel and
// finds their tasks; the kernel is nil when help was asked for or on an
// error. what names the tasks "foreach CMD" runs over.
func openTasks(e *env, cmd string, args []string, help, what string) (*kinspect.Kernel, []objects.Value, error) {
	var file string
	pids, done, err := parsePIDs(cmd, args, help, e, kallsymsOpt(cmd, args, &file))
	if done || err != nil {
		return nil, nil, err
	}
	if len(pids) == 0 {
		return nil, nil, fmt.Errorf("%s: give a PID (foreach %s: every %s): %w", cmd, cmd, what, errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return nil, nil, err
	}
	tasks, err := findTasks(k.Program(), cmd, pids)
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	return k, tasks, nil
}

func taskHeader(w io.Writer, pid int, task objects.Hex, cpu int, comm string) {
	fmt.Fprintf(w, "PID: %-7d TASK: %016x  CPU: %-3d COMMAND: %q\n", pid, uint64(task), cpu, comm)
}

func runFiles(e *env, args []string) error {
	if slices.Contains(args, "-p") {
		return runFilesPages(e, args)
	}
	k, tasks, err := openTasks(e, "files", args, filesHelp, "process")
	if k == nil || err != nil {
		return err
	}
	defer k.Close()
	var out []*linux.TaskFilesInfo
	var ferr error
	for _, t := range tasks {
		fi, err := linux.ReadTaskFiles(t)
		if err != nil {
			if fi == nil {
				return fmt.Errorf("files: %w", err)
			}
			ferr = fmt.Errorf("files: %w", err)
		}
		out = append(out, fi)
	}
	if e.json {
		writeJSON(e, out)
		return ferr
	}
	w := bufio.NewWriter(e.stdout)
	for i, fi := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printFiles(w, k.Program(), fi)
	}
	w.Flush()
	return ferr
}

func printFiles(w io.Writer, p *objects.Program, fi *linux.TaskFilesInfo) {
	cpu := -1
	if t, err := p.ObjectOf("struct task_struct", uint64(fi.Task)); err == nil {
		cpu, _ = linux.TaskCPU(t)
	}
	taskHeader(w, fi.TID, fi.Task, cpu, fi.Comm)
	fmt.Fprintf(w, "ROOT: %s    CWD: %s\n", fi.Root, fi.Cwd)
	if len(fi.Files) == 0 {
		fmt.Fprintln(w, "No open files")
		return
	}
	fmt.Fprintf(w, "%4s %-16s %-16s %-16s %-4s %-2s %s\n", "FD", "FILE", "DENTRY", "INODE", "TYPE", "RW", "PATH")
	for _, f := range fi.Files {
		path := f.Path
		if f.Err != "" {
			path = "(" + f.Err + ")"
		}
		fmt.Fprintf(w, "%4d %016x %016x %016x %-4s %-2s %s\n", f.FD, uint64(f.File), uint64(f.Dentry), uint64(f.Inode), f.Type, f.Mode, path)
	}
}

// runFilesPages is files -p: linux.ReadInodePages of each inode (an
// address) or path (linux.LookupPath).
func runFilesPages(e *env, args []string) error {
	var file string
	var whats []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("files -p %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case a == "-p":
		default:
			whats = append(whats, a)
		}
	}
	if len(whats) == 0 {
		return fmt.Errorf("files -p: want an inode address or a path: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	var out []*linux.InodePages
	for _, w := range whats {
		var inode objects.Value
		if strings.HasPrefix(w, "/") {
			inode, err = linux.LookupInode(p, w)
		} else {
			var a uint64
			if a, err = strconv.ParseUint(strings.TrimPrefix(w, "0x"), 16, 64); err != nil {
				return fmt.Errorf("files -p %q: not an inode address (hex) nor a path: %w", w, errUsage)
			}
			inode, err = p.ObjectOf("struct inode", a)
		}
		if err != nil {
			return fmt.Errorf("files -p %s: %w", w, err)
		}
		ip, err := linux.ReadInodePages(inode)
		if err != nil {
			return fmt.Errorf("files -p %s: %w", w, err)
		}
		out = append(out, ip)
	}
	if e.json {
		writeJSON(e, out)
		return nil
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for i, ip := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%-16s %-16s %8s\n%016x %016x %8d\n\n", "INODE", "MAPPING", "NRPAGES", uint64(ip.Inode), uint64(ip.Mapping), ip.NrPages)
		fmt.Fprintf(w, "%-16s %-12s %8s %4s  %s\n", "PAGE", "PHYSICAL", "INDEX", "CNT", "FLAGS")
		for _, pg := range ip.Pages {
			fmt.Fprintf(w, "%016x %12x %8d %4d  %s\n", uint64(pg.Page), uint64(pg.Phys), pg.Index, pg.Refcount, strings.Join(pg.FlagNames, ","))
		}
		for _, e := range ip.Errors {
			fmt.Fprintf(w, "error: %s\n", e)
		}
	}
	return nil
}
