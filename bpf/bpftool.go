package bpf

import "strconv"

// bpftool 7.1 (Debian 12's, the lab's truth) names types through libbpf
// 1.1's tables, and prints a type past the end of a table as its number:
// "type": 32 for a netfilter program on 6.12. These are the last values
// each table knows; the enums are uapi, so values never move.
const (
	libbpfLastProgType   = 31 // BPF_PROG_TYPE_SYSCALL
	libbpfLastMapType    = 32 // BPF_MAP_TYPE_CGRP_STORAGE
	libbpfLastLinkType   = 9  // BPF_LINK_TYPE_STRUCT_OPS
	libbpfLastAttachType = 42 // BPF_TRACE_KPROBE_MULTI
)

// bpftoolName is name, the kernel's own spelling of a type from its BTF,
// as bpftool 7.1 prints it: the number when libbpf 1.1 does not know the
// value (or the kernel's BTF had no name for it).
func bpftoolName(name string, value, last uint64) string {
	if value > last || name == "" {
		return strconv.FormatUint(value, 10)
	}
	return name
}

// ToolProgType is a program type as bpftool 7.1 prints it.
func ToolProgType(name string, value uint32) string {
	return bpftoolName(name, uint64(value), libbpfLastProgType)
}

// ToolMapType is a map type as bpftool 7.1 prints it.
func ToolMapType(name string, value uint32) string {
	return bpftoolName(name, uint64(value), libbpfLastMapType)
}

// ToolLinkType is a link type as bpftool 7.1 prints it.
func ToolLinkType(name string, value uint32) string {
	return bpftoolName(name, uint64(value), libbpfLastLinkType)
}

// ToolAttachType is an attach type as bpftool 7.1 prints it.
func ToolAttachType(name string, value uint32) string {
	return bpftoolName(name, uint64(value), libbpfLastAttachType)
}

// ToolTypeJSON is a type as bpftool's JSON has it (s from ToolProgType and
// its kin): a number where bpftool knows no name, else the name.
func ToolTypeJSON(s string) any {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n
	}
	return s
}
