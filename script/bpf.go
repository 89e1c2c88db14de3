package script

import (
	"encoding/json"
	"iter"
	"slices"
	"strings"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/objects"
)

// setupBPF defines kernel.bpf: the BPF nouns of the command line, each
// returning the Go results the commands print (converted by result):
// bpftool's JSON keys where bpftool has the field, each record with obj,
// the kernel object.
func (e *Engine) setupBPF(o *goja.Object) {
	p := e.prog
	set := func(name string, f func(goja.FunctionCall) goja.Value) { _ = o.Set(name, f) }
	conv := func(x any) goja.Value { return e.result(x) }
	// cgroup tree
	set("cgroupTree", func(goja.FunctionCall) goja.Value { return e.cgroupTree() })

	// prog show
	set("progs", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.ProgForEach(p), func(bp *bpf.Prog) goja.Value { return e.result(bp.Info()) })
	})
	// prog dump xlated: rows (bpftool's JSON) or text ({text: true}; with
	// visual, the Graphviz CFG).
	set("xlated", func(c goja.FunctionCall) goja.Value {
		bp, o := e.progArg(c, "kernel.bpf.xlated(prog, options)")
		x, err := bp.DumpXlated(e.k.Symbols())
		if err != nil {
			e.throw(err)
		}
		to := bpfinsn.TextOptions{Opcodes: o.bool("opcodes"), Linum: o.bool("linum")}
		if !o.bool("text") && !o.bool("visual") {
			return e.result(x.JSON(to))
		}
		var sb strings.Builder
		if o.bool("visual") {
			err = x.WriteDot(&sb)
		} else {
			err = x.WriteText(&sb, to)
		}
		if err != nil {
			e.throw(err)
		}
		return e.rt.ToValue(sb.String())
	})
	// prog dump jited: the disassembled images, or their text.
	set("jited", func(c goja.FunctionCall) goja.Value {
		bp, o := e.progArg(c, "kernel.bpf.jited(prog, options)")
		funcs, err := bp.DumpJited(e.k.Symbols())
		if err != nil {
			e.throw(err)
		}
		if !o.bool("text") {
			return e.result(funcs)
		}
		var sb strings.Builder
		if err := bpf.WriteJited(&sb, funcs, bpfinsn.TextOptions{Opcodes: o.bool("opcodes"), Linum: o.bool("linum")}); err != nil {
			e.throw(err)
		}
		return e.rt.ToValue(sb.String())
	})
	// prog tag: every program's, or one's.
	set("tags", func(c goja.FunctionCall) goja.Value {
		if len(c.Arguments) > 0 {
			bp, _ := e.progArg(c, "kernel.bpf.tags(prog)")
			return e.result([]*bpf.TagCheck{bp.RecomputeTag(e.k.Symbols())})
		}
		return iterate(e, bpf.ProgForEach(p), func(bp *bpf.Prog) goja.Value { return e.result(bp.RecomputeTag(e.k.Symbols())) })
	})
	// map show
	set("maps", func(goja.FunctionCall) goja.Value {
		return iterate(e, seqOf(bpf.SelectMaps(p, bpf.Selector{})), func(m *bpf.MapShow) goja.Value { return conv(m) })
	})
	// map dump: a streaming iterator of the elements, each with what
	// bpftool's --json dump shows (key, value or per-CPU values,
	// formatted through the map's BTF when it has one).
	set("mapDump", func(c goja.FunctionCall) goja.Value {
		m := e.mapArg(c, "kernel.bpf.mapDump(map)")
		key, val := e.mapTypes(m)
		return iterate(e, m.Entries(), func(en *bpf.MapEntry) goja.Value { return e.mapEntry(en, key, val) })
	})
	// A ring buffer's header (map dump's, before its records).
	set("ringbuf", func(c goja.FunctionCall) goja.Value {
		rb, err := e.mapArg(c, "kernel.bpf.ringbuf(map)").RingBuf()
		if err != nil {
			e.throw(err)
		}
		return e.result(rb)
	})
	// map lookup: one element by its key's bytes; null when absent.
	set("mapLookup", func(c goja.FunctionCall) goja.Value {
		m := e.mapArg(c, "kernel.bpf.mapLookup(map, key)")
		k := e.bytesArg(c, 1, "kernel.bpf.mapLookup(map, key)")
		en, err := m.Lookup(k)
		if err != nil {
			e.throw(err)
		}
		if en == nil {
			return goja.Null()
		}
		key, val := e.mapTypes(m)
		return e.mapEntry(en, key, val)
	})
	// link show
	set("links", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.LinkForEach(p), func(l *bpf.Link) goja.Value {
			// Types as link show names them (bpftool 7.1's: a number
			// for what libbpf 1.1 does not know).
			x := conv(l)
			if o, ok := x.(*goja.Object); ok {
				_ = o.Set("type", bpf.ToolTypeJSON(bpf.ToolLinkType(l.TypeName, l.Type)))
				if l.ProgTypeName != "" {
					_ = o.Set("prog_type", bpf.ToolTypeJSON(bpf.ToolProgType(l.ProgTypeName, l.ProgType)))
				}
				if l.HasAttachType {
					_ = o.Set("attach_type", bpf.ToolTypeJSON(bpf.ToolAttachType(l.AttachTypeName, l.AttachType)))
				}
			}
			return x
		})
	})
	// net show (net --bpf)
	set("netShow", func(goja.FunctionCall) goja.Value {
		r, err := bpf.ReadNetShow(p)
		if err != nil {
			e.throw(err)
		}
		// Through its JSON: tcx and cls_bpf entries are bpftool's two
		// shapes (bpf.NetTC.MarshalJSON).
		b, err := json.Marshal(r)
		if err != nil {
			e.throw(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			e.throw(err)
		}
		return e.result(v)
	})
	// btf show
	set("btfs", func(goja.FunctionCall) goja.Value {
		return iterate(e, seqOf(bpf.SelectBTFs(p, bpf.Selector{})), func(b *bpf.BTFShow) goja.Value { return conv(b) })
	})
	// struct_ops show / dump: the value as a typed kernel value.
	set("structOps", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.StructOpsForEach(p), func(s *bpf.StructOps) goja.Value {
			x := e.result(s).(*goja.Object)
			if v, ok := s.ValueObject(); ok {
				_ = x.Set("value", e.wrap(v))
			}
			_ = x.Set("map", e.wrap(s.Map.Obj))
			return x
		})
	})
	// struct_ops dump: bpftool's --json: per map, {bpf_map_info} then
	// {bpf_struct_ops_NAME}; every map's, or the one named.
	set("structOpsDump", func(c goja.FunctionCall) goja.Value {
		sel := bpf.Selector{}
		if len(c.Arguments) > 0 {
			sel = e.selectorArg(c, "kernel.bpf.structOpsDump(map)")
		}
		list, err := bpf.SelectStructOps(p, sel)
		if err != nil && len(list) == 0 {
			e.throw(err)
		}
		w := &jsTokens{e: e}
		w.BeginArray()
		for _, so := range list {
			if err := so.WriteDump(w, false); err != nil {
				e.throw(err)
			}
		}
		w.EndArray()
		return w.root
	})
	// show -f and --pids
	set("pins", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.PinForEach(p), func(pin bpf.Pin) goja.Value { return conv(pin) })
	})
	set("fds", func(goja.FunctionCall) goja.Value {
		return iterate(e, bpf.FileForEach(p), func(f bpf.File) goja.Value { return conv(f) })
	})
	// prog run, prog state, prog debug (bpfrun.go).
	e.setupReplay(set)
	// feature
	set("features", func(goja.FunctionCall) goja.Value {
		f, err := bpf.ProbeFeatures(p, e.k.Symbols())
		if err != nil {
			e.throw(err)
		}
		return e.result(f)
	})
}

