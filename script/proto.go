package script

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/cilium/ebpf/btf"
	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// makeProto builds the prototype of typed values: the methods of
// valueMethods and Symbol.iterator.
func (e *Engine) makeProto() *goja.Object {
	r := e.rt
	p := r.NewObject()
	this := func(c goja.FunctionCall) *jsval {
		w, ok := unwrap(c.This)
		if !ok {
			e.throwf("a value accessor called on %s, not a kernel value", c.This)
		}
		return w
	}
	must := func(v objects.Value, err error) goja.Value {
		if err != nil {
			e.throw(err)
		}
		return e.wrap(v)
	}
	def := func(name string, f func(w *jsval, c goja.FunctionCall) goja.Value) {
		_ = p.Set(name, func(c goja.FunctionCall) goja.Value { return f(this(c), c) })
	}
	def("address_of_", func(w *jsval, c goja.FunctionCall) goja.Value { return must(w.v.AddressOf()) })
	def("add_", func(w *jsval, c goja.FunctionCall) goja.Value {
		pt, ok := btfload.Underlying(w.v.Type()).(*btf.Pointer)
		if !ok {
			e.throw(fmt.Errorf("add_ of %s: not a pointer: %w", w.v.TypeName(), objects.ErrType))
		}
		n := e.intArg(c, 0, "add_")
		base, err := w.v.Uint()
		if err != nil {
			e.throw(err)
		}
		sz := int64(1)
		if _, void := btfload.Underlying(pt.Target).(*btf.Void); !void && pt.Target != nil {
			s, err := btf.Sizeof(pt.Target)
			if err != nil {
				e.throw(fmt.Errorf("add_ of %s: %v: %w", w.v.TypeName(), err, objects.ErrType))
			}
			sz = int64(s)
		}
		v, err := e.prog.Constant(w.v.Type(), base+uint64(n*sz))
		return must(v, err)
	})
	def("cast_", func(w *jsval, c goja.FunctionCall) goja.Value {
		return must(w.v.Cast(e.strArg(c, 0, "cast_(type)")))
	})
	def("container_of_", func(w *jsval, c goja.FunctionCall) goja.Value {
		return must(objects.ContainerOf(w.v, e.strArg(c, 0, "container_of_(type, member)"), e.strArg(c, 1, "container_of_(type, member)")))
	})
	def("deref_", func(w *jsval, c goja.FunctionCall) goja.Value { return must(w.v.Deref()) })
	def("format_", func(w *jsval, c goja.FunctionCall) goja.Value {
		s, err := objects.Format(w.v, objects.FormatOptions{})
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(s)
	})
	def("has_", func(w *jsval, c goja.FunctionCall) goja.Value {
		return r.ToValue(w.hasMember(e.strArg(c, 0, "has_(member)")))
	})
	def("index_", func(w *jsval, c goja.FunctionCall) goja.Value { return must(w.v.Index(e.intArg(c, 0, "index_(i)"))) })
	def("is_null_", func(w *jsval, c goja.FunctionCall) goja.Value {
		if _, ok := btfload.Underlying(w.v.Type()).(*btf.Pointer); !ok {
			return r.ToValue(false)
		}
		x, err := w.v.Uint()
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(x == 0)
	})
	def("json_", func(w *jsval, c goja.FunctionCall) goja.Value {
		b, err := w.v.MarshalJSON()
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(string(b))
	})
	def("member_", func(w *jsval, c goja.FunctionCall) goja.Value { return must(w.v.Path(e.strArg(c, 0, "member_(path)"))) })
	def("members_", func(w *jsval, c goja.FunctionCall) goja.Value {
		return r.ToValue(memberNames(structOf(w.v.Type()), []string{}))
	})
	def("read_", func(w *jsval, c goja.FunctionCall) goja.Value {
		b, err := w.v.Bytes()
		if err != nil {
			e.throw(err)
		}
		return e.uint8Array(b)
	})
	def("string_", func(w *jsval, c goja.FunctionCall) goja.Value {
		if _, ok := btfload.Underlying(w.v.Type()).(*btf.Enum); ok {
			s, err := w.v.EnumName()
			if err != nil {
				e.throw(err)
			}
			return r.ToValue(s)
		}
		s, err := w.v.CString()
		if err != nil {
			e.throw(err)
		}
		return r.ToValue(s)
	})
	def("value_", func(w *jsval, c goja.FunctionCall) goja.Value { return e.plain(w.v) })
	def("toString", func(w *jsval, c goja.FunctionCall) goja.Value { return r.ToValue(w.v.String()) })
	def("valueOf", func(w *jsval, c goja.FunctionCall) goja.Value {
		switch btfload.Underlying(w.v.Type()).(type) {
		case *btf.Struct, *btf.Union, *btf.Array:
			return c.This
		}
		return e.plain(w.v)
	})
	def("toJSON", func(w *jsval, c goja.FunctionCall) goja.Value { return e.plain(w.v) })
	_ = p.SetSymbol(goja.SymIterator, func(c goja.FunctionCall) goja.Value {
		w := this(c)
		a, ok := btfload.Underlying(w.v.Type()).(*btf.Array)
		if !ok {
			e.throw(fmt.Errorf("%s is not iterable (iterate arrays, or use kernel.listForEach and friends): %w", w.v.TypeName(), objects.ErrType))
		}
		n := int64(a.Nelems)
		var i int64
		return e.iterObject(func() (goja.Value, bool) {
			if i >= n {
				return nil, false
			}
			el, err := w.v.Index(i)
			if err != nil {
				e.throw(err)
			}
			i++
			return e.toJS(el), true
		}, func() {})
	})
	return p
}

