package script

import (
	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/linux"
)

// setupMachineTwins defines the twins of the scheduler, CPU and device
// commands: runq, dev, uptime, irq, timer.
func (e *Engine) setupMachineTwins(k *goja.Object) {
	p := e.prog
	fn := func(name string, f func(goja.FunctionCall) goja.Value) { _ = k.Set(name, f) }
	fn("runq", func(c goja.FunctionCall) goja.Value {
		if len(c.Arguments) > 0 && !goja.IsUndefined(c.Argument(0)) {
			rq, err := linux.ReadRunQueue(p, int(e.intArg(c, 0, "kernel.runq(cpu)")))
			if err != nil {
				e.throw(err)
			}
			return e.result(rq)
		}
		rqs, err := linux.RunQueues(p)
		if err != nil && len(rqs) == 0 {
			e.throw(err)
		}
		return e.result(rqs)
	})
	fn("devices", func(c goja.FunctionCall) goja.Value {
		devs, err := linux.Devices(p)
		if err != nil && len(devs) == 0 {
			e.throw(err)
		}
		return e.result(devs)
	})
	fn("uptime", func(c goja.FunctionCall) goja.Value {
		u, err := linux.ReadUptime(p)
		if err != nil {
			e.throw(err)
		}
		return e.result(u)
	})
	fn("interrupts", func(c goja.FunctionCall) goja.Value {
		in, err := linux.ReadInterrupts(p)
		if in == nil {
			e.throw(err)
		}
		return e.result(in)
	})
	fn("timers", func(c goja.FunctionCall) goja.Value {
		ts, err := linux.ReadTimers(p, e.k.Symbols())
		if ts == nil {
			e.throw(err)
		}
		return e.result(ts)
	})
}
