package linux

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// Memory read as crash's rd: units of 1, 2, 4 or 8 bytes in hex, a
// line's bytes as ASCII, or (symbolic) each 8-byte unit that is a
// kernel address as the symbol it falls in.

// MaxRdBytes bounds what rd reads.
const MaxRdBytes = 16 << 20

// RdOptions say how rd reads and shows memory.
type RdOptions struct {
	// Size is a unit's size in bytes: 1, 2, 4 or 8 (0: 8).
	Size int
	// Count is the number of units (0: 1).
	Count int
	// Symbolic names each unit that is an address in a symbol (8-byte
	// units only), as crash's rd -s.
	Symbolic bool
	// Physical: the address is physical (crash's rd -p).
	Physical bool
}

// RdLine is one line of rd: 16 bytes at the most.
type RdLine struct {
	Addr objects.Hex `json:"address"`
	// Values are the line's units, little-endian.
	Values []objects.Hex `json:"values"`
	// Symbols name the values (Symbolic): "schedule+5", or "" for a value
	// in no symbol.
	Symbols []string `json:"symbols,omitempty"`
	// ASCII is the line's bytes, '.' for those not printable.
	ASCII string `json:"ascii"`
}

// RdResult is what rd read.
type RdResult struct {
	Start    objects.Hex `json:"start"`
	Physical bool        `json:"physical"`
	Size     int         `json:"size"`
	Lines    []RdLine    `json:"lines"`
	// Error says why the read stopped before Count units (a fault),
	// naming the address; the lines before it were read.
	Error string `json:"error,omitempty"`
}

// ReadFunc reads len(b) bytes at addr, virtual or physical.
type ReadFunc func(b []byte, addr uint64) error

// ReadMemory reads memory as crash's rd does, with read (objects'
// Program.Read for virtual memory, the dump's physical reader for
// physical); syms names values (nil: none).
//
// Errors wrap objects.ErrType (a bad size or count), objects.ErrLimit
// (more than MaxRdBytes) or the read's error when nothing could be read;
// a fault after the first line ends the result with Error set.
func ReadMemory(read ReadFunc, syms *kallsyms.Table, addr uint64, o RdOptions) (*RdResult, error) {
	size, count := cmp0(o.Size, 8), cmp0(o.Count, 1)
	switch {
	case size != 1 && size != 2 && size != 4 && size != 8:
		return nil, fmt.Errorf("rd: a unit of %d bytes: 1, 2, 4 or 8: %w", size, objects.ErrType)
	case o.Symbolic && size != 8:
		return nil, fmt.Errorf("rd: symbols are of 8-byte units: %w", objects.ErrType)
	case count < 0:
		return nil, fmt.Errorf("rd: count %d: %w", count, objects.ErrType)
	case count > MaxRdBytes/size:
		return nil, fmt.Errorf("rd: %d units of %d bytes: over %d bytes: %w", count, size, MaxRdBytes, objects.ErrLimit)
	}
	r := &RdResult{Start: objects.Hex(addr), Physical: o.Physical, Size: size, Lines: []RdLine{}}
	perLine := 16 / size
	if o.Symbolic {
		perLine = 2
	}
	buf := make([]byte, perLine*size)
	for done := 0; done < count; {
		n := min(perLine, count-done)
		a := addr + uint64(done*size)
		b := buf[:n*size]
		if err := read(b, a); err != nil {
			if done == 0 {
				return nil, fmt.Errorf("rd %#x: %w", a, err)
			}
			r.Error = fmt.Sprintf("rd %#x: %v", a, err)
			break
		}
		l := RdLine{Addr: objects.Hex(a), ASCII: printable(b)}
		for i := range n {
			v := unit(b[i*size:], size)
			l.Values = append(l.Values, objects.Hex(v))
			if o.Symbolic {
				l.Symbols = append(l.Symbols, symbolOf(syms, v))
			}
		}
		r.Lines = append(r.Lines, l)
		done += n
	}
	return r, nil
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func unit(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

// printable is b as ASCII, '.' for bytes outside ' '..'~'.
func printable(b []byte) string {
	s := make([]byte, len(b))
	for i, c := range b {
		if c < ' ' || c > '~' {
			c = '.'
		}
		s[i] = c
	}
	return string(s)
}
