package orc

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// Format is a version of the struct orc_entry layout.
type Format int

// The formats, oldest first.
const (
	FormatUnknown Format = iota
	// FormatEnd: v4.14 (ee9f8fce9964 "x86/unwind: Add the ORC
	// unwinder") to v6.2: sp_reg:4 bp_reg:4 type:2 end:1, types CALL=0
	// REGS=1 REGS_PARTIAL=2; sp_reg undefined marks the end (end set) or
	// a gap.
	FormatEnd
	// FormatSignal: v6.3 (ffb1b4a41016 "x86/unwind/orc: Add 'signal'
	// field to ORC metadata"): type:2 signal:1 end:1.
	FormatSignal
	// FormatTypes: v6.4+ (fb799447ae29 "x86,objtool: Split
	// UNWIND_HINT_EMPTY in two"): type:3 signal:1, types UNDEFINED=0
	// END_OF_STACK=1 CALL=2 REGS=3 REGS_PARTIAL=4. The same release
	// added the orc_header hash (b9f174c811e3).
	FormatTypes
)

// String names the format with the releases that use it.
func (f Format) String() string {
	switch f {
	case FormatEnd:
		return "v4.14-6.2 (type:2 end:1)"
	case FormatSignal:
		return "v6.3 (type:2 signal:1 end:1)"
	case FormatTypes:
		return "v6.4+ (type:3 signal:1)"
	}
	return fmt.Sprintf("unknown ORC format %d", int(f))
}

// Layout is a Format with the bit positions of its fields, as BTF (or
// the format's definition) gives them. Decode turns raw entries into the
// model.
type Layout struct {
	Format Format
	// Source says how the layout was decided: "BTF struct orc_entry",
	// "orc_header hash ...", "release 6.1.0-...".
	Source string

	spReg, bpReg, typ, end, signal bitField
}

// defaultLayout returns a format's layout as orc_types.h declares it.
func defaultLayout(f Format, source string) (Layout, error) {
	l := Layout{Format: f, Source: source, spReg: bitField{0, 4}, bpReg: bitField{4, 4}}
	switch f {
	case FormatEnd:
		l.typ, l.end = bitField{8, 2}, bitField{10, 1}
	case FormatSignal:
		l.typ, l.signal, l.end = bitField{8, 2}, bitField{10, 1}, bitField{11, 1}
	case FormatTypes:
		l.typ, l.signal = bitField{8, 3}, bitField{11, 1}
	default:
		return Layout{}, fmt.Errorf("ORC layout %v (%s): %w", f, source, ErrNotSupported)
	}
	return l, nil
}

// LayoutFromBTF decides the layout from struct orc_entry in BTF: its
// members say the format (end without signal: FormatEnd; end and signal:
// FormatSignal; signal without end: FormatTypes) and give the bit
// positions. Errors wrap ErrNotFound (no struct orc_entry) or
// ErrNotSupported (a member set this package does not know: refused
// rather than guessed).
func LayoutFromBTF(types *btfload.Spec) (Layout, error) {
	t, err := types.Type("struct orc_entry")
	if err != nil {
		return Layout{}, fmt.Errorf("ORC layout from BTF: %w", ErrNotFound)
	}
	s, ok := btfload.Underlying(t).(*btf.Struct)
	if !ok || s.Size != rawEntrySize {
		return Layout{}, fmt.Errorf("ORC layout from BTF: struct orc_entry is %d bytes, not %d: %w", sizeOf(t), rawEntrySize, ErrNotSupported)
	}
	fields := map[string]bitField{}
	var names []string
	for _, m := range s.Members {
		names = append(names, m.Name)
		off := uint32(m.Offset)
		switch m.Name {
		case "sp_offset", "bp_offset":
			continue
		}
		w := uint32(m.BitfieldSize)
		if w == 0 || off < 32 || off+w > 48 {
			return Layout{}, fmt.Errorf("ORC layout from BTF: member %s at bit %d width %d: %w", m.Name, off, w, ErrNotSupported)
		}
		fields[m.Name] = bitField{uint8(off - 32), uint8(w)}
	}
	_, hasEnd := fields["end"]
	_, hasSignal := fields["signal"]
	f := FormatUnknown
	switch {
	case hasEnd && !hasSignal && fields["type"].width == 2:
		f = FormatEnd
	case hasEnd && hasSignal && fields["type"].width == 2:
		f = FormatSignal
	case !hasEnd && hasSignal && fields["type"].width == 3:
		f = FormatTypes
	}
	if f == FormatUnknown || fields["sp_reg"].width != 4 || fields["bp_reg"].width != 4 {
		return Layout{}, fmt.Errorf("ORC layout from BTF: struct orc_entry has members %s: an unknown layout: %w", strings.Join(names, ", "), ErrNotSupported)
	}
	return Layout{Format: f, Source: "BTF struct orc_entry", spReg: fields["sp_reg"], bpReg: fields["bp_reg"],
		typ: fields["type"], end: fields["end"], signal: fields["signal"]}, nil
}

func sizeOf(t btf.Type) int { n, _ := btf.Sizeof(t); return n }

