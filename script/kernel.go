package script

import (
	"fmt"
	"reflect"

	"github.com/cilium/ebpf/btf"
	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/triage"
)

// maxRead bounds kernel.read.
const maxRead = 64 << 20

// kernelFuncs and kernelProps are the kernel object's members;
// docs/scripting.md documents each (a test checks).
var (
	kernelFuncs = []string{"sym", "symbolize", "var", "object", "read", "declare", "eval", "cast",
		"containerOf", "percpu", "sizeof", "offsetof", "hasType", "hasMember", "enumName", "constant",
		"tasks", "processes", "threads", "findTask", "taskInfo", "taskState", "taskCPU", "currentTask",
		"listForEach", "hlist", "rbtree", "xarray", "idr", "stack", "bt", "ps", "triage", "btfDump", "btfFuncs", "net", "modules", "taint", "dmesg",
		"damage", "identify", "files", "vmas", "signals", "task", "cmdline", "mounts", "pathLookup", "cgroup",
		"runq", "devices", "uptime", "interrupts", "timers",
		"dis", "rd", "symbols", "struct", "union", "whatis", "list", "search"}
	kernelProps = []string{"bpf", "cpus", "info", "slab", "mm"}
	bpfFuncs    = []string{"progs", "xlated", "jited", "tags", "maps", "mapDump", "mapLookup", "ringbuf", "links", "netShow", "btfs", "structOps", "structOpsDump", "pins", "fds", "features", "run", "state", "debug", "cgroupTree"}
)

