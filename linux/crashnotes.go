package linux

import (
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// noteBufSize bounds a CPU's crash_notes buffer (note_buf_t,
// CRASH_CORE_NOTE_BYTES: the note headers and a struct elf_prstatus).
const noteBufSize = 1024

// CrashNoteCPUs reads what crash_save_cpu left in each possible CPU's
// crash_notes buffer (kernel/crash_core.c: the per-CPU note_buf_t behind
// the crash_notes pointer) when the kernel kexec'd its capture kernel:
// the CPU's registers and current task, Index its CPU number. CPUs that
// were not stopped (or a dump not made by kexec) have an empty buffer and
// are left out. The capture kernel copies these notes into /proc/vmcore,
// skipping empty ones, so the dump's note order alone does not say which
// CPU a note is; these do.
func CrashNoteCPUs(p *objects.Program) ([]vmcore.CPU, error) {
	v, err := p.Variable("crash_notes")
	if err != nil {
		return nil, err
	}
	base, err := v.Uint()
	if err != nil || base == 0 {
		return nil, err
	}
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return nil, err
	}
	var out []vmcore.CPU
	buf := make([]byte, noteBufSize)
	for _, cpu := range cpus {
		off, err := p.PerCPUOffset(cpu)
		if err != nil {
			return out, err
		}
		if err := p.Read(buf, base+off); err != nil {
			continue
		}
		if c, ok := vmcore.PRStatus(buf); ok {
			c.Index = cpu
			out = append(out, c)
		}
	}
	return out, nil
}
