package main

import (
	"fmt"
	"unsafe" // also for go:linkname

	"golang.org/x/sys/unix"
)

// The vfork sleeper must block in clone(CLONE_VFORK) while the Go runtime
// believes the thread is in a system call, so that the scheduler hands its
// P to another thread and never tries to preempt it or to stop it for a
// garbage collection. The runtime exports entersyscall/exitsyscall for this
// (see go.dev/issue/67401; gVisor uses them the same way).

//go:linkname entersyscall runtime.entersyscall
func entersyscall()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// cloneVforkSleep is implemented in vfork_amd64.s. It calls
// clone(flags, stack, 0, 0, 0). The parent returns clone's raw result
// (never, when CLONE_VFORK is set and the child neither execs nor exits);
// the child, on the given stack and without touching memory other than
// the three read-only arguments, blocks every signal with
// rt_sigprocmask(SIG_SETMASK, mask), names itself with
// prctl(PR_SET_NAME, name) and calls nanosleep(ts) forever.
func cloneVforkSleep(flags, stack, name, mask, ts uintptr) (r1 uintptr)

// Memory the vfork child reads. The child shares the parent's address
// space, so these are globals that never move and are never written after
// vforkSleep starts.
var (
	vforkChildStack [4096]byte
	vforkChildComm  [16]byte
	vforkChildMask  = ^uint64(0)
	vforkChildTS    = unix.Timespec{Sec: 1 << 31}
)

// vforkSleep makes the calling thread the parent of a vfork whose child
// (named childName) sleeps forever, so the caller waits in the kernel's
// wait_for_vfork_done in uninterruptible (D, TASK_KILLABLE) state for
// good. It only returns on error.
func vforkSleep(childName string) error {
	if len(childName) > 15 {
		return fmt.Errorf("child name %q is longer than 15 bytes", childName)
	}
	copy(vforkChildComm[:], childName)
	const flags = unix.CLONE_VM | unix.CLONE_VFORK | uintptr(unix.SIGCHLD)
	top := uintptr(unsafe.Pointer(&vforkChildStack[len(vforkChildStack)-64])) &^ 15
	r := vforkSyscall(flags, top,
		uintptr(unsafe.Pointer(&vforkChildComm[0])),
		uintptr(unsafe.Pointer(&vforkChildMask)),
		uintptr(unsafe.Pointer(&vforkChildTS)))
	if int64(r) < 0 {
		return fmt.Errorf("clone(CLONE_VFORK): %w", unix.Errno(-int64(r)))
	}
	return fmt.Errorf("clone(CLONE_VFORK) returned %d: the child exited", r)
}

// vforkSyscall wraps cloneVforkSleep in entersyscall/exitsyscall. It must
// not grow the stack between the two, hence nosplit.
//
//go:nosplit
func vforkSyscall(flags, stack, name, mask, ts uintptr) uintptr {
	entersyscall()
	r := cloneVforkSleep(flags, stack, name, mask, ts)
	exitsyscall()
	return r
}
