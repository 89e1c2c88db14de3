package linux

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestPrbData(t *testing.T) {
	const sizeBits = 6 // a 64-byte ring
	ring := make([]byte, 64)
	block := func(at int, id uint64, text string) {
		binary.LittleEndian.PutUint64(ring[at:], id)
		copy(ring[at+8:], text)
	}
	block(0, 7, "hello") // a regular block at lpos 64..80 (wrap 1)
	tests := []struct {
		name        string
		begin, next uint64
		id          uint64
		want        string
		ok          bool
	}{
		{"regular", 64, 80, 7, "hello\x00\x00\x00", true},
		{"wrong id", 64, 80, 9, "", false},
		{"dataless", noLPOS, noLPOS, 1, "", true},
		{"failed", failedLPOS, failedLPOS, 1, "", false},
		{"unaligned", 65, 80, 7, "", false},
		{"backwards", 80, 64, 7, "", false},
		{"two wraps", 64, 200, 7, "", false},
		{"too short", 64, 68, 7, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := prbData(ring, sizeBits, tt.begin, tt.next, tt.id)
			if ok != tt.ok || ok && string(b) != tt.want {
				t.Errorf("prbData(%d, %d) = %q, %v; want %q, %v", tt.begin, tt.next, b, ok, tt.want, tt.ok)
			}
		})
	}
	// A wrapping block: begins at index 56 of wrap 0 (lpos 56), its id
	// written there and at index 0, where its data is; next is lpos 80
	// (index 16 of wrap 1).
	ring = make([]byte, 64)
	binary.LittleEndian.PutUint64(ring[56:], 5)
	block(0, 5, "wrapped")
	if b, ok := prbData(ring, sizeBits, 56, 80, 5); !ok || string(b[:7]) != "wrapped" {
		t.Errorf("wrapping block: %q, %v", b, ok)
	}
	binary.LittleEndian.PutUint64(ring[56:], 6)
	if _, ok := prbData(ring, sizeBits, 56, 80, 5); ok {
		t.Errorf("wrapping block with another id where it began: accepted")
	}
}

func TestDmesgLines(t *testing.T) {
	tests := []struct {
		ts   uint64
		text string
		want []string
	}{
		{0, "Linux version 6.1", []string{"[    0.000000] Linux version 6.1"}},
		{101555533123, "RIP: x\nRSP: y", []string{"[  101.555533] RIP: x", "[  101.555533] RSP: y"}},
		{123456789012345, "", []string{"[123456.789012] "}},
	}
	for _, tt := range tests {
		got := PrintkRecord{TsNsec: tt.ts, Text: tt.text}.DmesgLines()
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%d %q: %q, want %q", tt.ts, tt.text, got, tt.want)
		}
	}
	if c := (PrintkRecord{CallerID: 0x80000001}).Caller(); c != "C1" {
		t.Errorf("caller %s", c)
	}
	if c := (PrintkRecord{CallerID: 123}).Caller(); c != "T123" {
		t.Errorf("caller %s", c)
	}
}

// FuzzPrbData: any ring and positions give data inside the ring or a
// refusal, never a panic.
func FuzzPrbData(f *testing.F) {
	ring := make([]byte, 64)
	binary.LittleEndian.PutUint64(ring, 7)
	f.Add(ring, uint64(64), uint64(80), uint64(7))
	f.Add(ring, uint64(56), uint64(80), uint64(7))
	f.Add(ring, uint64(noLPOS), uint64(noLPOS), uint64(0))
	f.Fuzz(func(t *testing.T, ring []byte, begin, next, id uint64) {
		if len(ring) < 8 {
			return
		}
		bits := uint64(0)
		for 1<<(bits+1) <= len(ring) && bits < 20 {
			bits++
		}
		ring = ring[:1<<bits]
		b, ok := prbData(ring, bits, begin, next, id)
		if ok && len(b) > len(ring) {
			t.Fatalf("%d bytes from a ring of %d", len(b), len(ring))
		}
		_ = PrintkRecord{TsNsec: begin, Text: string(b)}.DmesgLines()
	})
}
