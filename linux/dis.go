package linux

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/x86dis"
)

// Kernel text disassembled, as crash's dis: objdump's AT&T syntax, each
// instruction named by its symbol and offset, call and jump targets and
// RIP-relative operands by the symbol they land in.

// MaxDisBytes bounds a disassembly: a function (or the text COUNT
// instructions take) larger than this is refused.
const MaxDisBytes = 1 << 20

// maxInsnLen is x86's longest instruction.
const maxInsnLen = 15

// DisInsn is one disassembled instruction.
type DisInsn struct {
	Addr objects.Hex `json:"address"`
	// Symbol is the instruction's place as crash's dis names it:
	// "schedule", "schedule+5" (a decimal offset); empty where no symbol
	// holds it.
	Symbol string `json:"symbol"`
	// Opcodes are its bytes in hex, as objdump shows them ("55",
	// "48 89 e5").
	Opcodes string `json:"opcodes"`
	// Text is objdump's (objdump -d of the bytes alone), with the symbol
	// a call's or jump's target or a RIP-relative operand's address falls
	// in after it, as objdump names them in a linked object:
	// "call   0xffffffff81234560 <__schedule>".
	Text string `json:"text"`
}

// Disassembly is kernel text disassembled.
type Disassembly struct {
	// Function is the symbol the text starts in, and Start its address.
	Function string      `json:"function"`
	Start    objects.Hex `json:"start"`
	Insns    []DisInsn   `json:"insns"`
}

// Disassemble disassembles the kernel's text at addr: count instructions,
// or, when count is 0, the rest of the function holding addr (to the
// next symbol: the whole function when addr is its start). syms names
// the addresses (nil: none).
//
// Errors wrap kallsyms.ErrNotFound (count 0 and no symbol, or one of
// unknown size, holds addr), objects.ErrLimit (more than MaxDisBytes),
// or the memory's error when the first byte cannot be read; with count,
// a fault further on ends the disassembly where the readable text ends.
func Disassemble(p *objects.Program, syms *kallsyms.Table, addr uint64, count int) (*Disassembly, error) {
	d := &Disassembly{Start: objects.Hex(addr), Insns: []DisInsn{}}
	var loc kallsyms.Location
	var err error = kallsyms.ErrNotFound
	if syms != nil {
		loc, err = syms.LookupAddr(addr)
	}
	if err == nil {
		d.Function = loc.Name
	}
	if count < 0 {
		return nil, fmt.Errorf("dis %#x: count %d: %w", addr, count, objects.ErrType)
	}
	var code []byte
	if count == 0 {
		if err != nil {
			return nil, fmt.Errorf("dis %#x: no function holds it (give a count): %w", addr, err)
		}
		if loc.Size == 0 {
			return nil, fmt.Errorf("dis %#x: the size of %s is unknown (give a count): %w", addr, loc.Name, kallsyms.ErrNotFound)
		}
		n := loc.Size - loc.Offset
		if n > MaxDisBytes {
			return nil, fmt.Errorf("dis %#x: %s has %d bytes more, over %d (give a count): %w", addr, loc.Name, n, MaxDisBytes, objects.ErrLimit)
		}
		code = make([]byte, n)
		if err := p.Read(code, addr); err != nil {
			return nil, fmt.Errorf("dis %s: %w", loc.Short(), err)
		}
	} else {
		if count*maxInsnLen > MaxDisBytes {
			return nil, fmt.Errorf("dis %#x: %d instructions may be over %d bytes: %w", addr, count, MaxDisBytes, objects.ErrLimit)
		}
		if code, err = readUpTo(p, addr, count*maxInsnLen); err != nil {
			return nil, fmt.Errorf("dis %#x: %w", addr, err)
		}
	}
	for _, in := range x86dis.Disassemble(code, addr) {
		if count > 0 && len(d.Insns) == count {
			break
		}
		if count > 0 && in.Addr+uint64(len(in.Bytes)) > addr+uint64(len(code)) && len(code) < count*maxInsnLen {
			break // cut short by unreadable memory
		}
		d.Insns = append(d.Insns, DisInsn{Addr: objects.Hex(in.Addr), Symbol: symbolAt(syms, in.Addr),
			Opcodes: spacedHex(in.Bytes), Text: annotate(syms, in)})
	}
	return d, nil
}

// readUpTo reads n bytes at addr, or as many as can be read before the
// first fault (at least one, else the fault).
func readUpTo(p *objects.Program, addr uint64, n int) ([]byte, error) {
	b := make([]byte, n)
	if err := p.Read(b, addr); err == nil {
		return b, nil
	}
	got := 0
	for got < n {
		end := min(n, got+PageSize-int((addr+uint64(got))%PageSize))
		if err := p.Read(b[got:end], addr+uint64(got)); err != nil {
			if got == 0 {
				return nil, err
			}
			break
		}
		got = end
	}
	return b[:got], nil
}

// symbolAt is "name" or "name+OFF" (decimal, as crash's dis) for an
// address, "" where no symbol holds it.
func symbolAt(syms *kallsyms.Table, addr uint64) string {
	if syms == nil {
		return ""
	}
	loc, err := syms.LookupAddr(addr)
	if err != nil {
		return ""
	}
	if loc.Offset == 0 {
		return loc.Name
	}
	return loc.Name + "+" + strconv.FormatUint(loc.Offset, 10)
}

// annotate adds to objdump's text the symbol of the address it names: a
// direct call's or jump's target, or a RIP-relative operand's ("# 0x...").
func annotate(syms *kallsyms.Table, in x86dis.Inst) string {
	target := in.Target
	if target == 0 {
		if _, c, ok := strings.Cut(in.Text, "# 0x"); ok {
			target, _ = strconv.ParseUint(c, 16, 64)
		}
	}
	if s := symbolOf(syms, target); s != "" {
		return in.Text + " <" + s + ">"
	}
	return in.Text
}

func spacedHex(b []byte) string {
	s := make([]string, len(b))
	for i, c := range b {
		s[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(s, " ")
}

// symbolOf names a value that is an address in a symbol of the kernel,
// a module or a BPF program, as objdump does ("schedule+0x5"); "" for
// others.
func symbolOf(syms *kallsyms.Table, v uint64) string {
	if syms == nil || v < 1<<63 {
		return "" // user addresses and numbers are no symbols
	}
	loc, err := syms.LookupAddr(v)
	if err != nil {
		return ""
	}
	return loc.Short()
}
