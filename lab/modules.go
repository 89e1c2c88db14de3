package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// guestModules are the modules the guest loads: qemu_fw_cfg makes QEMU
// write VMCOREINFO into its dumps; the rest mount the host's truth
// directory over virtio 9p; dummy, veth, 8021q and bridge make the network
// devices of init.sh, sch_ingress (clsact) and cls_bpf carry its tc
// programs.
var guestModules = []string{"qemu_fw_cfg", "virtio_pci", "9pnet_virtio", "9p", "dummy", "veth", "8021q", "bridge", "sch_ingress", "cls_bpf"}

// panicModules are loaded only where the guest is to panic: pvpanic_mmio
// drives QEMU's ISA pvpanic device, which tells QEMU to hold the panicked
// guest (-action panic=pause).
var panicModules = []string{"pvpanic_mmio"}

// modulesFor lists the modules a scenario's guest loads.
func modulesFor(s scenario) []string {
	if s.Panic {
		return append(append([]string(nil), guestModules...), panicModules...)
	}
	return guestModules
}

// moduleSet is the modules of a kernel: name to path, and the built-in ones.
type moduleSet struct {
	paths   map[string]string
	builtin map[string]bool
}

func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func loadModuleSet(dir string) (*moduleSet, error) {
	ms := &moduleSet{paths: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := d.Name()
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if strings.HasSuffix(base, ext) {
				ms.paths[modName(strings.TrimSuffix(base, ext))] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modules in %s: %w", dir, err)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			ms.builtin[modName(strings.TrimSuffix(filepath.Base(sc.Text()), ".ko"))] = true
		}
		f.Close()
	}
	return ms, nil
}

// loadOrder returns the modules to load for names, dependencies first,
// leaving out built-in ones.
func (ms *moduleSet) loadOrder(names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string) error
	visit = func(n string) error {
		n = modName(n)
		if ms.builtin[n] || state[n] == 2 {
			return nil
		}
		if state[n] == 1 {
			return fmt.Errorf("module dependency cycle at %s", n)
		}
		p, ok := ms.paths[n]
		if !ok {
			return fmt.Errorf("module %s: neither a file nor built in", n)
		}
		state[n] = 1
		data, err := readModule(p)
		if err != nil {
			return err
		}
		deps, err := modinfoDepends(data)
		if err != nil {
			return fmt.Errorf("module %s: %w", p, err)
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModule returns the module's ELF bytes, decompressing .ko.xz and
// .ko.zst with the host's tools.
func readModule(p string) ([]byte, error) {
	switch {
	case strings.HasSuffix(p, ".xz"):
		return exec.Command("xz", "-dc", p).Output()
	case strings.HasSuffix(p, ".zst"):
		return exec.Command("zstd", "-dc", p).Output()
	case strings.HasSuffix(p, ".gz"):
		return exec.Command("gzip", "-dc", p).Output()
	}
	return os.ReadFile(p)
}

// modinfoDepends reads depends= from the module's .modinfo section.
func modinfoDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
