package labdata

import (
	"fmt"
	"testing"
)

// PSTask is one task of truth/ps.json: the snapshot the guest took of
// every task last before the dump (lab/workload/snapshot.go).
type PSTask struct {
	PID   int    `json:"pid"`
	TID   int    `json:"tid"`
	PPID  int    `json:"ppid"`
	Comm  string `json:"comm"`
	State string `json:"state"`
	CPU   int    `json:"cpu"`
	// Switches is the task's context switches (voluntary and not) read
	// just before its state and stack; nil from a lab that did not
	// record them.
	Switches *uint64 `json:"switches"`
}

// ReadPS reads the snapshot's tasks (truth/ps.json) and the snapshot
// process's PID, whose threads it leaves out (snapshot-meta.json). A
// snapshot without switch counts (an older lab's) fails the test: the
// scenario must be rebuilt.
func ReadPS(tb testing.TB, s *Scenario) ([]PSTask, int) {
	tb.Helper()
	var ps []PSTask
	ReadJSON(tb, s.Path("truth/ps.json"), &ps)
	for _, t := range ps {
		if t.Switches == nil {
			tb.Fatalf("%s: truth/ps.json has no switch counts (task %d): built by an older lab; rebuild it (go run ./lab %s)", s.Scenario, t.TID, s.Scenario)
		}
	}
	var meta struct {
		Excluded int `json:"excluded_pid"`
	}
	ReadJSON(tb, s.Path("truth/snapshot-meta.json"), &meta)
	return ps, meta.Excluded
}

// RanSince says why a task may show another state or stack in the dump
// than the snapshot saw, given what the dump holds for it: its state
// letter, whether it is a CPU's current task, and its context switches
// (linux.ContextSwitches, summed). A task switched out since has run since; a CPU's
// current task runs; a task woken since is runnable ("R") before it
// first runs, and nothing else changes a task's state without a switch.
// It returns "" when none of these holds: the dump must show the task as
// the snapshot did.
func (t PSTask) RanSince(state string, onCPU bool, switches uint64) string {
	switch {
	case t.Switches == nil:
		return ""
	case onCPU:
		return "on a CPU in the dump"
	case switches > *t.Switches:
		return fmt.Sprintf("switched out %d times since", switches-*t.Switches)
	case state == "R" && switches == *t.Switches:
		return "woken since, not yet run"
	}
	return ""
}
