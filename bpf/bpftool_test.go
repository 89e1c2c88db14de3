package bpf

import "testing"

// TestBpftoolName: names libbpf 1.1 knows pass through, later ones become
// numbers, as bpftool 7.1 prints them.
func TestBpftoolName(t *testing.T) {
	for _, tc := range []struct {
		name        string
		value, last uint64
		want        string
	}{
		{"syscall", 31, libbpfLastProgType, "syscall"},
		{"netfilter", 32, libbpfLastProgType, "32"},
		{"cgrp_storage", 32, libbpfLastMapType, "cgrp_storage"},
		{"arena", 33, libbpfLastMapType, "33"},
		{"struct_ops", 9, libbpfLastLinkType, "struct_ops"},
		{"tcx", 11, libbpfLastLinkType, "11"},
		{"trace_kprobe_multi", 42, libbpfLastAttachType, "trace_kprobe_multi"},
		{"", 3, libbpfLastLinkType, "3"},
	} {
		if got := bpftoolName(tc.name, tc.value, tc.last); got != tc.want {
			t.Errorf("bpftoolName(%q, %d, %d) = %q, want %q", tc.name, tc.value, tc.last, got, tc.want)
		}
	}
}
