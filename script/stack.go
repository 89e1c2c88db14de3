package script

import (
	"fmt"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
	"github.com/kinspect/kinspect/vmcore"
)

// stacker unwinds tasks with ORC, as the bt command does: a task running
// on a CPU from that CPU's saved registers, others from their switch
// frame. Loaded on first use.
type stacker struct {
	e       *Engine
	loaded  bool
	err     error
	orc     *orc.Kernel
	running *orc.Running
}

func (s *stacker) load() error {
	if s.loaded {
		return s.err
	}
	s.loaded = true
	s.orc, s.err = orc.Load(s.e.prog, s.e.release())
	if s.err != nil {
		return s.err
	}
	var cpus []vmcore.CPU
	if d := s.e.k.Dump(); d != nil {
		cpus = d.CPUs()
	}
	s.running = orc.NewRunning(s.e.prog, cpus)
	return nil
}

func (e *Engine) release() string { return e.k.Release() }

// trace is kernel.stack(task): an array of frames {pc, sp, symbol,
// function, offset, module, stack, bpf}, innermost first, with the
// array's properties reliable and error (why the unwind stopped early).
func (s *stacker) trace(task objects.Value) goja.Value {
	e := s.e
	r := e.rt
	if err := s.load(); err != nil {
		e.throw(err)
	}
	if e.k.Symbols() == nil {
		e.throw(fmt.Errorf("kernel.stack: no symbol table: %w", objects.ErrNotFound))
	}
	if _, ok := task.Address(); !ok {
		if d, err := task.Deref(); err == nil {
			task = d
		}
	}
	tr, _, err := s.orc.Unwind(task, s.running)
	if err != nil {
		e.throw(err)
	}
	frames := make([]any, 0, len(tr.Frames))
	for _, f := range tr.Frames {
		sym := s.orc.Symbolize(e.k.Symbols(), f)
		o := r.NewObject()
		_ = o.Set("pc", e.bigU64(f.PC))
		_ = o.Set("sp", e.bigU64(f.SP))
		_ = o.Set("symbol", sym.String())
		_ = o.Set("function", sym.Name)
		_ = o.Set("offset", sym.Offset)
		_ = o.Set("module", sym.Module)
		_ = o.Set("stack", f.Stack)
		if b := sym.BPF; b != nil {
			bo := r.NewObject()
			_ = bo.Set("id", b.ID)
			_ = bo.Set("name", b.Name)
			if l := b.Line; l != nil {
				_ = bo.Set("file", l.File)
				_ = bo.Set("line", l.Line)
				_ = bo.Set("col", l.Col)
			}
			_ = o.Set("bpf", bo)
		} else {
			_ = o.Set("bpf", goja.Null())
		}
		frames = append(frames, o)
	}
	a := r.NewArray(frames...)
	_ = a.Set("reliable", tr.Reliable)
	if tr.Err != nil {
		_ = a.Set("error", tr.Err.Error())
	} else {
		_ = a.Set("error", goja.Null())
	}
	return a
}
