package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

// LiME (Linux Memory Extractor, Debian's lime-forensics-dkms) is the
// forensic capture the lab takes of the guest of a LiME scenario: after
// QEMU's dumps, the guest runs again and insmods lime.ko, which writes
// every "System RAM" range of /proc/iomem, each behind a 32-byte range
// header, into a file on the host's truth directory over 9p
// (lab/guest/lime.sh). The module is built here, as kicrash is, against
// Debian's headers of the scenario's kernel, from the source Debian ships
// in lime-forensics-dkms.

// limePackage is the Debian package with LiME's source.
const limePackage = "lime-forensics-dkms"

// limeFiles is the built LiME module.
type limeFiles struct {
	Module  string // lime.ko
	Key     string // hash of everything it was built from
	Version string // lime-forensics-dkms's Debian version
}

// prepareLiME extracts the kernel's headers and builds lime.ko, cached in
// root/lime/PACKAGE-KEY.
func prepareLiME(root string, k *kernelFiles) (*limeFiles, error) {
	prepareMu.Lock()
	defer prepareMu.Unlock()
	if err := ensureKdumpTools(); err != nil {
		return nil, err
	}
	hdir, versions, err := ensureHeaders(root, k)
	if err != nil {
		return nil, err
	}
	src, version, cleanup, err := limeSource(root)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "lime\n%s %s\nheaders %s\n%s", limePackage, version, strings.Join(versions, ", "), kdumpToolVersions())
	if err := hashTree(h, src); err != nil {
		return nil, err
	}
	lf := &limeFiles{Key: hex.EncodeToString(h.Sum(nil)), Version: version}
	dir := filepath.Join(root, "lime", k.Package+"-"+lf.Key[:16])
	lf.Module = filepath.Join(dir, "lime.ko")
	if _, err := os.Stat(lf.Module); err == nil {
		return lf, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	srcs, _ := filepath.Glob(filepath.Join(src, "*.[ch]"))
	var objs []string
	for _, f := range srcs {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, filepath.Base(f)), b, 0o644); err != nil {
			return nil, err
		}
		if strings.HasSuffix(f, ".c") {
			objs = append(objs, strings.TrimSuffix(filepath.Base(f), ".c")+".o")
		}
	}
	// LiME's own Makefile builds against the running kernel and strips the
	// module: a Kbuild of its objects builds it against the extracted
	// headers (whose Makefile buildKicrash has pointed at them).
	kbuild := "obj-m := lime.o\nlime-objs := " + strings.Join(objs, " ") + "\n"
	if err := os.WriteFile(filepath.Join(tmp, "Kbuild"), []byte(kbuild), 0o644); err != nil {
		return nil, err
	}
	if err := fixHeadersMakefile(hdir); err != nil {
		return nil, err
	}
	logf("building lime.ko (%s %s) for %s", limePackage, version, k.Package)
	if out, err := exec.Command("make", "-C", hdir, "M="+tmp, "modules").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make lime.ko against %s: %w\n%s", hdir, err, tail(out, 4000))
	}
	if _, err := os.Stat(filepath.Join(tmp, "lime.ko")); err != nil {
		return nil, fmt.Errorf("make lime.ko against %s: no module: %w", hdir, err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return lf, nil
}

// limeSource downloads lime-forensics-dkms and extracts it into
// root/debs; it returns the source directory and the package's version.
// cleanup removes the extraction.
func limeSource(root string) (dir, version string, cleanup func(), err error) {
	debs := filepath.Join(root, "debs", "lime")
	cleanup = func() { os.RemoveAll(debs) }
	os.RemoveAll(debs)
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", "", cleanup, err
	}
	download := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "download", limePackage)
		cmd.Dir = debs
		return cmd.CombinedOutput()
	}
	if _, err := download(); err != nil {
		// Perhaps stale package lists: update them once.
		if err := aptUpdate(); err != nil {
			return "", "", cleanup, err
		}
		if out, err := download(); err != nil {
			return "", "", cleanup, fmt.Errorf("apt-get download %s: %w\n%s", limePackage, err, tail(out, 2000))
		}
	}
	files, _ := filepath.Glob(filepath.Join(debs, limePackage+"_*.deb"))
	if len(files) != 1 {
		return "", "", cleanup, fmt.Errorf("apt-get download %s: %d .deb files", limePackage, len(files))
	}
	x := filepath.Join(debs, "x")
	if out, err := exec.Command("dpkg-deb", "-x", files[0], x).CombinedOutput(); err != nil {
		return "", "", cleanup, fmt.Errorf("dpkg-deb -x %s: %w\n%s", files[0], err, out)
	}
	v, err := exec.Command("dpkg-deb", "-f", files[0], "Version").Output()
	if err != nil {
		return "", "", cleanup, fmt.Errorf("dpkg-deb -f %s Version: %w", files[0], err)
	}
	srcs, _ := filepath.Glob(filepath.Join(x, "usr", "src", "lime-forensics-*", "main.c"))
	if len(srcs) != 1 {
		return "", "", cleanup, fmt.Errorf("%s: %d LiME sources (usr/src/lime-forensics-*/main.c)", files[0], len(srcs))
	}
	return filepath.Dir(srcs[0]), strings.TrimSpace(string(v)), cleanup, nil
}

