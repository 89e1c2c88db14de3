package bpf_test

import (
	"fmt"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/kallsyms"
)

// TestLabBPFKallsyms: bpf_kallsyms is /proc/kallsyms's [bpf] lines.
func TestLabBPFKallsyms(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			truth := labdata.KallsymsLines(t, labkernel.Scenario(name).Path("truth/kallsyms.txt"), true)
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
			labdata.CompareSets(t, "BPF symbols", got, truth)
		})
	}
}
