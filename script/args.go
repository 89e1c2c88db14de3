package script

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/objects"
)

// argName names argument i of a call for messages.
func argName(i int) string { return [...]string{"first", "second", "third", "fourth"}[min(i, 3)] }

func (e *Engine) strArg(c goja.FunctionCall, i int, what string) string {
	a := c.Argument(i)
	if goja.IsUndefined(a) || goja.IsNull(a) {
		e.throwf("%s: the %s argument is missing", what, argName(i))
	}
	return a.String()
}

func (e *Engine) intArg(c goja.FunctionCall, i int, what string) int64 {
	a := c.Argument(i)
	n, err := toInt(a)
	if err != nil {
		e.throwf("%s: %s argument: %v", what, argName(i), err)
	}
	return n
}

// toInt reads an integer from a Number or BigInt.
func toInt(a goja.Value) (int64, error) {
	if a == nil || goja.IsUndefined(a) || goja.IsNull(a) {
		return 0, fmt.Errorf("missing")
	}
	switch x := a.Export().(type) {
	case int64:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.IsNaN(x) {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int64(x), nil
	case *big.Int:
		if !x.IsInt64() {
			return 0, fmt.Errorf("%v is out of range", x)
		}
		return x.Int64(), nil
	}
	return 0, fmt.Errorf("%s is not a number", a)
}

// ParseAddr reads an address as scripts give one: a Number (an exact
// integer), a BigInt, a string ("0xffff...", decimal) or a kernel value
// (a pointer's target, an object's address).
func ParseAddr(a goja.Value) (uint64, error) {
	if a == nil || goja.IsUndefined(a) || goja.IsNull(a) {
		return 0, fmt.Errorf("missing address")
	}
	if w, ok := unwrap(a); ok {
		if _, isPtr := a.(*goja.Object); isPtr {
			v := w.addr()
			if goja.IsNull(v) {
				return 0, fmt.Errorf("%s has no address", w.v)
			}
			return v.Export().(*big.Int).Uint64(), nil
		}
	}
	switch x := a.Export().(type) {
	case int64:
		if x < 0 {
			return uint64(x), nil
		}
		return uint64(x), nil
	case float64:
		if x != math.Trunc(x) || x < 0 || x >= 1<<53 {
			return 0, fmt.Errorf("%v is not an exact address (use a BigInt or a string)", x)
		}
		return uint64(x), nil
	case *big.Int:
		if x.Sign() < 0 {
			if !x.IsInt64() {
				return 0, fmt.Errorf("%v is out of range", x)
			}
			return uint64(x.Int64()), nil
		}
		if !x.IsUint64() {
			return 0, fmt.Errorf("%v is out of range", x)
		}
		return x.Uint64(), nil
	case string:
		s := strings.TrimSpace(x)
		s = strings.TrimSuffix(s, "n")
		if s == "" {
			return 0, fmt.Errorf("empty address")
		}
		u, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			if h, err2 := strconv.ParseUint(s, 16, 64); err2 == nil && len(s) >= 8 {
				return h, nil
			}
			return 0, fmt.Errorf("%q is not an address", x)
		}
		return u, nil
	}
	return 0, fmt.Errorf("%s is not an address", a)
}

func (e *Engine) addrArg(c goja.FunctionCall, i int, what string) uint64 {
	a, err := ParseAddr(c.Argument(i))
	if err != nil {
		e.throwf("%s: %s argument: %v", what, argName(i), err)
	}
	return a
}

// valueArg reads a kernel value argument; a string is a global
// variable's name.
func (e *Engine) valueArg(c goja.FunctionCall, i int, what string) objects.Value {
	a := c.Argument(i)
	if w, ok := unwrap(a); ok {
		return w.v
	}
	if s, ok := a.Export().(string); ok {
		v, err := e.prog.Variable(s)
		if err != nil {
			e.throw(err)
		}
		return v
	}
	e.throwf("%s: the %s argument %s is not a kernel value", what, argName(i), a)
	return objects.Value{}
}
