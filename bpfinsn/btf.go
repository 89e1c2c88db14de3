package bpfinsn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// BTF is a program's own BTF (prog->aux->btf): what names its functions
// and holds the source lines of its line_info. Types are decoded on
// first use.
type BTF struct {
	raw  []byte
	strs []byte

	once sync.Once
	spec *btf.Spec
	err  error
}

// maxBTF bounds a program's BTF (the kernel's BTF_MAX_SIZE is 16 MiB).
const maxBTF = 16 << 20

// ParseBTF checks raw BTF's header and finds its strings. Errors wrap
// ErrFormat.
func ParseBTF(raw []byte) (*BTF, error) {
	if len(raw) > maxBTF {
		return nil, fmt.Errorf("parse BTF: %d bytes, more than %d: %w", len(raw), maxBTF, ErrFormat)
	}
	if len(raw) < btfHeaderSize {
		return nil, fmt.Errorf("parse BTF: %d bytes, shorter than a header: %w", len(raw), ErrFormat)
	}
	var h btfHeader
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("parse BTF header: %v: %w", err, ErrFormat)
	}
	if h.Magic != btfMagic {
		return nil, fmt.Errorf("parse BTF: magic %#x at offset 0, want %#x: %w", h.Magic, btfMagic, ErrFormat)
	}
	if h.HdrLen < btfHeaderSize || uint64(h.HdrLen) > uint64(len(raw)) {
		return nil, fmt.Errorf("parse BTF: header length %d of %d bytes: %w", h.HdrLen, len(raw), ErrFormat)
	}
	start := uint64(h.HdrLen) + uint64(h.StrOff)
	end := start + uint64(h.StrLen)
	if end > uint64(len(raw)) {
		return nil, fmt.Errorf("parse BTF: strings at offset %d, %d bytes, past the end (%d bytes): %w", start, h.StrLen, len(raw), ErrFormat)
	}
	return &BTF{raw: raw, strs: raw[start:end]}, nil
}

// Raw returns the BTF's bytes.
func (b *BTF) Raw() []byte { return b.raw }

// String returns the string at off in the BTF's string section, as
// libbpf's btf__name_by_offset; false for an offset past its end.
func (b *BTF) String(off uint32) (string, bool) {
	if uint64(off) >= uint64(len(b.strs)) {
		return "", false
	}
	s := b.strs[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s), true
}

// Spec returns the decoded types. Errors wrap ErrFormat.
func (b *BTF) Spec() (*btf.Spec, error) {
	b.once.Do(func() {
		// The decoder is not ours: a panic on hostile bytes is an error.
		defer func() {
			if r := recover(); r != nil {
				b.spec, b.err = nil, fmt.Errorf("decode program BTF: %v: %w", r, ErrFormat)
			}
		}()
		b.spec, b.err = btf.LoadSpecFromReader(bytes.NewReader(b.raw))
		if b.err != nil {
			b.err = fmt.Errorf("decode program BTF: %v: %w", b.err, ErrFormat)
		}
	})
	return b.spec, b.err
}

func (b *BTF) typ(id uint32) (btf.Type, bool) {
	if id == 0 {
		return &btf.Void{}, true
	}
	s, err := b.Spec()
	if err != nil {
		return nil, false
	}
	t, err := s.TypeByID(btf.TypeID(id))
	return t, err == nil
}

// FuncName returns the name of the BTF_KIND_FUNC with the given ID.
func (b *BTF) FuncName(id uint32) (string, bool) {
	t, ok := b.typ(id)
	if !ok {
		return "", false
	}
	f, ok := t.(*btf.Func)
	if !ok {
		return "", false
	}
	return f.Name, true
}

// sigMax is the size of bpftool's func_sig buffer: a longer prototype
// is not printed.
const sigMax = 1024

// FuncProto renders a type as bpftool's btf_dumper_type_only does:
// for a function "int ki_xdp(struct xdp_md * ctx)". It returns "" for
// kinds bpftool does not render (type tags, declaration tags) and for
// a rendering of 1024 bytes or more, as bpftool prints nothing then.
func (b *BTF) FuncProto(id uint32) string {
	t, ok := b.typ(id)
	if !ok {
		return ""
	}
	var s strings.Builder
	if !typeOnly(&s, t, 0) || s.Len() >= sigMax {
		return ""
	}
	return s.String()
}

