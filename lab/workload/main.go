// Command workload is the guest workload of the kinspect VM lab.
//
// The lab boots a real Debian kernel under QEMU with a busybox initramfs,
// runs this program inside the guest to create known kernel objects (BPF
// maps, programs, links and pins, sleeping tasks, a task spinning inside a
// BPF program), records the ground truth that the guest itself can see,
// and then dumps the guest's memory so that kinspect's findings can be
// compared with that truth.
//
// Subcommands:
//
//	workload run -bpfdir DIR -ready FILE [-scale] [-spin-on-signal] [-lockup] [-testrun DIR]
//	    create every object, write FILE (JSON, see Ready) and stay alive;
//	    with -testrun, first test-run the programs and write DIR/NAME.json
//	workload jited OUTDIR
//	    write OUTDIR/prog-<id>.json (and -jited-linfo.json) for every BPF program
//	workload snapshot OUTDIR
//	    write OUTDIR/ps.json and OUTDIR/stacks.json from /proc
//	workload sleeper NAME KIND
//	    internal: a child of run that names itself NAME and blocks forever;
//	    KIND is nanosleep, pipe_read, futex, epoll_wait, vfork_parent or
//	    threads (see sleeper.go)
//
// The BPF objects are built from bpf/*.bpf.c with Debian's clang alone
// (bpf/bpf_defs.h replaces the kernel headers and vmlinux.h):
//
//	clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I lab/workload/bpf \
//	      -c lab/workload/bpf/X.bpf.c -o OUT/X.bpf.o
//	CGO_ENABLED=0 go build -o OUT/workload ./lab/workload
//
// Every object the workload creates is named "ki_..." so that tests can
// find it. Progress and errors go to stderr; a failure exits with status 1.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

func init() {
	// Keep the main goroutine on the main thread (the thread whose TID is
	// the PID). The sleeper subcommand relies on this: the task that
	// carries the process's name and /proc/PID/stack is the one that
	// blocks.
	runtime.LockOSThread()
}

const usage = `usage:
  workload run -bpfdir DIR -ready FILE [-scale] [-spin-on-signal] [-lockup] [-testrun DIR]
  workload jited OUTDIR
  workload snapshot OUTDIR
  workload sleeper NAME KIND
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = runCmd(args)
	case "jited":
		err = oneDirCmd(cmd, args, writeJited)
	case "snapshot":
		err = oneDirCmd(cmd, args, writeSnapshot)
	case "sleeper":
		if len(args) != 2 {
			err = fmt.Errorf("sleeper: want NAME KIND, got %q", args)
			break
		}
		err = sleeperMain(args[0], args[1])
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		err = fmt.Errorf("unknown subcommand %q\n%s", cmd, usage)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "workload: %v\n", err)
		os.Exit(1)
	}
}

// runCmd parses the flags of "workload run" and runs it; it only returns
// on error.
func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	bpfDir := fs.String("bpfdir", "/bpf", "directory holding the *.bpf.o objects")
	ready := fs.String("ready", "/run/workload.ready", "file to write the JSON description to once everything exists")
	scale := fs.Bool("scale", false, "also create ~1M hash entries, ~500 programs and ~2000 sleeping threads")
	spinOnSignal := fs.Bool("spin-on-signal", false, "start spinning only when the process gets SIGUSR1 (the spinner thread exists from the start)")
	lockup := fs.Bool("lockup", false, "load ki_lockup and run it once on CPU 0 when the process gets SIGUSR2")
	testrun := fs.String("testrun", "", "test-run every test-runnable program and write the truth of the runs here (testrun.go)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("run: unexpected arguments %q", fs.Args())
	}
	return run(runConfig{BPFDir: *bpfDir, ReadyFile: *ready, Scale: *scale, SpinOnSignal: *spinOnSignal, Lockup: *lockup, TestrunDir: *testrun})
}

// oneDirCmd runs a subcommand whose only argument is an output directory,
// creating that directory first.
func oneDirCmd(name string, args []string, fn func(dir string) error) error {
	if len(args) != 1 {
		return fmt.Errorf("%s: want OUTDIR, got %q", name, args)
	}
	if err := os.MkdirAll(args[0], 0o755); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := fn(args[0]); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
