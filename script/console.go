package script

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// kinspectProps are the members of the kinspect global; documented in
// docs/scripting.md (a test checks).
var (
	kinspectProps = []string{"args", "json", "writeFile", "version"}
	globalNames   = []string{"kernel", "kinspect", "console", "print"}
)

// Version is kinspect.version (the CLI sets it).
var Version = "dev"

// maxWrite bounds one kinspect.writeFile.
const maxWrite = 1 << 30

func (e *Engine) setupConsole() error {
	r := e.rt
	printer := func(w io.Writer) func(goja.FunctionCall) goja.Value {
		return func(c goja.FunctionCall) goja.Value {
			parts := make([]string, len(c.Arguments))
			for i, a := range c.Arguments {
				if s, ok := a.Export().(string); ok {
					parts[i] = s
					continue
				}
				parts[i] = e.Format(a)
			}
			fmt.Fprintln(w, strings.Join(parts, " "))
			return goja.Undefined()
		}
	}
	logf, errf := printer(e.out), printer(e.cfg.Stderr)
	console := r.NewObject()
	_ = console.Set("log", logf)
	_ = console.Set("info", logf)
	_ = console.Set("error", errf)
	_ = console.Set("warn", errf)
	_ = r.Set("console", console)
	_ = r.Set("print", logf)

	ki := r.NewObject()
	args := make([]any, len(e.cfg.Args))
	for i, a := range e.cfg.Args {
		args[i] = a
	}
	_ = ki.Set("args", r.NewArray(args...))
	_ = ki.Set("version", Version)
	_ = ki.Set("json", func(c goja.FunctionCall) goja.Value {
		var buf bytes.Buffer
		e.writeJSON(&buf, c.Argument(0), 0)
		if n, err := toInt(c.Argument(1)); err == nil && n > 0 {
			var out bytes.Buffer
			if err := json.Indent(&out, buf.Bytes(), "", strings.Repeat(" ", int(min(n, 8)))); err == nil {
				return r.ToValue(out.String())
			}
		}
		return r.ToValue(buf.String())
	})
	_ = ki.Set("writeFile", func(c goja.FunctionCall) goja.Value {
		const what = "kinspect.writeFile(path, text, {overwrite})"
		path := e.strArg(c, 0, what)
		text := e.strArg(c, 1, what)
		over := e.cfg.Overwrite
		if o, ok := c.Argument(2).(*goja.Object); ok {
			if v := o.Get("overwrite"); v != nil && v.ToBoolean() {
				over = true
			}
		}
		if len(text) > maxWrite {
			e.throwf("%s: %d bytes is more than %d", what, len(text), maxWrite)
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if over {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				e.throwf("kinspect.writeFile: %s exists (pass {overwrite: true} to replace it)", path)
			}
			e.throw(fmt.Errorf("kinspect.writeFile: %w", err))
		}
		_, err = f.WriteString(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			e.throw(fmt.Errorf("kinspect.writeFile: %w", err))
		}
		return goja.Undefined()
	})
	_ = r.Set("kinspect", ki)
	return nil
}

// Format renders a JS value as console.log and the REPL print it: kernel
// structs as drgn prints them, pointers as (type *)0x..., BigInts in
// decimal but kernel addresses (the upper half of the address space,
// 0xffff8... and up) in hex as drgn prints them, objects and arrays in
// brief.
func (e *Engine) Format(v goja.Value) string {
	var sb strings.Builder
	e.format(&sb, v, 0, true)
	return sb.String()
}

const maxFormatDepth = 4

// kernelHalf is where x86-64's kernel half of the address space starts
// (with 4-level paging; 5-level's starts lower, at 0xff00...).
const kernelHalf = 0xff00_0000_0000_0000

