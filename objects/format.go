package objects

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// FormatOptions tunes Format.
type FormatOptions struct {
	// MaxElements bounds the elements of an array shown (0: 1024).
	MaxElements int
}

// Format renders a value as drgn does: its type, then structs and unions
// with their members one per line and nested, pointers in hex, char
// arrays as strings, enums by name, arrays without their trailing zeros:
//
//	(struct list_head){
//		.next = (struct list_head *)0xffff888003a0c9b8,
//		.prev = (struct list_head *)0xffff888005b1b938,
//	}
//
// The object is read once. Errors are the read's.
func Format(v Value, opts FormatOptions) (string, error) {
	if opts.MaxElements <= 0 {
		opts.MaxElements = 1024
	}
	b, err := v.Bytes()
	if err != nil {
		return "", err
	}
	f := field{t: v.typ, b: b, bitOff: v.bitOff, bitLen: v.bitLen}
	var sb strings.Builder
	sb.WriteString("(" + v.TypeName() + ")")
	formatField(&sb, f, 0, opts)
	return sb.String(), nil
}

func formatField(sb *strings.Builder, f field, depth int, opts FormatOptions) {
	ind := strings.Repeat("\t", depth)
	switch u := btfload.Underlying(f.t).(type) {
	case *btf.Struct, *btf.Union:
		ms, _ := f.members()
		sb.WriteString("{\n")
		for _, m := range ms {
			g := f.member(m)
			sb.WriteString(ind + "\t")
			if m.Name != "" {
				sb.WriteString("." + m.Name + " = ")
			}
			sb.WriteString("(" + btfload.TypeString(m.Type) + ")")
			formatField(sb, g, depth+1, opts)
			sb.WriteString(",\n")
		}
		sb.WriteString(ind + "}")
	case *btf.Array:
		elemSize, err := btf.Sizeof(u.Type)
		if err != nil {
			sb.WriteString("<unsized>")
			return
		}
		if isChar(u.Type) {
			s := f.b[:min(len(f.b), int(u.Nelems))]
			if i := strings.IndexByte(string(s), 0); i >= 0 {
				s = s[:i]
			}
			sb.WriteString(strconv.Quote(string(s)))
			return
		}
		n := int(u.Nelems)
		// Leave out trailing zero elements, as drgn does.
		for n > 0 && isZero(f.b[min(len(f.b), (n-1)*elemSize):min(len(f.b), n*elemSize)]) {
			n--
		}
		_, composite := btfload.Underlying(u.Type).(*btf.Struct)
		if _, un := btfload.Underlying(u.Type).(*btf.Union); un {
			composite = true
		}
		if _, arr := btfload.Underlying(u.Type).(*btf.Array); arr {
			composite = true
		}
		shown := min(n, opts.MaxElements)
		if composite {
			sb.WriteString("{\n")
			for i := 0; i < shown; i++ {
				sb.WriteString(ind + "\t")
				formatField(sb, field{t: u.Type, b: f.b[min(len(f.b), i*elemSize):]}, depth+1, opts)
				sb.WriteString(",\n")
			}
			if shown < n {
				fmt.Fprintf(sb, "%s\t/* %d more */\n", ind, n-shown)
			}
			sb.WriteString(ind + "}")
			return
		}
		sb.WriteString("{")
		for i := 0; i < shown; i++ {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString(" ")
			formatField(sb, field{t: u.Type, b: f.b[min(len(f.b), i*elemSize):]}, depth+1, opts)
		}
		if shown < n {
			fmt.Fprintf(sb, ", /* %d more */", n-shown)
		}
		if shown > 0 {
			sb.WriteString(" ")
		}
		sb.WriteString("}")
	default:
		sb.WriteString(scalarText(f))
	}
}

// scalarText renders an integer, enum, pointer, bool or float.
func scalarText(f field) string {
	t := btfload.Underlying(f.t)
	if fl, ok := f.float(); ok {
		return strconv.FormatFloat(fl, 'g', -1, 64)
	}
	x, ok := f.uint()
	if !ok {
		return fmt.Sprintf("<%s>", btfload.TypeString(f.t))
	}
	switch u := t.(type) {
	case *btf.Pointer:
		return fmt.Sprintf("%#x", x)
	case *btf.Enum:
		if n := EnumName(u, x); n != "" {
			return n
		}
		if u.Signed {
			return fmt.Sprint(int64(x))
		}
		return fmt.Sprint(x)
	case *btf.Int:
		if u.Encoding&btf.Bool != 0 {
			return strconv.FormatBool(x != 0)
		}
		if u.Encoding&btf.Signed != 0 {
			return fmt.Sprint(int64(x))
		}
	}
	return fmt.Sprint(x)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
