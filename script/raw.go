package script

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
)

// The twins of crash's raw-access commands.

// setupRawTwins adds the kernel functions of the raw-access commands.
func (e *Engine) setupRawTwins(k *goja.Object) {
	p := e.prog
	fn := func(name string, f func(goja.FunctionCall) goja.Value) { _ = k.Set(name, f) }
	// dis FUNC|ADDR [COUNT]: a function's name disassembles the
	// function, an address one instruction, unless a count is given.
	fn("dis", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.dis(target, count)"
		addr, name := e.textArg(c, 0, what)
		count := 1
		if name {
			count = 0
		}
		if a := c.Argument(1); !goja.IsUndefined(a) {
			if count = int(e.intArg(c, 1, what)); count <= 0 {
				e.throwf("%s: count %d is not positive", what, count)
			}
		}
		d, err := linux.Disassemble(p, e.k.Symbols(), addr, count)
		if err != nil {
			e.throw(err)
		}
		return e.result(d)
	})
	// rd [-8|-16|-32|-64] [-s] [-p] ADDR [N].
	fn("rd", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.rd(addr, options)"
		addr, _ := e.textArg(c, 0, what)
		o := e.optionsArg(c, 1)
		ro := linux.RdOptions{Size: int(e.optInt(o, "size", what, 8)), Count: int(e.optInt(o, "count", what, 1)),
			Symbolic: o.bool("symbolic"), Physical: o.bool("physical")}
		if ro.Count <= 0 {
			e.throwf("%s: count %d is not positive", what, ro.Count)
		}
		read := linux.ReadFunc(p.Read)
		if ro.Physical {
			read = e.k.ReadPhys
		}
		r, err := linux.ReadMemory(read, e.k.Symbols(), addr, ro)
		if err != nil {
			e.throw(err)
		}
		return e.result(r)
	})
	// sym -l [PATTERN].
	fn("symbols", func(c goja.FunctionCall) goja.Value {
		pattern := ""
		if a := c.Argument(0); !goja.IsUndefined(a) {
			pattern = e.strArg(c, 0, "kernel.symbols(pattern)")
		}
		if e.k.Symbols() == nil {
			e.throw(fmt.Errorf("kernel.symbols: no symbol table: %w", kallsyms.ErrNotFound))
		}
		rows, err := linux.ListSymbols(e.k.Symbols(), pattern)
		if err != nil {
			e.throw(err)
		}
		return e.result(rows)
	})
	// struct and union TYPE [ADDR] [-o].
	for _, kind := range []string{"struct", "union"} {
		fn(kind, func(c goja.FunctionCall) goja.Value {
			what := "kernel." + kind + "(type, addr, options)"
			var addr *uint64
			if a := c.Argument(1); !goja.IsUndefined(a) && !goja.IsNull(a) {
				v, _ := e.textArg(c, 1, what)
				addr = &v
			}
			sv, err := linux.ViewStruct(p, kind, e.strArg(c, 0, what), addr, e.optionsArg(c, 2).bool("offsets"))
			if err != nil {
				e.throw(err)
			}
			return e.result(sv)
		})
	}
	fn("whatis", func(c goja.FunctionCall) goja.Value {
		w, err := linux.WhatIs(p, e.strArg(c, 0, "kernel.whatis(name)"))
		if err != nil {
			e.throw(err)
		}
		return e.result(w)
	})
	// list -H HEAD [-o OFFSET] [-s TYPE[.MEMBER,...]].
	fn("list", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.list(head, options)"
		head, _ := e.textArg(c, 0, what)
		o := e.optionsArg(c, 1)
		var lo linux.ListOptions
		if o.o != nil {
			if v := o.o.Get("offset"); v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
				off, err := linux.ListOffset(p, v.String())
				if err != nil {
					e.throw(err)
				}
				lo.Offset = off
			}
			if v := o.o.Get("type"); v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
				lo.Type = v.String()
			}
			if v := o.o.Get("members"); v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
				if err := e.rt.ExportTo(v, &lo.Members); err != nil {
					e.throwf("%s: members: %v", what, err)
				}
			}
		}
		r, err := linux.WalkList(p, head, lo)
		if err != nil {
			e.throw(err)
		}
		return e.result(r)
	})
	// search [-s START] [-e END] [-8|-16|-32|-64] [-p] [--max N] VALUE...
	fn("search", func(c goja.FunctionCall) goja.Value {
		const what = "kernel.search(values, options)"
		var vals []goja.Value
		if a := c.Argument(0); a.ExportType() != nil && a.ExportType().Kind() == reflect.Slice {
			for _, k := range a.ToObject(e.rt).Keys() {
				vals = append(vals, a.ToObject(e.rt).Get(k))
			}
		} else {
			vals = []goja.Value{a}
		}
		o := e.optionsArg(c, 1)
		so := linux.SearchOptions{Size: int(e.optInt(o, "size", what, 8)), Physical: o.bool("physical"), Max: int(e.optInt(o, "max", what, 0))}
		for _, v := range vals {
			a, _ := e.textValue(v, what+": a value")
			so.Values = append(so.Values, a)
		}
		if o.o != nil {
			if v := o.o.Get("start"); v != nil && !goja.IsUndefined(v) {
				so.Start, _ = e.textValue(v, what+": start")
			}
			if v := o.o.Get("end"); v != nil && !goja.IsUndefined(v) {
				so.End, _ = e.textValue(v, what+": end")
			}
			so.Length = uint64(e.optInt(o, "length", what, 0))
		}
		read := linux.ReadFunc(p.Read)
		if so.Physical {
			read = e.k.ReadPhys
		}
		r, err := linux.SearchMemory(p, read, so)
		if err != nil {
			e.throw(err)
		}
		return e.result(r)
	})
}

// textArg reads a place in the kernel: an address (as addrArg), or a
// string naming a symbol, "NAME" or "NAME+OFF"; name says it was a bare
// symbol's name.
func (e *Engine) textArg(c goja.FunctionCall, i int, what string) (addr uint64, name bool) {
	return e.textValue(c.Argument(i), what+": "+argName(i)+" argument")
}

// textValue is textArg's reading of a value.
func (e *Engine) textValue(a goja.Value, what string) (addr uint64, name bool) {
	s, isStr := a.Export().(string)
	if addr, err := ParseAddr(a); err == nil || !isStr {
		if err != nil {
			e.throwf("%s: %v", what, err)
		}
		return addr, false
	}
	sym, off, hasOff := strings.Cut(s, "+")
	var o uint64
	if hasOff {
		var err error
		if o, err = strconv.ParseUint(off, 0, 64); err != nil {
			e.throwf("%s: bad offset in %q", what, s)
		}
	}
	if e.k.Symbols() == nil {
		e.throw(fmt.Errorf("%s: %q: no symbol table: %w", what, s, kallsyms.ErrNotFound))
	}
	base, err := e.k.Symbols().Addr(sym)
	if err != nil {
		e.throw(fmt.Errorf("%s: %w", what, err))
	}
	return base + o, !hasOff
}
