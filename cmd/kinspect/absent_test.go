package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labcorrupt"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// TestAbsentTasks: a copy of a lab dump that lacks the pages of some
// task_structs (a running task's among them), as makedumpfile's
// misfiltered -d 31 dumps of 6.12 lack slab pages: ps lists every other
// task and names each absent one, bt still unwinds the running task from
// its CPU's registers (the same frames as on the whole dump), and every
// sample finishes with per-object errors.
func TestAbsentTasks(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join("..", "..", "samples", "*.js"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"basic", "k612"} {
		s, err := labdata.Load(name)
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		fm, ok := s.Format("elf")
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			k := labkernel.Open(t, s, "elf")
			p := k.Program()
			size, err := p.SizeofType("struct task_struct")
			if err != nil {
				t.Fatal(err)
			}
			// The tasks to lose: every CPU's current task but the idle
			// ones, and a process from the middle of the task list.
			lose := map[objects.Hex]int{} // task -> CPU it runs on, or -1
			for _, c := range k.CPUs() {
				cur, err := linux.CurrentTask(p, c.Index)
				if err != nil {
					t.Fatal(err)
				}
				idle, err := linux.IdleTask(p, c.Index)
				if err != nil {
					t.Fatal(err)
				}
				if cur.Addr() != idle.Addr() {
					lose[objects.Hex(cur.Addr())] = c.Index
				}
			}
			var all []linux.PSRow
			runJSON(t, &all, "--json", "-c", s.Path(fm.Path), "ps")
			for i := len(all) / 2; i < len(all); i++ {
				if r := all[i]; r.PID == r.TID && r.PPID > 2 {
					if _, ok := lose[r.Task]; !ok {
						lose[r.Task] = -1
						break
					}
				}
			}
			// A lost task's first 4 KiB (pid, comm, the list nodes) go.
			// Its neighbours in the slab may share those pages: they are
			// clipped, listed or named as damage, not checked here.
			running := 0
			var drop []uint64
			for a, cpu := range lose {
				if cpu >= 0 {
					running++
				}
				drop = append(drop, uint64(a)&^4095, (uint64(a)+4095)&^4095)
			}
			clipped := func(task objects.Hex) bool {
				for _, pg := range drop {
					if uint64(task) < pg+4096 && uint64(task)+size > pg {
						return true
					}
				}
				return false
			}
			if running == 0 {
				t.Logf("%s: no CPU runs a task other than its idle task", name)
			}
			dump := filepath.Join(t.TempDir(), "dump")
			if d := os.Getenv("KINSPECT_KEEP_DAMAGED"); d != "" {
				dump = filepath.Join(d, name+"-absent-tasks") // to look at by hand
			}
			if err := labcorrupt.CopyWithout(k, dump, drop); err != nil {
				t.Fatal(err)
			}

			// ps: every other task, and each lost one named.
			var got []linux.PSRow
			var out, errb bytes.Buffer
			code := run([]string{"--json", "-c", dump, "ps"}, &out, &errb)
			if code != exitDamaged {
				t.Errorf("ps: exit %d, want %d: %s", code, exitDamaged, errb.String())
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("ps: %v", err)
			}
			listed := map[objects.Hex]bool{}
			for _, r := range got {
				listed[r.Task] = true
			}
			for _, r := range all {
				_, lost := lose[r.Task]
				switch {
				case lost && listed[r.Task]:
					t.Errorf("ps lists task %d (%#x) whose task_struct the dump lacks", r.TID, uint64(r.Task))
				case !lost && !listed[r.Task] && !clipped(r.Task):
					t.Errorf("ps: task %d (%s, %#x) not listed", r.TID, r.Name, uint64(r.Task))
				}
			}
			for a := range lose {
				if !strings.Contains(errb.String(), fmt.Sprintf("%x", uint64(a))) {
					t.Errorf("ps: the damage report does not name the lost task %#x:\n%s", uint64(a), errb.String())
				}
			}

			// bt -a: every CPU, the one running a lost task from its registers.
			var orig, bt []btCPU
			runJSON(t, &orig, "--json", "-c", s.Path(fm.Path), "bt", "-a")
			out.Reset()
			errb.Reset()
			if code := run([]string{"--json", "-c", dump, "bt", "-a"}, &out, &errb); code != 0 && code != exitDamaged {
				t.Fatalf("bt -a: exit %d: %s", code, errb.String())
			}
			if err := json.Unmarshal(out.Bytes(), &bt); err != nil {
				t.Fatalf("bt -a: %v", err)
			}
			if len(bt) != len(orig) {
				t.Errorf("bt -a: %d CPUs, %d on the whole dump", len(bt), len(orig))
			}
			for _, o := range orig {
				cpu, lost := lose[o.Task]
				var g *btCPU
				for i := range bt {
					if bt[i].CPU == o.CPU {
						g = &bt[i]
					}
				}
				switch {
				case g == nil:
					t.Errorf("bt -a: no trace of CPU %d", o.CPU)
				case lost && cpu == o.CPU && g.TaskError == "":
					t.Errorf("bt -a: CPU %d runs the lost task %#x: no task error", o.CPU, uint64(o.Task))
				case len(g.Frames) != len(o.Frames):
					t.Errorf("bt -a: CPU %d: %d frames, %d on the whole dump", o.CPU, len(g.Frames), len(o.Frames))
				default:
					for i := range o.Frames {
						if g.Frames[i].PC != o.Frames[i].PC {
							t.Errorf("bt -a: CPU %d frame %d: %s, %s on the whole dump", o.CPU, i, g.Frames[i].PC, o.Frames[i].PC)
						}
					}
				}
			}

			// Every sample finishes: one JSON document, the damage on stderr.
			args := map[string][]string{"open_files": {"1"}}
			for _, path := range samples {
				name := strings.TrimSuffix(filepath.Base(path), ".js")
				out.Reset()
				errb.Reset()
				code := run(append([]string{"-c", dump, "script", path, "--json"}, args[name]...), &out, &errb)
				if code != 0 && code != exitDamaged {
					t.Errorf("%s: exit %d: %s", name, code, errb.String())
					continue
				}
				var v any
				if err := json.Unmarshal(out.Bytes(), &v); err != nil {
					t.Errorf("%s: %v: %s", name, err, out.String())
				}
			}
		})
	}
}

// btCPU is what TestAbsentTasks reads of bt's JSON.
type btCPU struct {
	CPU       int         `json:"cpu"`
	Task      objects.Hex `json:"task"`
	TaskError string      `json:"task_error"`
	Frames    []struct {
		PC string `json:"pc"`
	} `json:"frames"`
}
