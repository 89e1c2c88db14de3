package btfload

import (
	"fmt"
	"math"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// cDecl declares inner (a name, or "" for a type name) of type t in C.
// base spells a struct, union, enum or typedef.
func cDecl(t btf.Type, inner string, base func(btf.Type) string) string {
	join := func(b, in string) string {
		if in == "" {
			return b
		}
		return b + " " + in
	}
	for range 64 {
		switch tt := t.(type) {
		case nil, *btf.Void:
			return join("void", inner)
		case *btf.Int, *btf.Float, *btf.Struct, *btf.Union, *btf.Enum, *btf.Typedef, *btf.Fwd:
			return join(base(t), inner)
		case *btf.Pointer:
			in := "*" + inner
			switch skipQuals(tt.Target).(type) {
			case *btf.Array, *btf.FuncProto:
				in = "(" + in + ")"
			}
			t = tt.Target
			inner = in
		case *btf.Const:
			if _, ok := skipQuals(tt.Type).(*btf.Pointer); ok {
				inner = strings.TrimSpace("const " + inner)
				t = tt.Type
				continue
			}
			return "const " + cDecl(tt.Type, inner, base)
		case *btf.Volatile:
			if _, ok := skipQuals(tt.Type).(*btf.Pointer); ok {
				inner = strings.TrimSpace("volatile " + inner)
				t = tt.Type
				continue
			}
			return "volatile " + cDecl(tt.Type, inner, base)
		case *btf.Restrict:
			if _, ok := skipQuals(tt.Type).(*btf.Pointer); ok {
				inner = strings.TrimSpace("restrict " + inner)
			}
			t = tt.Type
		case *btf.TypeTag:
			t = tt.Type
		case *btf.Array:
			inner = fmt.Sprintf("%s[%d]", inner, tt.Nelems)
			t = tt.Type
		case *btf.FuncProto:
			var ps []string
			for i, p := range tt.Params {
				if _, ok := p.Type.(*btf.Void); (ok || p.Type == nil) && i == len(tt.Params)-1 && i > 0 {
					ps = append(ps, "...")
					continue
				}
				ps = append(ps, cDecl(p.Type, "", base))
			}
			if len(ps) == 0 {
				ps = []string{"void"}
			}
			inner = inner + "(" + strings.Join(ps, ", ") + ")"
			t = tt.Return
		case *btf.Var:
			return cDecl(tt.Type, tt.Name, base)
		case *btf.Func:
			return cDecl(tt.Type, tt.Name, base)
		default:
			return join(fmt.Sprintf("/* %T */ void", t), inner)
		}
	}
	return join("void /* too deep */", inner)
}

// plainBase spells named types by their BTF names.
func plainBase(t btf.Type) string {
	switch t := t.(type) {
	case *btf.Struct:
		return "struct " + anonOr(t.Name)
	case *btf.Union:
		return "union " + anonOr(t.Name)
	case *btf.Enum:
		return "enum " + anonOr(t.Name)
	case *btf.Fwd:
		if t.Kind == btf.FwdUnion {
			return "union " + t.Name
		}
		return "struct " + t.Name
	}
	return t.TypeName()
}

func anonOr(n string) string {
	if n == "" {
		return "(anonymous)"
	}
	return n
}

// skipQuals removes const, volatile, restrict and type tags.
func skipQuals(t btf.Type) btf.Type {
	for range 64 {
		switch tt := t.(type) {
		case *btf.Const:
			t = tt.Type
		case *btf.Volatile:
			t = tt.Type
		case *btf.Restrict:
			t = tt.Type
		case *btf.TypeTag:
			t = tt.Type
		default:
			return t
		}
	}
	return t
}

// Underlying removes typedefs and qualifiers.
func Underlying(t btf.Type) btf.Type {
	for range 64 {
		t = skipQuals(t)
		td, ok := t.(*btf.Typedef)
		if !ok {
			return t
		}
		t = td.Type
	}
	return t
}

// state of a type in the C emitter.
const (
	stNone = iota
	stDeclared
	stBusy
	stDone
)

// cEmitter writes C definitions in dependency order.
type cEmitter struct {
	b      strings.Builder
	state  map[btf.Type]int
	names  map[btf.Type]string
	taken  map[string]btf.Type // "struct x", "typedef x", "enum x" → type
	enumer map[string]bool     // enumerator names emitted
	packed map[btf.Type]bool
	// declared: a forward declaration was written.
	declared map[btf.Type]bool
	align    map[btf.Type]int
}

// FormatC renders the types and everything they depend on as C: named
// structs, unions, enums and typedefs each defined once, after the types
// they embed, with forward declarations for types only pointed to —
// like "bpftool btf dump format c" for the closure of the roots. Layout
// follows BTF exactly: padding is spelled out with unnamed bitfields and
// structs BTF places tighter than C would get __attribute__((packed)).
// Types of the same name but different shape get a ___N suffix.
func FormatC(roots ...btf.Type) string { return formatC(roots...).b.String() }

func formatC(roots ...btf.Type) *cEmitter {
	e := &cEmitter{
		state: map[btf.Type]int{}, names: map[btf.Type]string{}, taken: map[string]btf.Type{},
		enumer: map[string]bool{}, declared: map[btf.Type]bool{}, packed: map[btf.Type]bool{}, align: map[btf.Type]int{},
	}
	for _, t := range orderC(roots) {
		e.visit(t, true)
	}
	return e
}

// name returns the (unique) C name of a named type.
func (e *cEmitter) name(t btf.Type) string {
	if n, ok := e.names[t]; ok {
		return n
	}
	var ns, n string
	switch tt := t.(type) {
	case *btf.Struct:
		ns, n = "struct", tt.Name
	case *btf.Union:
		ns, n = "union", tt.Name
	case *btf.Enum:
		ns, n = "enum", tt.Name
	case *btf.Fwd:
		ns, n = "struct", tt.Name
		if tt.Kind == btf.FwdUnion {
			ns = "union"
		}
	case *btf.Typedef:
		ns, n = "typedef", tt.Name
	default:
		return t.TypeName()
	}
	// Tags (struct, union, enum) share one namespace in C.
	space := ns
	if ns != "typedef" {
		space = "tag"
	}
	cand := n
	for i := 2; ; i++ {
		o, ok := e.taken[space+" "+cand]
		if !ok {
			e.taken[space+" "+cand] = t
			break
		}
		if _, isFwd := o.(*btf.Fwd); isFwd {
			e.taken[space+" "+cand] = t
			break
		}
		if _, isFwd := t.(*btf.Fwd); isFwd {
			break
		}
		cand = fmt.Sprintf("%s___%d", n, i)
	}
	e.names[t] = cand
	return cand
}

// base spells a named or anonymous type for a declaration; anonymous
// structs, unions and enums are written inline at the indent given.
func (e *cEmitter) baseAt(indent int) func(btf.Type) string {
	return func(t btf.Type) string {
		switch tt := t.(type) {
		case *btf.Struct:
			if tt.Name == "" {
				return e.compositeBody("struct", tt.Members, tt.Size, t, indent)
			}
			return "struct " + e.name(t)
		case *btf.Union:
			if tt.Name == "" {
				return e.compositeBody("union", tt.Members, tt.Size, t, indent)
			}
			return "union " + e.name(t)
		case *btf.Enum:
			if tt.Name == "" {
				return e.enumBody(tt, indent)
			}
			return "enum " + e.name(t)
		case *btf.Fwd:
			if tt.Kind == btf.FwdUnion {
				return "union " + e.name(t)
			}
			return "struct " + e.name(t)
		case *btf.Typedef:
			return e.name(t)
		}
		return t.TypeName()
	}
}

// visit makes t usable: fully defined when full, else at least declared.
func (e *cEmitter) visit(t btf.Type, full bool) {
	switch tt := t.(type) {
	case *btf.Pointer:
		e.visit(tt.Target, false)
	case *btf.Const:
		e.visit(tt.Type, full)
	case *btf.Volatile:
		e.visit(tt.Type, full)
	case *btf.Restrict:
		e.visit(tt.Type, full)
	case *btf.TypeTag:
		e.visit(tt.Type, full)
	case *btf.Array:
		e.visit(tt.Type, full)
	case *btf.FuncProto:
		e.visit(tt.Return, false)
		for _, p := range tt.Params {
			e.visit(p.Type, false)
		}
	case *btf.Func:
		e.visit(tt.Type, false)
	case *btf.Var:
		e.visit(tt.Type, true)
	case *btf.Typedef:
		switch e.state[t] {
		case stDone:
			if full {
				e.visit(tt.Type, true)
			}
			return
		case stBusy:
			return
		}
		e.state[t] = stBusy
		e.visit(tt.Type, full)
		fmt.Fprintf(&e.b, "typedef %s;\n\n", cDecl(tt.Type, e.name(t), e.baseAt(0)))
		e.state[t] = stDone
	case *btf.Struct:
		e.visitComposite(t, tt.Name, tt.Members, full)
	case *btf.Union:
		e.visitComposite(t, tt.Name, tt.Members, full)
	case *btf.Enum:
		if tt.Name == "" || e.state[t] == stDone {
			return
		}
		e.state[t] = stDone
		fmt.Fprintf(&e.b, "%s;\n\n", e.enumBody(tt, 0))
	case *btf.Fwd:
		if e.state[t] == stNone {
			e.state[t] = stDeclared
			fmt.Fprintf(&e.b, "%s;\n\n", e.baseAt(0)(t))
		}
	}
}

func (e *cEmitter) visitComposite(t btf.Type, name string, members []btf.Member, full bool) {
	if name == "" {
		// Written inline where used: what it embeds comes first.
		if e.state[t] == stBusy {
			return
		}
		e.state[t] = stBusy
		for _, m := range members {
			e.visit(m.Type, true)
		}
		e.state[t] = stNone
		return
	}
	if !full {
		if e.state[t] != stDone && !e.declared[t] {
			e.declared[t] = true
			if e.state[t] == stNone {
				e.state[t] = stDeclared
			}
			fmt.Fprintf(&e.b, "%s;\n\n", e.baseAt(0)(t))
		}
		return
	}
	if e.state[t] == stDone || e.state[t] == stBusy {
		return
	}
	e.state[t] = stBusy
	for _, m := range members {
		e.visit(m.Type, true)
	}
	kw := "struct"
	size := uint32(0)
	switch tt := t.(type) {
	case *btf.Struct:
		size = tt.Size
	case *btf.Union:
		kw, size = "union", tt.Size
	}
	e.b.WriteString(e.compositeBody(kw, members, size, t, 0))
	e.b.WriteString(";\n\n")
	e.state[t] = stDone
}

// compositeBody writes "struct name {...}" with members at their BTF bit
// offsets.
func (e *cEmitter) compositeBody(kw string, members []btf.Member, size uint32, t btf.Type, indent int) string {
	var b strings.Builder
	head := kw
	if n := t.TypeName(); n != "" {
		head += " " + e.name(t)
	}
	b.WriteString(head + " {\n")
	in := strings.Repeat("\t", indent+1)
	packed := e.isPacked(t)
	cur := uint64(0) // bits
	isUnion := kw == "union"
	pad := func(to uint64) {
		for cur < to {
			w := min(to-cur, 64-cur%64)
			fmt.Fprintf(&b, "%slong: %d;\n", in, w)
			cur += w
		}
	}
	anon := 0
	for _, m := range members {
		off := uint64(m.Offset)
		if isUnion {
			cur = 0
		}
		if !isUnion {
			nat := e.naturalBitPos(cur, m, packed)
			if off > nat {
				pad(off)
			}
		}
		name := m.Name
		if name == "" {
			if _, ok := skipQuals(m.Type).(*btf.Struct); ok && skipQuals(m.Type).TypeName() == "" {
				name = ""
			} else if _, ok := skipQuals(m.Type).(*btf.Union); ok && skipQuals(m.Type).TypeName() == "" {
				name = ""
			} else {
				anon++
				name = fmt.Sprintf("__anon_%d", anon)
			}
		}
		decl := cDecl(m.Type, name, e.baseAt(indent+1))
		if m.BitfieldSize > 0 {
			fmt.Fprintf(&b, "%s%s: %d;\n", in, decl, m.BitfieldSize)
			cur = off + uint64(m.BitfieldSize)
		} else {
			fmt.Fprintf(&b, "%s%s;\n", in, decl)
			sz, _ := btf.Sizeof(m.Type)
			cur = off + uint64(sz)*8
		}
		if isUnion {
			continue
		}
	}
	// Trailing padding up to the BTF size.
	if isUnion {
		nat := e.naturalSize(t)
		if uint64(size) > nat {
			fmt.Fprintf(&b, "%schar __kinspect_pad[%d];\n", in, size)
		}
	} else {
		al := uint64(e.alignOf(t)) * 8
		end := uint64(size) * 8
		if (cur+al-1)/al*al < end {
			pad(end)
		}
	}
	b.WriteString(strings.Repeat("\t", indent) + "}")
	if packed {
		b.WriteString(" __attribute__((packed))")
	}
	return b.String()
}

// naturalBitPos is where C would place m after cur bits.
func (e *cEmitter) naturalBitPos(cur uint64, m btf.Member, packed bool) uint64 {
	sz, _ := btf.Sizeof(m.Type)
	if m.BitfieldSize > 0 {
		if packed || sz == 0 {
			return cur
		}
		unit := uint64(sz) * 8
		if cur/unit != (cur+uint64(m.BitfieldSize)-1)/unit {
			return (cur + unit - 1) / unit * unit
		}
		return cur
	}
	al := uint64(8)
	if !packed {
		al = uint64(e.alignOf(m.Type)) * 8
	}
	return (cur + al - 1) / al * al
}

// isPacked says whether BTF lays t out tighter than C's natural layout.
func (e *cEmitter) isPacked(t btf.Type) bool {
	if p, ok := e.packed[t]; ok {
		return p
	}
	e.packed[t] = false // against cycles
	var members []btf.Member
	var size uint32
	isUnion := false
	switch tt := t.(type) {
	case *btf.Struct:
		members, size = tt.Members, tt.Size
	case *btf.Union:
		members, size, isUnion = tt.Members, tt.Size, true
	default:
		return false
	}
	packed := false
	maxAl := 1
	cur := uint64(0)
	for _, m := range members {
		al := e.alignOf(m.Type)
		maxAl = max(maxAl, al)
		off := uint64(m.Offset)
		if isUnion {
			continue
		}
		if m.BitfieldSize == 0 && off%(uint64(al)*8) != 0 {
			packed = true
			break
		}
		if off < e.naturalBitPos(cur, m, false) {
			packed = true
			break
		}
		if m.BitfieldSize > 0 {
			cur = off + uint64(m.BitfieldSize)
		} else {
			sz, _ := btf.Sizeof(m.Type)
			cur = off + uint64(sz)*8
		}
	}
	if !packed && uint64(size)%uint64(maxAl) != 0 {
		packed = true
	}
	if !packed && isUnion && e.naturalSizeWith(members, maxAl) > uint64(size) {
		packed = true
	}
	e.packed[t] = packed
	return packed
}

// naturalSize is the size C gives a union of t's members.
func (e *cEmitter) naturalSize(t btf.Type) uint64 {
	var members []btf.Member
	switch tt := t.(type) {
	case *btf.Union:
		members = tt.Members
	case *btf.Struct:
		members = tt.Members
	}
	return e.naturalSizeWith(members, e.alignOf(t))
}

func (e *cEmitter) naturalSizeWith(members []btf.Member, al int) uint64 {
	var n uint64
	for _, m := range members {
		sz, _ := btf.Sizeof(m.Type)
		n = max(n, uint64(sz))
	}
	a := uint64(max(al, 1))
	return (n + a - 1) / a * a
}

// alignOf is t's alignment as emitted.
func (e *cEmitter) alignOf(t btf.Type) int {
	if a, ok := e.align[t]; ok {
		return a
	}
	a := 1
	switch tt := t.(type) {
	case *btf.Int:
		a = int(min(tt.Size, 16))
	case *btf.Float:
		a = int(min(tt.Size, 16))
	case *btf.Enum:
		a = int(tt.Size)
	case *btf.Pointer:
		a = 8
	case *btf.Array:
		a = e.alignOf(tt.Type)
	case *btf.Typedef:
		a = e.alignOf(tt.Type)
	case *btf.Const, *btf.Volatile, *btf.Restrict, *btf.TypeTag:
		a = e.alignOf(skipQuals(t))
	case *btf.Struct, *btf.Union:
		e.align[t] = 1 // against cycles
		if !e.isPacked(t) {
			var members []btf.Member
			if s, ok := tt.(*btf.Struct); ok {
				members = s.Members
			} else {
				members = tt.(*btf.Union).Members
			}
			for _, m := range members {
				a = max(a, e.alignOf(m.Type))
			}
		}
	}
	a = max(a, 1)
	e.align[t] = a
	return a
}

// enumBody writes "enum name { A = 1, ... }" (attributes included).
func (e *cEmitter) enumBody(t *btf.Enum, indent int) string {
	var b strings.Builder
	b.WriteString("enum ")
	if t.Name != "" {
		b.WriteString(e.name(t) + " ")
	}
	b.WriteString("{\n")
	in := strings.Repeat("\t", indent+1)
	fits32 := true
	for _, v := range t.Values {
		name := v.Name
		for i := 2; e.enumer[name]; i++ {
			name = fmt.Sprintf("%s___%d", v.Name, i)
		}
		e.enumer[name] = true
		var lit string
		if t.Signed {
			x := int64(v.Value)
			lit = fmt.Sprint(x)
			if x > math.MaxInt32 || x < math.MinInt32 {
				lit += "LL"
				fits32 = false
			}
		} else {
			lit = fmt.Sprint(v.Value)
			if v.Value > math.MaxInt32 {
				fits32 = v.Value <= math.MaxUint32
				lit += "ULL"
				if v.Value <= math.MaxUint32 {
					lit = fmt.Sprint(v.Value) + "U"
				}
			}
		}
		fmt.Fprintf(&b, "%s%s = %s,\n", in, name, lit)
	}
	if len(t.Values) == 0 || t.Size == 8 && fits32 {
		n := fmt.Sprintf("__kinspect_%s_size", strings.TrimPrefix(anonOr(t.Name), "("))
		n = strings.NewReplacer("(", "", ")", "").Replace(n)
		for i := 2; e.enumer[n]; i++ {
			n = fmt.Sprintf("__kinspect_%s_size%d", t.Name, i)
		}
		e.enumer[n] = true
		v := "0"
		if t.Size == 8 {
			v = "0xffffffffffffffffULL"
		}
		fmt.Fprintf(&b, "%s%s = %s,\n", in, n, v)
	}
	b.WriteString(strings.Repeat("\t", indent) + "}")
	if t.Size < 4 {
		b.WriteString(" __attribute__((packed))")
	}
	return b.String()
}

// DefineC renders t's own definition in C, without the types it depends
// on (FormatC writes those too): a named struct's, union's or enum's
// body (other named types by their names, anonymous ones inline), a
// typedef, or a function's prototype; any other type's name.
func DefineC(t btf.Type) string {
	e := formatC()
	switch tt := t.(type) {
	case *btf.Struct:
		return e.compositeBody("struct", tt.Members, tt.Size, t, 0) + ";"
	case *btf.Union:
		return e.compositeBody("union", tt.Members, tt.Size, t, 0) + ";"
	case *btf.Enum:
		return e.enumBody(tt, 0) + ";"
	case *btf.Typedef:
		return "typedef " + cDecl(tt.Type, e.name(t), e.baseAt(0)) + ";"
	case *btf.Func:
		return cDecl(tt.Type, tt.Name, e.baseAt(0)) + ";"
	}
	return TypeString(t)
}

// DeclareC declares name as a t in C: "struct task_struct init_task",
// "char comm[16]".
func DeclareC(t btf.Type, name string) string { return cDecl(t, name, plainBase) }
