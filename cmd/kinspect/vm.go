package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "vm", summary: "a task's address space and VMAs, as /proc/PID/maps (like crash's vm)", run: runVm,
		help: vmHelp, syntax: "PID...", opts: []*option{optKallsyms}})
}

const vmHelp = `Usage: kinspect [-c DUMP | --live] [--json] vm [-k FILE] PID...

Shows the address space of each task (a thread ID), as crash's vm: its
mm_struct and page tables (pgd), its size and resident memory as
/proc/PID/status counts them (VmSize, VmRSS, of which file, anonymous
and shared memory pages), then each VMA (struct vm_area_struct) as a
line of /proc/PID/maps: start-end, permissions (rwxp, s shared), file
offset, device, inode and the file's path, or [heap], [stack], [vdso],
[vvar], [anon:NAME]. A kernel thread has no address space. The VMAs are
the entries of the maple tree mm->mm_mt (6.1+), or of the mmap list.

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"task", "pid", "tid", "comm", "mm", "pgd", "total_vm",
"rss", "rss_file", "rss_anon", "rss_shmem" (kB), "vmas": [{"vma",
"start", "end", "flags", "perms", "offset", "dev", "inode", "file",
"name", "error"}]}.
`

func runVm(e *env, args []string) error {
	k, tasks, err := openTasks(e, "vm", args, vmHelp, "process")
	if k == nil || err != nil {
		return err
	}
	defer k.Close()
	var out []*linux.TaskVM
	var verr error
	for _, t := range tasks {
		v, err := linux.ReadTaskVM(t)
		if err != nil {
			if v == nil {
				return fmt.Errorf("vm: %w", err)
			}
			verr = fmt.Errorf("vm: %w", err)
		}
		out = append(out, v)
	}
	if e.json {
		writeJSON(e, out)
		return verr
	}
	w := bufio.NewWriter(e.stdout)
	for i, v := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printVm(w, k.Program(), v)
	}
	w.Flush()
	return verr
}

func printVm(w io.Writer, p *objects.Program, v *linux.TaskVM) {
	cpu := -1
	if t, err := p.ObjectOf("struct task_struct", uint64(v.Task)); err == nil {
		cpu, _ = linux.TaskCPU(t)
	}
	taskHeader(w, v.TID, v.Task, cpu, v.Comm)
	if v.MM == 0 {
		fmt.Fprintln(w, "(a kernel thread: no address space)")
		return
	}
	fmt.Fprintf(w, "%-16s  %-16s  %8s  %8s\n", "MM", "PGD", "RSS", "TOTAL_VM")
	fmt.Fprintf(w, "%016x  %016x  %7dk  %7dk\n", uint64(v.MM), uint64(v.PGD), v.RSS, v.TotalVM)
	fmt.Fprintf(w, "%-16s  %s\n", "VMA", "MAPS")
	for _, m := range v.VMAs {
		fmt.Fprintf(w, "%016x  %s\n", uint64(m.VMA), m.MapsLine())
		if m.Err != "" {
			fmt.Fprintf(w, "%16s  (%s)\n", "", m.Err)
		}
	}
}
