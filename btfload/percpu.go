package btfload

import (
	"fmt"
	"sort"

	"github.com/cilium/ebpf/btf"
)

// PerCPUSection is the DATASEC of per-CPU variables.
const PerCPUSection = ".data..percpu"

// PerCPUVar is a per-CPU variable typed by BTF.
type PerCPUVar struct {
	Name string
	Type btf.Type
	// Offset is the variable's offset in the per-CPU section, which is
	// also its symbol's value (per-CPU symbols are section-relative).
	Offset uint32
	Size   uint32
}

// PerCPUVar returns the per-CPU variable called name from the
// .data..percpu DATASEC (vmlinux BTF has it since pahole 1.18, kernel
// 5.7+). Errors wrap ErrNotFound with close names.
func (s *Spec) PerCPUVar(name string) (PerCPUVar, error) {
	vars, err := s.perCPUVars()
	if err != nil {
		return PerCPUVar{}, err
	}
	i := sort.Search(len(vars), func(i int) bool { return vars[i].Name >= name })
	if i < len(vars) && vars[i].Name == name {
		return vars[i], nil
	}
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.Name
	}
	return PerCPUVar{}, fmt.Errorf("no per-CPU variable named %s%s: %w", name, SuggestSuffix(Closest(name, names, 5)), ErrNotFound)
}

// PerCPUVars lists the per-CPU variables, sorted by name.
func (s *Spec) PerCPUVars() ([]PerCPUVar, error) { return s.perCPUVars() }

func (s *Spec) perCPUVars() ([]PerCPUVar, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.percpu != nil {
		return s.percpu, nil
	}
	spec := s.spec
	if s.base != nil {
		spec = s.base.spec
	}
	var ds *btf.Datasec
	if err := spec.TypeByName(PerCPUSection, &ds); err != nil {
		return nil, fmt.Errorf("no DATASEC %s in BTF (pahole before 1.18?): %v: %w", PerCPUSection, err, ErrNotFound)
	}
	out := []PerCPUVar{}
	for _, vs := range ds.Vars {
		v, ok := vs.Type.(*btf.Var)
		if !ok {
			continue
		}
		out = append(out, PerCPUVar{Name: v.Name, Type: v.Type, Offset: vs.Offset, Size: vs.Size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	s.percpu = out
	return out, nil
}