// knownHeaders maps the orc_header hash (20 bytes: the SHA-1 of
// orc_types.h, in .orc_header since v6.4) to its layout. A kernel whose
// hash is not here and whose BTF lacks struct orc_entry is refused.
var knownHeaders = map[string]Format{
	// orc_types.h as of 6.12 (read from Debian 6.12.117's .orc_header).
	"fe5d32bf581bd63b2ca9a5c65ba5a625eab3fe24": FormatTypes,
}

// LayoutFromHeader decides the layout from the orc_header hash. Errors
// wrap ErrNotSupported for an unknown hash.
func LayoutFromHeader(hash []byte) (Layout, error) {
	h := hex.EncodeToString(hash)
	f, ok := knownHeaders[h]
	if !ok {
		return Layout{}, fmt.Errorf("ORC header hash %s is not a layout this kinspect knows: %w", h, ErrNotSupported)
	}
	return defaultLayout(f, "orc_header hash "+h)
}

// LayoutFromRelease decides the layout from a kernel release
// ("6.1.0-56-amd64"), for kernels with neither BTF for struct orc_entry
// nor an orc_header (before v6.4). Errors wrap ErrNotSupported (before
// v4.14, no ORC; or an unparsable release; or v6.4+, which must have a
// header).
func LayoutFromRelease(release string) (Layout, error) {
	major, minor, ok := parseRelease(release)
	src := "release " + release
	switch {
	case !ok:
		return Layout{}, fmt.Errorf("ORC layout from release %q: cannot parse it: %w", release, ErrNotSupported)
	case major < 4 || major == 4 && minor < 14:
		return Layout{}, fmt.Errorf("ORC layout from release %s: ORC came in 4.14: %w", release, ErrNotSupported)
	case major < 6 || major == 6 && minor < 3:
		return defaultLayout(FormatEnd, src)
	case major == 6 && minor == 3:
		return defaultLayout(FormatSignal, src)
	}
	return Layout{}, fmt.Errorf("ORC layout from release %s: a 6.4+ kernel should have BTF or an orc_header: %w", release, ErrNotSupported)
}

func parseRelease(r string) (major, minor int, ok bool) {
	parts := strings.SplitN(r, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	minorStr := parts[1]
	if i := strings.IndexFunc(minorStr, func(c rune) bool { return c < '0' || c > '9' }); i >= 0 {
		minorStr = minorStr[:i]
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(minorStr)
	return a, b, err1 == nil && err2 == nil
}

// Decode decodes one 6-byte raw entry into the model, with the function
// of the layout's format.
func (l Layout) Decode(b []byte) (Entry, error) {
	if len(b) < rawEntrySize {
		return Entry{}, fmt.Errorf("ORC entry of %d bytes: %w", len(b), ErrFormat)
	}
	r := readRawEntry(b)
	switch l.Format {
	case FormatEnd:
		return l.decodeEnd(r), nil
	case FormatSignal:
		return l.decodeSignal(r), nil
	case FormatTypes:
		return l.decodeTypes(r), nil
	}
	return Entry{}, fmt.Errorf("decode ORC entry: %v: %w", l.Format, ErrNotSupported)
}

// decodeEnd decodes v4.14..v6.2 entries: sp_reg undefined is the end
// (end bit) or a gap; a regs type implies an interrupted caller.
func (l Layout) decodeEnd(r rawEntry) Entry {
	e := Entry{SPOffset: r.spOffset, BPOffset: r.bpOffset,
		SPReg: Reg(l.spReg.get(r.bits)), BPReg: Reg(l.bpReg.get(r.bits))}
	switch l.typ.get(r.bits) {
	case rawTypeV1Call:
		e.Type = TypeCall
	case rawTypeV1Regs:
		e.Type, e.Signal = TypeRegs, true
	case rawTypeV1RegsPartial:
		e.Type, e.Signal = TypeRegsPartial, true
	default:
		e.Type = TypeUndefined
	}
	if e.SPReg == RegUndefined {
		e.Type = TypeUndefined
		if l.end.get(r.bits) != 0 {
			e.Type = TypeEndOfStack
		}
	}
	return e
}

// decodeSignal decodes v6.3 entries: v4.14's plus the signal bit.
func (l Layout) decodeSignal(r rawEntry) Entry {
	e := l.decodeEnd(r)
	e.Signal = e.Signal || l.signal.get(r.bits) != 0
	return e
}

// decodeTypes decodes v6.4+ entries.
func (l Layout) decodeTypes(r rawEntry) Entry {
	e := Entry{SPOffset: r.spOffset, BPOffset: r.bpOffset,
		SPReg: Reg(l.spReg.get(r.bits)), BPReg: Reg(l.bpReg.get(r.bits)),
		Signal: l.signal.get(r.bits) != 0}
	switch l.typ.get(r.bits) {
	case rawTypeUndefined:
		e.Type = TypeUndefined
	case rawTypeEndOfStack:
		e.Type = TypeEndOfStack
	case rawTypeCall:
		e.Type = TypeCall
	case rawTypeRegs:
		e.Type = TypeRegs
	case rawTypeRegsPartial:
		e.Type = TypeRegsPartial
	default:
		e.Type = Type(l.typ.get(r.bits)) // unknown: String says "type(N)"; the unwinder stops on it
	}
	return e
}
