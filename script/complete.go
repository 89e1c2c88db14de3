package script

import (
	"sort"
	"strings"

	"github.com/dop251/goja"
)

// Complete completes the expression ending line: the globals, or the
// properties of the object before the last dot (a kernel value's members
// and accessors). It returns the candidates, sorted, and where in line
// the completed word starts. Completing evaluates the object's path
// (plain property reads, never calls).
func (e *Engine) Complete(line string) ([]string, int) {
	start := len(line)
	for start > 0 {
		c := line[start-1]
		if c == '_' || c == '$' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			start--
			continue
		}
		break
	}
	expr := line[start:]
	dot := strings.LastIndexByte(expr, '.')
	var names []string
	word := expr
	if dot < 0 {
		names = e.globalNames()
	} else {
		word = expr[dot+1:]
		start += dot + 1
		names = e.propertyNames(expr[:dot])
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if strings.HasPrefix(n, word) && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, start
}

func (e *Engine) globalNames() []string {
	names := append([]string{}, globalNames...)
	names = append(names, e.rt.GlobalObject().Keys()...)
	return names
}

// propertyNames lists what may follow path + ".".
func (e *Engine) propertyNames(path string) (names []string) {
	defer func() {
		if recover() != nil {
			names = nil
		}
	}()
	if path == "" || strings.Contains(path, "..") {
		return nil
	}
	parts := strings.Split(path, ".")
	var cur goja.Value = e.rt.GlobalObject().Get(parts[0])
	for _, p := range parts[1:] {
		o, ok := cur.(*goja.Object)
		if !ok || cur == nil {
			return nil
		}
		cur = o.Get(p)
	}
	o, ok := cur.(*goja.Object)
	if !ok {
		return nil
	}
	if w, ok := unwrap(o); ok {
		names = append(w.Keys(), valueProps...)
		return append(names, valueMethods...)
	}
	names = o.Keys()
	for proto := o.Prototype(); proto != nil && proto != e.rt.Get("Object").(*goja.Object).Get("prototype"); proto = proto.Prototype() {
		names = append(names, proto.Keys()...)
	}
	if o == e.kernel {
		names = append(names, kernelProps...)
	}
	return names
}