func (e *Engine) setup() error {
	r := e.rt
	e.proto = e.makeProto()
	k := r.NewObject()
	e.kernel = k
	fn := func(name string, f func(c goja.FunctionCall) goja.Value) { _ = k.Set(name, f) }
	wrapErr := func(v objects.Value, err error) goja.Value {
		if err != nil {
			e.throw(err)
		}
		return e.wrap(v)
	}
	p := e.prog

	fn("sym", func(c goja.FunctionCall) goja.Value {
		name := e.strArg(c, 0, "kernel.sym(name)")
		if e.k.Symbols() == nil {
			e.throw(fmt.Errorf("symbol %s: no symbol table: %w", name, objects.ErrNotFound))
		}
		all, err := e.k.Symbols().Lookup(name)
		if err != nil {
			e.throw(err)
		}
		best := all[0]
		for _, s := range all {
			if s.Module == "" {
				best = s
				break
			}
		}
		return e.symbolObject(best)
	})
	fn("symbolize", func(c goja.FunctionCall) goja.Value {
		a := e.addrArg(c, 0, "kernel.symbolize(addr)")
		if e.k.Symbols() == nil {
			return goja.Null()
		}
		loc, err := e.k.Symbols().LookupAddr(a)
		if err != nil {
			return goja.Null()
		}
		return r.ToValue(loc.String())
	})
	fn("var", func(c goja.FunctionCall) goja.Value {
		return wrapErr(p.Variable(e.strArg(c, 0, "kernel.var(name)")))
	})
	fn("object", func(c goja.FunctionCall) goja.Value {
		t := e.strArg(c, 0, "kernel.object(type, addr)")
		return wrapErr(p.ObjectOf(t, e.addrArg(c, 1, "kernel.object(type, addr)")))
	})
	fn("read", func(c goja.FunctionCall) goja.Value {
		a := e.addrArg(c, 0, "kernel.read(addr, len)")
		n := e.intArg(c, 1, "kernel.read(addr, len)")
		if n < 0 || n > maxRead {
			e.throwf("kernel.read(%#x, %d): length must be 0 to %d", a, n, maxRead)
		}
		b := make([]byte, n)
		got, err := p.Memory().ReadVirt(b, a)
		if err == nil && got < len(b) {
			err = fmt.Errorf("read %d bytes at %#x: short read of %d: %w", n, a, got, objects.ErrCorrupt)
		}
		if err != nil {
			e.throw(err)
		}
		return e.uint8Array(b)
	})
	fn("declare", func(c goja.FunctionCall) goja.Value {
		if err := p.Decls().Add(e.strArg(c, 0, "kernel.declare(decl)")); err != nil {
			e.throw(err)
		}
		return goja.Undefined()
	})
	fn("eval", func(c goja.FunctionCall) goja.Value {
		return wrapErr(p.Eval(e.strArg(c, 0, "kernel.eval(expr)")))
	})
	fn("cast", func(c goja.FunctionCall) goja.Value {
		v := e.valueArg(c, 0, "kernel.cast(value, type)")
		return wrapErr(v.Cast(e.strArg(c, 1, "kernel.cast(value, type)")))
	})
	fn("containerOf", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.containerOf(ptr, type, member)"
		v := e.valueArg(c, 0, what)
		return wrapErr(objects.ContainerOf(v, e.strArg(c, 1, what), e.strArg(c, 2, what)))
	})
	fn("percpu", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.percpu(var, cpu)"
		v := e.valueArg(c, 0, what)
		spec := "a"
		switch a := c.Argument(1); {
		case goja.IsUndefined(a):
		case a.ExportType() != nil && a.ExportType().Kind() == reflect.String:
			spec = a.String()
		default:
			return wrapErr(p.PerCPU(v, int(e.intArg(c, 1, what))))
		}
		// Every CPU of a cpuspec, as print's VAR:CPUSPEC.
		if !v.IsPerCPU() && !v.IsPointer() {
			e.throw(fmt.Errorf("%s: a %s is not a per-CPU variable or pointer: %w", what, v.TypeName(), objects.ErrType))
		}
		cpus, err := p.ParseCPUSpec(spec)
		if err != nil {
			e.throw(err)
		}
		cvs, err := p.PerCPUEach(v, cpus)
		if err != nil {
			e.throw(err)
		}
		out := make([]any, len(cvs))
		for i, cv := range cvs {
			o := e.rt.NewObject()
			_ = o.Set("cpu", cv.CPU)
			_ = o.Set("value", e.wrap(cv.Value))
			out[i] = o
		}
		return e.rt.NewArray(out...)
	})
	fn("sizeof", func(c goja.FunctionCall) goja.Value {
		t := e.typeArg(c, 0, "kernel.sizeof(type)")
		n, err := btf.Sizeof(t)
		if err != nil {
			e.throw(fmt.Errorf("sizeof(%s): %v: %w", btfload.TypeString(t), err, objects.ErrType))
		}
		return r.ToValue(n)
	})
	fn("offsetof", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.offsetof(type, member)"
		off, _, err := p.MemberOffset(e.strArg(c, 0, what), e.strArg(c, 1, what))
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(off)
	})
	fn("hasType", func(c goja.FunctionCall) goja.Value {
		_, err := p.Type(e.strArg(c, 0, "kernel.hasType(type)"))
		return r.ToValue(err == nil)
	})
	fn("hasMember", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.hasMember(type, member)"
		t, err := p.Type(e.strArg(c, 0, what))
		if err != nil {
			return r.ToValue(false)
		}
		name := e.strArg(c, 1, what)
		for _, n := range memberNames(structOf(t), nil) {
			if n == name {
				return r.ToValue(true)
			}
		}
		return r.ToValue(false)
	})
	fn("constant", func(c goja.FunctionCall) goja.Value {
		name := e.strArg(c, 0, "kernel.constant(name)")
		x, signed, err := e.enumerator(name)
		if err != nil {
			e.throw(err)
		}
		if signed {
			return r.ToValue(int64(x))
		}
		return r.ToValue(x)
	})
	fn("enumName", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.enumName(type, value)"
		t := e.typeArg(c, 0, what)
		x := e.intArg(c, 1, what)
		v, err := p.Constant(t, uint64(x))
		if err != nil {
			e.throw(err)
		}
		s, err := v.EnumName()
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(s)
	})

	// Tasks.
	wrapSeq := func(v objects.Value) goja.Value { return e.wrap(v) }
	fn("tasks", func(c goja.FunctionCall) goja.Value { return iterate(e, linux.ForEachTask(p), wrapSeq) })
	fn("processes", func(c goja.FunctionCall) goja.Value { return iterate(e, linux.ForEachProcess(p), wrapSeq) })
	fn("threads", func(c goja.FunctionCall) goja.Value {
		return iterate(e, linux.ForEachThread(e.valueArg(c, 0, "kernel.threads(task)")), wrapSeq)
	})
	fn("findTask", func(c goja.FunctionCall) goja.Value {
		t, err := linux.FindTask(p, int(e.intArg(c, 0, "kernel.findTask(pid)")))
		if err != nil {
			if errorCode(err) == "not_found" {
				return goja.Null()
			}
			e.throw(err)
		}
		return e.wrap(t)
	})
	fn("taskInfo", func(c goja.FunctionCall) goja.Value {
		t, err := linux.NewTask(e.valueArg(c, 0, "kernel.taskInfo(task)"))
		if err != nil {
			e.throw(err)
		}
		o := r.NewObject()
		_ = o.Set("pid", t.PID)
		_ = o.Set("tid", t.TID)
		_ = o.Set("ppid", t.PPID)
		_ = o.Set("comm", t.Comm)
		_ = o.Set("state", string(t.State.Letter()))
		_ = o.Set("cpu", t.CPU)
		_ = o.Set("flags", t.Flags)
		_ = o.Set("kthread", t.IsKThread())
		_ = o.Set("addr", e.bigU64(t.Addr))
		return o
	})
	fn("taskState", func(c goja.FunctionCall) goja.Value {
		s, err := linux.ReadTaskState(e.valueArg(c, 0, "kernel.taskState(task)"))
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(string(s.Letter()))
	})
	fn("taskCPU", func(c goja.FunctionCall) goja.Value {
		n, err := linux.TaskCPU(e.valueArg(c, 0, "kernel.taskCPU(task)"))
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(n)
	})
	fn("currentTask", func(c goja.FunctionCall) goja.Value {
		return wrapErr(linux.CurrentTask(p, int(e.intArg(c, 0, "kernel.currentTask(cpu)"))))
	})

	// Walkers of kernel containers.
	fn("listForEach", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.listForEach(head, type, member)"
		head := e.valueArg(c, 0, what)
		if goja.IsUndefined(c.Argument(1)) {
			return iterate(e, objects.ListForEach(head), wrapSeq)
		}
		return iterate(e, objects.ListForEachEntry(head, e.strArg(c, 1, what), e.strArg(c, 2, what)), wrapSeq)
	})
	fn("hlist", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.hlist(head, type, member)"
		head := e.valueArg(c, 0, what)
		if goja.IsUndefined(c.Argument(1)) {
			return iterate(e, objects.HlistForEach(head), wrapSeq)
		}
		return iterate(e, objects.HlistForEachEntry(head, e.strArg(c, 1, what), e.strArg(c, 2, what)), wrapSeq)
	})
	fn("rbtree", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.rbtree(root, type, member)"
		root := e.valueArg(c, 0, what)
		if goja.IsUndefined(c.Argument(1)) {
			return iterate(e, objects.RBTreeForEach(root), wrapSeq)
		}
		return iterate(e, objects.RBTreeForEachEntry(root, e.strArg(c, 1, what), e.strArg(c, 2, what)), wrapSeq)
	})
	indexed := func(typ btf.Type) func(objects.IndexedValue) goja.Value {
		return func(x objects.IndexedValue) goja.Value {
			var v goja.Value
			switch {
			case x.IsValue:
				u, _ := x.Value.Uint()
				v = e.bigU64(u)
			case typ != nil:
				a, _ := x.Value.Uint()
				v = e.wrap(p.Object(typ, a))
			default:
				v = e.wrap(x.Value)
			}
			return r.NewArray(x.Index, v)
		}
	}
	fn("xarray", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.xarray(xa, type)"
		xa := e.valueArg(c, 0, what)
		var t btf.Type
		if !goja.IsUndefined(c.Argument(1)) {
			t = e.typeArg(c, 1, what)
		}
		return iterate(e, objects.XArrayForEach(xa), indexed(t))
	})
	fn("idr", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.idr(idr, type)"
		idr := e.valueArg(c, 0, what)
		var t btf.Type
		if !goja.IsUndefined(c.Argument(1)) {
			t = e.typeArg(c, 1, what)
		}
		return iterate(e, objects.IDRForEach(idr), indexed(t))
	})

	fn("bt", func(c goja.FunctionCall) goja.Value {
		o := e.optionsArg(c, 0)
		var pids []int
		if o.o != nil {
			if v := o.o.Get("pids"); v != nil && !goja.IsUndefined(v) {
				if err := e.rt.ExportTo(v, &pids); err != nil {
					e.throwf("kernel.bt(options): pids: %v", err)
				}
			}
		}
		return e.stack.collect(o, pids)
	})
	// btfDump is "btf dump": types by name as C ({layout: true}: their
	// pahole-style layouts), or a BTF object ({id: N, format: "c"}: as C,
	// else its raw types).
	fn("btfDump", func(c goja.FunctionCall) goja.Value {
		var names []string
		var o options
		for i, a := range c.Arguments {
			if s, ok := a.Export().(string); ok {
				names = append(names, s)
			} else {
				o = e.optionsArg(c, i)
			}
		}
		if o.o != nil && o.o.Get("id") != nil && !goja.IsUndefined(o.o.Get("id")) {
			id, err := toInt(o.o.Get("id"))
			if err != nil {
				e.throwf("kernel.btfDump({id}): %v", err)
			}
			b, err := bpf.BTFByID(p, uint32(id))
			if err != nil {
				e.throw(err)
			}
			if f := o.o.Get("format"); f != nil && f.String() == "c" {
				s, err := b.DumpC()
				if err != nil {
					e.throw(err)
				}
				return e.rt.ToValue(s)
			}
			rb, err := b.Raw(e.k.Types())
			if err != nil {
				e.throw(err)
			}
			return e.result(rb.Types)
		}
		var types []btf.Type
		for _, n := range names {
			t, err := e.k.LookupType(n)
			if err != nil {
				e.throw(err)
			}
			types = append(types, t)
		}
		if !o.bool("layout") {
			return e.rt.ToValue(btfload.FormatC(types...))
		}
		var ls []*btfload.Layout
		for _, t := range types {
			l, err := btfload.NewLayout(t, btfload.DefaultCacheline)
			if err != nil {
				e.throw(err)
			}
			ls = append(ls, l)
		}
		return e.result(ls)
	})
	fn("triage", func(c goja.FunctionCall) goja.Value {
		r, err := triage.Build(e.k)
		if err != nil {
			e.throw(err)
		}
		return e.result(r)
	})
	fn("ps", func(c goja.FunctionCall) goja.Value {
		rows, _, err := linux.PSRows(p)
		if err != nil && len(rows) == 0 {
			e.throw(err)
		}
		return e.result(rows)
	})
	fn("stack", func(c goja.FunctionCall) goja.Value {
		return e.stack.trace(e.valueArg(c, 0, "kernel.stack(task)"))
	})
	fn("damage", func(c goja.FunctionCall) goja.Value {
		var out []objects.DamageReport
		for _, d := range p.Damaged() {
			out = append(out, d.Report())
		}
		return e.result(out)
	})
	fn("taint", func(c goja.FunctionCall) goja.Value {
		t, err := linux.ReadTaint(p)
		if err != nil && t == nil {
			e.throw(err)
		}
		return e.result(t)
	})
	fn("modules", func(c goja.FunctionCall) goja.Value {
		return iterate(e, linux.ForEachModule(p), func(v objects.Value) goja.Value {
			m, err := linux.NewModuleInfo(v)
			if err != nil {
				e.throw(err)
			}
			o := e.result(m).(*goja.Object)
			_ = o.Set("obj", e.wrap(v))
			return o
		})
	})
	fn("btfFuncs", func(c goja.FunctionCall) goja.Value {
		o := e.optionsArg(c, 0)
		str := func(name string) string {
			if o.o == nil {
				return ""
			}
			v := o.o.Get(name)
			if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
				return ""
			}
			return v.String()
		}
		res, err := bpf.FindBTFFuncs(p, e.k.Symbols(), bpf.FuncQuery{Arg: str("arg"), Ret: str("ret"), Glob: str("name")})
		if err != nil {
			e.throw(err)
		}
		return e.result(res)
	})
	fn("net", func(c goja.FunctionCall) goja.Value {
		n, err := linux.ReadNet(p)
		if n == nil {
			e.throw(err)
		}
		return e.result(n)
	})
	fn("dmesg", func(c goja.FunctionCall) goja.Value {
		ring, err := linux.ReadPrintkRing(p)
		if err != nil {
			e.throw(err)
		}
		return e.result(ring.Dmesg())
	})

	bpf := r.NewObject()
	_ = k.Set("bpf", bpf)
	e.setupBPF(bpf)
	slab := r.NewObject()
	_ = k.Set("slab", slab)
	e.setupSlab(slab)
	mm := r.NewObject()
	_ = k.Set("mm", mm)
	e.setupMM(mm)
	e.setupTaskTwins(k)
	e.setupMachineTwins(k)
	e.setupRawTwins(k)
	_ = k.DefineAccessorProperty("cpus", r.ToValue(func(goja.FunctionCall) goja.Value { return e.cpus() }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = k.DefineAccessorProperty("info", r.ToValue(func(goja.FunctionCall) goja.Value { return e.info() }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = r.Set("kernel", k)
	return e.setupConsole()
}

// enumerator finds an enumerator of any enum of the kernel's BTF (named
// or anonymous) by name; the table is built on first use.
func (e *Engine) enumerator(name string) (uint64, bool, error) {
	if e.enums == nil {
		e.enums = map[string]enumConst{}
		for t, err := range e.prog.Types().BTF().All() {
			if err != nil {
				return 0, false, fmt.Errorf("enumerator %s: %w", name, err)
			}
			if en, ok := t.(*btf.Enum); ok {
				for _, v := range en.Values {
					if _, dup := e.enums[v.Name]; !dup {
						e.enums[v.Name] = enumConst{v.Value, en.Signed}
					}
				}
			}
		}
	}
	c, ok := e.enums[name]
	if !ok {
		return 0, false, fmt.Errorf("no enumerator named %s in the kernel's BTF: %w", name, objects.ErrNotFound)
	}
	return c.v, c.signed, nil
}

type enumConst struct {
	v      uint64
	signed bool
}

func (e *Engine) typeArg(c goja.FunctionCall, i int, what string) btf.Type {
	t, err := e.prog.Type(e.strArg(c, i, what))
	if err != nil {
		e.throw(err)
	}
	return t
}

func (e *Engine) symbolObject(s kallsyms.Symbol) goja.Value {
	o := e.rt.NewObject()
	_ = o.Set("name", s.Name)
	_ = o.Set("addr", e.bigU64(s.Addr))
	_ = o.Set("size", s.Size)
	_ = o.Set("kind", string(rune(s.Type)))
	_ = o.Set("module", s.Module)
	return o
}

// uint8Array copies b into a new Uint8Array.
func (e *Engine) uint8Array(b []byte) goja.Value {
	buf := e.rt.NewArrayBuffer(b)
	ctor := e.rt.Get("Uint8Array")
	o, err := e.rt.New(ctor, e.rt.ToValue(buf))
	if err != nil {
		e.throw(err)
	}
	return o
}

// cpus is kernel.cpus: each CPU with its current task and saved
// registers (none live).
func (e *Engine) cpus() goja.Value {
	r := e.rt
	var out []any
	n, err := e.prog.NrCPUIDs()
	if err != nil {
		e.throw(err)
	}
	regs := map[int]int{}
	if e.k.Dump() != nil {
		for i, c := range e.k.CPUs() {
			if c.HasRegs {
				regs[c.Index] = i
			}
		}
	}
	for cpu := 0; cpu < n; cpu++ {
		o := r.NewObject()
		_ = o.Set("cpu", cpu)
		if t, err := linux.CurrentTask(e.prog, cpu); err == nil {
			_ = o.Set("task", e.wrap(t))
		} else {
			_ = o.Set("task", goja.Null())
		}
		if i, ok := regs[cpu]; ok {
			c := e.k.CPUs()[i]
			_ = o.Set("rip", e.bigU64(c.Regs.RIP))
			_ = o.Set("rsp", e.bigU64(c.Regs.RSP))
			_ = o.Set("rbp", e.bigU64(c.Regs.RBP))
		}
		out = append(out, o)
	}
	return r.NewArray(out...)
}

// info is kernel.info: what the info command reports.
func (e *Engine) info() goja.Value { return e.result(e.k.Info()) }
