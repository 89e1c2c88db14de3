package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// taskStat is the part of /proc/PID/task/TID/stat the workload uses.
type taskStat struct {
	PID   int
	TID   int
	PPID  int
	Comm  string
	State string
	// CPU is field 39, the CPU the task last ran on.
	CPU int
	// UTime and STime are fields 14 and 15, in clock ticks.
	UTime, STime uint64
}

// readTaskStat reads /proc/PID/task/TID/stat.
func readTaskStat(pid, tid int) (taskStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return taskStat{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return taskStat{}, fmt.Errorf("/proc/%d/task/%d/stat: %w", pid, tid, err)
	}
	st.PID = pid
	return st, nil
}

// parseStat parses a /proc stat line. The comm field is in parentheses
// and may itself contain spaces and parentheses, so the fields after it
// are found from the last ')'.
func parseStat(b []byte) (taskStat, error) {
	var st taskStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return st, fmt.Errorf("malformed stat %q", b)
	}
	tid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return st, fmt.Errorf("malformed pid in stat %q", b)
	}
	st.TID = tid
	st.Comm = string(b[open+1 : closing])
	// rest[0] is field 3 (state), so field n is rest[n-3].
	rest := strings.Fields(string(b[closing+1:]))
	if len(rest) < 39-2 {
		return st, fmt.Errorf("stat has %d fields after comm, want at least %d", len(rest), 39-2)
	}
	field := func(n int) string { return rest[n-3] }
	st.State = field(3)
	if st.PPID, err = strconv.Atoi(field(4)); err != nil {
		return st, fmt.Errorf("ppid: %w", err)
	}
	if st.UTime, err = strconv.ParseUint(field(14), 10, 64); err != nil {
		return st, fmt.Errorf("utime: %w", err)
	}
	if st.STime, err = strconv.ParseUint(field(15), 10, 64); err != nil {
		return st, fmt.Errorf("stime: %w", err)
	}
	if st.CPU, err = strconv.Atoi(field(39)); err != nil {
		return st, fmt.Errorf("processor: %w", err)
	}
	return st, nil
}

// listNumeric returns the numeric entries of dir, sorted.
func listNumeric(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, e := range ents {
		if id, err := strconv.Atoi(e.Name()); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids, nil
}

// listPIDs returns the PIDs of every process (thread group) in /proc.
func listPIDs() ([]int, error) { return listNumeric("/proc") }

// listTIDs returns the thread IDs of process pid.
func listTIDs(pid int) ([]int, error) { return listNumeric(fmt.Sprintf("/proc/%d/task", pid)) }

// readWchan returns /proc/PID/wchan, or "" if it cannot be read.
func readWchan(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
