package script

import (
	"encoding/hex"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/bpf"
)

// setupBPF defines kernel.bpf: the BPF walkers, yielding records whose
// keys are bpftool's JSON keys where bpftool has the field, each with
// obj, the kernel object.
func (e *Engine) setupBPF(o *goja.Object) {
	r := e.rt
	p := e.prog
	_ = o.Set("progs", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.ProgForEach(p), func(bp *bpf.Prog) goja.Value {
			x := r.NewObject()
			_ = x.Set("id", bp.ID)
			_ = x.Set("type", bp.TypeName)
			_ = x.Set("name", bp.FullName())
			_ = x.Set("tag", hex.EncodeToString(bp.Tag[:]))
			_ = x.Set("gpl_compatible", bp.GPL)
			_ = x.Set("load_time", e.bigU64(bp.LoadTime))
			_ = x.Set("uid", bp.UID)
			_ = x.Set("bytes_xlated", uint64(bp.Len)*8)
			_ = x.Set("jited", bp.Jited)
			_ = x.Set("bytes_jited", bp.JitedLen)
			_ = x.Set("bytes_memlock", bp.Memlock())
			ids := make([]any, len(bp.MapIDs))
			for i, id := range bp.MapIDs {
				ids[i] = id
			}
			_ = x.Set("map_ids", r.NewArray(ids...))
			_ = x.Set("btf_id", bp.BTFID)
			_ = x.Set("attach_type", bp.AttachTypeName)
			_ = x.Set("attach_func", bp.AttachFuncName)
			_ = x.Set("obj", e.wrap(bp.Obj))
			_ = x.Set("aux", e.wrap(bp.Aux))
			return x
		})
	})
	_ = o.Set("maps", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.MapForEach(p), func(m *bpf.Map) goja.Value {
			x := r.NewObject()
			_ = x.Set("id", m.ID)
			_ = x.Set("type", m.TypeName)
			_ = x.Set("name", m.Name)
			_ = x.Set("flags", m.Flags)
			_ = x.Set("bytes_key", m.KeySize)
			_ = x.Set("bytes_value", m.ValueSize)
			_ = x.Set("max_entries", m.MaxEntries)
			if ml, err := m.Memlock(); err == nil {
				_ = x.Set("bytes_memlock", ml)
			} else {
				_ = x.Set("bytes_memlock", goja.Null())
			}
			_ = x.Set("frozen", m.Frozen)
			_ = x.Set("btf_id", m.BTFID)
			_ = x.Set("obj", e.wrap(m.Obj))
			return x
		})
	})
	_ = o.Set("links", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.LinkForEach(p), func(l *bpf.Link) goja.Value {
			x := r.NewObject()
			_ = x.Set("id", l.ID)
			_ = x.Set("type", l.TypeName)
			_ = x.Set("prog_id", l.ProgID)
			_ = x.Set("prog_type", l.ProgTypeName)
			if l.HasAttachType {
				_ = x.Set("attach_type", l.AttachTypeName)
			}
			if l.HasTarget {
				_ = x.Set("target_obj_id", l.TargetObjID)
				_ = x.Set("target_btf_id", l.TargetBTFID)
			}
			if l.CgroupID != 0 {
				_ = x.Set("cgroup_id", e.bigU64(l.CgroupID))
			}
			if l.Ifindex != 0 || l.Devname != "" {
				_ = x.Set("ifindex", l.Ifindex)
				_ = x.Set("devname", l.Devname)
			}
			if l.TPName != "" {
				_ = x.Set("tp_name", l.TPName)
			}
			if l.IterTarget != "" {
				_ = x.Set("target_name", l.IterTarget)
				switch {
				case l.IterMapID != 0:
					_ = x.Set("map_id", l.IterMapID)
				case l.IterTID != 0:
					_ = x.Set("tid", l.IterTID)
				case l.IterPID != 0:
					_ = x.Set("pid", l.IterPID)
				case l.IterTarget == "cgroup":
					_ = x.Set("cgroup_id", e.bigU64(l.IterCgroupID))
					_ = x.Set("order", l.IterCgroupOrder)
				}
			}
			if l.Type == bpf.LinkTypeNetns {
				_ = x.Set("netns_ino", l.NetnsIno)
			}
			if pf := l.Perf; pf != nil {
				y := r.NewObject()
				_ = y.Set("kind", pf.Kind)
				if pf.Func != "" {
					_ = y.Set("func", pf.Func)
					_ = y.Set("offset", pf.Offset)
					_ = y.Set("addr", e.bigU64(pf.Addr))
					_ = y.Set("retprobe", pf.Retprobe)
				}
				if pf.Tracepoint != "" {
					_ = y.Set("tracepoint", pf.Tracepoint)
				}
				_ = x.Set("perf", y)
			}
			if l.Err != nil {
				_ = x.Set("error", l.Err.Error())
			}
			_ = x.Set("obj", e.wrap(l.Obj))
			return x
		})
	})
	_ = o.Set("structOps", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.StructOpsForEach(p), func(s *bpf.StructOps) goja.Value {
			x := r.NewObject()
			_ = x.Set("id", s.Map.ID)
			_ = x.Set("name", s.Map.Name)
			_ = x.Set("kernel_struct_ops", s.KernelStruct)
			if s.ValueErr != nil {
				_ = x.Set("error", s.ValueErr.Error())
			} else {
				_ = x.Set("state", s.StateName)
				fs := make([]any, len(s.Funcs))
				for i, f := range s.Funcs {
					y := r.NewObject()
					_ = y.Set("member", f.Member)
					_ = y.Set("prog_id", f.ProgID)
					fs[i] = y
				}
				_ = x.Set("funcs", r.NewArray(fs...))
				if v, ok := s.ValueObject(); ok {
					_ = x.Set("value", e.wrap(v))
				}
			}
			_ = x.Set("map", e.wrap(s.Map.Obj))
			_ = x.Set("obj", e.wrap(s.Obj))
			return x
		})
	})
	_ = o.Set("pins", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.PinForEach(p), func(pin bpf.Pin) goja.Value {
			x := r.NewObject()
			_ = x.Set("path", pin.Path)
			_ = x.Set("kind", pin.Type.String())
			_ = x.Set("id", pin.ID)
			_ = x.Set("obj", e.wrap(pin.Obj))
			_ = x.Set("dentry", e.wrap(pin.Dentry))
			_ = x.Set("inode", e.wrap(pin.Inode))
			return x
		})
	})
	_ = o.Set("fds", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.FileForEach(p), func(f bpf.File) goja.Value {
			x := r.NewObject()
			_ = x.Set("pid", f.PID)
			_ = x.Set("tid", f.TID)
			_ = x.Set("comm", f.Comm)
			_ = x.Set("fd", f.FD)
			_ = x.Set("kind", f.Type.String())
			_ = x.Set("id", f.ID)
			if f.HasCookie {
				_ = x.Set("bpf_cookie", e.bigU64(f.Cookie))
			}
			_ = x.Set("file", e.wrap(f.File))
			_ = x.Set("obj", e.wrap(f.Obj))
			return x
		})
	})
	_ = o.Set("btfs", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.BTFForEach(p), func(b *bpf.BTF) goja.Value {
			x := r.NewObject()
			_ = x.Set("id", b.ID)
			_ = x.Set("name", b.Name)
			_ = x.Set("size", b.Size)
			_ = x.Set("kernel", b.Kernel)
			_ = x.Set("obj", e.wrap(b.Obj))
			return x
		})
	})
}
