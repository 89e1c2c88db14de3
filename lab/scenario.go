package main

// scenario is one way of booting the guest and dumping it.
type scenario struct {
	Name     string `json:"name"`
	Kernel   string `json:"kernel"` // key of kernels
	MemoryMB int    `json:"memory_mb"`
	CPUs     int    `json:"cpus"`
	LA57     bool   `json:"la57"`
	Panic    bool   `json:"panic"`
	Scale    bool   `json:"scale"`
	Live     bool   `json:"live"` // run kinspect inside the guest; no dumps
	// NoVMCOREINFO boots QEMU without -device vmcoreinfo: its dumps carry
	// no VMCOREINFO note, and only QEMU's own formats are made
	// (makedumpfile needs the note).
	NoVMCOREINFO bool `json:"no_vmcoreinfo,omitempty"`
	// LiME takes a LiME capture (lab/guest/lime.sh) after QEMU's dumps,
	// with the guest running again.
	LiME bool `json:"lime,omitempty"`
	// AVML takes an AVML capture (avml --compress, lab/guest/avml.sh)
	// instead: the avml binary comes from $KINSPECT_AVML (lab/avml.go).
	AVML bool `json:"avml,omitempty"`
	// Crash, for a kdump scenario, is how the guest crashes (lab/guest/kdump.sh):
	// sysrq, lockup, hung, warn or a trigger of the kicrash module.
	Crash string `json:"crash,omitempty"`
	// PostNotifiers puts crash_kexec_post_notifiers on the command line:
	// panic() runs (notifiers, NMI stop) before the capture kernel.
	PostNotifiers bool   `json:"post_notifiers,omitempty"`
	About         string `json:"-"`
}

// kernel is a pinned Debian kernel package.
type kernel struct {
	Family  string // "6.1" or "6.12"
	Package string // pinned package name
	Prefix  string // fallback: newest package with this prefix and "-amd64" suffix
}

// kernels pins the Debian kernels of the lab. When a pinned package has
// left the archive, the newest package of the same family is used and the
// manifest says so.
var kernels = map[string]kernel{
	"6.1":  {Family: "6.1", Package: "linux-image-6.1.0-56-amd64", Prefix: "linux-image-6.1.0-"},
	"6.12": {Family: "6.12", Package: "linux-image-6.12.117+deb12-amd64", Prefix: "linux-image-6.12."},
}

var scenarios = []scenario{
	{Name: "basic", Kernel: "6.1", MemoryMB: 512, CPUs: 2,
		About: "kernel 6.1, 4-level paging, 512 MB, 2 CPUs"},
	{Name: "la57", Kernel: "6.1", MemoryMB: 512, CPUs: 2, LA57: true,
		About: "kernel 6.1, 5-level paging"},
	{Name: "k612", Kernel: "6.12", MemoryMB: 512, CPUs: 2,
		About: "kernel 6.12, 4-level paging"},
	{Name: "panic", Kernel: "6.1", MemoryMB: 512, CPUs: 2, Panic: true,
		About: "kernel 6.1, a real panic via sysrq, dumped while paused on panic"},
	{Name: "scale", Kernel: "6.1", MemoryMB: 2048, CPUs: 2, Scale: true,
		About: "kernel 6.1, 2 GB, 1M hash entries, 500 programs, 2000 threads"},
	{Name: "noinfo", Kernel: "6.1", MemoryMB: 512, CPUs: 2, NoVMCOREINFO: true, LiME: true,
		About: "kernel 6.1, 512 MB, 2 CPUs; QEMU without -device vmcoreinfo (QEMU's dumps only), then a LiME capture"},
	{Name: "avml", Kernel: "6.1", MemoryMB: 512, CPUs: 2, NoVMCOREINFO: true, AVML: true,
		About: "noinfo with an AVML capture (avml --compress, from $KINSPECT_AVML) instead of LiME's; not in CI's set"},

	// kdump: a real crash, the dump saved by a capture kernel (kexec -p).
	kd("kd-sysrq", "6.1", "sysrq", false, "panic from sysrq c"),
	kd("kd-oops", "6.1", "oops", false, "NULL pointer write in process context; kexec from oops_end"),
	kd("kd-oops-post", "6.1", "oops", true, "NULL pointer write in process context; crash_kexec_post_notifiers: panic() first"),
	kd("kd-bug", "6.1", "bug", false, "BUG() in process context (invalid opcode)"),
	kd("kd-hardirq", "6.1", "hardirq-panic", false, "panic() in an hrtimer callback (hardirq)"),
	kd("kd-softirq", "6.1", "softirq-oops", false, "NULL pointer write in a timer_list callback (softirq)"),
	kd("kd-warn", "6.1", "warn", false, "WARN() with panic_on_warn"),
	kd("kd-stack", "6.1", "stack", false, "kernel stack overflow: recursion into the guard page, double fault"),
	kd("kd-lockup", "6.1", "lockup", false, "soft lockup inside a BPF program (bpf_loop in BPF_PROG_TEST_RUN)"),
	kd("kd-hung", "6.1", "hung", false, "hung task (hung_task_panic)"),
	kd("kd612-sysrq", "6.12", "sysrq", false, "panic from sysrq c"),
	kd("kd612-oops", "6.12", "oops", false, "NULL pointer write in process context; kexec from oops_end"),
	kd("kd612-bug", "6.12", "bug", true, "BUG() in process context; crash_kexec_post_notifiers: panic() first"),
	// Not in CI's set (scripts/test.sh): 16 GiB of guest RAM, mostly free,
	// for what grows with a machine's memory (docs/huge-dumps.md).
	kdMem(kd("kd-16g", "6.1", "sysrq", false, "16 GiB, mostly free: panic from sysrq c"), 16384),
}

// kd makes a kdump scenario: 1 GiB, 2 CPUs, crashkernel=256M.
func kd(name, kernel, crash string, post bool, about string) scenario {
	return scenario{Name: name, Kernel: kernel, MemoryMB: 1024, CPUs: 2, Crash: crash, PostNotifiers: post,
		About: "kdump, kernel " + kernel + ": " + about}
}

// kdMem gives the kdump scenario s mb MiB of memory (crashkernel= stays
// 256M: the capture kernel's needs do not grow with the dumped memory's).
func kdMem(s scenario, mb int) scenario {
	s.MemoryMB = mb
	return s
}

// liveVariant returns the live-mode variant of s: the same guest, with
// kinspect run inside it against /proc/kcore, and no dumps.
func liveVariant(s scenario) scenario {
	s.Name += "-live"
	s.Live = true
	s.Panic = false
	s.About = "live mode of " + s.About
	return s
}

func findScenario(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, true
		}
		if s.Name+"-live" == name && s.Crash == "" {
			return liveVariant(s), true
		}
	}
	return scenario{}, false
}
