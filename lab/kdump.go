package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

// The kdump scenarios (kd*): the first kernel boots with crashkernel=,
// loads a capture kernel with kexec -p (lab/guest/kdump.sh), captures the
// truth as every scenario does, then crashes; the capture kernel boots the
// same initramfs and saves /proc/vmcore into the host's scenario directory
// over 9p, then powers off. The crash module (lab/kicrash) is built here
// against Debian's linux-headers package of the scenario's kernel.

// crashKernelSize is reserved for the capture kernel (crashkernel=) in
// the 1 GiB kdump guests.
const crashKernelSize = "256M"

// captureCmdline is the capture kernel's command line (kexec adds
// elfcorehdr=). It boots under TCG in ~15 s.
const captureCmdline = "console=ttyS0 reset_devices nr_cpus=1 irqpoll nousb nokaslr panic=1"

// kdumpTools are the host tools of the kdump scenarios: kexec for the
// guest, and what building an out-of-tree module needs.
var kdumpTools = []struct{ path, pkg string }{
	{"kexec", "kexec-tools"},
	{"gcc-12", "gcc-12"},
	{"make", "make"},
	{"pahole", "dwarves"}, // 6.12's headers make module BTF with it
}

// ensureKdumpTools installs the kdump tools that are missing. kexec-tools
// asks whether it should handle reboots: it must not (the host's reboots
// stay its own).
func ensureKdumpTools() error {
	var missing []string
	for _, t := range kdumpTools {
		if !toolExists(t.path) {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	logf("installing %s", strings.Join(missing, " "))
	sel := exec.Command("debconf-set-selections")
	sel.Stdin = strings.NewReader("kexec-tools kexec-tools/load_kexec boolean false\n")
	sel.Run() // no debconf: nothing asks either
	if err := aptUpdate(); err != nil {
		return err
	}
	cmd := exec.Command("apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", strings.Join(missing, " "), err, tail(out, 2000))
	}
	return nil
}

// kdumpFiles are the inputs a kdump scenario adds to a scenario.
type kdumpFiles struct {
	Kicrash    string   // the built crash module
	KicrashKey string   // hash of everything it was built from
	Headers    []string // "PACKAGE VERSION" of the headers packages
	Kexec      string   // kexec on the host, copied into the guest
}

// prepareKdump extracts the kernel's headers and builds the crash module.
func prepareKdump(repo, root string, k *kernelFiles) (*kdumpFiles, error) {
	prepareMu.Lock()
	defer prepareMu.Unlock()
	if err := ensureKdumpTools(); err != nil {
		return nil, err
	}
	hdir, versions, err := ensureHeaders(root, k)
	if err != nil {
		return nil, err
	}
	kexec, err := exec.LookPath("kexec")
	if err != nil {
		return nil, err
	}
	kf := &kdumpFiles{Headers: versions, Kexec: kexec}
	kf.Kicrash, kf.KicrashKey, err = buildKicrash(repo, root, k, hdir, versions)
	return kf, err
}

// ensureHeaders downloads and extracts Debian's linux-headers package of
// the kernel k (the same version), with the common headers and the kbuild
// package it depends on, into root/headers. It returns the directory to
// build modules against and "PACKAGE VERSION" of each package.
func ensureHeaders(root string, k *kernelFiles) (string, []string, error) {
	pkg := "linux-headers-" + strings.TrimPrefix(k.Package, "linux-image-")
	dir := filepath.Join(root, "headers", pkg+"_"+k.Version)
	build := filepath.Join(dir, "usr", "src", pkg)
	if b, err := os.ReadFile(filepath.Join(dir, "VERSIONS")); err == nil {
		return build, strings.Split(strings.TrimSpace(string(b)), "\n"), nil
	}
	if err := aptUpdate(); err != nil {
		return "", nil, err
	}
	// The amd64 headers depend on the common headers (same version) and
	// on a kbuild package (>= the version: the newest is taken).
	out, err := exec.Command("apt-cache", "show", "--no-all-versions", pkg+"="+k.Version).Output()
	if err != nil {
		return "", nil, fmt.Errorf("apt-cache show %s=%s: %v (the headers of the pinned kernel are not in the archive)", pkg, k.Version, err)
	}
	want := []string{pkg + "=" + k.Version}
	for _, line := range strings.Split(string(out), "\n") {
		deps, ok := strings.CutPrefix(line, "Depends: ")
		if !ok {
			continue
		}
		for _, d := range strings.Split(deps, ",") {
			d = strings.TrimSpace(strings.Split(d, "|")[0])
			name, _, _ := strings.Cut(d, " ")
			switch {
			case strings.HasPrefix(name, "linux-headers-") && strings.HasSuffix(name, "-common"):
				want = append(want, name+"="+k.Version)
			case strings.HasPrefix(name, "linux-kbuild-"):
				want = append(want, name)
			}
		}
	}
	if len(want) != 3 {
		return "", nil, fmt.Errorf("%s=%s: want a common headers and a kbuild dependency, found %v", pkg, k.Version, want[1:])
	}
	debs := filepath.Join(root, "debs", "headers-"+k.Version)
	os.RemoveAll(debs)
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", nil, err
	}
	defer os.RemoveAll(debs)
	logf("downloading %s", strings.Join(want, " "))
	cmd := exec.Command("apt-get", append([]string{"download"}, want...)...)
	cmd.Dir = debs
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("apt-get download %s: %v\n%s", strings.Join(want, " "), err, tail(out, 2000))
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(files) != 3 {
		return "", nil, fmt.Errorf("apt-get download %s: %d .deb files", strings.Join(want, " "), len(files))
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", nil, err
	}
	var versions []string
	for _, f := range files {
		if out, err := exec.Command("dpkg-deb", "-x", f, tmp).CombinedOutput(); err != nil {
			return "", nil, fmt.Errorf("dpkg-deb -x %s: %v\n%s", f, err, out)
		}
		nv, err := exec.Command("dpkg-deb", "-f", f, "Package", "Version").Output()
		if err != nil {
			return "", nil, fmt.Errorf("dpkg-deb -f %s: %v", f, err)
		}
		var n, v string
		for _, l := range strings.Split(string(nv), "\n") {
			if x, ok := strings.CutPrefix(l, "Package: "); ok {
				n = x
			}
			if x, ok := strings.CutPrefix(l, "Version: "); ok {
				v = x
			}
		}
		versions = append(versions, n+" "+v)
	}
	sort.Strings(versions)
	if err := os.WriteFile(filepath.Join(tmp, "VERSIONS"), []byte(strings.Join(versions, "\n")+"\n"), 0o644); err != nil {
		return "", nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", nil, err
	}
	return build, versions, nil
}

