package main

import (
	"bufio"
	"fmt"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "mount", summary: "mounted filesystems, as /proc/mounts (like crash's mount)", run: runMount,
		help: mountHelp, syntax: "[PID...]", opts: []*option{{short: "-v", help: "also each mount's struct mount, super_block and root dentry"}, optKallsyms}})
}

const mountHelp = `Usage: kinspect [-c DUMP | --live] [--json] mount [-v] [-k FILE] [PID...]

Lists the mounts of init's mount namespace (or of the tasks PID's, each
namespace once), in the
order /proc/mounts lists them and as it prints them: device, mount
point, filesystem type, options, "0 0". The options are "rw" or "ro",
the superblock's and the mount's flags, then the filesystem's own: those
of tmpfs and devtmpfs, proc, sysfs, cgroup2, bpf, debugfs, tracefs and
ramfs are rebuilt as their show_options writes them; another
filesystem's (9p, ext4, ...) are left out, and a note names it.

Options:
  -v                   also each mount's struct mount, super_block and root dentry, and its mount ID
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: an array of {"mount", "id", "device", "path", "type", "options",
"own_options" (false: the filesystem's own options are left out),
"super_block", "root"}.
`

func runMount(e *env, args []string) error {
	var file string
	verbose := false
	pids, done, err := parsePIDs("mount", args, mountHelp, e, func(i int) (int, error) {
		if args[i] == "-v" {
			verbose = true
			return 1, nil
		}
		return kallsymsOpt("mount", args, &file)(i)
	})
	if done || err != nil {
		return err
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	var nss []objects.Value
	if len(pids) == 0 {
		ns, err := linux.InitMntNS(p)
		if err != nil {
			return fmt.Errorf("mount: %w", err)
		}
		nss = append(nss, ns)
	}
	tasks, err := findTasks(p, "mount", pids)
	if err != nil {
		return err
	}
	seen := map[uint64]bool{}
	for _, t := range tasks {
		ns, err := t.Path("nsproxy->mnt_ns")
		if err == nil {
			ns, err = ns.Deref()
		}
		if err != nil {
			return fmt.Errorf("mount: %w", err)
		}
		if !seen[ns.Addr()] {
			seen[ns.Addr()] = true
			nss = append(nss, ns)
		}
	}
	var ms []linux.MountInfo
	var merr error
	for _, ns := range nss {
		m, err := linux.Mounts(ns)
		ms = append(ms, m...)
		if err != nil {
			merr = err
			break
		}
	}
	if merr != nil && len(ms) == 0 {
		return fmt.Errorf("mount: %w", merr)
	}
	if e.json {
		if ms == nil {
			ms = []linux.MountInfo{}
		}
		writeJSON(e, ms)
		return merr
	}
	w := bufio.NewWriter(e.stdout)
	var partial []string
	for _, m := range ms {
		if m.Error != "" {
			continue // in the damage report
		}
		if verbose {
			fmt.Fprintf(w, "MOUNT %016x  SUPERBLK %016x  ROOT %016x  ID %d\n  ", uint64(m.Mount), uint64(m.Super), uint64(m.Root), m.ID)
		}
		fmt.Fprintf(w, "%s %s %s %s 0 0\n", m.Device, m.Path, m.Type, m.Options)
		if !m.OwnOptions {
			partial = append(partial, m.Path+" ("+m.Type+")")
		}
	}
	w.Flush()
	for _, s := range partial {
		fmt.Fprintf(e.stderr, "note: %s: the filesystem's own options are left out\n", s)
	}
	if merr != nil {
		return fmt.Errorf("mount: %w", merr)
	}
	return nil
}
