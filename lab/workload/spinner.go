package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// spinnerCPU is the CPU the spinner thread is bound to.
const spinnerCPU = 1

// spinnerComm is the comm of the spinner thread.
const spinnerComm = "ki_spinner"

// spinnerRepeat is the repeat count of each BPF_PROG_TEST_RUN call: large,
// so that the thread almost never leaves the kernel's test-run loop.
const spinnerRepeat = 1 << 30

// startSpinner starts a goroutine that owns an OS thread bound to cpu (or
// to CPU 0 if cpu does not exist), names it spinnerComm and runs prog
// through BPF_PROG_TEST_RUN forever. It returns as soon as the thread is
// set up, without waiting for any run. With onSignal, the thread waits
// for SIGUSR1 before its first run.
func startSpinner(prog *ebpf.Program, cpu int, onSignal bool) (*SpinnerRecord, error) {
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("info of spin program: %w", err)
	}
	id, _ := info.ID()
	var online unix.CPUSet
	if err := unix.SchedGetaffinity(0, &online); err != nil {
		return nil, fmt.Errorf("get affinity: %w", err)
	}
	if !online.IsSet(cpu) {
		cpu = 0
	}

	type setup struct {
		tid int
		err error
	}
	done := make(chan setup, 1)
	var start chan os.Signal
	if onSignal {
		start = make(chan os.Signal, 1)
		signal.Notify(start, unix.SIGUSR1)
	}
	go func() {
		// Never unlocked: the thread is dedicated to spinning.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- setup{err: fmt.Errorf("bind to CPU %d: %w", cpu, err)}
			return
		}
		if err := setComm(spinnerComm); err != nil {
			done <- setup{err: err}
			return
		}
		done <- setup{tid: unix.Gettid()}
		if start != nil {
			<-start
			signal.Stop(start)
		}
		spin(prog)
	}()
	s := <-done
	if s.err != nil {
		return nil, s.err
	}
	return &SpinnerRecord{
		ProgID: uint32(id), ProgName: info.Name, PID: os.Getpid(), TID: s.tid, Comm: spinnerComm, CPU: cpu,
	}, nil
}

// spin runs prog through BPF_PROG_TEST_RUN forever.
func spin(prog *ebpf.Program) {
	opts := &ebpf.RunOptions{Data: make([]byte, 64), Repeat: spinnerRepeat}
	for {
		if _, err := prog.Run(opts); err != nil {
			log.Printf("spinner: test run of ki_spin: %v", err)
			time.Sleep(time.Second)
		}
	}
}
