package btfload

import "github.com/cilium/ebpf/btf"

// orderC returns the types that libbpf's btf_dump (behind "bpftool btf
// dump format c") defines at top level when asked for roots in turn, in
// its order: a topological sort in which a type embedded in another
// ("strong" link) comes first, while one reached only through a pointer
// is left to a forward declaration. Named enums and forward declarations
// are always listed, anonymous ones only when nothing refers to them; a
// typedef reached through a pointer only when what it names is strong.
// Following libbpf exactly keeps the output byte-identical to bpftool's.
func orderC(roots []btf.Type) []btf.Type {
	o := &cOrder{state: map[btf.Type]int{}, referenced: map[btf.Type]bool{}}
	o.markReferenced(roots)
	for _, r := range roots {
		o.order(r, false)
	}
	return o.queue
}

// Order states, as in libbpf.
const (
	ordNone = iota
	ordOrdering
	ordOrdered
)

type cOrder struct {
	state      map[btf.Type]int
	referenced map[btf.Type]bool
	queue      []btf.Type
}

// markReferenced notes every type another type refers to, over the
// closure of roots (libbpf marks over the whole BTF, which bpftool's
// roots are).
func (o *cOrder) markReferenced(roots []btf.Type) {
	seen := map[btf.Type]bool{}
	stack := append([]btf.Type(nil), roots...)
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t == nil || seen[t] {
			continue
		}
		seen[t] = true
		for _, c := range cChildren(t) {
			o.referenced[c] = true
			stack = append(stack, c)
		}
	}
}

// cChildren lists the types t refers to directly.
func cChildren(t btf.Type) []btf.Type {
	switch t := t.(type) {
	case *btf.Pointer:
		return []btf.Type{t.Target}
	case *btf.Const:
		return []btf.Type{t.Type}
	case *btf.Volatile:
		return []btf.Type{t.Type}
	case *btf.Restrict:
		return []btf.Type{t.Type}
	case *btf.TypeTag:
		return []btf.Type{t.Type}
	case *btf.Typedef:
		return []btf.Type{t.Type}
	case *btf.Func:
		return []btf.Type{t.Type}
	case *btf.Var:
		return []btf.Type{t.Type}
	case *btf.Array:
		return []btf.Type{t.Index, t.Type}
	case *btf.Struct:
		return memberTypes(t.Members)
	case *btf.Union:
		return memberTypes(t.Members)
	case *btf.FuncProto:
		out := []btf.Type{t.Return}
		for _, p := range t.Params {
			out = append(out, p.Type)
		}
		return out
	case *btf.Datasec:
		var out []btf.Type
		for _, v := range t.Vars {
			out = append(out, v.Type)
		}
		return out
	}
	return nil
}

func memberTypes(ms []btf.Member) []btf.Type {
	out := make([]btf.Type, len(ms))
	for i, m := range ms {
		out[i] = m.Type
	}
	return out
}

// order is libbpf's btf_dump_order_type: it returns 1 when t is strong
// (its definition is needed), 0 when not, -1 on a cycle C cannot express.
func (o *cOrder) order(t btf.Type, throughPtr bool) int {
	if t == nil {
		return 1 // void is always defined
	}
	if _, ok := t.(*btf.Void); ok {
		return 1
	}
	switch o.state[t] {
	case ordOrdered:
		return 1
	case ordOrdering:
		switch tt := t.(type) {
		case *btf.Struct:
			if throughPtr && tt.Name != "" {
				return 0
			}
		case *btf.Union:
			if throughPtr && tt.Name != "" {
				return 0
			}
		}
		return -1
	}
	switch tt := t.(type) {
	case *btf.Int, *btf.Float:
		o.state[t] = ordOrdered
		return 0
	case *btf.Pointer:
		r := o.order(tt.Target, true)
		o.state[t] = ordOrdered
		return r
	case *btf.Array:
		return o.order(tt.Type, false)
	case *btf.Struct:
		return o.composite(t, tt.Name, tt.Members, throughPtr)
	case *btf.Union:
		return o.composite(t, tt.Name, tt.Members, throughPtr)
	case *btf.Enum:
		return o.declaration(t, tt.Name)
	case *btf.Fwd:
		return o.declaration(t, tt.Name)
	case *btf.Typedef:
		strong := o.order(tt.Type, throughPtr)
		if strong < 0 {
			return strong
		}
		if throughPtr && strong == 0 {
			return 0
		}
		o.queue = append(o.queue, t)
		o.state[t] = ordOrdered
		return 1
	case *btf.Const:
		return o.order(tt.Type, throughPtr)
	case *btf.Volatile:
		return o.order(tt.Type, throughPtr)
	case *btf.Restrict:
		return o.order(tt.Type, throughPtr)
	case *btf.TypeTag:
		return o.order(tt.Type, throughPtr)
	case *btf.FuncProto:
		r := o.order(tt.Return, throughPtr)
		if r < 0 {
			return r
		}
		strong := r > 0
		for _, p := range tt.Params {
			r := o.order(p.Type, throughPtr)
			if r < 0 {
				return r
			}
			strong = strong || r > 0
		}
		if strong {
			return 1
		}
		return 0
	default: // func, var, datasec, decl tag
		o.state[t] = ordOrdered
		return 0
	}
}

func (o *cOrder) composite(t btf.Type, name string, members []btf.Member, throughPtr bool) int {
	if throughPtr && name != "" {
		return 0
	}
	o.state[t] = ordOrdering
	for _, m := range members {
		if r := o.order(m.Type, false); r < 0 {
			return r
		}
	}
	if name != "" {
		o.queue = append(o.queue, t)
	}
	o.state[t] = ordOrdered
	return 1
}

func (o *cOrder) declaration(t btf.Type, name string) int {
	if name != "" || !o.referenced[t] {
		o.queue = append(o.queue, t)
	}
	o.state[t] = ordOrdered
	return 1
}
