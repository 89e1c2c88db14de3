// Package orc unwinds kernel stacks with the kernel's ORC tables, falling
// back to frame pointers in JIT-compiled BPF code.
package orc