// buildKicrash builds lab/kicrash against the headers in hdir, caching the
// module in root/kicrash/PACKAGE-KEY by a hash of its inputs.
func buildKicrash(repo, root string, k *kernelFiles, hdir string, versions []string) (ko, key string, err error) {
	h := sha256.New()
	fmt.Fprintf(h, "kicrash\nheaders %s\n%s", strings.Join(versions, ", "), kdumpToolVersions())
	src := filepath.Join(repo, "lab", "kicrash")
	if err := hashTree(h, src); err != nil {
		return "", "", err
	}
	key = hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(root, "kicrash", k.Package+"-"+key[:16])
	ko = filepath.Join(dir, "kicrash.ko")
	if _, err := os.Stat(ko); err == nil {
		return ko, key, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", "", err
	}
	for _, f := range []string{"Kbuild", "kicrash.c"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			return "", "", err
		}
	}
	if err := fixHeadersMakefile(hdir); err != nil {
		return "", "", err
	}
	logf("building kicrash.ko for %s", k.Package)
	cmd := exec.Command("make", "-C", hdir, "M="+tmp, "modules")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("make kicrash.ko against %s: %v\n%s", hdir, err, tail(out, 4000))
	}
	if _, err := os.Stat(filepath.Join(tmp, "kicrash.ko")); err != nil {
		return "", "", fmt.Errorf("make kicrash.ko against %s: no module", hdir)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", "", err
	}
	return ko, key, nil
}