// limeKey adds the LiME inputs to a scenario's cache key.
func limeKey(h io.Writer, lf *limeFiles) error {
	b, err := guestFiles.ReadFile("guest/lime.sh")
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "lime.sh %d\n", len(b))
	h.Write(b)
	fmt.Fprintf(h, "lime %s %s\n", lf.Version, lf.Key)
	return nil
}

// addLiMEFiles puts lime.sh and lime.ko into the initramfs. The module is
// not in the load order: it captures memory when it is loaded.
func addLiMEFiles(r *initramfs, lf *limeFiles) error {
	b, err := guestFiles.ReadFile("guest/lime.sh")
	if err != nil {
		return err
	}
	r.addFile("/lime.sh", 0o644, b)
	r.copyFile("/lib/modules/lime.ko", lf.Module, 0o644)
	return nil
}

// limeCapture is truth/lime.json, written by lab/guest/lime.sh.
type limeCapture struct {
	Tool   string `json:"tool"`   // "avml" (lab/guest/avml.sh); empty for LiME
	PID    int    `json:"pid"`    // the insmod that loaded lime.ko (and ran the capture)
	Parent int    `json:"parent"` // its parent: the trigger subshell, a truth task
	RC     int    `json:"rc"`     // insmod's exit status
}

// guestCapture has the paused guest run again and sends "lime" to the
// trigger subshell of /init, which sources /lime.sh (lime.sh, or
// avml.sh in an AVML scenario); it waits for the script's done line and
// returns what it wrote to truth/lime.json.
func guestCapture(v *vm, dir, done string, timeout time.Duration) (limeCapture, error) {
	var lc limeCapture
	if _, err := v.qmp.do("cont", nil); err != nil {
		return lc, err
	}
	if err := v.send("lime"); err != nil {
		return lc, err
	}
	if err := v.waitLine(done, timeout); err != nil {
		return lc, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "truth", "lime.json"))
	if err != nil {
		return lc, err
	}
	if err := json.Unmarshal(b, &lc); err != nil {
		return lc, fmt.Errorf("truth/lime.json: %w", err)
	}
	return lc, nil
}

// limeGuest has the paused guest run again and take a LiME capture into
// the truth directory, then moves it to dumps/lime and checks its ranges
// against the truth's /proc/iomem.
func limeGuest(v *vm, dir string) (labdata.Format, error) {
	var f labdata.Format
	start := time.Now()
	lc, err := guestCapture(v, dir, "lime-done", 20*time.Minute)
	if err != nil {
		return f, err
	}
	if lc.RC != 0 || lc.PID == 0 || lc.Parent == 0 {
		return f, fmt.Errorf("LiME capture: insmod exit %d, pid %d, parent %d (see console.log)", lc.RC, lc.PID, lc.Parent)
	}
	src := filepath.Join(dir, "truth", "lime.capture")
	dst := filepath.Join(dir, "dumps", "lime")
	if err := os.Rename(src, dst); err != nil {
		return f, err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return f, err
	}
	want, n, err := limeSize(filepath.Join(dir, "truth", "proc", "iomem.txt"))
	if err != nil {
		return f, err
	}
	if st.Size() != want {
		return f, fmt.Errorf("LiME capture: %d bytes, want %d (%d System RAM ranges of truth/proc/iomem.txt, each behind a 32-byte header)", st.Size(), want, n)
	}
	logf("LiME capture: %d bytes in %v", st.Size(), time.Since(start).Round(time.Second))
	return labdata.Format{Name: "lime", Path: "dumps/lime", Layout: "lime", Compression: "none",
		Producer: "lime", Bytes: st.Size()}, nil
}

// limeSize is the size of a LiME capture (format=lime) of a machine with
// this /proc/iomem: each top-level "System RAM" range, whole, behind a
// 32-byte header.
func limeSize(iomem string) (size int64, ranges int, err error) {
	f, err := os.Open(iomem)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		span, name, ok := strings.Cut(l, " : ")
		if !ok || name != "System RAM" || strings.HasPrefix(span, " ") {
			continue // not a top-level System RAM resource
		}
		s, e, _ := strings.Cut(span, "-")
		a, err1 := strconv.ParseUint(s, 16, 64)
		b, err2 := strconv.ParseUint(e, 16, 64)
		if err1 != nil || err2 != nil || b < a {
			return 0, 0, fmt.Errorf("%s: bad line %q", iomem, l)
		}
		size += int64(b-a+1) + 32
		ranges++
	}
	if ranges == 0 {
		return 0, 0, fmt.Errorf("%s: no System RAM (read as root?)", iomem)
	}
	return size, ranges, sc.Err()
}
