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
	About    string `json:"-"`
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
		if s.Name+"-live" == name {
			return liveVariant(s), true
		}
	}
	return scenario{}, false
}
