package script

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
)

// The twins of prog run, prog state and prog debug: kernel.bpf.run,
// kernel.bpf.state and kernel.bpf.debug return the Go results the
// commands print (bpfrun's), and a debugger object.

// replayer is the engine's, made on first use.
func (e *Engine) replayer() *bpfrun.Replayer {
	if e.replay == nil {
		e.replay = bpfrun.FromKernel(e.k)
	}
	return e.replay
}

// replayProg loads the program the first argument names.
func (e *Engine) replayProg(c goja.FunctionCall, what string) (*bpfrun.Prog, options) {
	bp, o := e.progArg(c, what)
	p, err := e.replayer().Load(bp)
	if err != nil {
		e.throw(err)
	}
	return p, o
}

// optBytes reads an option holding bytes (nil when absent).
func (e *Engine) optBytes(o options, name, what string) []byte {
	if o.o == nil {
		return nil
	}
	v := o.o.Get(name)
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	return e.bytesArg(goja.FunctionCall{Arguments: []goja.Value{v}}, 0, what+": "+name)
}

// optInt reads an integer option (def when absent).
func (e *Engine) optInt(o options, name, what string, def int64) int64 {
	if o.o == nil {
		return def
	}
	v := o.o.Get(name)
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return def
	}
	n, err := toInt(v)
	if err != nil {
		e.throwf("%s: %s: %v", what, name, err)
	}
	return n
}

// runOptions reads {data_in, ctx_in, repeat, trace, cpu, pid}.
func (e *Engine) runOptions(o options, what string) (bpfrun.RunOptions, bpfrun.Options) {
	ro := bpfrun.RunOptions{DataIn: e.optBytes(o, "data_in", what), CtxIn: e.optBytes(o, "ctx_in", what),
		Repeat: int(e.optInt(o, "repeat", what, 1)), Trace: o.bool("trace")}
	so := bpfrun.Options{CPU: int(e.optInt(o, "cpu", what, 0)), PID: int(e.optInt(o, "pid", what, 0))}
	return ro, so
}

func (e *Engine) setupReplay(set func(string, func(goja.FunctionCall) goja.Value)) {
	// prog run: the result, or with {pcap} one per packet.
	set("run", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.bpf.run(prog, options)"
		p, o := e.replayProg(c, what)
		ro, so := e.runOptions(o, what)
		s, err := e.replayer().NewSession(so)
		if err != nil {
			e.throw(err)
		}
		if pc := e.optBytes(o, "pcap", what); pc != nil {
			res, err := s.RunPcap(p, bytes.NewReader(pc), ro)
			if err != nil {
				e.throw(err)
			}
			return e.result(res)
		}
		res, err := s.Run(p, ro)
		if err != nil {
			e.throw(err)
		}
		return e.result(res)
	})
	// prog state: the BPF view of the programs on every stack.
	set("state", func(c goja.FunctionCall) goja.Value {
		bt := e.stack.load()
		res, err := bt.Collect(orc.Selection{AllTasks: true})
		if err != nil && len(res) == 0 {
			e.throw(err)
		}
		states := e.replayer().State(res)
		if len(c.Arguments) > 0 {
			progs, err := bpf.SelectProgs(e.prog, e.selectorArg(c, "kernel.bpf.state(prog)"))
			if err != nil {
				e.throw(err)
			}
			states = bpfrun.OfProgs(states, progs)
		}
		if states == nil {
			states = []bpfrun.StackState{}
		}
		return e.result(states)
	})
	// prog debug: a debugger object.
	set("debug", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.bpf.debug(prog, options)"
		p, o := e.replayProg(c, what)
		ro, so := e.runOptions(o, what)
		s, err := e.replayer().NewSession(so)
		if err != nil {
			e.throw(err)
		}
		var d *bpfrun.Debugger
		if pid := e.optInt(o, "resume", what, -1); pid >= 0 {
			d, err = e.resume(s, p, int(pid))
		} else {
			d, err = s.Debug(p, ro)
		}
		if err != nil {
			e.throw(err)
		}
		return e.debugger(d)
	})
}

