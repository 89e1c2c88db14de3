package btfload

import (
	"bytes"
	"fmt"
)

// maxModules bounds the walk of btf_modules.
const maxModules = 1 << 14

// ModuleProblem is a module whose BTF could not be loaded.
type ModuleProblem struct {
	Module string
	Err    error
}

// LoadModules reads the split BTF of every module from the kernel's
// btf_modules list (kernel/bpf/btf.c, 5.11+): struct btf_module { struct
// list_head list; struct module *module; struct btf *btf; ... }, whose
// btf->data holds btf->data_size bytes of split BTF on top of vmlinux.
// Every offset comes from vmlinux's BTF. Modules whose BTF fails to load
// are returned as problems; the walk itself is bounded and stops with an
// error on a cycle or a fault. Errors wrap ErrNotFound (no btf_modules:
// CONFIG_DEBUG_INFO_BTF_MODULES off, or a kernel before 5.11).
func LoadModules(mem Memory, syms Symbolizer, vmlinux *Spec) ([]*Spec, []ModuleProblem, error) {
	head, err := syms.Resolve("btf_modules")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: find btf_modules: %w", err)
	}
	r := reader{mem, vmlinux}
	listOff, _, err := r.offset("struct btf_module", "list")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: module BTF: %w", err)
	}
	modOff, _, err := r.offset("struct btf_module", "module")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: module BTF: %w", err)
	}
	btfOff, _, err := r.offset("struct btf_module", "btf")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: module BTF: %w", err)
	}
	dataOff, _, err := r.offset("struct btf", "data")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: module BTF: %w", err)
	}
	sizeOff, sizeT, err := r.offset("struct btf", "data_size")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: module BTF: %w", err)
	}
	nameOff, nameT, err := r.offset("struct module", "name")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: module BTF: %w", err)
	}
	nameLen := 56 // MODULE_NAME_LEN, unless BTF says otherwise
	if n, err := sizeofType(nameT); err == nil {
		nameLen = n
	}
	nextOff, _, err := r.offset("struct list_head", "next")
	if err != nil {
		return nil, nil, fmt.Errorf("btf: module BTF: %w", err)
	}

	var specs []*Spec
	var problems []ModuleProblem
	seen := map[uint64]bool{head: true}
	pos := head
	for i := 0; ; i++ {
		if i >= maxModules {
			return specs, problems, fmt.Errorf("btf: btf_modules at %#x: more than %d entries: %w", head, maxModules, ErrFormat)
		}
		next, err := r.u64(pos + nextOff)
		if err != nil {
			return specs, problems, fmt.Errorf("btf: btf_modules: read next of %#x: %w", pos, err)
		}
		if next == head {
			break
		}
		if seen[next] {
			return specs, problems, fmt.Errorf("btf: btf_modules at %#x: node %#x seen twice (a cycle): %w", head, next, ErrFormat)
		}
		if next == 0 {
			return specs, problems, fmt.Errorf("btf: btf_modules: NULL next in node %#x: %w", pos, ErrFormat)
		}
		seen[next] = true
		pos = next
		bm := pos - listOff
		name := fmt.Sprintf("btf_module@%#x", bm)
		fail := func(err error) { problems = append(problems, ModuleProblem{name, err}) }
		mod, err := r.u64(bm + modOff)
		if err != nil {
			fail(err)
			continue
		}
		nb := make([]byte, nameLen)
		if _, err := mem.ReadVirt(nb, mod+nameOff); err == nil {
			if j := bytes.IndexByte(nb, 0); j >= 0 {
				nb = nb[:j]
			}
			name = string(nb)
		}
		bt, err := r.u64(bm + btfOff)
		if err != nil {
			fail(err)
			continue
		}
		data, err := r.u64(bt + dataOff)
		if err != nil {
			fail(err)
			continue
		}
		size, err := r.uint(bt+sizeOff, sizeT)
		if err != nil {
			fail(err)
			continue
		}
		if size > maxBTFSize {
			fail(fmt.Errorf("btf at %#x: data_size %d is implausible: %w", bt, size, ErrFormat))
			continue
		}
		raw := make([]byte, size)
		if _, err := mem.ReadVirt(raw, data); err != nil {
			fail(fmt.Errorf("read BTF data at %#x: %w", data, err))
			continue
		}
		s, err := ParseSplit(raw, vmlinux, name, fmt.Sprintf("module %s memory %#x+%#x", name, data, size))
		if err != nil {
			fail(err)
			continue
		}
		specs = append(specs, s)
	}
	return specs, problems, nil
}
