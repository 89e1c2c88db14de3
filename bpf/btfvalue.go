package bpf

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// TokenWriter receives a value as JSON tokens; a renderer decides the
// layout (compact for --json, bpftool's indented text otherwise).
type TokenWriter interface {
	BeginObject()
	EndObject()
	BeginArray()
	EndArray()
	// Name starts an object member.
	Name(name string)
	// String writes a string value (the writer escapes it).
	String(s string)
	// Raw writes a literal: a number, true, false, or a token the
	// dumper has already quoted.
	Raw(tok string)
}

// DumpBTFValue writes data, a value of type t, as bpftool's btf_dumper
// does for "map dump" (tools/bpf/bpftool/btf_dumper.c): integers in
// decimal by their size and sign, bools as booleans, chars as one-letter
// strings, char arrays holding a printable NUL-terminated string as
// strings, other arrays as lists, structs and unions as objects of their
// members, enums by name (else the number), bitfields and 128-bit
// integers as hex, pointers as numbers (plain: "%p", 0x... or (nil),
// unquoted as bpftool prints them).
// Modifiers and typedefs are transparent. plain selects bpftool's text
// mode (map dump without --json). Errors wrap ErrType for data shorter
// than the type or a kind a map value cannot have.
func DumpBTFValue(w TokenWriter, t btf.Type, data []byte, plain bool) error {
	return DumpBTFValueWith(w, t, data, BTFDumpOptions{Plain: plain})
}

// BTFDumpOptions are the switches of bpftool's struct btf_dumper.
type BTFDumpOptions struct {
	// Plain is is_plain_text: bpftool's text mode.
	Plain bool
	// ProgName, when set, turns on prog_id_as_func_ptr (bpftool's
	// "struct_ops dump"): a pointer to a function whose value fits in 32
	// bits is a program id, printed as a string of the function's
	// signature and " NAME/prog_id:ID" (" 0" for a zero id). ProgName
	// gives the name of the program with that id (the BTF name of its
	// first function); ok false prints "<unknown_prog_name>".
	ProgName func(id uint32) (name string, ok bool)
}

// DumpBTFValueWith is DumpBTFValue with all of btf_dumper's options.
func DumpBTFValueWith(w TokenWriter, t btf.Type, data []byte, o BTFDumpOptions) error {
	return dumpBTF(w, t, data, 0, &o, 0)
}

func dumpBTF(w TokenWriter, t btf.Type, data []byte, bitOff uint8, o *BTFDumpOptions, depth int) error {
	plain := o.Plain
	if depth > 64 {
		return fmt.Errorf("btf value: types nested more than 64 deep: %w", objects.ErrType)
	}
	switch u := t.(type) {
	case *btf.Typedef:
		return dumpBTF(w, u.Type, data, bitOff, o, depth+1)
	case *btf.Const:
		return dumpBTF(w, u.Type, data, bitOff, o, depth+1)
	case *btf.Volatile:
		return dumpBTF(w, u.Type, data, bitOff, o, depth+1)
	case *btf.Restrict:
		return dumpBTF(w, u.Type, data, bitOff, o, depth+1)
	case *btf.TypeTag:
		return dumpBTF(w, u.Type, data, bitOff, o, depth+1)
	case *btf.Int:
		return dumpInt(w, u, data, bitOff, plain)
	case *btf.Struct:
		return dumpMembers(w, u.Members, data, o, depth)
	case *btf.Union:
		return dumpMembers(w, u.Members, data, o, depth)
	case *btf.Array:
		return dumpArray(w, u, data, o, depth)
	case *btf.Enum:
		return dumpEnum(w, u, data)
	case *btf.Pointer:
		if len(data) < 8 {
			return errShort(t, data)
		}
		v := binary.LittleEndian.Uint64(data)
		if o.ProgName != nil && v <= 0xffffffff {
			if s, ok := progIDAsFuncPtr(u, uint32(v), o.ProgName); ok {
				w.String(s)
				return nil
			}
		}
		if plain {
			// btf_dumper_ptr prints "%p" unquoted: glibc's "(nil)"
			// for NULL.
			if v == 0 {
				w.Raw("(nil)")
			} else {
				w.Raw("0x" + strconv.FormatUint(v, 16))
			}
		} else {
			w.Raw(strconv.FormatUint(v, 10))
		}
		return nil
	case *btf.Var:
		w.BeginObject()
		w.Name(u.Name)
		err := dumpBTF(w, u.Type, data, bitOff, o, depth+1)
		w.EndObject()
		return err
	case *btf.Datasec:
		w.BeginObject()
		w.Name(u.Name)
		w.BeginArray()
		var err error
		for _, v := range u.Vars {
			if uint64(v.Offset) > uint64(len(data)) {
				err = errShort(t, data)
				break
			}
			if err = dumpBTF(w, v.Type, data[v.Offset:], 0, o, depth+1); err != nil {
				break
			}
		}
		w.EndArray()
		w.EndObject()
		return err
	case *btf.Fwd:
		w.Raw("(fwd-kind-invalid)")
		return fmt.Errorf("btf value: a forward declaration: %w", objects.ErrType)
	case *btf.Void, nil:
		w.Raw("(unknown)")
		return nil
	}
	w.Raw("(unsupported-kind)")
	return fmt.Errorf("btf value: kind %T: %w", t, objects.ErrType)
}

