package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// vm is a running QEMU guest.
type vm struct {
	cmd     *exec.Cmd
	qmp     *qmp
	stdin   io.WriteCloser
	console *os.File
	sockDir string

	mu    sync.Mutex
	lines []string // "lab: ..." lines seen on the console
	cond  *sync.Cond
	done  chan struct{}
	eof   chan struct{} // the console's last line is in its log
	err   error
}

type vmConfig struct {
	Kernel   string
	Initrd   string
	Append   string
	MemoryMB int
	CPUs     int
	LA57     bool
	TruthDir string // shared with the guest over 9p
	ShareDir string // if set, shared over 9p too, as "scenario" (kdump scenarios)
	Console  string // the serial console's log file
	// NoVMCOREINFO leaves out -device vmcoreinfo: QEMU's dumps then have
	// no VMCOREINFO note.
	NoVMCOREINFO bool
}

// startVM boots QEMU under TCG. KVM is not used: it was seen to hang on
// these machines, and multi-threaded TCG to hang a guest that patches its
// own text, hence thread=single.
func startVM(c vmConfig) (*vm, error) {
	sockDir, err := os.MkdirTemp("", "kinspect-qmp-")
	if err != nil {
		return nil, err
	}
	// A QEMU that exits unlinks its socket: every run gets its own path.
	sock := filepath.Join(sockDir, "qmp.sock")
	cpu := "max,la57=off"
	if c.LA57 {
		cpu = "max"
	}
	args := []string{
		"-accel", "tcg,thread=single",
		"-cpu", cpu,
		"-smp", fmt.Sprint(c.CPUs),
		"-m", fmt.Sprint(c.MemoryMB),
		"-kernel", c.Kernel,
		"-initrd", c.Initrd,
		"-append", c.Append,
		"-display", "none",
		"-monitor", "none",
		"-serial", "stdio",
		"-no-reboot",
		"-device", "pvpanic",
		"-action", "panic=pause",
		"-virtfs", "local,path=" + c.TruthDir + ",mount_tag=truth,security_model=none,id=truth",
		"-qmp", "unix:" + sock + ",server=on,wait=off",
	}
	if !c.NoVMCOREINFO {
		args = append(args, "-device", "vmcoreinfo")
	}
	if c.ShareDir != "" {
		args = append(args, "-virtfs", "local,path="+c.ShareDir+",mount_tag=scenario,security_model=none,id=scenario")
	}
	console, err := os.Create(c.Console)
	if err != nil {
		return nil, err
	}
	v := &vm{console: console, sockDir: sockDir, done: make(chan struct{}), eof: make(chan struct{})}
	v.cond = sync.NewCond(&v.mu)
	v.cmd = exec.Command("qemu-system-x86_64", args...)
	v.cmd.Stderr = console
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	v.cmd.Stdout = stdoutW
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	fmt.Fprintf(console, "# qemu-system-x86_64 %s\n", strings.Join(args, " "))
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	stdoutW.Close()
	go v.follow(stdout)
	go func() {
		err := v.cmd.Wait()
		v.mu.Lock()
		v.err = err
		close(v.done)
		v.cond.Broadcast()
		v.mu.Unlock()
	}()
	if v.qmp, err = dialQMP(sock, 30*time.Second); err != nil {
		v.kill()
		return nil, err
	}
	return v, nil
}

// follow copies the console to its log and collects the lab's lines.
func (v *vm) follow(r io.Reader) {
	defer close(v.eof)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			v.console.WriteString(line)
			if i := strings.Index(line, "lab: "); i >= 0 {
				l := strings.TrimSpace(line[i+5:])
				if verbose {
					logf("guest: %s", l)
				}
				v.mu.Lock()
				v.lines = append(v.lines, l)
				v.cond.Broadcast()
				v.mu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

// waitLine waits for a console line "lab: <want>". A "lab: FAILED" line,
// QEMU's exit or the timeout end the wait with an error.
func (v *vm) waitLine(want string, timeout time.Duration) error {
	timer := time.AfterFunc(timeout, func() {
		v.mu.Lock()
		v.cond.Broadcast()
		v.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	v.mu.Lock()
	defer v.mu.Unlock()
	for {
		for _, l := range v.lines {
			// Lines end with " (uptime N)".
			if l == want || strings.HasPrefix(l, want+" (") {
				return nil
			}
			if strings.HasPrefix(l, "FAILED") {
				return fmt.Errorf("guest: %s (see %s)", l, v.console.Name())
			}
		}
		select {
		case <-v.done:
			return fmt.Errorf("qemu exited (%v) before %q (see %s)", v.err, want, v.console.Name())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q from the guest after %v (see %s)", want, timeout, v.console.Name())
		}
		v.cond.Wait()
	}
}

// waitExit waits for QEMU to exit by itself (the guest powered off) and
// for its console to be in the log.
func (v *vm) waitExit(timeout time.Duration) error {
	select {
	case <-v.done:
	case <-time.After(timeout):
		return fmt.Errorf("qemu still running %v after the guest was done (see %s)", timeout, v.console.Name())
	}
	select {
	case <-v.eof:
	case <-time.After(10 * time.Second):
	}
	return nil
}

// seen returns the "lab: ..." lines seen on the console so far.
func (v *vm) seen() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.lines...)
}

// send writes a line to the guest's console.
func (v *vm) send(line string) error {
	_, err := io.WriteString(v.stdin, line+"\n")
	return err
}

func (v *vm) kill() {
	if v.qmp != nil {
		v.qmp.do("quit", nil)
		v.qmp.close()
	}
	select {
	case <-v.done:
	case <-time.After(5 * time.Second):
		v.cmd.Process.Kill()
		<-v.done
	}
	v.console.Close()
	os.RemoveAll(v.sockDir)
}