// fixHeadersMakefile points the headers' Makefile, which includes the
// common headers by their installed path (/usr/src/...), at the extracted
// ones.
func fixHeadersMakefile(hdir string) error {
	mk := filepath.Join(hdir, "Makefile")
	b, err := os.ReadFile(mk)
	if err != nil {
		return err
	}
	extracted := filepath.Dir(filepath.Dir(filepath.Dir(hdir))) // the extraction root
	fixed := regexp.MustCompile(`(?m)^include (/usr/src/\S+)$`).ReplaceAllString(string(b), "include "+extracted+"$1")
	if fixed == string(b) {
		return nil
	}
	return os.WriteFile(mk, []byte(fixed), 0o644)
}

// kdumpToolVersions returns the versions of the tools the kdump scenarios
// add; they are part of those scenarios' cache keys.
func kdumpToolVersions() string {
	var b strings.Builder
	for _, c := range [][]string{{"kexec", "--version"}, {"gcc-12", "--version"}, {"pahole", "--version"}} {
		out, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		line, _, _ := bytes.Cut(out, []byte("\n"))
		fmt.Fprintf(&b, "%s: %s\n", c[0], line)
	}
	return b.String()
}

// kdumpKey adds the kdump inputs to a scenario's cache key.
func kdumpKey(h io.Writer, s scenario, kf *kdumpFiles) error {
	b, err := guestFiles.ReadFile("guest/kdump.sh")
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "kdump.sh %d\n", len(b))
	h.Write(b)
	fmt.Fprintf(h, "kicrash %s\ncmdline %s\ncapture %s\n%s", kf.KicrashKey, strings.Join(kdumpCmdline(s), " "), captureCmdline, kdumpToolVersions())
	return nil
}

// addKdumpFiles puts into the initramfs what the kdump scenarios add:
// kdump.sh, kexec, makedumpfile (for the capture kernel), their libraries,
// and the crash module.
func addKdumpFiles(r *initramfs, kf *kdumpFiles) error {
	b, err := guestFiles.ReadFile("guest/kdump.sh")
	if err != nil {
		return err
	}
	r.addFile("/kdump.sh", 0o644, b)
	mdf, err := exec.LookPath("makedumpfile")
	if err != nil {
		return err
	}
	for _, p := range []struct{ guest, host string }{{"/sbin/kexec", kf.Kexec}, {"/usr/bin/makedumpfile", mdf}} {
		r.copyFile(p.guest, p.host, 0o755)
		libs, err := sharedLibs(p.host)
		if err != nil {
			return err
		}
		for _, l := range libs {
			r.copyFile(l, l, 0o755)
		}
	}
	r.copyFile("/lib/modules/kicrash.ko", kf.Kicrash, 0o644)
	return nil
}

// kdumpCmdline is what a kdump scenario adds to the first kernel's
// command line. oops=panic: an oops in process context must reach
// crash_kexec too.
func kdumpCmdline(s scenario) []string {
	c := []string{"crashkernel=" + crashKernelSize, "oops=panic", "ki.crash=" + s.Crash}
	if s.PostNotifiers {
		c = append(c, "crash_kexec_post_notifiers")
	}
	return c
}

// kdumpBootFiles puts the capture kernel and its command line where the
// guest reads them (the scenario directory, shared over 9p); the returned
// function removes them.
func kdumpBootFiles(dir string, k *kernelFiles) (func(), error) {
	vmlinuz := filepath.Join(dir, "capture-vmlinuz")
	cmdline := filepath.Join(dir, "capture-cmdline")
	cleanup := func() { os.Remove(vmlinuz); os.Remove(cmdline) }
	os.Remove(vmlinuz)
	if err := os.Link(k.Vmlinuz, vmlinuz); err != nil {
		b, err := os.ReadFile(k.Vmlinuz)
		if err != nil {
			return cleanup, err
		}
		if err := os.WriteFile(vmlinuz, b, 0o644); err != nil {
			return cleanup, err
		}
	}
	return cleanup, os.WriteFile(cmdline, []byte(captureCmdline+"\n"), 0o644)
}

