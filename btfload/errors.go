package btfload

import "errors"

var (
	// ErrNotFound: no type, member, symbol or variable of that name.
	ErrNotFound = errors.New("not found")
	// ErrFormat: the BTF bytes, or a declaration, do not parse.
	ErrFormat = errors.New("malformed BTF")
	// ErrNotSupported: a type the operation cannot handle.
	ErrNotSupported = errors.New("not supported")
)
