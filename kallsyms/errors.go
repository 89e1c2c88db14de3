package kallsyms

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Sentinels. Every error this package returns wraps at most one of them;
// test with errors.Is.
var (
	// ErrNotFound: no symbol has the name, or no symbol covers the
	// address. It is wrapped by a *NotFoundError.
	ErrNotFound = errors.New("symbol not found")

	// ErrFormat: a symbol table is damaged — /proc/kallsyms text that
	// does not parse, or kallsyms tables in kernel memory that do not
	// decode. It is wrapped by a *FormatError naming the table and the
	// index, line or address.
	ErrFormat = errors.New("malformed symbol table")

	// ErrNotSupported: the kernel's tables cannot be found, e.g. a
	// VMCOREINFO without SYMBOL(kallsyms_names) (Linux before 6.0).
	ErrNotSupported = errors.New("not supported")

	// ErrHidden: the symbol addresses were hidden from us —
	// /proc/kallsyms printed zeros (kptr_restrict, or not root).
	ErrHidden = errors.New("symbol addresses hidden (kptr_restrict, or not root)")
)

// FormatError reports a damaged symbol table. For tables in kernel
// memory it names the table (e.g. "kallsyms_names"), the symbol index and
// the virtual address of the bad bytes; for text it names the source and
// the line.
type FormatError struct {
	Table string // "kallsyms_names", "kallsyms_offsets", "/proc/kallsyms", ...
	Index int    // symbol index in the table; -1 when none
	Line  int    // 1-based line of text input; 0 when none
	Addr  uint64 // virtual address of the bad bytes; 0 when none
	Msg   string
}

// Error renders "TABLE[INDEX] line N at ADDR: MSG", leaving out what is unset.
func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString(e.Table)
	if e.Index >= 0 {
		fmt.Fprintf(&b, "[%d]", e.Index)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Addr != 0 {
		fmt.Fprintf(&b, " at %#x", e.Addr)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes a FormatError match ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

// tableErr builds a *FormatError about a table in memory.
func tableErr(table string, index int, addr uint64, format string, args ...any) error {
	return &FormatError{Table: table, Index: index, Addr: addr, Msg: fmt.Sprintf(format, args...)}
}

// lineErr builds a *FormatError about a line of text.
func lineErr(source string, line int, format string, args ...any) error {
	return &FormatError{Table: source, Index: -1, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// NotFoundError reports a failed lookup: by name (Name set, with up to
// five close names from Suggestions) or by address (ByAddr set).
type NotFoundError struct {
	Name   string
	Addr   uint64
	ByAddr bool

	// The close names are searched for only when asked: callers that probe
	// for optional symbols should not pay for a scan of every name.
	suggest     func() []string
	once        sync.Once
	suggestions []string
}

// Suggestions returns up to five symbol names close to Name.
func (e *NotFoundError) Suggestions() []string {
	e.once.Do(func() {
		if e.suggest != nil {
			e.suggestions = e.suggest()
		}
	})
	return e.suggestions
}

// Error renders "no symbol named X (did you mean ...?)" or "no symbol at ADDR".
func (e *NotFoundError) Error() string {
	if e.ByAddr {
		return fmt.Sprintf("no symbol at %#x", e.Addr)
	}
	s := fmt.Sprintf("no symbol named %q", e.Name)
	if sug := e.Suggestions(); len(sug) > 0 {
		s += " (did you mean " + strings.Join(sug, ", ") + "?)"
	}
	return s
}

// Unwrap makes a NotFoundError match ErrNotFound.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }
