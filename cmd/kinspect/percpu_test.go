package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// printRow is one object of print --json.
type printRow struct {
	Expr    string          `json:"expr"`
	CPU     *int            `json:"cpu"`
	Address string          `json:"address"`
	Value   json.RawMessage `json:"value"`
}

// TestLabPerCPU: print's VAR:CPUSPEC (crash's per-CPU syntax) against
// what the kernel sets by design, on every built scenario (its ELF and
// kdump dumps): x86's setup_per_cpu_areas stores each CPU's number in
// its cpu_number (pcpu_hot.cpu_number since 6.2) and its
// __per_cpu_offset in its this_cpu_off. The possible CPUs are the guest's
// (the manifest's CPUs). The JS twin, kernel.percpu(var[, spec]), gives
// the same CPUs and addresses.
func TestLabPerCPU(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		for _, format := range []string{"elf", "kdump-zlib", "qemu-kdump-zlib.flat"} {
			f, ok := s.Format(format)
			if !ok {
				continue
			}
			t.Run(s.Scenario+"/"+format, func(t *testing.T) {
				dump := s.Path(f.Path)
				numberVar, member := "cpu_number", ""
				if !strings.HasPrefix(s.KernelVersion, "6.1.") {
					numberVar, member = "pcpu_hot", "cpu_number"
				}
				var rows []printRow
				runJSON(t, &rows, "--json", "-c", dump, "print", numberVar+":a", "this_cpu_off:all")
				offs := make([]string, s.CPUs)
				for c := range s.CPUs {
					var r printRow
					runJSON(t, &r, "--json", "-c", dump, "print", fmt.Sprintf("__per_cpu_offset[%d]", c))
					offs[c] = string(r.Value)
				}
				if len(rows) != 2*s.CPUs {
					t.Fatalf("%d rows for %d CPUs: %+v", len(rows), s.CPUs, rows)
				}
				for i, r := range rows {
					c := i % s.CPUs
					if r.CPU == nil || *r.CPU != c {
						t.Errorf("row %d (%s): CPU %v, want %d", i, r.Expr, r.CPU, c)
						continue
					}
					if i < s.CPUs {
						got := string(r.Value)
						if member != "" {
							var m map[string]json.RawMessage
							if err := json.Unmarshal(r.Value, &m); err != nil {
								t.Fatal(err)
							}
							got = string(m[member])
						}
						if got != fmt.Sprint(c) {
							t.Errorf("per_cpu(%s, %d).%s = %s", numberVar, c, member, got)
						}
					} else if string(r.Value) != offs[c] {
						t.Errorf("per_cpu(this_cpu_off, %d) = %s, __per_cpu_offset[%d] = %s", c, r.Value, c, offs[c])
					}
				}
				twin := js(t, dump, `kernel.percpu("this_cpu_off").map((x) => ({cpu: x.cpu, address: "0x" + x.value.addr_.toString(16)}))`)
				var want []any
				for _, r := range rows[s.CPUs:] {
					want = append(want, map[string]any{"cpu": float64(*r.CPU), "address": r.Address})
				}
				if fmt.Sprint(twin) != fmt.Sprint(want) {
					t.Errorf("kernel.percpu(\"this_cpu_off\"): %v, print: %v", twin, want)
				}
				if one := js(t, dump, `kernel.percpu("this_cpu_off", "1").map((x) => x.cpu)`); fmt.Sprint(one) != "[1]" {
					t.Errorf(`kernel.percpu("this_cpu_off", "1"): CPUs %v`, one)
				}
				// Not per-CPU, not a CPU: errors, not garbage.
				for _, bad := range []string{"init_task:a", "this_cpu_off:" + fmt.Sprint(s.CPUs)} {
					var out, errb bytes.Buffer
					if code := run([]string{"-c", dump, "print", bad}, &out, &errb); code == 0 || errb.Len() == 0 {
						t.Errorf("print %s: exit %d: %s%s", bad, code, out.String(), errb.String())
					}
				}
			})
		}
	}
}
