package bpfinsn

import "errors"

// ErrFormat: instructions, BTF or records that do not decode.
var ErrFormat = errors.New("malformed BPF data")
