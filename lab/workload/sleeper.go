package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sleeper kinds: how a "workload sleeper NAME KIND" process blocks. They
// double as SleeperRecord.Kind.
const (
	kindNanosleep = "nanosleep"    // nanosleep(2) for 68 years
	kindPipe      = "pipe_read"    // read(2) on an empty pipe
	kindFutex     = "futex"        // FUTEX_WAIT on a word nobody wakes
	kindEpoll     = "epoll_wait"   // epoll_wait(2) on an epoll holding an empty pipe
	kindVfork     = "vfork_parent" // clone(CLONE_VFORK) whose child never execs: state D
	kindThreads   = "threads"      // threadsPerProc threads all reading an empty pipe
	// kindVforkChild is the child of a vfork_parent sleeper (not a KIND
	// of its own: it is created by the vfork_parent).
	kindVforkChild = "vfork_child"
)

// threadsPerProc is the number of threads (the main thread included) a
// "threads" sleeper blocks in read(2).
const threadsPerProc = 100

// vforkChildName is the comm of the child of a vfork_parent sleeper.
const vforkChildName = "ki_vfork_child"

// Linux futex(2) operations (not in x/sys/unix).
const (
	futexWait        = 0
	futexPrivateFlag = 128
)

// futexWord is the word the futex sleeper waits on; it stays 0 forever.
var futexWord uint32

// sleeperMain is "workload sleeper NAME KIND": it names the calling task
// (the process's main thread, see init) NAME and blocks forever the way
// KIND says. It only returns on error.
func sleeperMain(name, kind string) error {
	// Nothing allocates after setup: keep the collector quiet so that the
	// process has no reason to wake up.
	debug.SetGCPercent(-1)
	if len(name) > 15 {
		return fmt.Errorf("name %q is longer than 15 bytes", name)
	}
	switch kind {
	case kindNanosleep:
		if err := setComm(name); err != nil {
			return err
		}
		for {
			ts := unix.Timespec{Sec: 1 << 31}
			if err := unix.Nanosleep(&ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("nanosleep: %w", err)
			}
		}
	case kindPipe:
		fd, err := emptyPipe()
		if err != nil {
			return err
		}
		if err := setComm(name); err != nil {
			return err
		}
		return blockInRead(fd)
	case kindFutex:
		if err := setComm(name); err != nil {
			return err
		}
		for {
			_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&futexWord)),
				futexWait|futexPrivateFlag, 0, 0, 0, 0)
			if e != 0 && e != unix.EINTR && e != unix.EAGAIN {
				return fmt.Errorf("futex wait: %w", e)
			}
		}
	case kindEpoll:
		fd, err := emptyPipe()
		if err != nil {
			return err
		}
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("epoll_create1: %w", err)
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
		if err := setComm(name); err != nil {
			return err
		}
		events := make([]unix.EpollEvent, 4)
		for {
			if _, err := unix.EpollWait(ep, events, -1); err != nil && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("epoll_wait: %w", err)
			}
		}
	case kindVfork:
		if err := setComm(name); err != nil {
			return err
		}
		return vforkSleep(vforkChildName)
	case kindThreads:
		fd, err := emptyPipe()
		if err != nil {
			return err
		}
		for i := 1; i < threadsPerProc; i++ {
			go func() {
				// Never unlocked: the goroutine owns its thread for good.
				runtime.LockOSThread()
				err := setComm(name)
				if err == nil {
					err = blockInRead(fd)
				}
				fmt.Fprintf(os.Stderr, "workload: sleeper %s: thread: %v\n", name, err)
				os.Exit(1)
			}()
		}
		// The main thread is the last of the threadsPerProc threads.
		if err := setComm(name); err != nil {
			return err
		}
		return blockInRead(fd)
	default:
		return fmt.Errorf("unknown sleeper kind %q", kind)
	}
}

// setComm sets the comm of the calling thread with PR_SET_NAME.
func setComm(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return fmt.Errorf("comm %q: %w", name, err)
	}
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NAME, %q): %w", name, err)
	}
	return nil
}

// emptyPipe creates a pipe whose write end stays open and unused, and
// returns its (blocking) read end.
func emptyPipe() (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, fmt.Errorf("pipe2: %w", err)
	}
	return p[0], nil
}

// blockInRead reads fd, an empty pipe, forever with plain read(2) calls
// (not through the Go netpoller, so the thread itself blocks in pipe_read).
func blockInRead(fd int) error {
	buf := make([]byte, 16)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("read pipe: %w", err)
		}
		if n > 0 || err == nil {
			return fmt.Errorf("read pipe: unexpected data (%d bytes)", n)
		}
	}
}
