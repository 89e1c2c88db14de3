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

// labSpecs loads vmlinux BTF from each built scenario's ELF dump.
func labSpecs(t testing.TB) map[string]*Spec {
	t.Helper()
	out := map[string]*Spec{}
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
		s, err := FromMemory(k, loadTruthSyms(t, sc.Path("truth/kallsyms.txt")))
		if err != nil {
			t.Fatalf("%s: %v", sc.Scenario, err)
		}
		out[sc.Scenario] = s
	}
	return out
}
