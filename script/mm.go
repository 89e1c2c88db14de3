package script

import (
	"fmt"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// The twins of kmem, vtop, ptov (kernel.slab, kernel.mm,
// kernel.identify) and of the task commands files, vm, sig, task,
// mount, cgroup, mod, ps -a: each returns the Go result its command
// prints (e.result).

// slabFuncs and mmFuncs are kernel.slab's and kernel.mm's members;
// docs/scripting.md documents each (a test checks).
var (
	slabFuncs = []string{"caches", "find", "objects", "objectInfo"}
	mmFuncs   = []string{"meminfo", "vmallocInfo", "vtop", "ptov", "page", "inodePages"}
)

// taskArg reads a task argument: a kernel value (a struct task_struct
// or a pointer to one) or a thread ID (0: CPU 0's idle task).
func (e *Engine) taskArg(c goja.FunctionCall, i int, what string) objects.Value {
	a := c.Argument(i)
	if w, ok := unwrap(a); ok {
		return w.v
	}
	n, err := toInt(a)
	if err != nil {
		e.throwf("%s: the %s argument is neither a task nor a PID: %v", what, argName(i), err)
	}
	var t objects.Value
	if n == 0 {
		t, err = linux.IdleTask(e.prog, 0)
	} else {
		t, err = linux.FindTask(e.prog, int(n))
	}
	if err != nil {
		e.throw(err)
	}
	return t
}

func (e *Engine) setupSlab(o *goja.Object) {
	p := e.prog
	set := func(name string, f func(goja.FunctionCall) goja.Value) { _ = o.Set(name, f) }
	// kmem -s
	set("caches", func(c goja.FunctionCall) goja.Value {
		infos, err := linux.SlabInfos(p)
		if err != nil && len(infos) == 0 {
			e.throw(err)
		}
		return e.result(infos)
	})
	set("find", func(c goja.FunctionCall) goja.Value {
		s, err := linux.FindSlabCache(p, e.strArg(c, 0, "kernel.slab.find(name)"))
		if err != nil {
			if errorCode(err) == "not_found" {
				return goja.Null()
			}
			e.throw(err)
		}
		return e.wrap(s)
	})
	// kmem -S: slab_cache_for_each_allocated_object.
	set("objects", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.slab.objects(cache, type)"
		var cache objects.Value
		if s, ok := c.Argument(0).Export().(string); ok {
			v, err := linux.FindSlabCache(p, s)
			if err != nil {
				e.throw(err)
			}
			cache = v
		} else {
			cache = e.valueArg(c, 0, what)
		}
		typ := "void"
		if !goja.IsUndefined(c.Argument(1)) {
			typ = e.strArg(c, 1, what)
		}
		return iterate(e, linux.SlabCacheForEachAllocatedObject(cache, typ), func(v objects.Value) goja.Value { return e.wrap(v) })
	})
	set("objectInfo", func(c goja.FunctionCall) goja.Value {
		so, ok, err := linux.SlabObjectInfo(p, e.addrArg(c, 0, "kernel.slab.objectInfo(addr)"))
		if err != nil {
			e.throw(err)
		}
		if !ok {
			return goja.Null()
		}
		return e.result(so)
	})
}

func (e *Engine) setupMM(o *goja.Object) {
	p := e.prog
	set := func(name string, f func(goja.FunctionCall) goja.Value) { _ = o.Set(name, f) }
	// kmem -i
	set("meminfo", func(c goja.FunctionCall) goja.Value {
		m, err := linux.ReadMeminfo(p)
		if err != nil {
			e.throw(err)
		}
		return e.result(m)
	})
	// kmem -v
	set("vmallocInfo", func(c goja.FunctionCall) goja.Value {
		areas, err := linux.VmallocInfo(p, e.k.Symbols())
		if err != nil {
			e.throw(err)
		}
		return e.result(areas)
	})
	// vtop [--pid PID]: {pid} chooses the process's page tables.
	set("vtop", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.mm.vtop(addr, options)"
		a := e.addrArg(c, 0, what)
		pgd, err := linux.KernelPgd(p)
		if err != nil {
			e.throw(err)
		}
		if o := e.optionsArg(c, 1); o.o != nil {
			if v := o.o.Get("pid"); v != nil && !goja.IsUndefined(v) {
				t := e.taskArg(goja.FunctionCall{Arguments: []goja.Value{v}}, 0, what)
				mm, ok, err := linux.TaskMM(t)
				if err != nil {
					e.throw(err)
				}
				if !ok {
					e.throw(fmt.Errorf("%s: a kernel thread has no address space of its own: %w", what, objects.ErrNotFound))
				}
				if pgd, err = mm.MemberUint("pgd"); err != nil {
					e.throw(err)
				}
			}
		}
		tr, err := linux.Vtop(p, pgd, a)
		if err != nil && tr == nil {
			e.throw(err)
		}
		r := e.result(tr).(*goja.Object)
		if err != nil {
			_ = r.Set("error", err.Error())
		}
		return r
	})
	set("ptov", func(c goja.FunctionCall) goja.Value {
		r, err := linux.Ptov(p, e.addrArg(c, 0, "kernel.mm.ptov(paddr)"))
		if err != nil {
			e.throw(err)
		}
		return e.result(r)
	})
	// kmem --page
	// files -p
	set("inodePages", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.mm.inodePages(inode or path)"
		var inode objects.Value
		if path, ok := c.Argument(0).Export().(string); ok {
			var err error
			if inode, err = linux.LookupInode(p, path); err != nil {
				e.throw(err)
			}
		} else {
			inode = e.valueArg(c, 0, what)
		}
		ip, err := linux.ReadInodePages(inode)
		if err != nil {
			e.throw(err)
		}
		return e.result(ip)
	})
	set("page", func(c goja.FunctionCall) goja.Value {
		pi, err := linux.NewPageInfo(p, uint64(e.intArg(c, 0, "kernel.mm.page(pfn)")))
		if err != nil {
			e.throw(err)
		}
		return e.result(pi)
	})
}

