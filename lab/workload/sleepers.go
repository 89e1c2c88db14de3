package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// sleeperSpec is a sleeper process to start: its comm and how it blocks.
type sleeperSpec struct {
	name, kind string
}

// baseSleepers are the sleeper processes every run starts.
var baseSleepers = []sleeperSpec{
	{"ki_sleep_nano", kindNanosleep},
	{"ki_sleep_pipe", kindPipe},
	{"ki_sleep_futex", kindFutex},
	{"ki_sleep_epoll", kindEpoll},
	{"ki_sleep_vfork", kindVfork},
}

// blockingSyscall is the x86-64 system call number each kind's threads
// block in, as /proc/PID/task/TID/syscall shows it.
var blockingSyscall = map[string]int{
	kindNanosleep:  35,  // nanosleep
	kindPipe:       0,   // read
	kindFutex:      202, // futex
	kindEpoll:      232, // epoll_wait
	kindVfork:      56,  // clone
	kindVforkChild: 35,  // nanosleep
	kindThreads:    0,   // read
}

// sleeperTimeout bounds how long a sleeper may take to reach its blocking
// system call (generous: the guest runs under TCG, possibly with 2000
// threads being created).
const sleeperTimeout = 3 * time.Minute

// startedSleeper is a sleeper process that was started.
type startedSleeper struct {
	sleeperSpec
	cmd *exec.Cmd
}

// startSleepers starts baseSleepers and waits until each one blocks where
// it should. The vfork sleeper is optional.
func (r *runner) startSleepers() error {
	started, err := r.spawnSleepers(baseSleepers)
	if err != nil {
		return err
	}
	for _, s := range started {
		rec, err := waitSleeper(s.cmd.Process.Pid, s.name, s.kind)
		if err != nil {
			if s.kind == kindVfork {
				r.note("vfork sleeper: %v", err)
				continue
			}
			return err
		}
		r.ready.Sleepers = append(r.ready.Sleepers, rec)
		if s.kind == kindVfork {
			child, err := findVforkChild(rec.PID)
			if err != nil {
				r.note("vfork sleeper: %v", err)
				continue
			}
			r.ready.Sleepers = append(r.ready.Sleepers, child)
		}
	}
	return nil
}

// spawnSleepers starts "workload sleeper NAME KIND" for each spec. A spec
// of kind vfork that fails to start is only noted.
func (r *runner) spawnSleepers(specs []sleeperSpec) ([]startedSleeper, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	var started []startedSleeper
	for _, s := range specs {
		cmd := exec.Command(self, "sleeper", s.name, s.kind)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		// No periodic GC in a sleeper: its threads stay asleep.
		cmd.Env = append(os.Environ(), "GOGC=off")
		if err := cmd.Start(); err != nil {
			if s.kind == kindVfork {
				r.note("vfork sleeper: start: %v", err)
				continue
			}
			return nil, fmt.Errorf("start sleeper %s: %w", s.name, err)
		}
		// The sleeper never exits; keep its handle so that it is not
		// released (and to make the intent explicit).
		keep = append(keep, cmd)
		started = append(started, startedSleeper{s, cmd})
	}
	return started, nil
}

// waitSleeper waits until process pid, a sleeper named name of the given
// kind, is blocked in its system call, and describes it.
func waitSleeper(pid int, name, kind string) (SleeperRecord, error) {
	deadline := time.Now().Add(sleeperTimeout)
	for {
		rec, ok, why, err := checkSleeper(pid, name, kind)
		if err != nil {
			return rec, fmt.Errorf("sleeper %s (pid %d): %w", name, pid, err)
		}
		if ok {
			return rec, nil
		}
		if time.Now().After(deadline) {
			return rec, fmt.Errorf("sleeper %s (pid %d) not blocked after %v: %s", name, pid, sleeperTimeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSleeper tells whether sleeper pid is blocked as expected; why says
// what is still missing. An error means the process is gone.
func checkSleeper(pid int, name, kind string) (rec SleeperRecord, ok bool, why string, err error) {
	rec = SleeperRecord{Comm: name, PID: pid, Kind: kind}
	st, err := readTaskStat(pid, pid)
	if err != nil {
		return rec, false, "", fmt.Errorf("read stat: %w", err)
	}
	rec.State = st.State
	if st.State == "Z" || st.State == "X" {
		return rec, false, "", errors.New("exited (see its stderr)")
	}
	if kind == kindThreads {
		n, err := countBlockedThreads(pid, name, blockingSyscall[kind])
		if err != nil {
			return rec, false, "", err
		}
		rec.Threads = n
		rec.Wchan = readWchan(pid)
		if n < threadsPerProc {
			return rec, false, fmt.Sprintf("%d of %d threads blocked", n, threadsPerProc), nil
		}
		return rec, true, "", nil
	}
	want := "S"
	if kind == kindVfork {
		want = "D"
	}
	nr, _ := readSyscallNr(pid, pid)
	if st.Comm != name || st.State != want || nr != blockingSyscall[kind] {
		return rec, false, fmt.Sprintf("comm %q state %s syscall %d, want %q %s %d",
			st.Comm, st.State, nr, name, want, blockingSyscall[kind]), nil
	}
	rec.Wchan = readWchan(pid)
	return rec, true, "", nil
}

// countBlockedThreads counts the threads of pid named name that sleep (S)
// in system call nr.
func countBlockedThreads(pid int, name string, nr int) (int, error) {
	tids, err := listTIDs(pid)
	if err != nil {
		return 0, fmt.Errorf("list threads: %w", err)
	}
	n := 0
	for _, tid := range tids {
		st, err := readTaskStat(pid, tid)
		if err != nil {
			continue // the thread is gone
		}
		if st.Comm != name || st.State != "S" {
			continue
		}
		if got, err := readSyscallNr(pid, tid); err == nil && got == nr {
			n++
		}
	}
	return n, nil
}

// findVforkChild finds the child of vfork sleeper pid and waits until it
// sleeps in nanosleep.
func findVforkChild(pid int) (SleeperRecord, error) {
	deadline := time.Now().Add(sleeperTimeout)
	for {
		pids, err := listPIDs()
		if err != nil {
			return SleeperRecord{}, fmt.Errorf("list processes: %w", err)
		}
		for _, p := range pids {
			st, err := readTaskStat(p, p)
			if err != nil || st.PPID != pid || st.Comm != vforkChildName {
				continue
			}
			if nr, err := readSyscallNr(p, p); err == nil && nr == blockingSyscall[kindVforkChild] && st.State == "S" {
				return SleeperRecord{Comm: st.Comm, PID: p, Kind: kindVforkChild, State: st.State, Wchan: readWchan(p)}, nil
			}
		}
		if time.Now().After(deadline) {
			return SleeperRecord{}, fmt.Errorf("no child %q of pid %d sleeping in nanosleep after %v", vforkChildName, pid, sleeperTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readSyscallNr returns the number of the system call task tid of pid is
// blocked in, from /proc/PID/task/TID/syscall; -1 if it is running.
func readSyscallNr(pid, tid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
	if err != nil {
		return -1, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || f[0] == "running" {
		return -1, nil
	}
	return strconv.Atoi(f[0])
}
