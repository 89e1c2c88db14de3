package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// labVersion is part of every cache key: bump it when the lab's outputs
// change in a way its inputs do not show.
const labVersion = "1"

//go:embed guest/init.sh guest/live-commands guest/kdump.sh guest/lime.sh guest/avml.sh
var guestFiles embed.FS

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "lab", "workload")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run the lab from inside the kinspect repository")
		}
		dir = parent
	}
}

// hashTree adds every regular file under dir, by relative path, to h.
func hashTree(h io.Writer, dir string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return nil
}

// cacheKey hashes everything a scenario's outputs depend on.
func cacheKey(repo string, s scenario, k *kernelFiles, kinspectBin string, kf *kdumpFiles, lf *limeFiles, af *avmlFiles) (string, error) {
	h := sha256.New()
	sj, _ := json.Marshal(s)
	fmt.Fprintf(h, "lab %s\nscenario %s\nkernel %s %s\ngo %s\n%s", labVersion, sj, k.Package, k.Version, runtime.Version(), toolVersions())
	if m := modulesFor(s); len(m) != len(guestModules) {
		fmt.Fprintf(h, "modules %v\n", m)
	}
	if err := hashTree(h, filepath.Join(repo, "lab", "workload")); err != nil {
		return "", err
	}
	if kf != nil {
		if err := kdumpKey(h, s, kf); err != nil {
			return "", err
		}
	}
	if lf != nil {
		if err := limeKey(h, lf); err != nil {
			return "", err
		}
	}
	if af != nil {
		if err := avmlKey(h, af); err != nil {
			return "", err
		}
	}
	files := []string{filepath.Join(repo, "lab", "guest", "init.sh")}
	if s.Live {
		files = append(files, filepath.Join(repo, "lab", "guest", "live-commands"), kinspectBin)
		if err := hashTree(h, filepath.Join(repo, "samples")); err != nil {
			return "", err
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// guestBinaries are the programs built on the host for the guest.
type guestBinaries struct {
	Workload string
	BPFObjs  []string
	Kinspect string
	Kdump    *kdumpFiles // kdump scenarios only
	LiME     *limeFiles  // LiME scenarios only
	AVML     *avmlFiles  // AVML scenarios only
}

// buildGuestBinaries compiles the workload, its BPF programs and, for a
// live scenario, kinspect into dir.
func buildGuestBinaries(repo, dir string, live bool) (*guestBinaries, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	gb := &guestBinaries{
		Workload: filepath.Join(dir, "workload"),
		Kinspect: filepath.Join(dir, "kinspect"),
	}
	srcs, _ := filepath.Glob(filepath.Join(repo, "lab", "workload", "bpf", "*.bpf.c"))
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no BPF sources in lab/workload/bpf")
	}
	for _, src := range srcs {
		obj := filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), ".c")+".o")
		// -g: real BTF, func_info and line_info, so bpftool's linum works.
		// -fdebug-prefix-map: line info names the source the same wherever the repo is.
		if err := runIn(repo, "clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-fdebug-prefix-map="+repo+"=.",
			"-I", filepath.Join(repo, "lab", "workload", "bpf"), "-c", src, "-o", obj); err != nil {
			return nil, err
		}
		gb.BPFObjs = append(gb.BPFObjs, obj)
	}
	builds := []struct{ out, pkg string }{{gb.Workload, "./lab/workload"}}
	if live {
		builds = append(builds, struct{ out, pkg string }{gb.Kinspect, "./cmd/kinspect"})
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", b.out, b.pkg)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return gb, nil
}

func runIn(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 4000))
	}
	return nil
}

// buildInitramfs writes the guest's root: busybox, bpftool and its
// libraries, the modules in load order, the workload and (live) kinspect.
func buildInitramfs(repo, out string, k *kernelFiles, gb *guestBinaries, s scenario) error {
	r := newInitramfs()
	for _, d := range []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/proc", "/sys", "/dev", "/tmp", "/run", "/truth", "/etc"} {
		r.mkdirAll(d)
	}
	r.copyFile("/bin/busybox", "/bin/busybox", 0o755)
	init, _ := guestFiles.ReadFile("guest/init.sh")
	r.addFile("/init", 0o755, init)
	r.addFile("/etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/sh\n"))

	// bpftool, and iproute2's ip and tc under /usr/lib/iproute2 (busybox's
	// ip and tc keep their names), with their libraries.
	for _, b := range []struct{ from, to string }{
		{"/usr/sbin/bpftool", "/usr/sbin/bpftool"},
		{iproute2IP, "/usr/lib/iproute2/ip"},
		{iproute2TC, "/usr/lib/iproute2/tc"},
	} {
		r.copyFile(b.to, b.from, 0o755)
		libs, err := sharedLibs(b.from)
		if err != nil {
			return err
		}
		for _, l := range libs {
			r.copyFile(l, l, 0o755)
		}
	}

	ms, err := loadModuleSet(k.modulesDir())
	if err != nil {
		return err
	}
	order, err := ms.loadOrder(modulesFor(s))
	if err != nil {
		return err
	}
	for _, m := range order {
		ko, err := readModule(ms.paths[m])
		if err != nil {
			return fmt.Errorf("module %s: %w", m, err)
		}
		r.addFile("/lib/modules/"+m+".ko", 0o644, ko)
	}
	r.addFile("/lib/modules/load-order", 0o644, []byte(strings.Join(order, "\n")+"\n"))

	if gb.Kdump != nil {
		if err := addKdumpFiles(r, gb.Kdump); err != nil {
			return err
		}
	}
	if gb.LiME != nil {
		if err := addLiMEFiles(r, gb.LiME); err != nil {
			return err
		}
	}
	if gb.AVML != nil {
		if err := addAVMLFiles(r, gb.AVML); err != nil {
			return err
		}
	}
	r.copyFile("/bin/workload", gb.Workload, 0o755)
	for _, o := range gb.BPFObjs {
		r.copyFile("/bpf/"+filepath.Base(o), o, 0o644)
	}
	if s.Live {
		r.copyFile("/bin/kinspect", gb.Kinspect, 0o755)
		cmds, _ := guestFiles.ReadFile("guest/live-commands")
		r.addFile("/live-commands", 0o644, cmds)
		// The sample scripts, which live commands may run.
		samples, _ := filepath.Glob(filepath.Join(repo, "samples", "*"))
		for _, f := range samples {
			r.copyFile("/samples/"+filepath.Base(f), f, 0o644)
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := r.write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sharedLibs lists the libraries (and the dynamic loader) a program needs.
func sharedLibs(prog string) ([]string, error) {
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v", prog, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs, nil
}
