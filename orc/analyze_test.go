package orc

import (
	"strings"
	"testing"
)

// TestFrameAt follows hand-assembled x86-64 code (the shape of
// __crash_kexec: a prologue, a branch to a block placed after the
// function's ret, pushf/pop inside it) and checks the stack depth the
// code implies at an instruction.
func TestFrameAt(t *testing.T) {
	code := []byte{
		0x0f, 0x1f, 0x44, 0x00, 0x00, // 0x00 nopl 0x0(%rax,%rax,1) (ftrace's call)
		0x53,                                     // 0x05 push %rbx
		0x48, 0x81, 0xec, 0xb0, 0x00, 0x00, 0x00, // 0x06 sub $0xb0,%rsp
		0x85, 0xc0, //                               0x0d test %eax,%eax
		0x75, 0x09, //                               0x0f jne 0x1a
		0x48, 0x81, 0xc4, 0xb0, 0x00, 0x00, 0x00, // 0x11 add $0xb0,%rsp
		0x5b,             //                               0x18 pop %rbx
		0xc3,             //                               0x19 ret
		0x9c,             //                               0x1a pushf
		0x8f, 0x04, 0x24, //                         0x1b pop (%rsp)
		0x55,             //                         0x1e push %rbp
		0x48, 0x89, 0xe5, //                         0x1f mov %rsp,%rbp
		0x5d,       //                         0x22 pop %rbp
		0xeb, 0xec, //                               0x23 jmp 0x11
	}
	for _, tc := range []struct {
		at      uint64
		sp      int
		bpSaved bool
		err     string
	}{
		{0x00, 0, false, ""},
		{0x06, 8, false, ""},
		{0x0d, 0xb8, false, ""},
		{0x18, 8, false, ""}, // after the add, on the way out
		{0x1b, 0xc0, false, ""},
		{0x1e, 0xb8, false, ""},
		{0x1f, 0xc0, true, ""}, // rbp pushed
		{0x23, 0xb8, false, ""},
		{0x30, 0, false, "not reached"},
	} {
		d, err := frameAt(code, tc.at)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("at %#x: %v, want %q", tc.at, err, tc.err)
			}
			continue
		}
		if err != nil || d.sp != tc.sp || d.bpSaved != tc.bpSaved {
			t.Errorf("at %#x: depth %+v, %v; want sp %#x, rbp saved %v", tc.at, d, err, tc.sp, tc.bpSaved)
		}
	}
	// Paths that disagree, and an unfollowable stack pointer.
	bad := []byte{
		0x85, 0xc0, // test %eax,%eax
		0x74, 0x01, // je +1
		0x50, // push %rax
		0x90, // nop: reached with depths 8 and 0
		0xc3,
	}
	if _, err := frameAt(bad, 5); err == nil {
		t.Error("disagreeing paths were accepted")
	}
	if _, err := frameAt([]byte{0x48, 0x89, 0xec, 0x90}, 3); err == nil { // mov %rbp,%rsp
		t.Error("an assignment of the stack pointer was followed")
	}
}
