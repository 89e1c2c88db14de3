package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// psEntry is one task of OUTDIR/ps.json.
type psEntry struct {
	PID   int    `json:"pid"`
	TID   int    `json:"tid"`
	PPID  int    `json:"ppid"`
	Comm  string `json:"comm"`
	State string `json:"state"`
	CPU   int    `json:"cpu"`
	// Switches is the task's context switches (voluntary_ctxt_switches
	// plus nonvoluntary_ctxt_switches of /proc/PID/task/TID/status),
	// read before its stat and stack: a task whose count in the dump is
	// still this one was not switched out since, so it sleeps where the
	// snapshot saw it, or was woken and has not run, or is on a CPU.
	Switches uint64 `json:"switches"`
}

// snapshotMeta is OUTDIR/snapshot-meta.json.
type snapshotMeta struct {
	// ExcludedPID is the snapshot process itself: its threads are not in
	// ps.json or stacks.json because it exits right after writing them.
	ExcludedPID int    `json:"excluded_pid"`
	Tasks       int    `json:"tasks"`
	Note        string `json:"note"`
}

// writeSnapshot writes OUTDIR/ps.json (every task of every process, kernel
// threads included, from /proc/PID/task/TID/status and stat), OUTDIR/stacks.json
// (tid -> /proc/PID/task/TID/stack lines without their "[<0>] " prefix)
// and OUTDIR/snapshot-meta.json. It reads /proc directly and starts no
// process. The snapshot process itself (all of its threads) is excluded,
// since it exits right after; tasks that exit while it runs are skipped.
func writeSnapshot(dir string) error {
	self := os.Getpid()
	pids, err := listPIDs()
	if err != nil {
		return fmt.Errorf("list /proc: %w", err)
	}
	ps := []psEntry{}
	stacks := map[string][]string{}
	for _, pid := range pids {
		if pid == self {
			continue
		}
		tids, err := listTIDs(pid)
		if err != nil {
			continue // exited
		}
		for _, tid := range tids {
			sw, err := readSwitches(pid, tid)
			if err != nil {
				continue // exited
			}
			st, err := readTaskStat(pid, tid)
			if err != nil {
				continue // exited
			}
			ps = append(ps, psEntry{PID: pid, TID: tid, PPID: st.PPID, Comm: st.Comm, State: st.State, CPU: st.CPU, Switches: sw})
			stacks[strconv.Itoa(tid)] = readStack(pid, tid)
		}
	}
	if err := writeJSONFile(filepath.Join(dir, "ps.json"), ps); err != nil {
		return err
	}
	if err := writeJSONFile(filepath.Join(dir, "stacks.json"), stacks); err != nil {
		return err
	}
	meta := snapshotMeta{
		ExcludedPID: self, Tasks: len(ps),
		Note: "the snapshot process (all its threads) is excluded: it exits right after writing these files",
	}
	if err := writeJSONFile(filepath.Join(dir, "snapshot-meta.json"), meta); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "workload: snapshot: %d tasks written to %s\n", len(ps), dir)
	return nil
}

// readSwitches returns a task's context switches, voluntary and not,
// from /proc/PID/task/TID/status.
func readSwitches(pid, tid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		return 0, err
	}
	var n uint64
	found := 0
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
			continue
		}
		c, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%d/status: %s: %w", pid, tid, k, err)
		}
		n += c
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("/proc/%d/task/%d/status: no context switch counts", pid, tid)
	}
	return n, nil
}

// readStack returns the lines of /proc/PID/task/TID/stack with the
// leading "[<...>] " removed; an empty list if it cannot be read (e.g. the
// task is running).
func readStack(pid, tid int) []string {
	lines := []string{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stack", pid, tid))
	if err != nil {
		return lines
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "[<") {
			if i := strings.Index(l, ">] "); i >= 0 {
				l = l[i+3:]
			}
		}
		lines = append(lines, l)
	}
	return lines
}
