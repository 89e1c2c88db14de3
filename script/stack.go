package script

import (
	"errors"
	"fmt"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
)

// stacker unwinds stacks as the bt command does (orc.Backtracer): a task
// running on a CPU from that CPU's saved registers, others from their
// switch frame. Loaded on first use.
type stacker struct {
	e      *Engine
	loaded bool
	err    error
	bt     *orc.Backtracer
}

func (s *stacker) load() *orc.Backtracer {
	if !s.loaded {
		s.loaded = true
		if s.e.k.Symbols() == nil {
			s.err = fmt.Errorf("no symbol table: %w", objects.ErrNotFound)
		} else {
			s.bt, s.err = orc.NewBacktracer(s.e.k)
		}
	}
	if s.err != nil {
		s.e.throw(s.err)
	}
	return s.bt
}

// trace is kernel.stack(task): the frames of bt's result, innermost
// first, with the array's properties reliable and error (why the unwind
// stopped early); an unwind that found no frame throws.
func (s *stacker) trace(task objects.Value) goja.Value {
	e := s.e
	bt := s.load()
	if _, ok := task.Address(); !ok {
		if d, err := task.Deref(); err == nil {
			task = d
		}
	}
	r, err := bt.Task(task)
	if err != nil {
		e.throw(err)
	}
	if len(r.Frames) == 0 && r.UnwindError != "" {
		e.throw(errors.New(r.UnwindError))
	}
	a := e.result(r.Frames).(*goja.Object)
	_ = a.Set("reliable", r.Reliable)
	if r.UnwindError != "" {
		_ = a.Set("error", r.UnwindError)
	} else {
		_ = a.Set("error", goja.Null())
	}
	return a
}

// collect is kernel.bt(options): bt's results, for the panicking CPU (no
// options; every CPU without a panic), every CPU ({cpus: true}), every
// task ({tasks: true}) or some ({pids: [...]}).
func (s *stacker) collect(o options, pids []int) goja.Value {
	bt := s.load()
	res, err := bt.Collect(orc.Selection{AllCPUs: o.bool("cpus"), AllTasks: o.bool("tasks"), PIDs: pids})
	if err != nil && len(res) == 0 {
		s.e.throw(err)
	}
	return s.e.result(res)
}