// plain converts a value to plain JS data (value_): a scalar by the
// number rule, a pointer as a BigInt, a char array as a string, a
// struct, union or array as objects and arrays of those (pointers there
// are "0x..." strings, as in JSON output).
func (e *Engine) plain(v objects.Value) goja.Value {
	switch u := btfload.Underlying(v.Type()).(type) {
	case *btf.Pointer:
		x, err := v.Uint()
		if err != nil {
			e.throw(err)
		}
		return e.bigU64(x)
	case *btf.Struct, *btf.Union:
		return e.jsonValue(v)
	case *btf.Array:
		if isChar(u.Type) {
			return e.toJS(v)
		}
		return e.jsonValue(v)
	}
	return e.toJS(v)
}

func (e *Engine) jsonValue(v objects.Value) goja.Value {
	b, err := v.MarshalJSON()
	if err != nil {
		e.throw(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	x, err := e.decodeJSON(d)
	if err != nil {
		e.throw(fmt.Errorf("value_ of %s: %w", v, err))
	}
	return x
}

// decodeJSON builds JS data from JSON tokens, keeping the members' order
// and integers beyond 2^53 exact (BigInt).
func (e *Engine) decodeJSON(d *json.Decoder) (goja.Value, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			var xs []any
			for d.More() {
				x, err := e.decodeJSON(d)
				if err != nil {
					return nil, err
				}
				xs = append(xs, x)
			}
			_, err := d.Token()
			return e.rt.NewArray(xs...), err
		}
		o := e.rt.NewObject()
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			x, err := e.decodeJSON(d)
			if err != nil {
				return nil, err
			}
			_ = o.Set(fmt.Sprint(k), x)
		}
		_, err := d.Token()
		return o, err
	case json.Number:
		if i, err := t.Int64(); err == nil {
			if i > 1<<53 || i < -(1<<53) {
				return e.rt.ToValue(new(big.Int).SetInt64(i)), nil
			}
			return e.rt.ToValue(i), nil
		}
		if b, ok := new(big.Int).SetString(string(t), 10); ok {
			return e.rt.ToValue(b), nil
		}
		f, _ := t.Float64()
		return e.rt.ToValue(f), nil
	case nil:
		return goja.Null(), nil
	}
	return e.rt.ToValue(tok), nil
}
