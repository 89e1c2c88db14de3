#include "textflag.h"

// func cloneVforkSleep(flags, stack, name, mask, ts uintptr) (r1 uintptr)
//
// See vfork_amd64.go. The child path uses no stack and writes no memory:
// it only makes system calls whose arguments are in registers copied from
// the parent.
TEXT ·cloneVforkSleep(SB), NOSPLIT, $0-48
	MOVQ	flags+0(FP), DI
	MOVQ	stack+8(FP), SI
	MOVQ	name+16(FP), R12
	MOVQ	mask+24(FP), R13
	MOVQ	ts+32(FP), BX
	XORQ	DX, DX		// parent_tid
	XORQ	R10, R10	// child_tid
	XORQ	R8, R8		// tls
	MOVQ	$56, AX		// SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	MOVQ	AX, r1+40(FP)
	RET

child:
	MOVQ	$14, AX		// SYS_rt_sigprocmask
	MOVQ	$2, DI		// SIG_SETMASK
	MOVQ	R13, SI		// all signals
	XORQ	DX, DX		// no old set
	MOVQ	$8, R10		// sizeof(sigset_t)
	SYSCALL
	MOVQ	$157, AX	// SYS_prctl
	MOVQ	$15, DI		// PR_SET_NAME
	MOVQ	R12, SI
	SYSCALL
loop:
	MOVQ	$35, AX		// SYS_nanosleep
	MOVQ	BX, DI
	XORQ	SI, SI
	SYSCALL
	JMP	loop