// The formats the capture kernel saves (lab/guest/kdump.sh).
var kdumpFormats = []labdata.Format{
	{Name: "elf", Path: "dumps/elf", Layout: "elf", Compression: "none", Producer: "kdump"},
	{Name: "kdump-zlib-d31", Path: "dumps/kdump-zlib-d31", Layout: "kdump", Compression: "zlib", DumpLevel: 31, Producer: "makedumpfile"},
	{Name: "kdump-lzo-d31", Path: "dumps/kdump-lzo-d31", Layout: "kdump", Compression: "lzo", DumpLevel: 31, Producer: "makedumpfile"},
	{Name: "elf-d31", Path: "dumps/elf-d31", Layout: "elf", Compression: "none", DumpLevel: 31, Producer: "makedumpfile"},
	{Name: "kdump-zlib-d31.flat", Path: "dumps/kdump-zlib-d31.flat", Layout: "kdump-flat", Compression: "zlib", DumpLevel: 31, Producer: "makedumpfile"},
}

// crashGuest has the guest crash, waits for the capture kernel to save
// the dumps and power off, and records the crash: the console's report
// (truth/crash-console.txt, truth/crash.json), the formats, and the
// spinner's CPU as the dump's NT_PRSTATUS note has it.
func crashGuest(v *vm, dir string, s scenario, syms *truthSymbols, m *labdata.Manifest, attempt int) error {
	m.Kdump = true
	m.Crash = &labdata.Crash{Trigger: s.Crash, PostNotifiers: s.PostNotifiers, CaptureCmdline: captureCmdline,
		Seconds: map[string]float64{}}
	start := time.Now()
	if err := v.send("crash"); err != nil {
		return err
	}
	if err := v.waitLine("capture-start", 5*time.Minute); err != nil {
		return err
	}
	m.Crash.Seconds["crash_to_capture"] = time.Since(start).Seconds()
	logf("%s: crashed; capture kernel up %v later", s.Name, time.Since(start).Round(time.Second))
	capStart := time.Now()
	// cp /proc/vmcore over 9p (25-37 MB/s under TCG) and each
	// makedumpfile's scan of mem_map take time in proportion to the memory.
	capTimeout := 20 * time.Minute
	if s.MemoryMB > 1024 {
		capTimeout = time.Duration(s.MemoryMB/1024) * 3 * time.Minute
	}
	if err := v.waitLine("capture-done", capTimeout); err != nil {
		return err
	}
	m.Crash.Seconds["capture"] = time.Since(capStart).Seconds()
	if err := v.waitExit(2 * time.Minute); err != nil {
		return err
	}
	for _, l := range v.seen() {
		// "made NAME in N s (uptime ...)"
		var name string
		var secs float64
		if n, _ := fmt.Sscanf(l, "made %s in %g s", &name, &secs); n == 2 {
			m.Crash.Seconds["made "+name] = secs
		}
	}
	logf("%s: capture kernel saved the dumps in %v", s.Name, time.Since(capStart).Round(time.Second))

	rep, err := writeCrashTruth(dir, m)
	if err != nil {
		return err
	}
	for _, f := range kdumpFormats {
		fi, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil {
			return fmt.Errorf("capture kernel saved no %s: %w", f.Name, err)
		}
		f.Bytes = fi.Size()
		m.Formats = append(m.Formats, f)
	}
	checks, stop, err := checkKdumpNotes(dir, s.CPUs, rep.PID, syms)
	m.Checks = append(m.Checks, checks...)
	if stop != nil {
		stop.Attempt = attempt
		m.Stops = append(m.Stops, *stop)
	}
	if err != nil {
		return err
	}
	if !stop.InBPF {
		return fmt.Errorf("the NMI stopped CPU %d outside the spinner's program (%s): %w", stop.CPU, stop.Symbol, errRetry)
	}
	return nil
}

