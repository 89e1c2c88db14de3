package vmcore

import (
	"errors"
	"fmt"
)

// Sentinels. Every error this package returns wraps at most one of them;
// test with errors.Is.
var (
	// ErrFormat: the file is not a dump we understand, or is damaged
	// (truncated, wrong magic, a corrupt header, descriptor or page). It
	// is wrapped by a *FormatError that names the file offset.
	ErrFormat = errors.New("malformed dump")

	// ErrPageExcluded: the page exists in the machine's memory but the
	// dump left it out (makedumpfile -d, or an ELF segment whose memory
	// size exceeds its file size). It is wrapped by an *AddrError.
	ErrPageExcluded = errors.New("page excluded from the dump")

	// ErrNotInDump: the physical address is in no range the dump
	// describes (a memory hole, or beyond the end of memory). Wrapped by
	// an *AddrError.
	ErrNotInDump = errors.New("physical address not in the dump")

	// ErrNotPresent: the kernel's page tables do not map the virtual
	// address. Wrapped by an *AddrError.
	ErrNotPresent = errors.New("virtual address not mapped")

	// ErrNotSupported: the dump is readable but asks for something this
	// package does not do (an unknown compression, a non-x86-64 core, a
	// translation without any page-table root).
	ErrNotSupported = errors.New("not supported")
)

// FormatError reports malformed input at a byte offset of a file.
type FormatError struct {
	Source string // what was parsed: "kdump header", "ELF note", ...
	Offset int64  // byte offset in the file (logical offset for flattened files)
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s at offset %#x: %s", e.Source, e.Offset, e.Msg)
}

// Unwrap makes a FormatError match ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

func formatErr(src string, off int64, format string, args ...any) error {
	return &FormatError{Source: src, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// AddrError reports a memory access that failed at an address.
type AddrError struct {
	Op       string // "read", "translate"
	Virtual  bool   // VAddr is meaningful
	VAddr    uint64
	Physical bool // PAddr is meaningful
	PAddr    uint64
	PageSize uint64 // for naming the page frame; 0 when unknown
	Err      error  // a sentinel of this package, or an I/O or format error
}

func (e *AddrError) Error() string {
	s := e.Op
	if e.Virtual {
		s += fmt.Sprintf(" vaddr %#x", e.VAddr)
	}
	if e.Physical {
		if e.Virtual {
			s += " ("
		} else {
			s += " "
		}
		s += fmt.Sprintf("paddr %#x", e.PAddr)
		if e.PageSize != 0 {
			s += fmt.Sprintf(", pfn %#x", e.PAddr/e.PageSize)
		}
		if e.Virtual {
			s += ")"
		}
	}
	return s + ": " + e.Err.Error()
}

func (e *AddrError) Unwrap() error { return e.Err }

// PFN returns the page frame number of the physical address, or false.
func (e *AddrError) PFN() (uint64, bool) {
	if !e.Physical || e.PageSize == 0 {
		return 0, false
	}
	return e.PAddr / e.PageSize, true
}

// physErr builds the error of a failed physical access.
func physErr(paddr, pageSize uint64, err error) error {
	return &AddrError{Op: "read", Physical: true, PAddr: paddr, PageSize: pageSize, Err: err}
}

// withVAddr adds the virtual address to an error of a physical read.
func withVAddr(err error, vaddr uint64) error {
	var ae *AddrError
	if errors.As(err, &ae) && !ae.Virtual {
		c := *ae
		c.Virtual, c.VAddr = true, vaddr
		return &c
	}
	return &AddrError{Op: "read", Virtual: true, VAddr: vaddr, Err: err}
}
