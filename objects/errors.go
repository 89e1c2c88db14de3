package objects

import (
	"errors"

	"github.com/kinspect/kinspect/btfload"
)

var (
	// ErrNotFound: no symbol, variable, member or type of that name.
	ErrNotFound = btfload.ErrNotFound
	// ErrType: the operation does not apply to the value's type.
	ErrType = errors.New("invalid operation for the type")
	// ErrCorrupt: a kernel structure is inconsistent (a cycle, a NULL or
	// mismatched pointer).
	ErrCorrupt = errors.New("corrupt kernel structure")
	// ErrLimit: a walk went past the Program's limit.
	ErrLimit = errors.New("too many entries")
	// ErrNoMemory: the Program has no kernel memory to read.
	ErrNoMemory = errors.New("kernel memory unavailable")
	// ErrNotSupported: a kernel layout the engine does not handle.
	ErrNotSupported = btfload.ErrNotSupported
)