// writeCrashTruth parses the crashing kernel's report from the scenario's
// console log, or, where the console shows none, from the crashed
// kernel's log the capture kernel read from the dump
// (truth/kdump/vmcore-dmesg.txt). It writes truth/crash-console.txt (the
// console's last words, from the report's first line), truth/crash-dmesg.txt
// (the same from the dump's log) and truth/crash.json, and sets the
// manifest's crash fields.
func writeCrashTruth(dir string, m *labdata.Manifest) (*crashReport, error) {
	truth := filepath.Join(dir, "truth")
	console, err := os.ReadFile(filepath.Join(dir, "console.log"))
	if err != nil {
		return nil, err
	}
	dmesg, err := os.ReadFile(filepath.Join(truth, "kdump", "vmcore-dmesg.txt"))
	if err != nil {
		return nil, err
	}
	rawC, rep, errC := parseCrashLog(string(console))
	if errC == nil {
		rep.Source = "console"
	} else {
		// What the console did show after the lab's line.
		lines, err := crashLog(string(console))
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		rawC = strings.Join(lines, "\n")
	}
	rawD, repD, errD := parseCrashLog(string(dmesg))
	if errD == nil {
		repD.Source = "vmcore-dmesg"
	}
	if errC != nil {
		if errD != nil {
			return nil, fmt.Errorf("console: %v; vmcore-dmesg: %v", errC, errD)
		}
		rep = repD
	}
	for name, text := range map[string]string{"crash-console.txt": rawC, "crash-dmesg.txt": rawD} {
		if err := os.WriteFile(filepath.Join(truth, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(truth, "crash.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	c := m.Crash
	c.Source, c.Kind, c.FirstLine, c.Panic = rep.Source, rep.Kind, rep.FirstLine, rep.Panic
	c.CPU, c.PID, c.Comm, c.Tainted, c.RIP = rep.CPU, rep.PID, rep.Comm, rep.Tainted, rep.RIP
	return rep, nil
}

// reparseCrash rewrites a built kdump scenario's crash truth from its
// console log (after a change to the parser; the cache key does not
// cover the lab's Go code).
func reparseCrash(name string) error {
	s, err := labdata.Load(name)
	if err != nil {
		return err
	}
	if !s.Kdump || s.Crash == nil {
		return fmt.Errorf("%s is not a kdump scenario", name)
	}
	if _, err := writeCrashTruth(s.Dir, &s.Manifest); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(&s.Manifest, "", "  ")
	return os.WriteFile(filepath.Join(s.Dir, "manifest.json"), append(b, '\n'), 0o644)
}

// elfNote is one ELF note.
type elfNote struct {
	Name string
	Type uint32
	Desc []byte
}

// readELFNotes returns the notes of an ELF core file's PT_NOTE segments.
func readELFNotes(path string) ([]elfNote, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr := make([]byte, 64)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, err
	}
	if string(hdr[:4]) != "\x7fELF" || hdr[4] != 2 || hdr[5] != 1 {
		return nil, fmt.Errorf("%s: not a little-endian ELF64 file", path)
	}
	le := func(b []byte) uint64 {
		var x uint64
		for i := len(b) - 1; i >= 0; i-- {
			x = x<<8 | uint64(b[i])
		}
		return x
	}
	phoff, phentsize, phnum := le(hdr[32:40]), le(hdr[54:56]), le(hdr[56:58])
	var notes []elfNote
	for i := uint64(0); i < phnum; i++ {
		ph := make([]byte, phentsize)
		if _, err := f.ReadAt(ph, int64(phoff+i*phentsize)); err != nil {
			return nil, err
		}
		if le(ph[0:4]) != 4 { // PT_NOTE
			continue
		}
		data := make([]byte, le(ph[32:40]))
		if _, err := f.ReadAt(data, int64(le(ph[8:16]))); err != nil {
			return nil, err
		}
		for len(data) >= 12 {
			namesz, descsz, typ := le(data[0:4]), le(data[4:8]), uint32(le(data[8:12]))
			nameEnd := 12 + (namesz+3)&^3
			descEnd := nameEnd + (descsz+3)&^3
			if namesz == 0 && descsz == 0 && typ == 0 {
				break
			}
			if uint64(len(data)) < descEnd {
				break
			}
			name := strings.TrimRight(string(data[12:12+namesz]), "\x00")
			notes = append(notes, elfNote{name, typ, data[nameEnd : nameEnd+descsz]})
			data = data[descEnd:]
		}
	}
	return notes, nil
}

// prstatus is what the lab reads of an x86-64 NT_PRSTATUS note.
type prstatus struct {
	PID      int
	RIP, RSP uint64
}

func parsePrstatus(d []byte) (prstatus, bool) {
	// struct elf_prstatus: pr_pid at 32, pr_reg (27 registers) at 112;
	// rip is register 16, rsp 19.
	if len(d) < 112+27*8 {
		return prstatus{}, false
	}
	u64 := func(o int) uint64 {
		var x uint64
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(d[o+i])
		}
		return x
	}
	return prstatus{PID: int(uint32(u64(32))), RIP: u64(112 + 16*8), RSP: u64(112 + 19*8)}, true
}

// checkKdumpNotes checks each ELF dump has one NT_PRSTATUS per CPU,
// VMCOREINFO with CRASHTIME, and the crashing task's note; and returns
// the spinner's CPU as the NMI that stopped it saved it.
func checkKdumpNotes(dir string, cpus, crashPID int, syms *truthSymbols) ([]string, *labdata.Stop, error) {
	var checks []string
	var stop *labdata.Stop
	for _, name := range []string{"elf", "elf-d31"} {
		notes, err := readELFNotes(filepath.Join(dir, "dumps", name))
		if err != nil {
			return checks, stop, err
		}
		var prs []prstatus
		crashtime := ""
		for _, n := range notes {
			switch {
			case n.Name == "CORE" && n.Type == 1:
				if p, ok := parsePrstatus(n.Desc); ok {
					prs = append(prs, p)
				}
			case n.Name == "VMCOREINFO":
				for _, l := range strings.Split(string(n.Desc), "\n") {
					if v, ok := strings.CutPrefix(l, "CRASHTIME="); ok {
						crashtime = v
					}
				}
			}
		}
		if len(prs) != cpus || crashtime == "" {
			return checks, stop, fmt.Errorf("dumps/%s: %d NT_PRSTATUS notes (want %d), CRASHTIME %q", name, len(prs), cpus, crashtime)
		}
		var pids []string
		crashed := false
		for _, p := range prs {
			pids = append(pids, strconv.Itoa(p.PID))
			if p.PID == crashPID {
				crashed = true
			}
			if name == "elf" && p.PID == syms.spinnerTID {
				stop = &labdata.Stop{CPU: syms.spinnerCPU, RIP: fmt.Sprintf("%#x", p.RIP), Symbol: syms.name(p.RIP),
					InBPF: syms.inSpinner(p.RIP), Note: fmt.Sprintf("NT_PRSTATUS of the spinner (pid %d), saved by the NMI that stopped its CPU; RSP %#x", p.PID, p.RSP)}
			}
		}
		if !crashed {
			return checks, stop, fmt.Errorf("dumps/%s: no NT_PRSTATUS note of the crashing task (pid %d; notes of pids %s)", name, crashPID, strings.Join(pids, " "))
		}
		checks = append(checks, fmt.Sprintf("dumps/%s: %d NT_PRSTATUS (pids %s), VMCOREINFO CRASHTIME=%s", name, len(prs), strings.Join(pids, " "), crashtime))
	}
	if stop == nil {
		return checks, nil, fmt.Errorf("dumps/elf: no NT_PRSTATUS note of the spinner (tid %d): %w", syms.spinnerTID, errRetry)
	}
	return checks, stop, nil
}