// setupTaskTwins adds the kernel functions of the task commands.
func (e *Engine) setupTaskTwins(k *goja.Object) {
	p := e.prog
	fn := func(name string, f func(goja.FunctionCall) goja.Value) { _ = k.Set(name, f) }
	// kmem ADDR: identify_address.
	fn("identify", func(c goja.FunctionCall) goja.Value {
		id, err := linux.IdentifyAddress(p, e.k.Symbols(), e.addrArg(c, 0, "kernel.identify(addr)"))
		if err != nil {
			e.throw(err)
		}
		return e.result(id)
	})
	fn("files", func(c goja.FunctionCall) goja.Value {
		fi, err := linux.ReadTaskFiles(e.taskArg(c, 0, "kernel.files(task)"))
		if err != nil && fi == nil {
			e.throw(err)
		}
		return e.result(fi)
	})
	fn("vmas", func(c goja.FunctionCall) goja.Value {
		v, err := linux.ReadTaskVM(e.taskArg(c, 0, "kernel.vmas(task)"))
		if err != nil && v == nil {
			e.throw(err)
		}
		return e.result(v)
	})
	fn("signals", func(c goja.FunctionCall) goja.Value {
		s, err := linux.ReadTaskSignals(e.taskArg(c, 0, "kernel.signals(task)"))
		if err != nil {
			e.throw(err)
		}
		return e.result(s)
	})
	fn("task", func(c goja.FunctionCall) goja.Value {
		d, err := linux.NewTaskDetail(e.taskArg(c, 0, "kernel.task(pid)"))
		if err != nil {
			e.throw(err)
		}
		return e.result(d)
	})
	fn("cmdline", func(c goja.FunctionCall) goja.Value {
		if goja.IsUndefined(c.Argument(0)) {
			s, err := linux.KernelCmdline(p)
			if err != nil {
				e.throw(err)
			}
			return e.rt.ToValue(s)
		}
		a, err := linux.ReadProcArgs(e.taskArg(c, 0, "kernel.cmdline(task)"))
		if a == nil {
			e.throw(err)
		}
		return e.result(a)
	})
	fn("pathLookup", func(c goja.FunctionCall) goja.Value {
		return e.result(linux.ReadPathInfo(p, e.strArg(c, 0, "kernel.pathLookup(path)")))
	})
	fn("mounts", func(c goja.FunctionCall) goja.Value {
		var ns objects.Value
		var err error
		if goja.IsUndefined(c.Argument(0)) {
			ns, err = linux.InitMntNS(p)
		} else {
			ns, err = e.taskArg(c, 0, "kernel.mounts(task)").Path("nsproxy->mnt_ns")
			if err == nil {
				ns, err = ns.Deref()
			}
		}
		if err != nil {
			e.throw(err)
		}
		ms, err := linux.Mounts(ns)
		if err != nil && len(ms) == 0 {
			e.throw(err)
		}
		return e.result(ms)
	})
	fn("cgroup", func(c goja.FunctionCall) goja.Value {
		ci, err := linux.ReadTaskCgroup(e.taskArg(c, 0, "kernel.cgroup(task)"))
		if err != nil {
			e.throw(err)
		}
		return e.result(ci)
	})
}

// cgroupTree is kernel.bpf.cgroupTree: bpftool cgroup tree.
func (e *Engine) cgroupTree() goja.Value {
	mp, err := bpf.CgroupMountPoint(e.prog)
	if err != nil {
		e.throw(err)
	}
	cs, err := bpf.CgroupTree(e.prog, mp)
	if err != nil && len(cs) == 0 {
		e.throw(err)
	}
	return e.result(cs)
}
