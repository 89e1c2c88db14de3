package orc

import (
	"encoding/binary"
	"errors"
	"testing"
)

// rawBytes builds a 6-byte entry.
func rawBytes(sp, bp int16, bits uint16) []byte {
	b := make([]byte, rawEntrySize)
	binary.LittleEndian.PutUint16(b, uint16(sp))
	binary.LittleEndian.PutUint16(b[2:], uint16(bp))
	binary.LittleEndian.PutUint16(b[4:], bits)
	return b
}

// The expected values follow orc_types.h of each release: the bit
// positions of sp_reg:4 bp_reg:4 type:2 end:1 (4.14-6.2), type:2
// signal:1 end:1 (6.3), type:3 signal:1 (6.4+), and the type numbers of
// each.
func TestDecode(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		sp, bp int16
		bits   uint16
		want   Entry
	}{
		// objtool's common "sp:sp+8 bp:undef type:call" entry.
		{"v1 call", FormatEnd, 8, 0, 5 | 0<<4 | 0<<8, Entry{SPOffset: 8, SPReg: RegSP, Type: TypeCall}},
		{"v1 fp frame", FormatEnd, 16, -16, 4 | 1<<4 | 0<<8, Entry{SPOffset: 16, BPOffset: -16, SPReg: RegBP, BPReg: RegPrevSP, Type: TypeCall}},
		{"v1 regs", FormatEnd, 0, 0, 5 | 1<<8, Entry{SPReg: RegSP, Type: TypeRegs, Signal: true}},
		{"v1 regs_partial", FormatEnd, 0, 0, 5 | 2<<8, Entry{SPReg: RegSP, Type: TypeRegsPartial, Signal: true}},
		{"v1 end", FormatEnd, 0, 0, 0 | 1<<10, Entry{Type: TypeEndOfStack}},
		{"v1 terminator", FormatEnd, 0, 0, 0, Entry{Type: TypeUndefined}},
		{"v1 bad type 3", FormatEnd, 8, 0, 5 | 3<<8, Entry{SPOffset: 8, SPReg: RegSP, Type: TypeUndefined}},
		{"v1 sp indirect", FormatEnd, 8, 0, 9 | 0<<8, Entry{SPOffset: 8, SPReg: RegSPIndirect, Type: TypeCall}},
		{"v6.3 signal call", FormatSignal, 8, 0, 5 | 1<<10, Entry{SPOffset: 8, SPReg: RegSP, Type: TypeCall, Signal: true}},
		{"v6.3 end", FormatSignal, 0, 0, 1 << 11, Entry{Type: TypeEndOfStack}},
		{"v6.4 undefined", FormatTypes, 0, 0, 0, Entry{Type: TypeUndefined}},
		{"v6.4 end", FormatTypes, 0, 0, 1 << 8, Entry{Type: TypeEndOfStack}},
		{"v6.4 call", FormatTypes, 8, 0, 5 | 2<<8, Entry{SPOffset: 8, SPReg: RegSP, Type: TypeCall}},
		{"v6.4 regs signal", FormatTypes, 0, 0, 5 | 3<<8 | 1<<11, Entry{SPReg: RegSP, Type: TypeRegs, Signal: true}},
		{"v6.4 regs_partial", FormatTypes, 0, 0, 5 | 4<<8 | 1<<11, Entry{SPReg: RegSP, Type: TypeRegsPartial, Signal: true}},
		{"v6.4 unknown type 6", FormatTypes, 0, 0, 5 | 6<<8, Entry{SPReg: RegSP, Type: Type(6)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := defaultLayout(tt.format, "test")
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Decode(rawBytes(tt.sp, tt.bp, tt.bits))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	if _, err := defaultLayout(FormatUnknown, "test"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("unknown format: %v, want ErrNotSupported", err)
	}
	var l Layout
	if _, err := l.Decode(rawBytes(0, 0, 0)); !errors.Is(err, ErrNotSupported) {
		t.Errorf("zero layout: %v, want ErrNotSupported", err)
	}
	l, _ = defaultLayout(FormatEnd, "test")
	if _, err := l.Decode([]byte{1, 2, 3}); !errors.Is(err, ErrFormat) {
		t.Errorf("short entry: %v, want ErrFormat", err)
	}
	if _, err := LayoutFromHeader(make([]byte, 20)); !errors.Is(err, ErrNotSupported) {
		t.Errorf("unknown header hash: %v, want ErrNotSupported", err)
	}
}

func TestLayoutFromRelease(t *testing.T) {
	tests := []struct {
		release string
		want    Format
		err     error
	}{
		{"6.1.0-56-amd64", FormatEnd, nil},
		{"4.14.0", FormatEnd, nil},
		{"5.10.0-30-amd64", FormatEnd, nil},
		{"6.2.16", FormatEnd, nil},
		{"6.3.1-arch1", FormatSignal, nil},
		{"6.12.117+deb12-amd64", 0, ErrNotSupported}, // must have BTF or a header
		{"4.13.0", 0, ErrNotSupported},
		{"3.10.0-1160.el7.x86_64", 0, ErrNotSupported},
		{"garbage", 0, ErrNotSupported},
		{"", 0, ErrNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.release, func(t *testing.T) {
			l, err := LayoutFromRelease(tt.release)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || l.Format != tt.want {
				t.Fatalf("got %v, %v; want %v", l.Format, err, tt.want)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{RegSPIndirect.String(), "sp(ind)"},
		{Reg(14).String(), "reg(14)"},
		{TypeRegsPartial.String(), "regs_partial"},
		{Type(9).String(), "type(9)"},
		{fpEntry.String(), "sp:bp+16 bp:prevsp-16 type:call signal:0"},
		{Format(7).String(), "unknown ORC format 7"},
		{StackKind(42).String(), "stack(42)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
