package kinspect

import (
	"testing"

	"github.com/kinspect/kinspect/vmcore"
)

// TestNumberCPUs: a kdump whose capture kernel skipped CPU 1 (it did not
// stop) holds the notes of CPUs 0 and 2 in order; the crash_notes
// buffers say which is which.
func TestNumberCPUs(t *testing.T) {
	cpu := func(i, pid int, rip uint64) vmcore.CPU {
		return vmcore.CPU{Index: i, PID: pid, HasRegs: true, Regs: vmcore.Regs{RIP: rip}}
	}
	notes := []vmcore.CPU{cpu(0, 10, 0x100), cpu(1, 30, 0x300)}
	saved := []vmcore.CPU{cpu(0, 10, 0x100), cpu(2, 30, 0x300)}
	got := numberCPUs(notes, saved)
	if len(got) != 2 || got[0].Index != 0 || got[1].Index != 2 {
		t.Errorf("numbered %+v", got)
	}
	// Nothing saved in memory (a QEMU dump): the order stands.
	if got := numberCPUs(notes, nil); got[1].Index != 1 {
		t.Errorf("without crash notes: %+v", got)
	}
	// Two idle CPUs with the same pid are told apart by their registers.
	notes = []vmcore.CPU{cpu(0, 0, 0x10), cpu(1, 0, 0x20)}
	saved = []vmcore.CPU{cpu(3, 0, 0x20), cpu(5, 0, 0x10)}
	if got := numberCPUs(notes, saved); got[0].Index != 5 || got[1].Index != 3 {
		t.Errorf("idle CPUs: %+v", got)
	}
}
