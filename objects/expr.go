package objects

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// Eval evaluates a C-like expression: variables (declared or per-CPU),
// integers, member access (. and ->), subscripts, * and &, casts to any
// type BTF names ("(struct bpf_prog *)0xffff..."), + and - (pointer
// arithmetic scales), sizeof(TYPE or EXPR), per_cpu(EXPR, CPU) and
// container_of(PTR, TYPE, MEMBER). Errors wrap btfload.ErrFormat for
// syntax and say at which column.
func (p *Program) Eval(expr string) (Value, error) {
	toks, err := lexExpr(expr)
	if err != nil {
		return Value{}, err
	}
	e := &evaluator{p: p, toks: toks, src: expr}
	v, err := e.expr()
	if err != nil {
		return Value{}, err
	}
	if e.pos < len(e.toks) {
		return Value{}, e.errf("unexpected %q", e.toks[e.pos].s)
	}
	return v, nil
}

type etok struct {
	s   string
	col int
	num bool
}

func lexExpr(s string) ([]etok, error) {
	var out []etok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '_' || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)):
			j := i
			for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, etok{s: s[i:j], col: i + 1, num: unicode.IsDigit(rune(c))})
			i = j
		case strings.HasPrefix(s[i:], "->"):
			out = append(out, etok{s: "->", col: i + 1})
			i += 2
		case strings.ContainsRune(".[]()*&+-,", rune(c)):
			out = append(out, etok{s: string(c), col: i + 1})
			i++
		default:
			return nil, fmt.Errorf("expression %q: unexpected %q at column %d: %w", s, c, i+1, btfload.ErrFormat)
		}
	}
	return out, nil
}

type evaluator struct {
	p    *Program
	toks []etok
	pos  int
	src  string
}

func (e *evaluator) errf(format string, args ...any) error {
	col := len(e.src) + 1
	if e.pos < len(e.toks) {
		col = e.toks[e.pos].col
	}
	return fmt.Errorf("expression %q, column %d: %s: %w", e.src, col, fmt.Sprintf(format, args...), btfload.ErrFormat)
}

func (e *evaluator) peek() string {
	if e.pos < len(e.toks) {
		return e.toks[e.pos].s
	}
	return ""
}

func (e *evaluator) accept(s string) bool {
	if e.peek() == s {
		e.pos++
		return true
	}
	return false
}

func (e *evaluator) expect(s string) error {
	if !e.accept(s) {
		if e.pos >= len(e.toks) {
			return e.errf("expected %q at the end", s)
		}
		return e.errf("expected %q, found %q", s, e.peek())
	}
	return nil
}

func (e *evaluator) expr() (Value, error) {
	v, err := e.unary()
	if err != nil {
		return Value{}, err
	}
	for {
		op := e.peek()
		if op != "+" && op != "-" {
			return v, nil
		}
		e.pos++
		w, err := e.unary()
		if err != nil {
			return Value{}, err
		}
		if v, err = e.arith(op, v, w); err != nil {
			return Value{}, err
		}
	}
}

// arith adds or subtracts, scaling for pointers as C does.
func (e *evaluator) arith(op string, a, b Value) (Value, error) {
	if _, ok := a.underlying().(*btf.Array); ok && a.lvalue {
		a = a.prog.Pointer(a.underlying().(*btf.Array).Type, a.addr)
	}
	x, err := a.Uint()
	if err != nil {
		return Value{}, err
	}
	y, err := b.Uint()
	if err != nil {
		return Value{}, err
	}
	if ptr, ok := a.underlying().(*btf.Pointer); ok {
		if _, bptr := b.underlying().(*btf.Pointer); bptr && op == "-" {
			sz, _ := btf.Sizeof(ptr.Target)
			l, _ := e.p.Type("long")
			return e.p.Constant(l, (x-y)/uint64(max(sz, 1)))
		}
		sz, err := btf.Sizeof(ptr.Target)
		if err != nil {
			sz = 1 // void *: GNU C's byte arithmetic
		}
		if op == "-" {
			y = -y
		}
		return e.p.Constant(a.typ, x+y*uint64(sz))
	}
	if op == "-" {
		y = -y
	}
	return e.p.Constant(a.typ, x+y)
}

// isTypeStart says whether the tokens at pos begin a type name.
func (e *evaluator) isTypeStart() bool {
	s := e.peek()
	switch s {
	case "struct", "union", "enum", "const", "volatile", "unsigned", "signed", "int", "long", "short", "char", "void", "_Bool":
		return true
	}
	if s == "" || e.toks[e.pos].num || !btfloadIsIdent(s) {
		return false
	}
	if _, ok := e.p.decls.Lookup(s); ok {
		return false
	}
	if _, err := e.p.types.PerCPUVar(s); err == nil {
		return false
	}
	_, err := e.p.types.Type(s)
	return err == nil
}

func btfloadIsIdent(s string) bool {
	return s != "" && (s[0] == '_' || unicode.IsLetter(rune(s[0])))
}

