package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// runConfig is the configuration of "workload run".
type runConfig struct {
	// BPFDir holds ki.bpf.o, spin.bpf.o and small.bpf.o.
	BPFDir string
	// ReadyFile receives the Ready JSON once everything exists.
	ReadyFile string
	// Scale adds the large-scale objects (see scale.go).
	Scale bool
	// SpinOnSignal holds the spinner until SIGUSR1, so that a guest under
	// emulation gives all its time to capturing the truth first.
	SpinOnSignal bool
	// Lockup loads ki_lockup and starts the thread that runs it on
	// SIGUSR2 (see lockup.go).
	Lockup bool
	// TestrunDir receives the test runs' truth, NAME.json per program
	// (testrun.go); empty: no test runs.
	TestrunDir string
}

// keep holds every object that must stay open for the life of the
// process. cilium/ebpf closes file descriptors of unreachable objects when
// they are garbage collected, and a closed descriptor may unload a program,
// destroy a map or detach a link, so everything created ends up here.
var keep []any

// progEntry is a program the workload created, with where it is attached.
type progEntry struct {
	name   string
	prog   *ebpf.Program
	attach string
	pinned string
	// hidden: the program hides itself from BPF_PROG_GET_FD_BY_ID (hide.go).
	hidden bool
}

// mapEntry is a map the workload created.
type mapEntry struct {
	name    string
	m       *ebpf.Map
	btf     bool
	content string
	pinned  string
	// entries returns the number of live entries (see MapRecord.Entries).
	entries func() (int, error)
}

// linkEntry is a link the workload holds.
type linkEntry struct {
	lnk    link.Link
	prog   string
	target string
	pinned string
	// hidden: the link is hidden from BPF_LINK_GET_FD_BY_ID (hide.go).
	hidden bool
}

// runner carries the state of "workload run" between its phases.
type runner struct {
	cfg   runConfig
	ready Ready
	start time.Time

	core     *ebpf.Collection
	coreSpec *ebpf.CollectionSpec
	spin     *ebpf.Program
	lockup   *ebpf.Program
	tr       *ebpf.Collection // testrun.bpf.o
	lruev    *lruevCopies     // lruev.bpf.o, twice
	trPerf   *perf.Reader     // ki_tr_perf's buffers

	progs []*progEntry
	maps  []*mapEntry
	links []*linkEntry
}

// logf logs a progress line to stderr with the time since start.
func (r *runner) logf(format string, args ...any) {
	log.Printf("[%7.2fs] %s", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// note records that something optional was skipped or failed, and logs it.
func (r *runner) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.ready.Notes = append(r.ready.Notes, s)
	r.logf("note: %s", s)
}

// addProg remembers a program for the ready file and keeps it open.
func (r *runner) addProg(name string, p *ebpf.Program, attach string) *progEntry {
	e := &progEntry{name: name, prog: p, attach: attach}
	r.progs = append(r.progs, e)
	keep = append(keep, p)
	return e
}

// addMap remembers a map for the ready file and keeps it open.
func (r *runner) addMap(name string, m *ebpf.Map, btf bool, content string, entries func() (int, error)) *mapEntry {
	e := &mapEntry{name: name, m: m, btf: btf, content: content, entries: entries}
	r.maps = append(r.maps, e)
	keep = append(keep, m)
	return e
}

// addLink remembers a link for the ready file and keeps it open.
func (r *runner) addLink(l link.Link, prog, target string) *linkEntry {
	e := &linkEntry{lnk: l, prog: prog, target: target}
	r.links = append(r.links, e)
	keep = append(keep, l)
	return e
}

// findProg returns the entry of the named program, or nil.
func (r *runner) findProg(name string) *progEntry {
	for _, e := range r.progs {
		if e.name == name {
			return e
		}
	}
	return nil
}

// run creates every object, writes the ready file and never returns
// unless a mandatory object could not be created.
func run(cfg runConfig) error {
	log.SetFlags(0)
	log.SetPrefix("workload: ")
	r := &runner{cfg: cfg, start: time.Now()}
	r.ready.Kernel = unameRelease()
	r.ready.Scale = cfg.Scale
	r.ready.Notes = []string{}
	r.logf("run: kernel %s, bpfdir %s, scale %v, pid %d", r.ready.Kernel, cfg.BPFDir, cfg.Scale, os.Getpid())

	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("remove memlock rlimit: %w", err)
	}

	type phase struct {
		name string
		fn   func() error
	}
	phases := []phase{
		{"load core object", r.loadCore},
		{"fill maps", r.fillMaps},
		{"attach programs", r.attachProgs},
		{"load test-run object", r.loadTestrun},
		{"test runs", func() error { return r.testRuns(func(n string) bool { return n != "ki_spin" }) }},
		{"pending records", func() error { return r.keepCounters(r.produceRecords) }},
		{"load spin program", r.loadSpin},
		{"test runs: ki_spin", func() error { return r.testRuns(func(n string) bool { return n == "ki_spin" }) }},
		// Before the struct_ops and link phases, so that programs and
		// links with higher ids follow the hidden ones.
		{"hidden program", r.loadHide},
		{"struct_ops", r.loadStructOps},
		{"iter and netns links", r.loadLinks},
		{"network devices' programs", r.loadNetdev},
	}
	if cfg.Scale {
		phases = append(phases,
			phase{"scale: big hash", r.scaleBigHash},
			phase{"scale: small programs", r.scalePrograms},
		)
	}
	if cfg.Lockup {
		phases = append(phases, phase{"load lockup program", r.loadLockup})
	}
	phases = append(phases,
		phase{"pin objects", r.pinObjects},
		phase{"sleepers", r.startSleepers},
	)
	if cfg.Scale {
		phases = append(phases, phase{"scale: threads", r.scaleThreads})
	}
	phases = append(phases, phase{"describe objects", r.describe})

	for _, p := range phases {
		t := time.Now()
		r.logf("phase %q", p.name)
		if err := p.fn(); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		r.ready.TimingsMS = append(r.ready.TimingsMS, PhaseTiming{p.name, time.Since(t).Milliseconds()})
	}

	// The spinner starts last, once everything else exists, and only
	// its thread ID is waited for.
	sp, err := startSpinner(r.spin, spinnerCPU, cfg.SpinOnSignal)
	if err != nil {
		return fmt.Errorf("spinner: %w", err)
	}
	if sp.CPU != spinnerCPU {
		r.note("spinner runs on CPU %d: CPU %d is not available", sp.CPU, spinnerCPU)
	}
	r.ready.Spinner = sp
	if cfg.Lockup {
		lk, err := startLockup(r.lockup)
		if err != nil {
			return fmt.Errorf("lockup thread: %w", err)
		}
		r.ready.Lockup = lk
	}
	r.ready.TimingsMS = append(r.ready.TimingsMS, PhaseTiming{"total", time.Since(r.start).Milliseconds()})

	if err := writeJSONFile(cfg.ReadyFile, &r.ready); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	r.logf("ready: wrote %s (%d progs, %d maps, %d links, %d sleepers, spinner tid %d on CPU %d)",
		cfg.ReadyFile, len(r.ready.Progs), len(r.ready.Maps), len(r.ready.Links),
		len(r.ready.Sleepers), sp.TID, sp.CPU)

	// From here on the Go runtime keeps still: no periodic GC (forced
	// every two minutes otherwise, waking a thread per P) and nothing
	// left for the scavenger to give back, so that the truth taken now
	// (/proc/meminfo, the tasks' states and stacks) is the dump's.
	debug.FreeOSMemory()
	debug.SetGCPercent(-1)

	// Stay alive forever, holding every object. The main goroutine
	// parks; the spinner's thread stays busy in BPF_PROG_TEST_RUN.
	select {}
}

