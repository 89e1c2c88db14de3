package script

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"weak"

	"github.com/cilium/ebpf/btf"
	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// A typed kernel value is a goja dynamic object backed by a jsval: its
// properties are the struct's members (read when asked), its own
// accessors end in an underscore so that no member name is hidden.
//
// Conversion of a member read as a property:
//   - struct, union, non-char array, pointer: a typed value (wrapper)
//   - char array: a string (up to the NUL)
//   - bool: a boolean; float: a number
//   - integer or enum of at most 4 bytes: a number; of 8 or more: a BigInt
type jsval struct {
	e *Engine
	v objects.Value
}

// Accessors of typed values, kept in the prototype (methods) or answered
// by Get (properties). docs/scripting.md documents each; a test checks.
var (
	valueProps   = []string{"addr_", "type_", "size_", "length"}
	valueMethods = []string{"address_of_", "add_", "cast_", "container_of_", "deref_", "format_",
		"has_", "index_", "is_null_", "json_", "member_", "members_", "read_", "string_", "value_", "toString", "valueOf", "toJSON"}
)

// identity keeps one JS object per (type, address) for as long as the
// script holds it, so prog.aux === prog.aux.
type identity struct {
	m     map[identKey]weak.Pointer[goja.Object]
	sweep int
}

type identKey struct {
	typ    btf.Type
	addr   uint64
	bits   uint64 // bitOff<<32 | bitLen
	lvalue bool
}

func newIdentity() *identity {
	return &identity{m: map[identKey]weak.Pointer[goja.Object]{}, sweep: 4096}
}

func (c *identity) get(k identKey) *goja.Object {
	if w, ok := c.m[k]; ok {
		return w.Value()
	}
	return nil
}

func (c *identity) put(k identKey, o *goja.Object) {
	if len(c.m) >= c.sweep {
		for k, w := range c.m {
			if w.Value() == nil {
				delete(c.m, k)
			}
		}
		c.sweep = max(4096, 2*len(c.m))
	}
	c.m[k] = weak.Make(o)
}

// wrap returns the JS object of a typed value, the same object for the
// same object in memory (or the same pointer constant).
func (e *Engine) wrap(v objects.Value) *goja.Object {
	k, ok := keyOf(v)
	if ok {
		if o := e.cache.get(k); o != nil {
			return o
		}
	}
	o := e.rt.NewDynamicObject(&jsval{e: e, v: v})
	_ = o.SetPrototype(e.proto)
	if ok {
		e.cache.put(k, o)
	}
	return o
}

func keyOf(v objects.Value) (identKey, bool) {
	if v.IsPerCPU() {
		return identKey{}, false
	}
	addr, lv := v.Address()
	if lv {
		off, n, _ := v.BitField()
		return identKey{typ: v.Type(), addr: addr, bits: uint64(off)<<32 | uint64(n), lvalue: true}, true
	}
	if _, ok := btfload.Underlying(v.Type()).(*btf.Pointer); ok {
		x, err := v.Uint()
		if err == nil {
			return identKey{typ: v.Type(), addr: x}, true
		}
	}
	return identKey{}, false
}

// unwrap returns the typed value behind a JS value, if it is one.
func unwrap(x goja.Value) (*jsval, bool) {
	o, ok := x.(*goja.Object)
	if !ok {
		return nil, false
	}
	w, ok := o.Export().(*jsval)
	return w, ok
}

func isChar(t btf.Type) bool {
	i, ok := btfload.Underlying(t).(*btf.Int)
	return ok && i.Size == 1 && (i.Encoding&btf.Char != 0 || i.Name == "char" || i.Name == "signed char" || i.Name == "unsigned char")
}