func typeOnly(s *strings.Builder, t btf.Type, depth int) bool {
	if depth > 64 || s.Len() >= sigMax {
		return false
	}
	switch u := t.(type) {
	case *btf.Void:
		s.WriteString("void ")
	case *btf.Int:
		s.WriteString(u.Name + " ")
	case *btf.Typedef:
		s.WriteString(u.Name + " ")
	case *btf.Float:
		s.WriteString(u.Name + " ")
	case *btf.Struct:
		s.WriteString("struct " + u.Name + " ")
	case *btf.Union:
		s.WriteString("union " + u.Name + " ")
	case *btf.Enum:
		s.WriteString("enum " + u.Name + " ")
	case *btf.Array:
		if !typeOnly(s, u.Type, depth+1) {
			return false
		}
		fmt.Fprintf(s, "[%d]", u.Nelems)
	case *btf.Pointer:
		if !typeOnly(s, u.Target, depth+1) {
			return false
		}
		s.WriteString("* ")
	case *btf.Fwd:
		kw := "struct"
		if u.Kind == btf.FwdUnion {
			kw = "union"
		}
		s.WriteString(kw + " " + u.Name + " ")
	case *btf.Volatile:
		s.WriteString("volatile ")
		return typeOnly(s, u.Type, depth+1)
	case *btf.Const:
		s.WriteString("const ")
		return typeOnly(s, u.Type, depth+1)
	case *btf.Restrict:
		s.WriteString("restrict ")
		return typeOnly(s, u.Type, depth+1)
	case *btf.FuncProto:
		return funcSig(s, u, "", depth)
	case *btf.Func:
		p, ok := u.Type.(*btf.FuncProto)
		if !ok {
			return false
		}
		return funcSig(s, p, u.Name+"(", depth)
	case *btf.Var:
		if u.Linkage == btf.StaticVar {
			s.WriteString("static ")
		}
		if !typeOnly(s, u.Type, depth+1) {
			return false
		}
		s.WriteString(" " + u.Name)
	case *btf.Datasec:
		fmt.Fprintf(s, "section (\"%s\") ", u.Name)
	default:
		return false
	}
	return true
}

// funcSig is bpftool's btf_dump_func: the return type, the name and
// "(" (or just "("), the parameters, ")".
func funcSig(s *strings.Builder, p *btf.FuncProto, open string, depth int) bool {
	if !typeOnly(s, p.Return, depth+1) {
		return false
	}
	if open == "" {
		open = "("
	}
	s.WriteString(open)
	for i, prm := range p.Params {
		if i > 0 {
			s.WriteString(", ")
		}
		if _, void := prm.Type.(*btf.Void); void || prm.Type == nil {
			s.WriteString("...")
			continue
		}
		if !typeOnly(s, prm.Type, depth+1) {
			return false
		}
		if prm.Name != "" {
			s.WriteString(prm.Name)
		} else if str := s.String(); strings.HasSuffix(str, " ") {
			s.Reset()
			s.WriteString(str[:len(str)-1])
		}
	}
	s.WriteString(")")
	return true
}

// Lines resolves line_info records against the BTF's strings.
func (b *BTF) Lines(recs []LineRecord) []Line {
	out := make([]Line, len(recs))
	for i, r := range recs {
		l := Line{InsnOff: r.InsnOff, LineNum: r.LineCol >> 10, LineCol: r.LineCol & 0x3ff}
		var ok bool
		l.Src, ok = b.String(r.LineOff)
		l.NoSrc = !ok
		l.File, ok = b.String(r.FileNameOff)
		l.NoFile = !ok
		out[i] = l
	}
	return out
}

// Funcs renders func_info records' prototypes.
func (b *BTF) Funcs(recs []FuncRecord) []Func {
	out := make([]Func, len(recs))
	for i, r := range recs {
		out[i] = Func{InsnOff: r.InsnOff, TypeID: r.TypeID, Proto: b.FuncProto(r.TypeID)}
	}
	return out
}

// FuncRecord is struct bpf_func_info.
type FuncRecord struct {
	InsnOff uint32
	TypeID  uint32
}

// LineRecord is struct bpf_line_info.
type LineRecord struct {
	InsnOff     uint32
	FileNameOff uint32
	LineOff     uint32
	LineCol     uint32 // line << 10 | column
}