func errShort(t btf.Type, data []byte) error {
	n, _ := btf.Sizeof(t)
	return fmt.Errorf("btf value: %d bytes for %s of %d: %w", len(data), t.TypeName(), n, objects.ErrType)
}

func dumpMembers(w TokenWriter, ms []btf.Member, data []byte, o *BTFDumpOptions, depth int) error {
	w.BeginObject()
	defer w.EndObject()
	for _, m := range ms {
		w.Name(m.Name)
		off := uint32(m.Offset)
		if uint64(off/8) > uint64(len(data)) {
			return errShort(m.Type, nil)
		}
		d := data[off/8:]
		if m.BitfieldSize > 0 {
			if err := dumpBitfield(w, uint32(m.BitfieldSize), uint8(off%8), d, o.Plain); err != nil {
				return err
			}
			continue
		}
		if err := dumpBTF(w, m.Type, d, uint8(off%8), o, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// isStrArray says whether an array of char holds a printable string
// ending in NUL within its length (bpftool's is_str_array: the element
// must be a 1-byte int with char encoding or named "char", through
// modifiers but not typedefs).
func isStrArray(a *btf.Array, data []byte) bool {
	if a.Nelems == 0 {
		return false
	}
	et := a.Type
	for {
		switch u := et.(type) {
		case *btf.Const:
			et = u.Type
			continue
		case *btf.Volatile:
			et = u.Type
			continue
		case *btf.Restrict:
			et = u.Type
			continue
		case *btf.TypeTag:
			et = u.Type
			continue
		}
		break
	}
	i, ok := et.(*btf.Int)
	if !ok || i.Size != 1 || i.Encoding != btf.Char && i.Name != "char" {
		return false
	}
	for k := 0; k < int(a.Nelems) && k < len(data); k++ {
		c := int8(data[k])
		if c == 0 {
			return true
		}
		if c <= 0x1f || c == 0x7f { // and bytes >= 0x80, negative as char
			return false
		}
	}
	return false
}

func dumpArray(w TokenWriter, a *btf.Array, data []byte, o *BTFDumpOptions, depth int) error {
	if isStrArray(a, data) {
		s := data
		for k, c := range data {
			if c == 0 {
				s = data[:k]
				break
			}
		}
		w.String(string(s))
		return nil
	}
	es, err := btf.Sizeof(a.Type)
	if err != nil {
		return fmt.Errorf("btf value: array element: %v: %w", err, objects.ErrType)
	}
	w.BeginArray()
	defer w.EndArray()
	for i := 0; i < int(a.Nelems); i++ {
		if (i+1)*es > len(data) {
			return errShort(a, data)
		}
		if err := dumpBTF(w, a.Type, data[i*es:], 0, o, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func dumpEnum(w TokenWriter, e *btf.Enum, data []byte) error {
	if int(e.Size) > len(data) {
		return errShort(e, data)
	}
	var v int64
	switch e.Size {
	case 8:
		v = int64(binary.LittleEndian.Uint64(data))
	case 4:
		v = int64(int32(binary.LittleEndian.Uint32(data)))
	case 2:
		v = int64(int16(binary.LittleEndian.Uint16(data)))
	case 1:
		v = int64(int8(data[0]))
	default:
		return fmt.Errorf("btf value: enum of size %d: %w", e.Size, objects.ErrType)
	}
	for _, ev := range e.Values {
		// ENUM compares the sign-extended value with the 32-bit val;
		// ENUM64 compares all 64 bits.
		if e.Size == 8 && ev.Value == uint64(v) || e.Size < 8 && int64(int32(uint32(ev.Value))) == v {
			w.String(ev.Name)
			return nil
		}
	}
	w.Raw(strconv.FormatInt(v, 10))
	return nil
}

func dumpInt(w TokenWriter, i *btf.Int, data []byte, bitOff uint8, plain bool) error {
	bits := i.Size * 8
	if bitOff != 0 {
		return dumpBitfield(w, bits, bitOff, data, plain)
	}
	if int(i.Size) > len(data) {
		return errShort(i, data)
	}
	if bits == 128 {
		int128(w, binary.LittleEndian.Uint64(data[8:]), binary.LittleEndian.Uint64(data), plain)
		return nil
	}
	switch {
	case i.Encoding == btf.Bool:
		if data[0] != 0 {
			w.Raw("true")
		} else {
			w.Raw("false")
		}
	case i.Encoding == btf.Char:
		c := data[0]
		switch {
		case c >= 0x20 && c < 0x7f:
			w.String(string(rune(c)))
		case plain:
			w.Raw("0x" + strconv.FormatUint(uint64(c), 16))
		default:
			w.Raw(fmt.Sprintf(`"\u00%02x"`, c))
		}
	case i.Encoding == btf.Signed:
		var v int64
		switch bits {
		case 64:
			v = int64(binary.LittleEndian.Uint64(data))
		case 32:
			v = int64(int32(binary.LittleEndian.Uint32(data)))
		case 16:
			v = int64(int16(binary.LittleEndian.Uint16(data)))
		case 8:
			v = int64(int8(data[0]))
		default:
			return dumpBitfield(w, bits, 0, data, plain)
		}
		w.Raw(strconv.FormatInt(v, 10))
	default:
		var v uint64
		switch bits {
		case 64:
			v = binary.LittleEndian.Uint64(data)
		case 32:
			v = uint64(binary.LittleEndian.Uint32(data))
		case 16:
			v = uint64(binary.LittleEndian.Uint16(data))
		case 8:
			v = uint64(data[0])
		default:
			return dumpBitfield(w, bits, 0, data, plain)
		}
		w.Raw(strconv.FormatUint(v, 10))
	}
	return nil
}

// dumpBitfield prints nrBits bits from bitOff of data as hex, as
// bpftool's btf_dumper_bitfield (via a 128-bit number) does.
func dumpBitfield(w TokenWriter, nrBits uint32, bitOff uint8, data []byte, plain bool) error {
	if nrBits == 0 || nrBits > 128 {
		return fmt.Errorf("btf value: bitfield of %d bits: %w", nrBits, objects.ErrType)
	}
	n := (uint32(bitOff) + nrBits + 7) / 8
	if int(n) > len(data) || n > 16 {
		return fmt.Errorf("btf value: bitfield of %d bits at bit %d in %d bytes: %w", nrBits, bitOff, len(data), objects.ErrType)
	}
	var buf [16]byte
	copy(buf[:], data[:n])
	lo, hi := binary.LittleEndian.Uint64(buf[:]), binary.LittleEndian.Uint64(buf[8:])
	// Shift right by bitOff, then keep nrBits bits.
	if bitOff > 0 {
		lo = lo>>bitOff | hi<<(64-bitOff)
		hi >>= bitOff
	}
	switch {
	case nrBits < 64:
		lo &= 1<<nrBits - 1
		hi = 0
	case nrBits < 128:
		hi &= 1<<(nrBits-64) - 1
	}
	int128(w, hi, lo, plain)
	return nil
}

func int128(w TokenWriter, hi, lo uint64, plain bool) {
	var s string
	if hi == 0 {
		s = fmt.Sprintf("0x%x", lo)
	} else {
		s = fmt.Sprintf("0x%x%016x", hi, lo)
	}
	if !plain {
		s = `"` + s + `"`
	}
	w.Raw(s)
}

// progIDAsFuncPtr renders a struct_ops function pointer holding a
// program id as bpftool's dump_prog_id_as_func_ptr: the signature of the
// function type ptr points to (through typedefs and modifiers), then
// " 0", " NAME/prog_id:ID" or " <unknown_prog_name>/prog_id:ID". ok is
// false when ptr does not point to a function prototype or the
// signature cannot be printed (bpftool then prints the pointer).
func progIDAsFuncPtr(ptr *btf.Pointer, id uint32, progName func(uint32) (string, bool)) (string, bool) {
	proto, ok := btfload.Underlying(ptr.Target).(*btf.FuncProto)
	if !ok {
		return "", false
	}
	var sig strings.Builder
	if !btfFuncSig(&sig, proto, "", 0) {
		return "", false
	}
	s := sig.String()
	if id == 0 {
		s += " 0"
	} else if name, ok := progName(id); ok {
		s += fmt.Sprintf(" %s/prog_id:%d", name, id)
	} else {
		s += fmt.Sprintf(" <unknown_prog_name>/prog_id:%d", id)
	}
	if len(s) > btfSigMax-1 {
		s = s[:btfSigMax-1] // snprintf into char prog_str[1024]
	}
	return s, true
}

// btfSigMax is the size of bpftool's signature buffer: a signature
// that does not fit (with its NUL) is not printed.
const btfSigMax = 1024

// btfTypeOnly appends a type as bpftool's __btf_dumper_type_only does
// (each name followed by a space, "* " after a pointer's target), and
// says whether it could.
func btfTypeOnly(b *strings.Builder, t btf.Type, depth int) bool {
	if depth > 64 || b.Len() >= btfSigMax {
		return false
	}
	put := func(s string) bool {
		b.WriteString(s)
		return b.Len() < btfSigMax
	}
	switch u := t.(type) {
	case nil, *btf.Void:
		return put("void ")
	case *btf.Int:
		return put(u.Name + " ")
	case *btf.Typedef:
		return put(u.Name + " ")
	case *btf.Float:
		return put(u.Name + " ")
	case *btf.Struct:
		return put("struct " + u.Name + " ")
	case *btf.Union:
		return put("union " + u.Name + " ")
	case *btf.Enum:
		return put("enum " + u.Name + " ")
	case *btf.Array:
		return btfTypeOnly(b, u.Type, depth+1) && put(fmt.Sprintf("[%d]", u.Nelems))
	case *btf.Pointer:
		return btfTypeOnly(b, u.Target, depth+1) && put("* ")
	case *btf.Fwd:
		if u.Kind == btf.FwdUnion {
			return put("union " + u.Name + " ")
		}
		return put("struct " + u.Name + " ")
	case *btf.Volatile:
		return put("volatile ") && btfTypeOnly(b, u.Type, depth+1)
	case *btf.Const:
		return put("const ") && btfTypeOnly(b, u.Type, depth+1)
	case *btf.Restrict:
		return put("restrict ") && btfTypeOnly(b, u.Type, depth+1)
	case *btf.FuncProto:
		return btfFuncSig(b, u, "", depth+1)
	case *btf.Func:
		proto, ok := u.Type.(*btf.FuncProto)
		return ok && btfFuncSig(b, proto, u.Name, depth+1)
	case *btf.Var:
		if u.Linkage == btf.StaticVar {
			if !put("static ") {
				return false
			}
		}
		return btfTypeOnly(b, u.Type, depth+1) && put(" "+u.Name)
	case *btf.Datasec:
		return put(`section ("` + u.Name + `") `)
	}
	// Type tags and unknown kinds: bpftool gives up.
	return false
}

// btfFuncSig appends a function's signature as bpftool's btf_dump_func:
// the return type, the name (if any), then the parameters; an unnamed
// parameter loses the space after its type, and a void one (varargs)
// prints "...".
func btfFuncSig(b *strings.Builder, proto *btf.FuncProto, name string, depth int) bool {
	if !btfTypeOnly(b, proto.Return, depth+1) {
		return false
	}
	b.WriteString(name + "(")
	for i, p := range proto.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		if _, void := p.Type.(*btf.Void); void || p.Type == nil {
			b.WriteString("...")
			continue
		}
		if !btfTypeOnly(b, p.Type, depth+1) {
			return false
		}
		if p.Name != "" {
			b.WriteString(p.Name)
		} else if s := b.String(); strings.HasSuffix(s, " ") {
			b.Reset()
			b.WriteString(s[:len(s)-1])
		}
	}
	b.WriteString(")")
	return b.Len() < btfSigMax
}