// toJS converts a value read as a property (see jsval).
func (e *Engine) toJS(v objects.Value) goja.Value {
	switch u := btfload.Underlying(v.Type()).(type) {
	case *btf.Struct, *btf.Union, *btf.Pointer:
		return e.wrap(v)
	case *btf.Array:
		if isChar(u.Type) {
			s, err := v.CString()
			if err != nil {
				e.throw(err)
			}
			return e.rt.ToValue(s)
		}
		return e.wrap(v)
	case *btf.Int:
		x, err := v.Uint()
		if err != nil {
			e.throw(err)
		}
		return e.intToJS(x, u.Encoding&btf.Signed != 0, int(u.Size), u.Encoding&btf.Bool != 0, v)
	case *btf.Enum:
		x, err := v.Uint()
		if err != nil {
			e.throw(err)
		}
		return e.intToJS(x, u.Signed, int(u.Size), false, v)
	case *btf.Float:
		b, err := v.Bytes()
		if err != nil {
			e.throw(err)
		}
		switch len(b) {
		case 4:
			return e.rt.ToValue(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
		case 8:
			return e.rt.ToValue(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
		return e.wrap(v)
	}
	return e.wrap(v)
}

// intToJS applies the number rule: at most 4 bytes (or a bitfield of at
// most 32 bits) is a Number, wider is a BigInt; bool is a boolean.
func (e *Engine) intToJS(x uint64, signed bool, size int, isBool bool, v objects.Value) goja.Value {
	if isBool {
		return e.rt.ToValue(x != 0)
	}
	if _, width, bf := v.BitField(); bf && width <= 32 {
		size = 4
	}
	if size <= 4 {
		if signed {
			return e.rt.ToValue(int64(x))
		}
		return e.rt.ToValue(x)
	}
	if signed {
		return e.rt.ToValue(new(big.Int).SetInt64(int64(x)))
	}
	return e.rt.ToValue(new(big.Int).SetUint64(x))
}

func (e *Engine) bigU64(x uint64) goja.Value { return e.rt.ToValue(new(big.Int).SetUint64(x)) }

// isAccessor says whether key names a value's own accessor.
func isAccessor(key string) bool {
	if strings.HasSuffix(key, "_") {
		return true
	}
	switch key {
	case "toString", "valueOf", "toJSON", "constructor", "hasOwnProperty", "isPrototypeOf",
		"propertyIsEnumerable", "toLocaleString", "__proto__", "then":
		return true
	}
	return false
}

// Get answers a property: an accessor property, a member, or an element.
func (w *jsval) Get(key string) goja.Value {
	e := w.e
	switch key {
	case "addr_":
		return w.addr()
	case "type_":
		return e.rt.ToValue(w.v.TypeName())
	case "size_":
		n, err := w.v.Size()
		if err != nil {
			e.throw(err)
		}
		return e.rt.ToValue(n)
	}
	u := btfload.Underlying(w.v.Type())
	if a, ok := u.(*btf.Array); ok && key == "length" {
		return e.rt.ToValue(a.Nelems)
	}
	if isAccessor(key) {
		if w.hasMember(key) {
			m, err := w.v.Member(key)
			if err != nil {
				e.throw(err)
			}
			return e.toJS(m)
		}
		return nil
	}
	if i, err := strconv.ParseInt(key, 10, 64); err == nil {
		switch u.(type) {
		case *btf.Array, *btf.Pointer:
			el, err := w.v.Index(i)
			if err != nil {
				e.throw(err)
			}
			return e.toJS(el)
		}
	}
	m, err := w.v.Member(key)
	if err != nil {
		e.throw(err)
	}
	return e.toJS(m)
}

// addr is addr_: an object's address, a pointer's target, as a BigInt;
// null for a constant that is not a pointer.
func (w *jsval) addr() goja.Value {
	if _, ok := btfload.Underlying(w.v.Type()).(*btf.Pointer); ok {
		x, err := w.v.Uint()
		if err != nil {
			w.e.throw(err)
		}
		return w.e.bigU64(x)
	}
	if a, ok := w.v.Address(); ok {
		return w.e.bigU64(a)
	}
	return goja.Null()
}

// structOf is the struct or union a member access works on: the value's
// type or its pointer's target.
func structOf(t btf.Type) []btf.Member {
	u := btfload.Underlying(t)
	if p, ok := u.(*btf.Pointer); ok {
		u = btfload.Underlying(p.Target)
	}
	switch s := u.(type) {
	case *btf.Struct:
		return s.Members
	case *btf.Union:
		return s.Members
	}
	return nil
}

func memberNames(ms []btf.Member, out []string) []string {
	for _, m := range ms {
		if m.Name != "" {
			out = append(out, m.Name)
			continue
		}
		out = memberNames(structOf(m.Type), out)
	}
	return out
}

func (w *jsval) hasMember(name string) bool {
	for _, n := range memberNames(structOf(w.v.Type()), nil) {
		if n == name {
			return true
		}
	}
	return false
}

// Set refuses: scripts cannot write kernel memory.
func (w *jsval) Set(key string, val goja.Value) bool {
	w.e.throw(fmt.Errorf("set %s of %s: %w", key, w.v, errReadOnly))
	return false
}

// Has says whether key is a member (or an element).
func (w *jsval) Has(key string) bool {
	switch key {
	case "addr_", "type_", "size_":
		return true
	}
	if a, ok := btfload.Underlying(w.v.Type()).(*btf.Array); ok {
		if key == "length" {
			return true
		}
		i, err := strconv.ParseInt(key, 10, 64)
		return err == nil && i >= 0 && (a.Nelems == 0 || i < int64(a.Nelems))
	}
	return w.hasMember(key)
}

// Delete refuses, as Set.
func (w *jsval) Delete(key string) bool { return false }

// Keys lists the members (of a struct, union or pointer to one) or the
// indices of an array.
func (w *jsval) Keys() []string {
	if a, ok := btfload.Underlying(w.v.Type()).(*btf.Array); ok {
		n := min(int(a.Nelems), 1<<16)
		ks := make([]string, n)
		for i := range ks {
			ks[i] = strconv.Itoa(i)
		}
		return ks
	}
	if _, ok := btfload.Underlying(w.v.Type()).(*btf.Pointer); ok {
		return nil
	}
	return memberNames(structOf(w.v.Type()), nil)
}
