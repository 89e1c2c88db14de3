package btfload

import (
	"os"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/vmcore"
)

func TestLabModulesBTF(t *testing.T) {
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
		defer d.Close()
		k, _ := d.Kernel()
		syms := loadTruthSyms(t, sc.Path("truth/kallsyms.txt"))
		spec, err := FromMemory(k, syms)
		if err != nil {
			t.Fatal(err)
		}
		mods, problems, err := LoadModules(k, syms, spec)
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
