package bpf_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/kallsyms"
)

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

// TestLabBPFKallsyms: bpf_kallsyms is /proc/kallsyms's [bpf] lines.
func TestLabBPFKallsyms(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			truth := truthKallsyms(t, labkernel.Scenario(name).Path("truth/kallsyms.txt"), true)
			tab := kallsyms.FromMemory(nil, kallsyms.Locations{})
			if err := bpf.AddSymbols(p, tab); err != nil {
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
