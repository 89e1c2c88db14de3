package orc

import (
	"slices"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
)

// TestLabRunning checks, against the workload's record of its spinner,
// that the spinner's thread is known to run on its CPU, and that every
// CPU of the scenario has saved registers.
func TestLabRunning(t *testing.T) {
	for _, sc := range labdata.Built(t) {
		if sc.Live {
			continue
		}
		t.Run(sc.Scenario, func(t *testing.T) {
			lk := openLab(t, sc, "elf")
			var wl struct {
				Spinner struct {
					TID int `json:"tid"`
					CPU int `json:"cpu"`
				} `json:"spinner"`
			}
			labdata.ReadJSON(t, sc.Path("truth/workload.json"), &wl)
			r := NewRunning(lk.prog, lk.dump.CPUs())
			var want []int
			for i := range sc.CPUs {
				want = append(want, i)
			}
			if !slices.Equal(r.CPUs(), want) {
				t.Errorf("CPUs with registers %v, want %v", r.CPUs(), want)
			}
			task, err := linux.FindTask(lk.prog, wl.Spinner.TID)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := task.Address()
			if cpu, ok := r.CPUOf(a); !ok || cpu != wl.Spinner.CPU {
				t.Errorf("spinner %d runs on CPU %d (%v), want %d", wl.Spinner.TID, cpu, ok, wl.Spinner.CPU)
			}
			if _, cpu, err := lk.orc.Unwind(task, r); err != nil || cpu != wl.Spinner.CPU {
				t.Errorf("Unwind of the spinner: CPU %d, %v", cpu, err)
			}
			if r.HasRegs(len(want)) {
				t.Errorf("CPU %d has registers", len(want))
			}
		})
	}
}
