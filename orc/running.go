package orc

import (
	"sort"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// Running knows, for a dump, which task each CPU was running and the
// registers the dump saved for that CPU. A running task's switch frame is
// stale: it must be unwound from its CPU's registers instead.
type Running struct {
	regs    map[int]vmcore.Regs
	current map[uint64]int // task address -> its CPU
	cpus    []int          // CPUs with registers, in order
}

// NewRunning reads the current task of every CPU of cpus that has saved
// registers. A CPU whose current task cannot be read keeps its registers
// but runs no task as far as Running knows. cpus may be nil (a live
// kernel): then every task is unwound from its switch frame.
func NewRunning(p *objects.Program, cpus []vmcore.CPU) *Running {
	r := &Running{regs: map[int]vmcore.Regs{}, current: map[uint64]int{}}
	for _, c := range cpus {
		if !c.HasRegs {
			continue
		}
		r.regs[c.Index] = c.Regs
		r.cpus = append(r.cpus, c.Index)
		if t, err := linux.CurrentTask(p, c.Index); err == nil {
			if a, ok := t.Address(); ok {
				r.current[a] = c.Index
			}
		}
	}
	sort.Ints(r.cpus)
	return r
}

// CPUs returns the CPUs with saved registers, in order.
func (r *Running) CPUs() []int { return r.cpus }

// HasRegs reports whether the dump saved cpu's registers.
func (r *Running) HasRegs(cpu int) bool {
	_, ok := r.regs[cpu]
	return ok
}

// CPUOf returns the CPU the task at addr was running on.
func (r *Running) CPUOf(addr uint64) (int, bool) {
	cpu, ok := r.current[addr]
	return cpu, ok
}

// Unwind unwinds task: from its CPU's saved registers when it was running
// there (cpu is that CPU), else from its switch frame (cpu is -1).
func (k *Kernel) Unwind(task objects.Value, r *Running) (tr *Trace, cpu int, err error) {
	if a, ok := task.Address(); ok {
		if cpu, ok := r.CPUOf(a); ok {
			tr, err = k.UnwindRegs(r.regs[cpu], cpu, task)
			return tr, cpu, err
		}
	}
	tr, err = k.UnwindTask(task)
	return tr, -1, err
}
