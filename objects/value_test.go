package objects

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/synthkernel"
)

func synthItem(t *testing.T) *Program {
	p, m, syms := synthProgram(t)
	syms["one"] = 0x7000
	writeItem(m, 0x7000, -5, "hello")
	m.Write(0x7000+72, []byte{0x3<<0 | 0x1a<<3}) // flag=3, mode=26
	m.U32(0x7000+76, 1)                          // color GREEN
	m.U64(0x7000+80, 0xffffffffffffff00)         // u_a
	return p
}

func TestValueMembers(t *testing.T) {
	p := synthItem(t)
	for _, tc := range []struct {
		expr string
		want string // Uint in decimal, or string, or enum name
		kind string
	}{
		{"one.id", "-5", "int"},
		{"one.name", "hello", "str"},
		{"one.flag", "3", "uint"},
		{"one.mode", "26", "uint"},
		{"one.color", "GREEN", "enum"},
		{"one.u_a", "18446744073709551360", "uint"},
		{"one.u_b", "-256", "int"},
		{"&one", "28672", "uint"},
		{"&one.node", "28680", "uint"},
		{"(&one)->name[1]", "101", "uint"},
		{"sizeof(struct item)", "96", "uint"},
		{"sizeof(one.node)", "16", "uint"},
		{"(struct item *)0x7000 + 1", "28768", "uint"},
		{"&((struct item *)0x7000)->rb", "28704", "uint"},
		{"container_of(&one.rb, struct item, rb)", "28672", "uint"},
		{"((struct item *)0x7000)->name", "hello", "str"},
		{"*(struct item *)0x7000", "", "obj"},
		{"(u64)one.id", "18446744073709551611", "uint"},
	} {
		v, err := p.Eval(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		var got string
		switch tc.kind {
		case "int":
			n, err := v.Int()
			if err != nil {
				t.Errorf("%s: %v", tc.expr, err)
			}
			got = itoaSigned(n)
		case "uint":
			n, err := v.Uint()
			if err != nil {
				t.Errorf("%s: %v", tc.expr, err)
			}
			got = udec(n)
		case "str":
			got, err = v.CString()
		case "enum":
			got, err = v.EnumName()
		case "obj":
			if a, ok := v.Address(); !ok || a != 0x7000 {
				t.Errorf("%s: address %#x %v", tc.expr, a, ok)
			}
		}
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
		}
		if got != tc.want {
			t.Errorf("%s = %s, want %s", tc.expr, got, tc.want)
		}
	}
}

func itoaSigned(n int64) string {
	if n < 0 {
		return "-" + udec(uint64(-n))
	}
	return udec(uint64(n))
}

func TestValueErrors(t *testing.T) {
	p := synthItem(t)
	for _, tc := range []struct {
		expr string
		is   error
		msg  string
	}{
		{"one.nmae", ErrNotFound, "no member named nmae in struct item; did you mean name"},
		{"onw", ErrNotFound, "no symbol named onw; did you mean one?"},
		{"(struct itme *)0", ErrNotFound, "no type named struct itme; did you mean struct item?"},
		{"one->id", ErrType, "not a pointer"},
		{"*one.id", ErrType, "not a pointer"},
		{"((struct item *)0)->id", ErrCorrupt, "NULL"},
		{"((struct item *)0x99000)->id", nil, "0x99000"},
		{"one.name[9]", ErrNotFound, "out of bounds"},
		{"one.", nil, "column 5"},
		{"&one.flag", ErrType, "address"},
	} {
		_, err := p.Eval(tc.expr)
		if err == nil {
			v, _ := p.Eval(tc.expr)
			_, err = v.Uint()
		}
		if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err %v; want %v containing %q", tc.expr, err, tc.is, tc.msg)
		}
	}
}

func TestFormatAndJSON(t *testing.T) {
	p := synthItem(t)
	v, err := p.Variable("one")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Format(v, FormatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"(struct item){\n",
		"\t.id = (int)-5,\n",
		"\t.name = (char [8])\"hello\",\n",
		"\t.flag = (unsigned int)3,\n",
		"\t.color = (enum color)GREEN,\n",
		"\t.node = (struct list_head){\n\t\t.next = (struct list_head *)0x0,\n",
		"\t(union (anonymous)){\n\t\t.u_a = (long unsigned int)18446744073709551360,\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Format lacks %q:\n%s", want, s)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if m["id"] != -5.0 || m["name"] != "hello" || m["color"] != "GREEN" || m["mode"] != 26.0 || m["u_b"] != -256.0 {
		t.Errorf("JSON %s", b)
	}
	if nd := m["node"].(map[string]any); nd["next"] != "0x0" {
		t.Errorf("JSON pointer %v", nd["next"])
	}
}

func TestNoMemory(t *testing.T) {
	p := NewProgram(nil, synthSpec(t), synthkernel.Syms{"one": 0x7000}, WithDecls(synthDecls(t)))
	v, err := p.Eval("one.id")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Int(); !errors.Is(err, ErrNoMemory) {
		t.Errorf("err %v, want ErrNoMemory", err)
	}
}

func synthDecls(t *testing.T) *btfloadDecls {
	d := newDecls()
	if err := d.Add("struct item one"); err != nil {
		t.Fatal(err)
	}
	return d
}
