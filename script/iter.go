package script

import (
	"iter"

	"github.com/kinspect/kinspect/objects"

	"github.com/dop251/goja"
)

// pullIter is a Go walker pulled one step per JS next().
type pullIter struct {
	stop func()
	done bool
}

func (it *pullIter) close() {
	if !it.done {
		it.done = true
		it.stop()
	}
}

// iterObject returns a JS iterator (and iterable) calling next for each
// step until it says false; return() (a loop left early) calls stop.
func (e *Engine) iterObject(next func() (goja.Value, bool), stop func()) *goja.Object {
	r := e.rt
	o := r.NewObject()
	finished := false
	doneResult := func() goja.Value {
		res := r.NewObject()
		_ = res.Set("value", goja.Undefined())
		_ = res.Set("done", true)
		return res
	}
	_ = o.Set("next", func(goja.FunctionCall) goja.Value {
		if finished {
			return doneResult()
		}
		v, ok := next()
		if !ok {
			finished = true
			stop()
			return doneResult()
		}
		res := r.NewObject()
		_ = res.Set("value", v)
		_ = res.Set("done", false)
		return res
	})
	_ = o.Set("return", func(c goja.FunctionCall) goja.Value {
		if !finished {
			finished = true
			stop()
		}
		res := r.NewObject()
		_ = res.Set("value", c.Argument(0))
		_ = res.Set("done", true)
		return res
	})
	_ = o.SetSymbol(goja.SymIterator, func(c goja.FunctionCall) goja.Value { return c.This })
	return o
}

// iterate binds a Go walker as a JS iterator: each element is converted
// by conv; a walker's error is thrown at the step it happens, but a
// damaged element the walker went past (*objects.Damage) is noted for
// kernel.damage() and skipped.
func iterate[T any](e *Engine, seq iter.Seq2[T, error], conv func(T) goja.Value) *goja.Object {
	next, stop := iter.Pull2(seq)
	it := &pullIter{stop: stop}
	e.open[it] = struct{}{}
	end := func() {
		it.close()
		delete(e.open, it)
	}
	return e.iterObject(func() (goja.Value, bool) {
		for {
			x, err, ok := next()
			if !ok {
				return nil, false
			}
			if d := objects.AsDamage(err); d != nil {
				// Went past: kernel.damage() lists it.
				e.prog.NoteDamage(d)
				continue
			}
			if err != nil {
				end()
				e.throw(err)
			}
			return conv(x), true
		}
	}, end)
}
