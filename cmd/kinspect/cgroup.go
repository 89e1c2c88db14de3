package main

import (
	"bufio"
	"fmt"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "cgroup", summary: "tasks' cgroups, and the cgroup tree with its BPF programs (bpftool cgroup tree)", run: runCgroup,
		help: cgroupHelp, syntax: "tree | PID...", opts: []*option{optKallsyms}})
}

const cgroupHelp = `Usage: kinspect [-c DUMP | --live] [--json] cgroup [-k FILE] PID...
       kinspect [-c DUMP | --live] [--json] cgroup [-k FILE] tree

cgroup PID... shows each task's cgroup of the default (v2) hierarchy, as
/proc/PID/cgroup's "0::PATH": the css_set, the struct cgroup and its
path.

cgroup tree lists, as bpftool cgroup tree does, the cgroups that have
BPF programs attached (not those they inherit), in pre-order from the
root, each as its directory under the cgroup2 mount point, with each
program's id, attach type, attach flags (multi, override) and name.

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: PID: an array of {"task", "pid", "tid", "comm", "css_set",
"cgroup", "path"}. tree: bpftool's, an array of {"cgroup", "programs":
[{"id", "attach_type", "attach_flags", "name", "attach_btf_name",
"attach_btf_obj_id", "attach_btf_id"}]}.
`

func runCgroup(e *env, args []string) error {
	var file string
	tree := false
	pids, done, err := parsePIDs("cgroup", args, cgroupHelp, e, func(i int) (int, error) {
		if args[i] == "tree" {
			tree = true
			return 1, nil
		}
		return kallsymsOpt("cgroup", args, &file)(i)
	})
	if done || err != nil {
		return err
	}
	switch {
	case tree && len(pids) > 0:
		return fmt.Errorf("cgroup: tree takes no PID: %w", errUsage)
	case !tree && len(pids) == 0:
		return fmt.Errorf("cgroup: give tree or a PID: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	if tree {
		mp, err := bpf.CgroupMountPoint(p)
		if err != nil {
			return fmt.Errorf("cgroup tree: %w", err)
		}
		cs, err := bpf.CgroupTree(p, mp)
		if err != nil && len(cs) == 0 {
			return fmt.Errorf("cgroup tree: %w", err)
		}
		if e.json {
			if cs == nil {
				cs = []bpf.CgroupProgs{}
			}
			writeJSON(e, cs)
			return err
		}
		w := bufio.NewWriter(e.stdout)
		defer w.Flush()
		fmt.Fprintf(w, "%s\n", "CgroupPath")
		fmt.Fprintf(w, "%-8s %-15s %-15s %-15s\n", "ID", "AttachType", "AttachFlags", "Name")
		for _, c := range cs {
			fmt.Fprintln(w, c.Path)
			for _, pr := range c.Programs {
				fmt.Fprintf(w, "    %-8d %-15s %-15s %-15s\n", pr.ID, pr.AttachType, pr.AttachFlags, pr.Name)
			}
		}
		return err
	}
	tasks, err := findTasks(p, "cgroup", pids)
	if err != nil {
		return err
	}
	var out []*linux.TaskCgroupInfo
	for _, t := range tasks {
		c, err := linux.ReadTaskCgroup(t)
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		out = append(out, c)
	}
	if e.json {
		return writeJSON(e, out)
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for _, c := range out {
		fmt.Fprintf(w, "PID: %-7d TASK: %016x  COMMAND: %q\n  CSS_SET %016x  CGROUP %016x  0::%s\n", c.TID, uint64(c.Task), c.Comm, uint64(c.CssSet), uint64(c.Cgroup), c.Path)
	}
	return nil
}
