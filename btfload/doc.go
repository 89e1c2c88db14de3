// Package btfload loads the kernel's BTF type information from memory or
// /sys/kernel/btf, including split BTF of modules.
package btfload
