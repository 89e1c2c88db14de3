package objects

import (
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// NrCPUIDs reads nr_cpu_ids, the bound on possible CPU numbers.
func (p *Program) NrCPUIDs() (int, error) {
	v, err := p.Variable("nr_cpu_ids")
	if err != nil {
		return 0, err
	}
	n, err := v.Uint()
	return int(n), err
}

// PerCPUOffset reads __per_cpu_offset[cpu], the distance from a per-CPU
// variable's address to CPU cpu's copy. Errors wrap ErrNotFound for a
// CPU number past nr_cpu_ids.
func (p *Program) PerCPUOffset(cpu int) (uint64, error) {
	if n, err := p.NrCPUIDs(); err == nil && (cpu < 0 || cpu >= n) {
		return 0, fmt.Errorf("per-CPU offset of CPU %d: nr_cpu_ids is %d: %w", cpu, n, ErrNotFound)
	}
	arr, err := p.Variable("__per_cpu_offset")
	if err != nil {
		return 0, err
	}
	e, err := arr.Index(int64(cpu))
	if err != nil {
		return 0, err
	}
	return e.Uint()
}

// PerCPU returns CPU cpu's copy of a per-CPU object: of v itself (a
// per-CPU variable, or any object at a per-CPU address), or of the object
// a __percpu pointer v points to — the kernel's per_cpu and per_cpu_ptr.
func (p *Program) PerCPU(v Value, cpu int) (Value, error) {
	off, err := p.PerCPUOffset(cpu)
	if err != nil {
		return Value{}, err
	}
	if ptr, ok := v.underlying().(*btf.Pointer); ok && !v.percpu {
		a, err := v.Uint()
		if err != nil {
			return Value{}, err
		}
		return p.Object(ptr.Target, a+off), nil
	}
	if !v.lvalue {
		return Value{}, fmt.Errorf("per_cpu(%s, %d): not an object or pointer: %w", v, cpu, ErrType)
	}
	return p.Object(v.typ, v.addr+off), nil
}
