package script

import (
	"encoding"
	"math/big"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/objects"
)

// The JS twins of the commands return the Go results the commands
// print, converted here by reflection, so that the two faces cannot
// drift apart: a struct becomes an object keyed by its fields' JSON names
// (the CLI's --json keys; "-" fields are left out, omitempty honoured,
// embedded structs inlined), a slice an array, []byte a Uint8Array, an
// objects.Hex (an address) and a field tagged js:"bigint" (a u64 that
// may grow past 2^53: times in ns, cookies, ids of 64 bits) a BigInt,
// other integers Numbers (a 64-bit one past 2^53 a BigInt rather than a
// wrong Number), a value that marshals itself as text (an enum) that
// text, a nil slice an empty array, time.Time an ISO 8601 string, an error its message, and
// an objects.Value a typed kernel value.

var (
	textType  = reflect.TypeFor[encoding.TextMarshaler]()
	valueType = reflect.TypeFor[objects.Value]()
	hexType   = reflect.TypeFor[objects.Hex]()
	timeType  = reflect.TypeFor[time.Time]()
	errorType = reflect.TypeFor[error]()
)

// result converts a Go result for scripts.
func (e *Engine) result(x any) goja.Value {
	if x == nil {
		return goja.Null()
	}
	return e.convert(reflect.ValueOf(x))
}

// maxSafe is Number.MAX_SAFE_INTEGER.
const maxSafe = 1<<53 - 1

func (e *Engine) convert(v reflect.Value) goja.Value {
	r := e.rt
	if !v.IsValid() {
		return goja.Null()
	}
	t := v.Type()
	switch {
	case t == valueType:
		return e.wrap(v.Interface().(objects.Value))
	case t == hexType:
		return e.bigU64(v.Uint())
	case t == timeType:
		tm := v.Interface().(time.Time)
		if tm.IsZero() {
			return goja.Null()
		}
		return r.ToValue(tm.Format(time.RFC3339Nano))
	case t.Implements(errorType) && (t.Kind() != reflect.Pointer || !v.IsNil()) && (t.Kind() != reflect.Interface || !v.IsNil()):
		return r.ToValue(v.Interface().(error).Error())
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && t.Implements(textType):
		// An enum that names itself (bpf.ObjType: "prog").
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err == nil {
			return r.ToValue(string(b))
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return goja.Null()
		}
		return e.convert(v.Elem())
	case reflect.Bool:
		return r.ToValue(v.Bool())
	case reflect.String:
		return r.ToValue(v.String())
	case reflect.Int64:
		if n := v.Int(); n > maxSafe || n < -maxSafe {
			return r.ToValue(big.NewInt(n))
		}
		return r.ToValue(v.Int())
	case reflect.Uint64, reflect.Uintptr:
		if n := v.Uint(); n > maxSafe {
			return e.bigU64(n)
		}
		return r.ToValue(v.Uint())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32:
		return r.ToValue(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return r.ToValue(v.Uint())
	case reflect.Float32, reflect.Float64:
		return r.ToValue(v.Float())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if v.IsNil() {
				return goja.Null()
			}
			return e.uint8Array(append([]byte(nil), v.Bytes()...))
		}
		fallthrough
	case reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = e.convert(v.Index(i))
		}
		return r.NewArray(out...)
	case reflect.Map:
		o := r.NewObject()
		it := v.MapRange()
		for it.Next() {
			_ = o.Set(toKey(it.Key()), e.convert(it.Value()))
		}
		return o
	case reflect.Struct:
		o := r.NewObject()
		e.setFields(o, v)
		return o
	}
	return goja.Undefined()
}

// setFields sets the exported fields of struct v on o, as encoding/json
// names them.
func (e *Engine) setFields(o *goja.Object, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, omitEmpty, skip := jsonName(f)
		if skip {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct {
				e.setFields(o, fv)
				continue
			}
			name = snake(f.Name)
		}
		if omitEmpty && fv.IsZero() {
			continue
		}
		if f.Tag.Get("js") == "bigint" {
			switch fv.Kind() {
			case reflect.Uint64:
				_ = o.Set(name, e.bigU64(fv.Uint()))
				continue
			case reflect.Int64:
				_ = o.Set(name, e.rt.ToValue(big.NewInt(fv.Int())))
				continue
			}
		}
		_ = o.Set(name, e.convert(fv))
	}
}

// jsonName reads a field's json tag, as encoding/json does: its name,
// "" for an untagged embedded struct (inlined), snake_case of the field's
// name when the tag gives none.
func jsonName(f reflect.StructField) (name string, omitEmpty, skip bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false, true
	}
	parts := strings.Split(tag, ",")
	for _, p := range parts[1:] {
		omitEmpty = omitEmpty || p == "omitempty"
	}
	name = parts[0]
	if name == "" && !f.Anonymous {
		name = snake(f.Name)
	}
	return name, omitEmpty, false
}

// snake is a Go field name in snake_case: "LoadTime" -> "load_time",
// "MapIDs" -> "map_ids", "BTFID" -> "btfid".
func snake(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, c := range rs {
		if unicode.IsUpper(c) && i > 0 && unicode.IsLower(rs[i-1]) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

func toKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	return reflectString(k)
}

func reflectString(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return big.NewInt(v.Int()).String()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return new(big.Int).SetUint64(v.Uint()).String()
	}
	return v.String()
}