// seqOf iterates a walk's result slice, then its error.
func seqOf[T any](xs []T, err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, x := range xs {
			if !yield(x, nil) {
				return
			}
		}
		if err != nil {
			var zero T
			yield(zero, err)
		}
	}
}

// options reads a JS options object.
type options struct{ o *goja.Object }

func (o options) bool(name string) bool {
	if o.o == nil {
		return false
	}
	v := o.o.Get(name)
	return v != nil && v.ToBoolean()
}

// progArg takes the program named by the first argument (an id, or a
// name) and the options object after it.
func (e *Engine) progArg(c goja.FunctionCall, what string) (*bpf.Prog, options) {
	sel := e.selectorArg(c, what)
	progs, err := bpf.SelectProgs(e.prog, sel)
	if err != nil {
		e.throw(err)
	}
	if len(progs) == 0 {
		e.throw(objects.ErrNotFound)
	}
	return progs[0], e.optionsArg(c, 1)
}

// mapArg takes the map named by the first argument (an id or a name).
func (e *Engine) mapArg(c goja.FunctionCall, what string) *bpf.Map {
	m, err := bpf.FindMap(e.prog, e.selectorArg(c, what))
	if err != nil {
		e.throw(err)
	}
	return m
}

// selectorArg reads an id (a number) or a name (a string).
func (e *Engine) selectorArg(c goja.FunctionCall, what string) bpf.Selector {
	a := c.Argument(0)
	if s, ok := a.Export().(string); ok {
		return bpf.Selector{Kind: bpf.SelectName, Name: s}
	}
	return bpf.Selector{Kind: bpf.SelectID, ID: uint32(e.intArg(c, 0, what))}
}

func (e *Engine) optionsArg(c goja.FunctionCall, i int) options {
	if a := c.Argument(i); !goja.IsUndefined(a) && !goja.IsNull(a) {
		return options{a.ToObject(e.rt)}
	}
	return options{}
}

// bytesArg reads a Uint8Array, an ArrayBuffer or an array of numbers.
func (e *Engine) bytesArg(c goja.FunctionCall, i int, what string) []byte {
	switch x := c.Argument(i).Export().(type) {
	case []byte:
		return slices.Clone(x)
	case goja.ArrayBuffer:
		return slices.Clone(x.Bytes())
	case []any:
		b := make([]byte, len(x))
		for j, v := range x {
			n, ok := v.(int64)
			if !ok || n < 0 || n > 255 {
				e.throwf("%s: %s argument: element %d is not a byte", what, argName(i), j)
			}
			b[j] = byte(n)
		}
		return b
	}
	e.throwf("%s: %s argument: want a Uint8Array or an array of bytes", what, argName(i))
	return nil
}
