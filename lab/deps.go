package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// hostTools maps a program the lab runs to the Debian package that has it.
var hostTools = []struct{ path, pkg string }{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"/bin/busybox", "busybox-static"},
	{"/usr/sbin/bpftool", "bpftool"},
	{iproute2IP, "iproute2"},
	{iproute2TC, "iproute2"},
	{"makedumpfile", "makedumpfile"},
	{"clang", "clang"},
	{"objdump", "binutils"},
	{"readelf", "binutils"},
	{"xz", "xz-utils"},
	{"ldd", "libc-bin"},
	{"/usr/include/linux/bpf.h", "linux-libc-dev"},
	{"/usr/share/seabios/bios-256k.bin", "seabios"},
}

// iproute2's ip and tc, copied into the guest (/usr/lib/iproute2): the
// paths of Debian's package on merged and unmerged /usr alike.
const (
	iproute2IP = "/bin/ip"
	iproute2TC = "/sbin/tc"
)

// ensureTools installs the Debian packages of any missing tool.
func ensureTools() error {
	var missing []string
	seen := map[string]bool{}
	for _, t := range hostTools {
		if toolExists(t.path) || seen[t.pkg] {
			continue
		}
		seen[t.pkg] = true
		missing = append(missing, t.pkg)
	}
	// busybox-static conflicts with busybox; a dynamic /bin/busybox is useless in the guest.
	if toolExists("/bin/busybox") && !isStatic("/bin/busybox") && !seen["busybox-static"] {
		missing = append(missing, "busybox-static")
	}
	if len(missing) == 0 {
		return nil
	}
	logf("installing %s", strings.Join(missing, " "))
	if err := aptUpdate(); err != nil {
		return err
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", strings.Join(missing, " "), err, tail(out, 2000))
	}
	return nil
}

var aptUpdated bool

func aptUpdate() error {
	if aptUpdated {
		return nil
	}
	if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, tail(out, 2000))
	}
	aptUpdated = true
	return nil
}

func toolExists(p string) bool {
	if strings.HasPrefix(p, "/") {
		_, err := os.Stat(p)
		return err == nil
	}
	_, err := exec.LookPath(p)
	return err == nil
}

func isStatic(p string) bool {
	out, _ := exec.Command("file", "-L", p).Output()
	if len(out) == 0 {
		// No file(1): ldd says "not a dynamic executable" for static binaries.
		out, _ = exec.Command("ldd", p).CombinedOutput()
		return bytes.Contains(out, []byte("not a dynamic"))
	}
	return bytes.Contains(out, []byte("statically linked")) || bytes.Contains(out, []byte("static-pie"))
}

// kernelFiles is an extracted kernel package.
type kernelFiles struct {
	Package string // e.g. linux-image-6.1.0-56-amd64
	Version string // Debian version of the package, e.g. 6.1.192-2
	Release string // module directory name, = uname -r
	Root    string // extraction directory
	Vmlinuz string
	Note    string // set when the pinned package was not available
}

// modulesDir is where the kernel's modules are.
func (k *kernelFiles) modulesDir() string {
	return filepath.Join(k.Root, "lib", "modules", k.Release)
}

// ensureKernel downloads and extracts the kernel package of family k into
// root/kernels, reusing an earlier extraction.
func ensureKernel(root string, k kernel) (*kernelFiles, error) {
	pkg := k.Package
	var note string
	if dir, ok := findExtracted(root, pkg); ok {
		return loadKernel(dir, pkg, "")
	}
	if err := aptUpdate(); err != nil {
		return nil, err
	}
	if !aptHas(pkg) {
		newest, err := newestKernel(k.Prefix)
		if err != nil {
			return nil, err
		}
		note = fmt.Sprintf("pinned kernel %s is not in the archive; using %s", pkg, newest)
		logf("%s", note)
		pkg = newest
		if dir, ok := findExtracted(root, pkg); ok {
			return loadKernel(dir, pkg, note)
		}
	}
	debs := filepath.Join(root, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, err
	}
	logf("downloading %s", pkg)
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = debs
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apt-get download %s: %v\n%s", pkg, err, tail(out, 2000))
	}
	matches, _ := filepath.Glob(filepath.Join(debs, pkg+"_*.deb"))
	if len(matches) == 0 {
		return nil, fmt.Errorf("apt-get download %s: no .deb in %s", pkg, debs)
	}
	sort.Strings(matches)
	deb := matches[len(matches)-1]
	dir := filepath.Join(root, "kernels", pkg)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	ver, err := exec.Command("dpkg-deb", "-f", deb, "Version").Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-deb -f %s Version: %v", deb, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "VERSION"), bytes.TrimSpace(ver), 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	os.Remove(deb)
	return loadKernel(dir, pkg, note)
}

func findExtracted(root, pkg string) (string, bool) {
	dir := filepath.Join(root, "kernels", pkg)
	_, err := os.Stat(filepath.Join(dir, "VERSION"))
	return dir, err == nil
}

func loadKernel(dir, pkg, note string) (*kernelFiles, error) {
	ver, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		return nil, err
	}
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*"))
	vmlinuz, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(mods) != 1 || len(vmlinuz) != 1 {
		return nil, fmt.Errorf("kernel %s in %s: want one module directory and one vmlinuz, have %d and %d", pkg, dir, len(mods), len(vmlinuz))
	}
	return &kernelFiles{
		Package: pkg,
		Version: strings.TrimSpace(string(ver)),
		Release: filepath.Base(mods[0]),
		Root:    dir,
		Vmlinuz: vmlinuz[0],
		Note:    note,
	}, nil
}

func aptHas(pkg string) bool {
	out, err := exec.Command("apt-cache", "show", "--no-all-versions", pkg).CombinedOutput()
	return err == nil && bytes.Contains(out, []byte("Package: "+pkg))
}

// newestKernel finds the newest signed generic amd64 kernel whose package
// name begins with prefix.
func newestKernel(prefix string) (string, error) {
	out, err := exec.Command("apt-cache", "pkgnames", prefix).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache pkgnames %s: %v", prefix, err)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `[0-9][^ ]*-amd64$`)
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if re.MatchString(n) && !strings.Contains(n, "cloud") && !strings.Contains(n, "-rt-") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no kernel package named %s*-amd64 in the archive", prefix)
	}
	sort.Slice(names, func(i, j int) bool { return versionLess(names[i], names[j]) })
	return names[len(names)-1], nil
}

// versionLess compares names by their digit runs, numerically.
func versionLess(a, b string) bool {
	num := regexp.MustCompile(`[0-9]+`)
	na, nb := num.FindAllString(a, -1), num.FindAllString(b, -1)
	for i := 0; i < len(na) && i < len(nb); i++ {
		if len(na[i]) != len(nb[i]) {
			return len(na[i]) < len(nb[i])
		}
		if na[i] != nb[i] {
			return na[i] < nb[i]
		}
	}
	return len(na) < len(nb)
}

// toolVersions returns the versions of the host tools whose output the
// lab's files depend on; they are part of the cache key.
func toolVersions() string {
	var b strings.Builder
	for _, c := range [][]string{
		{"qemu-system-x86_64", "--version"},
		{"makedumpfile", "-v"},
		{"/usr/sbin/bpftool", "version"},
		{iproute2IP, "-V"},
		{"clang", "--version"},
		{"objdump", "--version"},
		{"/bin/busybox"},
	} {
		out, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		line, _, _ := bytes.Cut(out, []byte("\n"))
		fmt.Fprintf(&b, "%s: %s\n", c[0], line)
	}
	return b.String()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
