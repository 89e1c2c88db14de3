package objects

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/kinspect/kinspect/btfload"
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

// PossibleCPUs lists the possible CPUs (__cpu_possible_mask), falling
// back to 0..nr_cpu_ids-1.
func (p *Program) PossibleCPUs() ([]int, error) {
	if v, err := p.Variable("__cpu_possible_mask"); err == nil {
		if bv, err := v.Member("bits"); err == nil {
			if b, err := bv.Bytes(); err == nil {
				var cpus []int
				for i := 0; i+8 <= len(b); i += 8 {
					w := binary.LittleEndian.Uint64(b[i:])
					for w != 0 {
						j := bits.TrailingZeros64(w)
						cpus = append(cpus, i*8+j)
						w &= w - 1
					}
				}
				if len(cpus) > 0 {
					return cpus, nil
				}
			}
		}
	}
	n, err := p.NrCPUIDs()
	if err != nil {
		return nil, fmt.Errorf("possible CPUs: %w", err)
	}
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = i
	}
	return cpus, nil
}

// PerCPUOffsets returns __per_cpu_offset of each possible CPU.
func (p *Program) PerCPUOffsets() ([]uint64, error) {
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return nil, err
	}
	offs := make([]uint64, len(cpus))
	for i, c := range cpus {
		if offs[i], err = p.PerCPUOffset(c); err != nil {
			return nil, err
		}
	}
	return offs, nil
}

// ParseCPUSpec reads crash's cpuspec, the CPUs of `p SYMBOL:CPUSPEC`:
// "a" or "all" for every possible CPU, else a comma-separated list of
// CPU numbers and ranges ("0,2-3"), in the order given. A CPU that is not
// possible is an error wrapping ErrNotFound.
func (p *Program) ParseCPUSpec(spec string) ([]int, error) {
	possible, err := p.PossibleCPUs()
	if err != nil {
		return nil, err
	}
	if spec == "a" || spec == "all" {
		return possible, nil
	}
	isPossible := make(map[int]bool, len(possible))
	for _, c := range possible {
		isPossible[c] = true
	}
	var cpus []int
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return nil, fmt.Errorf("cpuspec %q: %q is not a CPU or a range of CPUs (a, all, 0,2-3): %w", spec, part, btfload.ErrFormat)
		}
		if b-a >= len(possible) {
			return nil, fmt.Errorf("cpuspec %q: %d CPUs in %q, %d possible: %w", spec, b-a+1, part, len(possible), ErrNotFound)
		}
		for c := a; c <= b; c++ {
			if !isPossible[c] {
				return nil, fmt.Errorf("cpuspec %q: CPU %d is not possible (possible: %s): %w", spec, c, cpuList(possible), ErrNotFound)
			}
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// cpuList writes CPUs as the kernel's cpulist format does ("0-3,6").
func cpuList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", cpus[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", cpus[i], cpus[j])
		}
		i = j + 1
	}
	return b.String()
}

// CPUValue is one CPU's copy of a per-CPU object.
type CPUValue struct {
	CPU   int
	Value Value
}

// PerCPUEach returns v's copy (PerCPU) on each of cpus, in their order.
func (p *Program) PerCPUEach(v Value, cpus []int) ([]CPUValue, error) {
	out := make([]CPUValue, 0, len(cpus))
	for _, c := range cpus {
		pv, err := p.PerCPU(v, c)
		if err != nil {
			return out, err
		}
		out = append(out, CPUValue{CPU: c, Value: pv})
	}
	return out, nil
}
