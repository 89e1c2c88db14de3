package btfload

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/vmcore"
)

// truthSyms is a Symbolizer over the guest's /proc/kallsyms, standing in
// for the kallsyms package in tests.
type truthSyms map[string]uint64

func (s truthSyms) Resolve(name string) (uint64, error) {
	if a, ok := s[name]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("no symbol named %s: %w", name, ErrNotFound)
}

func loadTruthSyms(t testing.TB, path string) truthSyms {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := truthSyms{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || len(fs) > 3 {
			continue // module symbols have a 4th field
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			continue
		}
		if _, dup := s[fs[2]]; !dup {
			s[fs[2]] = a
		}
	}
	return s
}

// labKernel is a built scenario's ELF dump with its vmlinux BTF, read
// with the truth's symbols.
type labKernel struct {
	sc   *labdata.Scenario
	mem  Memory
	syms truthSyms
	spec *Spec
}

// labKernels opens each built scenario's ELF dump.
func labKernels(t testing.TB) []labKernel {
	t.Helper()
	var out []labKernel
	if _, err := labdata.Load("basic"); err != nil {
		return out
	}
	for _, sc := range labdata.Built(t) {
		if sc.Live {
			continue
		}
		f, ok := sc.Format("elf")
		if !ok {
			continue
		}
		d, err := vmcore.Open(sc.Path(f.Path))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		k, err := d.Kernel()
		if err != nil {
			t.Fatal(err)
		}
		syms := loadTruthSyms(t, sc.Path("truth/kallsyms.txt"))
		s, err := FromMemory(k, syms)
		if err != nil {
			t.Fatalf("%s: %v", sc.Scenario, err)
		}
		out = append(out, labKernel{sc, k, syms, s})
	}
	return out
}

// labSpecs is labKernels' vmlinux BTF by scenario.
func labSpecs(t testing.TB) map[string]*Spec {
	t.Helper()
	out := map[string]*Spec{}
	for _, lk := range labKernels(t) {
		out[lk.sc.Scenario] = lk.spec
	}
	return out
}

// TestLabModulesBTF: every module's split BTF in btf_modules loads, and
// belongs to a module the guest listed.
func TestLabModulesBTF(t *testing.T) {
	for _, lk := range labKernels(t) {
		sc := lk.sc
		mods, problems, err := LoadModules(lk.mem, lk.syms, lk.spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems {
			t.Errorf("%s: module %s: %v", sc.Scenario, pr.Module, pr.Err)
		}
		b, _ := os.ReadFile(sc.Path("truth/modules.txt"))
		var names []string
		for _, m := range mods {
			names = append(names, m.Name)
			if !strings.Contains(string(b), m.Name+" ") {
				t.Errorf("module %s is not in modules.txt", m.Name)
			}
		}
		t.Logf("%s: module BTF of %v", sc.Scenario, names)
		if len(mods) == 0 {
			t.Errorf("%s: no module BTF", sc.Scenario)
		}
	}
}