// describe fills the progs, maps, links and pins of the ready document
// from the kernel's view of each object.
func (r *runner) describe() error {
	for _, e := range r.progs {
		info, err := e.prog.Info()
		if err != nil {
			return fmt.Errorf("info of program %s: %w", e.name, err)
		}
		id, _ := info.ID()
		r.ready.Progs = append(r.ready.Progs, ProgRecord{
			Name: e.name, Type: info.Type.String(), TypeNum: uint32(info.Type),
			ID: uint32(id), Tag: info.Tag, Attach: e.attach, Pinned: e.pinned, Hidden: e.hidden,
		})
		if e.pinned != "" {
			r.ready.Pins = append(r.ready.Pins, PinRecord{Path: e.pinned, Kind: "prog", Name: e.name, ID: uint32(id)})
		}
	}
	for _, e := range r.maps {
		info, err := e.m.Info()
		if err != nil {
			return fmt.Errorf("info of map %s: %w", e.name, err)
		}
		id, _ := info.ID()
		n, err := e.entries()
		if err != nil {
			return fmt.Errorf("count entries of map %s: %w", e.name, err)
		}
		r.ready.Maps = append(r.ready.Maps, MapRecord{
			Name: e.name, Type: info.Type.String(), TypeNum: uint32(info.Type), ID: uint32(id),
			KeySize: info.KeySize, ValueSize: info.ValueSize, MaxEntries: info.MaxEntries,
			Entries: n, BTF: e.btf, Content: e.content, Pinned: e.pinned,
		})
		if e.pinned != "" {
			r.ready.Pins = append(r.ready.Pins, PinRecord{Path: e.pinned, Kind: "map", Name: e.name, ID: uint32(id)})
		}
	}
	for _, e := range r.links {
		rec := LinkRecord{Prog: e.prog, Target: e.target, Pinned: e.pinned, Hidden: e.hidden}
		if p := r.findProg(e.prog); p != nil {
			if info, err := p.prog.Info(); err == nil {
				id, _ := info.ID()
				rec.ProgID = uint32(id)
			}
		}
		info, err := e.lnk.Info()
		switch {
		case err == nil:
			rec.ID, rec.Type, rec.TypeNum = uint32(info.ID), linkTypeName(info.Type), uint32(info.Type)
		case errors.Is(err, unix.EINVAL), errors.Is(err, ebpf.ErrNotSupported):
			r.note("link %s -> %s is not a BPF link object on this kernel", e.prog, e.target)
			rec.Type = "legacy"
		default:
			return fmt.Errorf("info of link %s -> %s: %w", e.prog, e.target, err)
		}
		r.ready.Links = append(r.ready.Links, rec)
		if e.pinned != "" {
			r.ready.Pins = append(r.ready.Pins, PinRecord{Path: e.pinned, Kind: "link", Name: e.prog, ID: rec.ID})
		}
	}
	return nil
}

// linkTypeName names a link type like the kernel's enum bpf_link_type.
func linkTypeName(t link.Type) string {
	names := map[link.Type]string{
		link.UnspecifiedType: "unspec", link.RawTracepointType: "raw_tracepoint",
		link.TracingType: "tracing", link.CgroupType: "cgroup", link.IterType: "iter",
		link.NetNsType: "netns", link.XDPType: "xdp", link.PerfEventType: "perf_event",
		link.KprobeMultiType: "kprobe_multi", link.TCXType: "tcx", link.NetkitType: "netkit",
	}
	if s, ok := names[t]; ok {
		return s
	}
	return fmt.Sprintf("type_%d", uint32(t))
}

// unameRelease returns the running kernel's release string.
func unameRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return strings.TrimRight(string(u.Release[:]), "\x00")
}
