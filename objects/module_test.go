package objects

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/kallsyms"
)

func TestSizeModuleSymbols(t *testing.T) {
	regions := []ModuleRegion{{Name: "text", Base: 0x1000, Size: 0x100}, {Name: "data", Base: 0x2000, Size: 0x80}}
	syms := []kallsyms.Symbol{
		{Name: "f", Addr: 0x1000}, {Name: "f_alias", Addr: 0x1000}, {Name: "g", Addr: 0x1040},
		{Name: "$x", Addr: 0x1050}, // a mapping symbol is no boundary
		{Name: "h", Addr: 0x10c0}, {Name: "v", Addr: 0x2000}, {Name: "w", Addr: 0x2010},
		{Name: "elsewhere", Addr: 0x9000},
	}
	sizeModuleSymbols(syms, regions)
	want := map[string]uint64{"f": 0x40, "f_alias": 0x40, "g": 0x80, "$x": 0x70, "h": 0x40, "v": 0x10, "w": 0x70, "elsewhere": 0}
	for _, s := range syms {
		if s.Size != want[s.Name] {
			t.Errorf("%s: size %#x, want %#x", s.Name, s.Size, want[s.Name])
		}
	}
}

// truthKallsyms reads truth/kallsyms.txt's lines of modules (and [bpf])
// as "ADDR TYPE NAME [MOD]" strings.
func truthKallsyms(t *testing.T, path string, bpf bool) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 || fs[3] == "[__builtin__ftrace]" || (fs[3] == "[bpf]") != bpf {
			continue
		}
		out[strings.Join(fs, " ")] = true
	}
	return out
}

// TestLabModuleKallsyms: the module symbols read from each dump are the
// guest's /proc/kallsyms module lines: address, type letter, name.
func TestLabModuleKallsyms(t *testing.T) {
	for name, p := range labPrograms(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := scenarioOf(name)
			truth := truthKallsyms(t, sc.Path("truth/kallsyms.txt"), false)
			tab := kallsyms.FromMemory(nil, kallsyms.Locations{})
			if err := AddModuleSymbols(p, tab); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for s := range tab.All() {
				if s.Module != "" {
					got[fmt.Sprintf("%016x %c %s [%s]", s.Addr, s.Type, s.Name, s.Module)] = true
				}
			}
			compareSets(t, "module symbols", got, truth)
		})
	}
}

// TestLabModules: the module list is /proc/modules: name, size, base,
// refcount.
func TestLabModules(t *testing.T) {
	for name, p := range labPrograms(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(scenarioOf(name).Path("truth/modules.txt"))
			if err != nil {
				t.Fatal(err)
			}
			truth := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				fs := strings.Fields(l)
				truth[fs[0]] = fmt.Sprintf("%s %s %s", fs[1], fs[2], fs[len(fs)-1])
			}
			got := map[string]string{}
			for mod, err := range ForEachModule(p) {
				if err != nil {
					t.Fatal(err)
				}
				m, err := ReadModule(mod)
				if err != nil {
					t.Fatal(err)
				}
				got[m.Name] = fmt.Sprintf("%d %d %#x", m.Size, m.Refcount, m.Base)
				if m.State != "MODULE_STATE_LIVE" {
					t.Errorf("%s: state %s", m.Name, m.State)
				}
			}
			for n, w := range truth {
				if got[n] != w {
					t.Errorf("module %s: %q, truth %q", n, got[n], w)
				}
			}
			if len(got) != len(truth) {
				t.Errorf("%d modules, truth %d", len(got), len(truth))
			}
			t.Logf("%d modules match /proc/modules (size, refcount, address)", len(truth))
		})
	}
}

// TestLabBPFKallsyms: bpf_kallsyms is /proc/kallsyms's [bpf] lines.
func TestLabBPFKallsyms(t *testing.T) {
	for name, p := range labPrograms(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			truth := truthKallsyms(t, scenarioOf(name).Path("truth/kallsyms.txt"), true)
			tab := kallsyms.FromMemory(nil, kallsyms.Locations{})
			if err := AddBPFSymbols(p, tab); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for s := range tab.All() {
				if s.Module == kallsyms.BPFModule {
					got[fmt.Sprintf("%016x %c %s [%s]", s.Addr, s.Type, s.Name, s.Module)] = true
					if s.Size == 0 {
						t.Errorf("%s: size 0", s.Name)
					}
				}
			}
			compareSets(t, "BPF symbols", got, truth)
		})
	}
}

func compareSets(t *testing.T, what string, got, truth map[string]bool) {
	t.Helper()
	var missing, extra []string
	for k := range truth {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !truth[k] {
			extra = append(extra, k)
		}
	}
	t.Logf("%s: %d in the truth, %d read, %d missing, %d extra", what, len(truth), len(got), len(missing), len(extra))
	if len(truth) == 0 {
		t.Errorf("%s: none in the truth", what)
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: missing %d %v; extra %d %v", what, len(missing), head(missing, 10), len(extra), head(extra, 10))
	}
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "... "+strconv.Itoa(len(s)-n)+" more")
	}
	return s
}