// resume starts a debugger where p is on the stack of task pid.
func (e *Engine) resume(s *bpfrun.Session, p *bpfrun.Prog, pid int) (*bpfrun.Debugger, error) {
	b := e.stack.load()
	t, err := b.FindTask(pid)
	if err != nil {
		return nil, err
	}
	bt, err := b.Task(t)
	if err != nil {
		return nil, err
	}
	for _, f := range e.replayer().StackFrames(bt) {
		if f.ProgID == p.ID {
			return s.Resume(p, f)
		}
	}
	return nil, fmt.Errorf("prog %d is not on the stack of task %d: %w", p.ID, pid, objects.ErrNotFound)
}

// debuggerMethods are the debugger object's methods (docs/scripting.md).
var debuggerMethods = []string{"stepi", "nexti", "step", "next", "finish", "cont", "break", "delete", "breakpoints",
	"where", "regs", "stack", "backtrace", "print", "eval", "read", "changes", "result", "ctx"}

// debugger wraps a bpfrun.Debugger: each stepping method returns the
// position ({stop, prog, insn, text, func, depth, line, retval,
// executed, error}); an error of the run throws.
func (e *Engine) debugger(d *bpfrun.Debugger) *goja.Object {
	o := e.rt.NewObject()
	set := func(name string, f func(goja.FunctionCall) goja.Value) { _ = o.Set(name, f) }
	pos := func(p bpfrun.Position, err error) goja.Value {
		if err != nil {
			e.throw(err)
		}
		return e.result(p)
	}
	set("stepi", func(goja.FunctionCall) goja.Value { return pos(d.Step()) })
	set("nexti", func(goja.FunctionCall) goja.Value { return pos(d.Next()) })
	set("step", func(goja.FunctionCall) goja.Value { return pos(d.StepLine(false)) })
	set("next", func(goja.FunctionCall) goja.Value { return pos(d.StepLine(true)) })
	set("finish", func(goja.FunctionCall) goja.Value { return pos(d.Finish()) })
	set("cont", func(goja.FunctionCall) goja.Value { return pos(d.Continue()) })
	set("where", func(goja.FunctionCall) goja.Value { return e.result(d.Where()) })
	set("break", func(c goja.FunctionCall) goja.Value {
		a := c.Argument(0)
		spec := a.String()
		if n, err := toInt(a); err == nil {
			spec = "insn " + strconv.FormatInt(n, 10)
		}
		bps, err := d.Break(spec)
		if err != nil {
			e.throw(err)
		}
		return e.result(bps)
	})
	set("delete", func(c goja.FunctionCall) goja.Value {
		if err := d.Delete(int(e.intArg(c, 0, "debugger.delete(id)"))); err != nil {
			e.throw(err)
		}
		return goja.Undefined()
	})
	set("breakpoints", func(goja.FunctionCall) goja.Value { return e.result(d.Breakpoints()) })
	set("regs", func(goja.FunctionCall) goja.Value { return e.result(d.Regs()) })
	set("stack", func(c goja.FunctionCall) goja.Value {
		depth := int64(-1)
		if len(c.Arguments) > 0 {
			depth = e.intArg(c, 0, "debugger.stack(depth)")
		}
		st, _, err := d.Stack(int(depth))
		if err != nil {
			e.throw(err)
		}
		return e.uint8Array(st)
	})
	set("backtrace", func(goja.FunctionCall) goja.Value { return e.result(d.Backtrace()) })
	set("print", func(c goja.FunctionCall) goja.Value {
		s, err := d.Print(e.strArg(c, 0, "debugger.print(expr)"))
		if err != nil {
			e.throw(err)
		}
		return e.rt.ToValue(s)
	})
	set("eval", func(c goja.FunctionCall) goja.Value {
		v, err := d.Eval(e.strArg(c, 0, "debugger.eval(expr)"))
		if err != nil {
			e.throw(err)
		}
		return e.wrap(v)
	})
	set("read", func(c goja.FunctionCall) goja.Value {
		b, err := d.Read(e.addrArg(c, 0, "debugger.read(addr, n)"), int(e.intArg(c, 1, "debugger.read(addr, n)")))
		if err != nil {
			e.throw(err)
		}
		return e.uint8Array(b)
	})
	set("changes", func(goja.FunctionCall) goja.Value {
		ch, err := d.MapChanges()
		if err != nil {
			e.throw(err)
		}
		if ch == nil {
			ch = []bpfrun.MapChange{}
		}
		return e.result(ch)
	})
	set("result", func(goja.FunctionCall) goja.Value { return e.result(d.Result()) })
	set("ctx", func(goja.FunctionCall) goja.Value { return e.bigU64(d.Ctx()) })
	return o
}
