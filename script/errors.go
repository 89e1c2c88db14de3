package script

import (
	"errors"
	"fmt"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// errorCode classifies an error for scripts (Error.code): what a catch
// block would test.
func errorCode(err error) string {
	switch {
	case errors.Is(err, vmcore.ErrPageExcluded):
		return "page_excluded"
	case errors.Is(err, vmcore.ErrNotPresent), errors.Is(err, vmcore.ErrNotInDump):
		return "fault"
	case errors.Is(err, objects.ErrNoMemory):
		return "no_memory"
	case errors.Is(err, objects.ErrNotFound), errors.Is(err, kallsyms.ErrNotFound):
		return "not_found"
	case errors.Is(err, objects.ErrType):
		return "type"
	case errors.Is(err, objects.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, objects.ErrLimit):
		return "limit"
	case errors.Is(err, errReadOnly):
		return "read_only"
	case errors.Is(err, errArg):
		return "argument"
	}
	return "error"
}

var (
	errReadOnly = errors.New("kernel memory is read-only from scripts")
	errArg      = errors.New("bad argument")
)

// jsError makes a JS Error of err: its message is err's, its code says
// what kind of error it is (see errorCode).
func (e *Engine) jsError(err error) *goja.Object {
	o := e.rt.NewGoError(err)
	_ = o.Set("code", errorCode(err))
	_ = o.Set("name", "KernelError")
	return o
}

// throw raises err as a JS exception.
func (e *Engine) throw(err error) {
	panic(e.jsError(err))
}

// throwf raises a formatted argument error.
func (e *Engine) throwf(format string, args ...any) {
	panic(e.jsError(fmt.Errorf(format+": %w", append(args, errArg)...)))
}
