package objects

import (
	"fmt"
	"strconv"
)

// Hex is an address or bit mask that JSON (and text) render as 0x-prefixed
// hex, as the kernel prints them; results that hold addresses use it.
type Hex uint64

// MarshalText renders h as "0x..." (JSON then quotes it).
func (h Hex) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%#x", uint64(h))), nil }

// UnmarshalText parses a number in any base strconv accepts ("0x1f").
func (h *Hex) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 0, 64)
	*h = Hex(v)
	return err
}

// HexPtr returns a pointer to Hex(v), for optional fields.
func HexPtr(v uint64) *Hex { h := Hex(v); return &h }
