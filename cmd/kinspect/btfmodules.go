package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// lookupType finds a type by name in vmlinux's BTF, then in the modules'
// split BTF: the btf_modules list of k's memory, or /sys/kernel/btf/MODULE
// when k is nil (live, types only). Modules are read only on a miss;
// vmlinux's error (with its suggestions) is kept when no module has the
// type either.
func lookupType(k *kernel, vmlinux *btfload.Spec, name string) (btf.Type, error) {
	t, err := vmlinux.Type(name)
	if err == nil || !errors.Is(err, btfload.ErrNotFound) {
		return t, err
	}
	mods, merr := moduleSpecs(k, vmlinux)
	for _, m := range mods {
		if mt, err := m.Type(name); err == nil {
			return mt, nil
		}
	}
	if merr != nil {
		return nil, fmt.Errorf("%w (modules' BTF not searched: %v)", err, merr)
	}
	return nil, fmt.Errorf("%w (nor in the BTF of %d modules)", err, len(mods))
}

// moduleSpecs loads every module's split BTF on top of vmlinux.
func moduleSpecs(k *kernel, vmlinux *btfload.Spec) ([]*btfload.Spec, error) {
	if k == nil {
		paths, _ := filepath.Glob("/sys/kernel/btf/*")
		var out []*btfload.Spec
		for _, p := range paths {
			name := filepath.Base(p)
			if name == "vmlinux" {
				continue
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			if s, err := btfload.ParseSplit(raw, vmlinux, name, p); err == nil {
				out = append(out, s)
			}
		}
		return out, nil
	}
	if k.dump == nil {
		return nil, k.noMemory
	}
	as, err := k.dump.Kernel()
	if err != nil {
		return nil, err
	}
	mods, _, err := btfload.LoadModules(as, tableSymbols{k.syms}, vmlinux)
	return mods, err
}
