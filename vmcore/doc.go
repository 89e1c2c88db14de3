// Package vmcore reads kernel memory from a crash dump or a live kernel:
// ELF cores, kdump-compressed files (normal and flattened), /proc/kcore,
// with VMCOREINFO, per-CPU registers and x86-64 address translation.
package vmcore
