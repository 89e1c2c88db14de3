package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The lockup thread (run -lockup, the lab's kd-lockup scenario) runs
// ki_lockup once through BPF_PROG_TEST_RUN when the process gets SIGUSR2:
// one run outlasts the soft lockup watchdog's threshold.
const (
	lockupObject = "lockup.bpf.o"
	lockupCPU    = 0
	lockupComm   = "ki_lockup"
)

// LockupRecord describes the thread that runs ki_lockup on SIGUSR2.
type LockupRecord struct {
	ProgID   uint32 `json:"prog_id"`
	ProgName string `json:"prog_name"`
	PID      int    `json:"pid"`
	TID      int    `json:"tid"`
	Comm     string `json:"comm"`
	CPU      int    `json:"cpu"`
}

// loadLockup loads ki_lockup from lockup.bpf.o.
func (r *runner) loadLockup() error {
	path := filepath.Join(r.cfg.BPFDir, lockupObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
	}
	keep = append(keep, coll)
	prog := coll.Programs["ki_lockup"]
	if prog == nil {
		return fmt.Errorf("%s has no program ki_lockup", path)
	}
	r.lockup = prog
	r.addProg("ki_lockup", prog, fmt.Sprintf("test_run once on CPU %d on SIGUSR2", lockupCPU))
	return nil
}

// startLockup starts the thread, bound to lockupCPU and named lockupComm,
// that runs prog once when the process gets SIGUSR2.
func startLockup(prog *ebpf.Program) (*LockupRecord, error) {
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("info of lockup program: %w", err)
	}
	id, _ := info.ID()
	type setup struct {
		tid int
		err error
	}
	done := make(chan setup, 1)
	start := make(chan os.Signal, 1)
	signal.Notify(start, unix.SIGUSR2)
	go func() {
		// Never unlocked: the thread is dedicated to the lockup.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(lockupCPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- setup{err: fmt.Errorf("bind to CPU %d: %w", lockupCPU, err)}
			return
		}
		if err := setComm(lockupComm); err != nil {
			done <- setup{err: err}
			return
		}
		done <- setup{tid: unix.Gettid()}
		<-start
		signal.Stop(start)
		_, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: 1})
		fmt.Fprintf(os.Stderr, "workload: ki_lockup returned: %v\n", err)
	}()
	s := <-done
	if s.err != nil {
		return nil, s.err
	}
	return &LockupRecord{
		ProgID: uint32(id), ProgName: info.Name, PID: os.Getpid(), TID: s.tid, Comm: lockupComm, CPU: lockupCPU,
	}, nil
}
