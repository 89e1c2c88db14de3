package objects

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// MarshalJSON renders the value's contents as JSON, as bpftool renders
// BTF-typed map values: a struct or union as an object of its members in
// order (anonymous members' members inline), an array as a list, a char
// array as a string, a pointer as a "0x..." string, an enum by name, a
// bool as a boolean, other integers as numbers.
func (v Value) MarshalJSON() ([]byte, error) {
	b, err := v.Bytes()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	jsonField(&buf, field{t: v.typ, b: b, bitOff: v.bitOff, bitLen: v.bitLen})
	return buf.Bytes(), nil
}

func jsonField(buf *bytes.Buffer, f field) {
	switch u := btfload.Underlying(f.t).(type) {
	case *btf.Struct, *btf.Union:
		buf.WriteByte('{')
		first := true
		jsonMembers(buf, f, &first)
		buf.WriteByte('}')
	case *btf.Array:
		elemSize, err := btf.Sizeof(u.Type)
		if err != nil {
			buf.WriteString("null")
			return
		}
		if isChar(u.Type) {
			s := f.b[:min(len(f.b), int(u.Nelems))]
			if i := bytes.IndexByte(s, 0); i >= 0 {
				s = s[:i]
			}
			q, _ := json.Marshal(strings.ToValidUTF8(string(s), "\uFFFD"))
			buf.Write(q)
			return
		}
		buf.WriteByte('[')
		for i := 0; i < int(u.Nelems); i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			jsonField(buf, field{t: u.Type, b: f.b[min(len(f.b), i*elemSize):]})
		}
		buf.WriteByte(']')
	default:
		if fl, ok := f.float(); ok {
			q, _ := json.Marshal(fl)
			buf.Write(q)
			return
		}
		x, ok := f.uint()
		if !ok {
			buf.WriteString("null")
			return
		}
		switch u := btfload.Underlying(f.t).(type) {
		case *btf.Pointer:
			fmt.Fprintf(buf, "\"%#x\"", x)
		case *btf.Enum:
			if n := EnumName(u, x); n != "" {
				fmt.Fprintf(buf, "%q", n)
			} else if u.Signed {
				fmt.Fprint(buf, int64(x))
			} else {
				fmt.Fprint(buf, x)
			}
		case *btf.Int:
			switch {
			case u.Encoding&btf.Bool != 0:
				fmt.Fprint(buf, x != 0)
			case u.Encoding&btf.Signed != 0:
				fmt.Fprint(buf, int64(x))
			default:
				fmt.Fprint(buf, x)
			}
		default:
			fmt.Fprint(buf, x)
		}
	}
}

func jsonMembers(buf *bytes.Buffer, f field, first *bool) {
	ms, _ := f.members()
	for _, m := range ms {
		g := f.member(m)
		if m.Name == "" {
			if _, ok := g.members(); ok {
				jsonMembers(buf, g, first)
				continue
			}
		}
		if !*first {
			buf.WriteByte(',')
		}
		*first = false
		k, _ := json.Marshal(m.Name)
		buf.Write(k)
		buf.WriteByte(':')
		jsonField(buf, g)
	}
}
