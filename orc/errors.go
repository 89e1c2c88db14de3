package orc

import (
	"errors"
	"fmt"
)

// Sentinels. Every error this package returns wraps at most one of them;
// test with errors.Is.
var (
	// ErrNotFound: no ORC entry, stack, task or CPU for what was asked.
	ErrNotFound = errors.New("not found")
	// ErrFormat: ORC tables (or the orc_lookup table) that do not decode:
	// sizes that disagree, entries out of order, bad lookup indices. It
	// is wrapped by a *FormatError naming the table and the entry.
	ErrFormat = errors.New("malformed ORC data")
	// ErrNotSupported: an ORC entry layout this package does not know
	// (refused, never guessed), or a kernel without ORC tables.
	ErrNotSupported = errors.New("not supported")
	// ErrCorrupt: a stack that does not unwind — a return address or
	// pt_regs outside every known stack, a stack pointer going the wrong
	// way, an undefined ORC entry. It ends a trace (Trace.Err).
	ErrCorrupt = errors.New("stack does not unwind")
)

// FormatError reports damaged ORC data: the table ("vmlinux
// .orc_unwind_ip", "module 9p .orc_unwind", "orc_lookup"), the entry
// index and its virtual address.
type FormatError struct {
	Table string
	Index int    // entry index; -1 when none
	Addr  uint64 // virtual address of the bad bytes; 0 when unknown
	Msg   string
}

func (e *FormatError) Error() string {
	s := "orc: " + e.Table
	if e.Index >= 0 {
		s += fmt.Sprintf("[%d]", e.Index)
	}
	if e.Addr != 0 {
		s += fmt.Sprintf(" at %#x", e.Addr)
	}
	return s + ": " + e.Msg
}

func (e *FormatError) Unwrap() error { return ErrFormat }

func formatErr(table string, index int, addr uint64, format string, args ...any) error {
	return &FormatError{Table: table, Index: index, Addr: addr, Msg: fmt.Sprintf(format, args...)}
}
