package main

import (
	"bufio"
	"strconv"
	"strings"
)

// jsonw writes JSON with bpftool's json_writer layout, so that output
// compares byte for byte: compact, or "pretty" with four-space indents,
// a newline before each member name and before a closing bracket of a
// non-empty collection, and none before array elements. It satisfies
// bpf.TokenWriter.
type jsonw struct {
	w      *bufio.Writer
	depth  int
	pretty bool
	sep    byte // 0 or ','
}

func newJSONW(w *bufio.Writer, pretty bool) *jsonw { return &jsonw{w: w, pretty: pretty} }

func (j *jsonw) eor() {
	if j.sep != 0 {
		j.w.WriteByte(j.sep)
	}
	j.sep = ','
}

func (j *jsonw) eol() {
	if !j.pretty {
		return
	}
	j.w.WriteByte('\n')
	for range j.depth {
		j.w.WriteString("    ")
	}
}

func (j *jsonw) begin(c byte) {
	j.eor()
	j.w.WriteByte(c)
	j.depth++
	j.sep = 0
}

func (j *jsonw) end(c byte) {
	j.depth--
	if j.sep != 0 {
		j.eol()
	}
	j.w.WriteByte(c)
	j.sep = ','
}

func (j *jsonw) BeginObject() { j.begin('{') }
func (j *jsonw) EndObject()   { j.end('}') }
func (j *jsonw) BeginArray()  { j.begin('[') }
func (j *jsonw) EndArray()    { j.end(']') }

func (j *jsonw) Name(name string) {
	j.eor()
	j.eol()
	j.sep = 0
	j.puts(name)
	j.w.WriteByte(':')
	if j.pretty {
		j.w.WriteByte(' ')
	}
}

func (j *jsonw) String(s string) {
	j.eor()
	j.puts(s)
}

func (j *jsonw) Raw(tok string) {
	j.eor()
	j.w.WriteString(tok)
}

func (j *jsonw) Uint(x uint64) {
	j.eor()
	var b [20]byte
	j.w.Write(strconv.AppendUint(b[:0], x, 10))
}

func (j *jsonw) Int(x int64) {
	j.eor()
	var b [20]byte
	j.w.Write(strconv.AppendInt(b[:0], x, 10))
}

func (j *jsonw) Bool(b bool) {
	if b {
		j.Raw("true")
	} else {
		j.Raw("false")
	}
}

// Field helpers.
func (j *jsonw) UintField(name string, x uint64) { j.Name(name); j.Uint(x) }
func (j *jsonw) IntField(name string, x int64)   { j.Name(name); j.Int(x) }
func (j *jsonw) StringField(name, s string)      { j.Name(name); j.String(s) }
func (j *jsonw) BoolField(name string, b bool)   { j.Name(name); j.Bool(b) }

// hexTokens are the quoted "0x%02x" tokens of bpftool's hex lists.
var hexTokens = func() (t [256]string) {
	for i := range t {
		t[i] = `"0x` + hex2(byte(i)) + `"`
	}
	return
}()

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// HexData writes bytes as bpftool's print_hex_data_json: ["0x01",...].
func (j *jsonw) HexData(b []byte) {
	j.BeginArray()
	for _, c := range b {
		j.Raw(hexTokens[c])
	}
	j.EndArray()
}

// puts writes a JSON string escaped as bpftool's jsonw_puts does, plus
// the control characters it would pass raw, as \u00XX.
func (j *jsonw) puts(s string) {
	j.w.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\t':
			j.w.WriteString(`\t`)
		case '\n':
			j.w.WriteString(`\n`)
		case '\r':
			j.w.WriteString(`\r`)
		case '\f':
			j.w.WriteString(`\f`)
		case '\b':
			j.w.WriteString(`\b`)
		case '\\':
			j.w.WriteString(`\\`)
		case '"':
			j.w.WriteString(`\"`)
		default:
			if c < 0x20 {
				j.w.WriteString(`\u00` + hex2(c))
			} else {
				j.w.WriteByte(c)
			}
		}
	}
	j.w.WriteByte('"')
}

// fprintHex renders bytes as bpftool's fprint_hex: sep between bytes, two
// spaces after each 8, a newline after each 16.
func fprintHex(sb *strings.Builder, b []byte, sep string) {
	for i, c := range b {
		switch {
		case i == 0:
		case i%16 == 0:
			sb.WriteByte('\n')
		case i%8 == 0:
			sb.WriteString("  ")
		default:
			sb.WriteString(sep)
		}
		sb.WriteString(hex2(c))
	}
}
