package orc

import (
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// BenchmarkUnwindAllTasks unwinds and symbolizes every task of the scale
// scenario (2,000+ threads), from an ELF dump already open.
func BenchmarkUnwindAllTasks(b *testing.B) {
	sc := labdata.Require(b, "scale")
	lk := openLab(b, sc, "elf")
	var tasks []objects.Value
	for t, err := range linux.ForEachTask(lk.prog) {
		if err != nil {
			b.Fatal(err)
		}
		tasks = append(tasks, t)
	}
	b.ResetTimer()
	for range b.N {
		k, err := Load(lk.prog, lk.dump.Release())
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range tasks {
			tr, err := k.UnwindTask(t)
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range tr.Frames {
				k.Symbolize(lk.syms, f)
			}
		}
	}
	b.ReportMetric(float64(len(tasks)), "tasks")
}
