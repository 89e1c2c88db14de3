package bpfvm

import (
	"errors"
	"fmt"
)

// Sentinel errors; an *ExecError wraps exactly one of them.
var (
	// ErrFault: a memory access the kernel would have faulted on, or that
	// the base memory cannot answer (unmapped, excluded from the dump), or
	// a write to a read-only region.
	ErrFault = errors.New("memory fault")
	// ErrBudget: the run executed its instruction budget.
	ErrBudget = errors.New("instruction budget exhausted")
	// ErrUnknownHelper: a call whose target has no Go implementation.
	ErrUnknownHelper = errors.New("no implementation of the called function")
	// ErrBadInsn: an instruction the kernel's interpreter has no case for
	// (a code, register or operand the verifier would have rejected), or
	// control that leaves the program.
	ErrBadInsn = errors.New("invalid instruction")
	// ErrCallDepth: a BPF-to-BPF call beyond MaxCallFrames.
	ErrCallDepth = errors.New("too many call frames")
	// ErrHelper: a helper's Go implementation failed (the helper's own
	// error is wrapped too).
	ErrHelper = errors.New("helper failed")
	// ErrNotRunning: Step or Run without a started program, or after it
	// exited or failed.
	ErrNotRunning = errors.New("no program running")
	// ErrNoMemory: Alloc beyond AllocLimit.
	ErrNoMemory = errors.New("machine memory exhausted")
)

// ExecError is an error of a run: where it happened and why.
type ExecError struct {
	// Prog is the name of the program running.
	Prog string
	// Insn is the index of the instruction in Prog; -1 when no
	// instruction was running (ErrNotRunning).
	Insn int
	// Addr is the memory address involved, if HasAddr.
	Addr    uint64
	HasAddr bool
	// Reason says what happened, in words.
	Reason string
	// Err is the sentinel (ErrFault, ErrBudget, ...).
	Err error
	// Cause is the underlying error, if any: the base memory's error for
	// a fault, a helper's error.
	Cause error
}

// Error renders "bpfvm: prog NAME insn N: reason: cause: sentinel".
func (e *ExecError) Error() string {
	s := "bpfvm: "
	if e.Prog != "" {
		s += "prog " + e.Prog + " "
	}
	if e.Insn >= 0 {
		s += fmt.Sprintf("insn %d: ", e.Insn)
	}
	s += e.Reason
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the sentinel and the cause.
func (e *ExecError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// MemError is the error of a memory access outside a run (Machine.Read,
// Write and the helpers built on them): it wraps ErrFault. A run that
// meets it turns it into an *ExecError naming the instruction.
type MemError struct {
	// Addr and Size are the access, Write its direction.
	Addr  uint64
	Size  int
	Write bool
	// Reason says why it failed; Cause is the base memory's error, if
	// any.
	Reason string
	Cause  error
}

// Error renders "read of N bytes at ADDR: reason: cause: memory fault".
func (e *MemError) Error() string {
	op := "read"
	if e.Write {
		op = "write"
	}
	s := fmt.Sprintf("%s of %d bytes at %#x: %s", op, e.Size, e.Addr, e.Reason)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s + ": " + ErrFault.Error()
}

// Unwrap returns ErrFault and the cause.
func (e *MemError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrFault, e.Cause}
	}
	return []error{ErrFault}
}
