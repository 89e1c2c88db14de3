package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

// oldBuild matches what follows a scenario's name in its build directories.
var oldBuild = regexp.MustCompile(`^-[0-9a-f]{16}(\.tmp)?$`)

// errRetry asks for the guest to be booted again.
var errRetry = errors.New("retry")

// buildScenario builds s into root/build/NAME-KEY, reusing a finished
// build with the same key, and points root/NAME at it.
func buildScenario(repo, root string, s scenario, force bool) (dir string, cached bool, err error) {
	start := time.Now()
	k, err := prepare(root, s)
	if err != nil {
		return "", false, err
	}
	binDir, err := os.MkdirTemp(root, "bin-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(binDir)
	gb, err := buildGuestBinaries(repo, binDir, s.Live)
	if err != nil {
		return "", false, err
	}
	if s.Crash != "" {
		if gb.Kdump, err = prepareKdump(repo, root, k); err != nil {
			return "", false, err
		}
	}
	if s.LiME {
		if gb.LiME, err = prepareLiME(root, k); err != nil {
			return "", false, err
		}
	}
	if s.AVML {
		if gb.AVML, err = prepareAVML(); err != nil {
			return "", false, err
		}
	}
	key, err := cacheKey(repo, s, k, gb.Kinspect, gb.Kdump, gb.LiME, gb.AVML)
	if err != nil {
		return "", false, err
	}
	final := filepath.Join(root, "build", s.Name+"-"+key[:16])
	link := filepath.Join(root, s.Name)
	if _, err := os.Stat(filepath.Join(final, "manifest.json")); err == nil && !force {
		return final, true, relink(link, final)
	}
	tmp := final + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", false, err
	}
	initrd := filepath.Join(tmp, "initramfs.cpio")
	if err := buildInitramfs(repo, initrd, k, gb, s); err != nil {
		return "", false, err
	}
	// A guest under emulation can hang or miss its moment: boot it again
	// (the panic scenario more often: its stop is left to chance).
	attempts := 2
	if s.Panic {
		attempts = 4
	}
	if s.Crash != "" {
		attempts = 3
	}
	var m *labdata.Manifest
	for a := 1; a <= attempts; a++ {
		m, err = runGuest(tmp, s, k, initrd, a)
		if err == nil {
			break
		}
		logf("%s: attempt %d: %v", s.Name, a, err)
		// Kept beside the build: what went wrong, for the record.
		os.Rename(filepath.Join(tmp, "console.log"), filepath.Join(tmp, fmt.Sprintf("console.attempt-%d.log", a)))
	}
	if err != nil {
		return "", false, err
	}
	m.Key = key
	m.BuiltAt = time.Now().UTC().Format(time.RFC3339)
	m.Seconds = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "manifest.json"), append(b, '\n'), 0o644); err != nil {
		return "", false, err
	}
	os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return "", false, err
	}
	if err := relink(link, final); err != nil {
		return "", false, err
	}
	// Older builds of the scenario only take space.
	old, _ := filepath.Glob(filepath.Join(root, "build", s.Name+"-*"))
	for _, o := range old {
		if o != final && oldBuild.MatchString(strings.TrimPrefix(o, filepath.Join(root, "build", s.Name))) {
			os.RemoveAll(o)
		}
	}
	return final, false, nil
}

// prepareMu serializes what scenarios built at once share: apt and the
// kernel packages.
var prepareMu sync.Mutex

func prepare(root string, s scenario) (*kernelFiles, error) {
	prepareMu.Lock()
	defer prepareMu.Unlock()
	if err := ensureTools(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
		return nil, err
	}
	return ensureKernel(root, kernels[s.Kernel])
}