func (e *Engine) format(sb *strings.Builder, v goja.Value, depth int, top bool) {
	if v == nil || goja.IsUndefined(v) {
		sb.WriteString("undefined")
		return
	}
	if goja.IsNull(v) {
		sb.WriteString("null")
		return
	}
	if w, ok := unwrap(v); ok {
		sb.WriteString(e.formatValue(w.v))
		return
	}
	switch x := v.Export().(type) {
	case string:
		if top {
			sb.WriteString(x)
		} else {
			sb.WriteString(strconv.Quote(x))
		}
		return
	case *big.Int:
		if x.Sign() > 0 && x.BitLen() == 64 && x.Uint64() >= kernelHalf {
			fmt.Fprintf(sb, "%#x", x.Uint64())
			return
		}
		sb.WriteString(x.String())
		return
	case int64, bool:
		fmt.Fprint(sb, x)
		return
	case float64:
		sb.WriteString(v.String())
		return
	}
	o, ok := v.(*goja.Object)
	if !ok {
		sb.WriteString(v.String())
		return
	}
	if _, ok := goja.AssertFunction(o); ok {
		name := o.Get("name")
		fmt.Fprintf(sb, "[Function %s]", name)
		return
	}
	if o.ClassName() == "Error" {
		sb.WriteString(o.String())
		return
	}
	if depth >= maxFormatDepth {
		sb.WriteString("[...]")
		return
	}
	if o.ClassName() == "Array" {
		n := o.Get("length").ToInteger()
		sb.WriteString("[")
		for i := int64(0); i < n; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			if i >= 100 {
				fmt.Fprintf(sb, "... %d more", n-i)
				break
			}
			e.format(sb, o.Get(strconv.FormatInt(i, 10)), depth+1, false)
		}
		sb.WriteString("]")
		return
	}
	keys := o.Keys()
	if len(keys) == 0 {
		sb.WriteString("{}")
		return
	}
	sb.WriteString("{ ")
	for i, k := range keys {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(k + ": ")
		e.format(sb, o.Get(k), depth+1, false)
	}
	sb.WriteString(" }")
}

// formatValue renders a typed value: drgn's format for objects, the
// pointer or scalar with its type otherwise.
func (e *Engine) formatValue(v objects.Value) string {
	switch btfload.Underlying(v.Type()).(type) {
	case *btf.Pointer:
		x, err := v.Uint()
		if err != nil {
			return fmt.Sprintf("(%s)<%v>", v.TypeName(), err)
		}
		return fmt.Sprintf("(%s)%#x", v.TypeName(), x)
	}
	s, err := objects.Format(v, objects.FormatOptions{MaxElements: 64})
	if err != nil {
		return fmt.Sprintf("%s <%v>", v, err)
	}
	return s
}

// writeJSON renders a JS value as JSON: kernel values as objects.Value's
// MarshalJSON, BigInts as exact numbers, keys in order.
func (e *Engine) writeJSON(buf *bytes.Buffer, v goja.Value, depth int) {
	if depth > 64 {
		e.throwf("kinspect.json: nested more than 64 deep (a cycle?)")
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		buf.WriteString("null")
		return
	}
	if w, ok := unwrap(v); ok {
		if _, isPtr := btfload.Underlying(w.v.Type()).(*btf.Pointer); isPtr {
			x, err := w.v.Uint()
			if err != nil {
				e.throw(err)
			}
			fmt.Fprintf(buf, "\"%#x\"", x)
			return
		}
		b, err := w.v.MarshalJSON()
		if err != nil {
			e.throw(err)
		}
		buf.Write(b)
		return
	}
	switch x := v.Export().(type) {
	case string:
		b, _ := json.Marshal(x)
		buf.Write(b)
		return
	case *big.Int:
		buf.WriteString(x.String())
		return
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
		return
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			buf.WriteString("null")
			return
		}
		b, _ := json.Marshal(x)
		buf.Write(b)
		return
	case bool:
		buf.WriteString(strconv.FormatBool(x))
		return
	}
	o, ok := v.(*goja.Object)
	if !ok {
		buf.WriteString("null")
		return
	}
	if _, fn := goja.AssertFunction(o); fn {
		buf.WriteString("null")
		return
	}
	if o.ClassName() == "Array" {
		n := o.Get("length").ToInteger()
		buf.WriteByte('[')
		for i := int64(0); i < n; i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			e.writeJSON(buf, o.Get(strconv.FormatInt(i, 10)), depth+1)
		}
		buf.WriteByte(']')
		return
	}
	buf.WriteByte('{')
	first := true
	for _, k := range o.Keys() {
		x := o.Get(k)
		if x == nil || goja.IsUndefined(x) {
			continue
		}
		if xo, ok := x.(*goja.Object); ok {
			if _, fn := goja.AssertFunction(xo); fn {
				continue
			}
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		e.writeJSON(buf, x, depth+1)
	}
	buf.WriteByte('}')
}