// typeName reads a type name up to (not including) the closing token.
func (e *evaluator) typeName(closers string) (btf.Type, error) {
	start := e.pos
	depth := 0
	for e.pos < len(e.toks) {
		s := e.peek()
		if depth == 0 && strings.Contains(closers, s) {
			break
		}
		if s == "[" {
			depth++
		} else if s == "]" {
			depth--
		}
		e.pos++
	}
	var parts []string
	for _, t := range e.toks[start:e.pos] {
		parts = append(parts, t.s)
	}
	name := strings.Join(parts, " ")
	t, err := e.p.types.Type(name)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (e *evaluator) unary() (Value, error) {
	switch e.peek() {
	case "*":
		e.pos++
		v, err := e.unary()
		if err != nil {
			return Value{}, err
		}
		return v.Deref()
	case "&":
		e.pos++
		v, err := e.unary()
		if err != nil {
			return Value{}, err
		}
		return v.AddressOf()
	case "-":
		e.pos++
		v, err := e.unary()
		if err != nil {
			return Value{}, err
		}
		x, err := v.Uint()
		if err != nil {
			return Value{}, err
		}
		return e.p.Constant(v.typ, -x)
	case "(":
		save := e.pos
		e.pos++
		if e.isTypeStart() {
			t, err := e.typeName(")")
			if err != nil {
				return Value{}, err
			}
			if err := e.expect(")"); err != nil {
				return Value{}, err
			}
			v, err := e.unary()
			if err != nil {
				return Value{}, err
			}
			return v.CastTo(t)
		}
		e.pos = save
	}
	return e.postfix()
}

func (e *evaluator) postfix() (Value, error) {
	v, err := e.primary()
	if err != nil {
		return Value{}, err
	}
	for {
		switch e.peek() {
		case ".", "->":
			arrow := e.peek() == "->"
			e.pos++
			name := e.peek()
			if !btfloadIsIdent(name) {
				return Value{}, e.errf("expected a member name")
			}
			e.pos++
			if arrow {
				if _, ok := v.underlying().(*btf.Pointer); !ok {
					return Value{}, fmt.Errorf("%s->%s: %s is not a pointer (use .): %w", e.src, name, v.TypeName(), ErrType)
				}
			}
			if v, err = v.Member(name); err != nil {
				return Value{}, err
			}
		case "[":
			e.pos++
			i, err := e.expr()
			if err != nil {
				return Value{}, err
			}
			if err := e.expect("]"); err != nil {
				return Value{}, err
			}
			n, err := i.Int()
			if err != nil {
				return Value{}, err
			}
			if v, err = v.Index(n); err != nil {
				return Value{}, err
			}
		default:
			return v, nil
		}
	}
}

func (e *evaluator) primary() (Value, error) {
	if e.pos >= len(e.toks) {
		return Value{}, e.errf("unexpected end")
	}
	t := e.toks[e.pos]
	switch {
	case t.s == "(":
		e.pos++
		v, err := e.expr()
		if err != nil {
			return Value{}, err
		}
		return v, e.expect(")")
	case t.num:
		e.pos++
		x, err := strconv.ParseUint(strings.TrimRight(strings.ToLower(t.s), "ul"), 0, 64)
		if err != nil {
			return Value{}, e.errf("bad number %q", t.s)
		}
		ul, _ := e.p.Type("unsigned long")
		return e.p.Constant(ul, x)
	case btfloadIsIdent(t.s):
		e.pos++
		if e.peek() == "(" {
			switch t.s {
			case "sizeof":
				return e.sizeof()
			case "per_cpu", "per_cpu_ptr":
				return e.perCPU()
			case "container_of":
				return e.containerOf()
			}
		}
		return e.p.Variable(t.s)
	}
	return Value{}, e.errf("unexpected %q", t.s)
}

func (e *evaluator) sizeof() (Value, error) {
	e.pos++ // (
	var t btf.Type
	if e.isTypeStart() {
		var err error
		if t, err = e.typeName(")"); err != nil {
			return Value{}, err
		}
	} else {
		v, err := e.expr()
		if err != nil {
			return Value{}, err
		}
		t = v.typ
	}
	if err := e.expect(")"); err != nil {
		return Value{}, err
	}
	n, err := btf.Sizeof(t)
	if err != nil {
		return Value{}, fmt.Errorf("sizeof(%s): %v: %w", btfload.TypeString(t), err, ErrType)
	}
	ul, _ := e.p.Type("unsigned long")
	return e.p.Constant(ul, uint64(n))
}

func (e *evaluator) perCPU() (Value, error) {
	e.pos++ // (
	v, err := e.expr()
	if err != nil {
		return Value{}, err
	}
	if err := e.expect(","); err != nil {
		return Value{}, err
	}
	c, err := e.expr()
	if err != nil {
		return Value{}, err
	}
	if err := e.expect(")"); err != nil {
		return Value{}, err
	}
	cpu, err := c.Int()
	if err != nil {
		return Value{}, err
	}
	return e.p.PerCPU(v, int(cpu))
}

func (e *evaluator) containerOf() (Value, error) {
	e.pos++ // (
	v, err := e.expr()
	if err != nil {
		return Value{}, err
	}
	if err := e.expect(","); err != nil {
		return Value{}, err
	}
	start := e.pos
	t, err := e.typeName(",")
	if err != nil {
		return Value{}, err
	}
	_ = start
	if err := e.expect(","); err != nil {
		return Value{}, err
	}
	var path strings.Builder
	for e.pos < len(e.toks) && e.peek() != ")" {
		path.WriteString(e.peek())
		e.pos++
	}
	if err := e.expect(")"); err != nil {
		return Value{}, err
	}
	obj, err := ContainerOf(v, btfload.TypeString(t), path.String())
	if err != nil {
		return Value{}, err
	}
	return obj.AddressOf()
}