func relink(link, target string) error {
	rel, err := filepath.Rel(filepath.Dir(link), target)
	if err != nil {
		return err
	}
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(rel, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// runGuest boots the guest once, waits for its truth, stops it with the
// spinner inside its BPF program (or lets it panic) and dumps it.
func runGuest(dir string, s scenario, k *kernelFiles, initrd string, attempt int) (*labdata.Manifest, error) {
	truth := filepath.Join(dir, "truth")
	dumps := filepath.Join(dir, "dumps")
	os.RemoveAll(truth)
	os.RemoveAll(dumps)
	for _, d := range []string{truth, dumps} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	cmdline := []string{"console=ttyS0", "ki.scenario=" + s.Name}
	if s.Scale {
		cmdline = append(cmdline, "ki.scale=1")
	}
	if s.Live {
		cmdline = append(cmdline, "ki.live=1")
	}
	if s.LiME || s.AVML {
		cmdline = append(cmdline, "ki.lime=1")
	}
	if s.Panic {
		// The panicking CPU then stops the others with an NMI (crash_smp_send_stop)
		// before the pvpanic notifier pauses the VM.
		cmdline = append(cmdline, "ki.panic=1", "crash_kexec_post_notifiers")
	}
	share := ""
	if s.Crash != "" {
		cmdline = append(cmdline, kdumpCmdline(s)...)
		cleanup, err := kdumpBootFiles(dir, k)
		defer cleanup()
		if err != nil {
			return nil, err
		}
		share = dir
	}
	logf("%s: booting %s (%d MB, %d CPUs, la57=%v), attempt %d", s.Name, k.Package, s.MemoryMB, s.CPUs, s.LA57, attempt)
	start := time.Now()
	v, err := startVM(vmConfig{
		Kernel: k.Vmlinuz, Initrd: initrd, Append: strings.Join(cmdline, " "),
		MemoryMB: s.MemoryMB, CPUs: s.CPUs, LA57: s.LA57,
		TruthDir: truth, ShareDir: share, Console: filepath.Join(dir, "console.log"),
		NoVMCOREINFO: s.NoVMCOREINFO,
	})
	if err != nil {
		return nil, err
	}
	defer v.kill()
	timeout := 20 * time.Minute
	if s.Scale {
		timeout = 60 * time.Minute
	}
	if err := v.waitLine("truth-done", timeout); err != nil {
		return nil, err
	}
	logf("%s: truth captured %v after boot", s.Name, time.Since(start).Round(time.Second))
	m := &labdata.Manifest{
		Scenario: s.Name, Kernel: k.Package, KernelVersion: k.Version,
		MemoryMB: s.MemoryMB, CPUs: s.CPUs, LA57: s.LA57, Panic: s.Panic, Scale: s.Scale, Live: s.Live,
		NoVMCOREINFO: s.NoVMCOREINFO,
	}
	if k.Note != "" {
		m.Notes = append(m.Notes, k.Note)
	}
	rel, err := os.ReadFile(filepath.Join(truth, "uname.txt"))
	if err != nil {
		return nil, err
	}
	m.Release = strings.TrimSpace(string(rel))
	if m.Release != k.Release {
		return nil, fmt.Errorf("guest runs %s, want %s", m.Release, k.Release)
	}
	if err := jitedTruth(truth); err != nil {
		return nil, err
	}
	if s.Live {
		return m, nil
	}
	syms, err := loadTruthSymbols(truth)
	if err != nil {
		return nil, err
	}
	// Let the shell that ran the snapshot exit before anything is stopped.
	time.Sleep(2 * time.Second)
	if s.Crash != "" {
		return m, crashGuest(v, dir, s, syms, m, attempt)
	}
	if s.Panic {
		stop, err := panicGuest(v, syms)
		if err != nil {
			return nil, err
		}
		stop.Attempt = attempt
		m.Stops = append(m.Stops, stop)
		if !stop.InBPF {
			return nil, fmt.Errorf("CPU %d stopped by the panic without the spinner's program on its stack: %w", stop.CPU, errRetry)
		}
	} else {
		stops, err := stopInSpinner(v.qmp, syms)
		m.Stops = stops
		if err != nil {
			return nil, err
		}
	}
	formats, err := qemuDumps(v.qmp, dumps)
	if err != nil {
		return nil, err
	}
	if s.LiME {
		f, err := limeGuest(v, dir)
		if err != nil {
			return nil, err
		}
		m.Captures = append(m.Captures, f)
	}
	if s.AVML {
		f, err := avmlGuest(v, dir)
		if err != nil {
			return nil, err
		}
		m.Captures = append(m.Captures, f)
	}
	v.kill()
	m.Formats = formats
	elfs := []string{"elf"}
	// makedumpfile needs VMCOREINFO: without the note, QEMU's formats only.
	if !s.NoVMCOREINFO {
		more, err := makedumpfileDumps(dumps)
		if err != nil {
			return nil, err
		}
		m.Formats = append(m.Formats, more...)
		elfs = append(elfs, "elf-d31")
	}
	checks, err := checkELFNotes(dumps, elfs, s.CPUs, !s.NoVMCOREINFO)
	if err != nil {
		return nil, err
	}
	m.Checks = append(m.Checks, checks...)
	return m, nil
}

// checkELFNotes verifies with readelf that each ELF dump has one
// NT_PRSTATUS per CPU, and a VMCOREINFO note or (QEMU without -device
// vmcoreinfo) none.
func checkELFNotes(dumps string, names []string, cpus int, vmcoreinfo bool) ([]string, error) {
	var out []string
	for _, name := range names {
		b, err := exec.Command("readelf", "-n", filepath.Join(dumps, name)).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("readelf -n %s: %v\n%s", name, err, tail(b, 1000))
		}
		s := string(b)
		prstatus := strings.Count(s, "NT_PRSTATUS")
		notes := strings.Count(s, "VMCOREINFO")
		if prstatus != cpus || (notes > 0) != vmcoreinfo {
			return nil, fmt.Errorf("readelf -n %s: %d NT_PRSTATUS (want %d) and %d VMCOREINFO notes (want them: %v)", name, prstatus, cpus, notes, vmcoreinfo)
		}
		present := "present"
		if !vmcoreinfo {
			present = "absent"
		}
		out = append(out, fmt.Sprintf("readelf -n dumps/%s: %d NT_PRSTATUS, VMCOREINFO %s", name, prstatus, present))
	}
	return out, nil
}

// stopInSpinner pauses the VM until the spinner's CPU is inside the
// spinner's BPF program, and leaves it paused.
func stopInSpinner(q *qmp, syms *truthSymbols) ([]labdata.Stop, error) {
	var stops []labdata.Stop
	for a := 1; a <= 100; a++ {
		if _, err := q.do("stop", nil); err != nil {
			return stops, err
		}
		regs, err := q.registers(syms.spinnerCPU)
		if err != nil {
			return stops, err
		}
		rip := regs["RIP"]
		st := labdata.Stop{Attempt: a, CPU: syms.spinnerCPU, RIP: fmt.Sprintf("%#x", rip),
			Symbol: syms.name(rip), InBPF: syms.inSpinner(rip)}
		stops = append(stops, st)
		if st.InBPF {
			logf("stopped in %s after %d attempt(s)", st.Symbol, a)
			return stops, nil
		}
		if _, err := q.do("cont", nil); err != nil {
			return stops, err
		}
		time.Sleep(time.Duration(20+rand.Intn(300)) * time.Millisecond)
	}
	return stops, fmt.Errorf("CPU %d was never stopped inside the spinner's program in %d attempts", syms.spinnerCPU, len(stops))
}

// panicGuest has the guest panic through sysrq and waits for QEMU to
// pause it. The spinner's CPU, stopped by the panic's NMI, is then in the
// NMI handler: its program must be in the interrupted frame on its stack.
func panicGuest(v *vm, syms *truthSymbols) (labdata.Stop, error) {
	if err := v.send("panic"); err != nil {
		return labdata.Stop{}, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := v.qmp.status()
		if err != nil {
			return labdata.Stop{}, err
		}
		if st == "guest-panicked" {
			break
		}
		if time.Now().After(deadline) {
			return labdata.Stop{}, fmt.Errorf("guest not panicked after 3 minutes (status %s)", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	regs, err := v.qmp.registers(syms.spinnerCPU)
	if err != nil {
		return labdata.Stop{}, err
	}
	rip, rsp := regs["RIP"], regs["RSP"]
	st := labdata.Stop{CPU: syms.spinnerCPU, RIP: fmt.Sprintf("%#x", rip), Symbol: syms.name(rip)}
	mem, err := v.qmp.hmp(fmt.Sprintf("x/2048gx %#x", rsp), syms.spinnerCPU)
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(mem, "\n") {
		_, vals, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(vals) {
			var x uint64
			if _, err := fmt.Sscanf(f, "0x%x", &x); err == nil && syms.inSpinner(x) {
				st.InBPF = true
				st.Note = fmt.Sprintf("stack at %#x holds %#x in %s", rsp, x, syms.name(x))
				logf("panicked; CPU %d %s", st.CPU, st.Note)
				return st, nil
			}
		}
	}
	st.Note = fmt.Sprintf("no address of the spinner's program in 16 KiB of stack above %#x", rsp)
	return st, nil
}
