package script

import (
	"encoding/json"
	"math/big"
	"strconv"

	"github.com/cilium/ebpf/btf"
	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/bpf"
)

// jsTokens builds JS values from the tokens bpf.DumpBTFValue writes (it
// is a bpf.TokenWriter): what bpftool's --json "formatted" shows, as JS
// data. Numbers past 2^53 become BigInts.
type jsTokens struct {
	e     *Engine
	stack []any // *goja.Object being filled, or *[]any for an array
	names []string
	root  goja.Value
}

func (t *jsTokens) put(v goja.Value) {
	if len(t.stack) == 0 {
		t.root = v
		return
	}
	switch c := t.stack[len(t.stack)-1].(type) {
	case *goja.Object:
		n := t.names[len(t.names)-1]
		_ = c.Set(n, v)
	case *[]any:
		*c = append(*c, v)
	}
}

func (t *jsTokens) BeginObject() {
	o := t.e.rt.NewObject()
	t.put(o)
	t.stack = append(t.stack, o)
	t.names = append(t.names, "")
}

func (t *jsTokens) EndObject() {
	t.stack = t.stack[:len(t.stack)-1]
	t.names = t.names[:len(t.names)-1]
}

func (t *jsTokens) BeginArray() {
	t.stack = append(t.stack, &[]any{})
	t.names = append(t.names, "")
}

func (t *jsTokens) EndArray() {
	a := t.stack[len(t.stack)-1].(*[]any)
	t.stack = t.stack[:len(t.stack)-1]
	t.names = t.names[:len(t.names)-1]
	t.put(t.e.rt.NewArray(*a...))
}

func (t *jsTokens) Name(n string) { t.names[len(t.names)-1] = n }

func (t *jsTokens) String(s string) { t.put(t.e.rt.ToValue(s)) }

// Raw is a JSON literal: a number, true, false, null, or a quoted string.
func (t *jsTokens) Raw(tok string) {
	switch tok {
	case "true", "false":
		t.put(t.e.rt.ToValue(tok == "true"))
		return
	case "null":
		t.put(goja.Null())
		return
	}
	if len(tok) > 0 && tok[0] == '"' {
		var s string
		if json.Unmarshal([]byte(tok), &s) == nil {
			t.put(t.e.rt.ToValue(s))
			return
		}
	}
	if n, err := strconv.ParseInt(tok, 10, 64); err == nil && n <= maxSafe && n >= -maxSafe {
		t.put(t.e.rt.ToValue(n))
		return
	}
	if b, ok := new(big.Int).SetString(tok, 10); ok {
		t.put(t.e.rt.ToValue(b))
		return
	}
	if f, err := strconv.ParseFloat(tok, 64); err == nil {
		t.put(t.e.rt.ToValue(f))
		return
	}
	t.put(t.e.rt.ToValue(tok))
}

// formatBTF renders data of type t as bpftool's --json "formatted".
func (e *Engine) formatBTF(t btf.Type, data []byte) (goja.Value, error) {
	w := &jsTokens{e: e}
	if err := bpf.DumpBTFValue(w, t, data, false); err != nil {
		return nil, err
	}
	return w.root, nil
}

// mapTypes are the types a map's elements are formatted with (nil, nil
// without BTF).
func (e *Engine) mapTypes(m *bpf.Map) (key, val btf.Type) {
	key, val, err := m.FormatTypes(e.prog.Types().BTF())
	if err != nil {
		e.throw(err)
	}
	return key, val
}

// mapEntry is a map element as map dump --json shows it: key, value (or
// values per CPU) and, through BTF, formatted.
func (e *Engine) mapEntry(en *bpf.MapEntry, key, val btf.Type) goja.Value {
	switch {
	case en.Record != nil:
		// A ring buffer's record: its header's fields, then its data.
		x := e.result(en.Record).(*goja.Object)
		if en.Err != nil {
			_ = x.Set("error", en.Err.Error())
		} else {
			_ = x.Set("data", e.result(en.Value))
		}
		return x
	case en.Event != nil || en.Err != nil && en.Value == nil && en.PerCPU == nil:
		// A perf_event_array slot, or a value that could not be read:
		// the event (or the error) is the value.
		x := e.rt.NewObject()
		_ = x.Set("key", e.result(en.Key))
		if en.Event != nil {
			_ = x.Set("value", e.result(en.Event))
		} else {
			v := e.rt.NewObject()
			_ = v.Set("error", en.Err.Error())
			_ = x.Set("value", v)
		}
		return x
	}
	x := e.result(en).(*goja.Object)
	if en.PerCPU != nil {
		// bpftool's values: [{cpu, value}].
		vs := make([]any, len(en.PerCPU))
		for i, b := range en.PerCPU {
			o := e.rt.NewObject()
			_ = o.Set("cpu", i)
			_ = o.Set("value", e.result(b))
			vs[i] = o
		}
		_ = x.Set("values", e.rt.NewArray(vs...))
	}
	if key == nil && val == nil {
		return x
	}
	f := e.rt.NewObject()
	if key != nil && en.Key != nil {
		if v, err := e.formatBTF(key, en.Key); err == nil {
			_ = f.Set("key", v)
		}
	}
	if val != nil {
		if en.PerCPU != nil {
			vs := make([]any, len(en.PerCPU))
			for i, b := range en.PerCPU {
				o := e.rt.NewObject()
				_ = o.Set("cpu", i)
				if v, err := e.formatBTF(val, b); err == nil {
					_ = o.Set("value", v)
				}
				vs[i] = o
			}
			_ = f.Set("values", e.rt.NewArray(vs...))
		} else if v, err := e.formatBTF(val, en.Value); err == nil {
			_ = f.Set("value", v)
		}
	}
	_ = x.Set("formatted", f)
	return x
}
