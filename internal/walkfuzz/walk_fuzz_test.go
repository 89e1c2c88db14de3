// Package walkfuzz fuzzes kinspect's kernel walkers over a lab dump whose
// memory the fuzzer overwrites: bytes of its choosing at kernel
// addresses of its choosing, picked among the structures the walkers
// follow (task lists, thread and children links, PID IDR and BPF IDR
// nodes, module links, printk descriptors, BPF programs, stack pages,
// network devices and their tc filters).
// The walkers must not panic, hang or take memory without bound, and
// must go on past what they cannot read.
package walkfuzz_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/orc"
	"github.com/kinspect/kinspect/vmcore"
	"golang.org/x/sys/unix"
)

// overlay is kernel memory with bytes overwritten.
type overlay struct {
	base    objects.Memory
	patches map[uint64]byte
}

func (o overlay) ReadVirt(p []byte, vaddr uint64) (int, error) {
	n, err := o.base.ReadVirt(p, vaddr)
	for i := range p {
		if b, ok := o.patches[vaddr+uint64(i)]; ok {
			p[i] = b
		}
	}
	return n, err
}

// target is orc's view of the damaged kernel.
type target struct {
	p    *objects.Program
	base *kinspect.Kernel
}

func (t target) Program() *objects.Program { return t.p }
func (t target) Symbols() *kallsyms.Table  { return t.base.Symbols() }
func (t target) CPUs() []vmcore.CPU        { return t.base.CPUs() }
func (t target) Release() string           { return t.base.Release() }

var (
	setupOnce sync.Once
	base      *kinspect.Kernel
	mem       objects.Memory
	targets   []uint64 // addresses worth damaging
	setupErr  error
)

// setup opens the lab dump once and collects the addresses of the
// structures the walkers follow.
// stderrTo sends this process's stderr to PREFIX.PID when
// $KINSPECT_FUZZ_STDERR is PREFIX: Go's fuzzing runs the target in
// worker processes whose stderr it drops, so a worker that dies (a
// runtime fatal error, a stack overflow) leaves no trace without it.
func stderrTo() {
	prefix := os.Getenv("KINSPECT_FUZZ_STDERR")
	if prefix == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", prefix, os.Getpid()))
	if err != nil {
		return
	}
	unix.Dup2(int(f.Fd()), 2)
}

func setup(tb testing.TB) {
	setupOnce.Do(func() {
		stderrTo()
		s, err := labdata.Load("basic")
		if err != nil {
			setupErr = err
			return
		}
		base = labkernel.Open(tb, s, "elf-d31")
		p := base.Program()
		mem = p.Memory()
		add := func(a uint64) {
			if a != 0 {
				targets = append(targets, a)
			}
		}
		for t, err := range linux.ForEachTask(p) {
			if err != nil {
				continue
			}
			add(t.Addr())
			for _, m := range []string{"tasks", "children", "sibling", "thread_node", "pid_links", "signal", "stack", "thread.sp"} {
				if v, err := t.Path(m); err == nil {
					add(v.Addr())
					if u, err := v.Uint(); err == nil && m == "thread.sp" {
						add(u) // the saved stack frame
					}
				}
			}
		}
		for bp, err := range bpf.ProgForEach(p) {
			if err == nil {
				add(bp.Obj.Addr())
				add(bp.Aux.Addr())
			}
		}
		for m, err := range linux.ForEachModule(p) {
			if err == nil {
				add(m.Addr())
			}
		}
		// The walkers of crash's everyday commands: slab caches, mounts
		// and the dentries of a path, network devices.
		for s, err := range linux.ForEachSlabCache(p) {
			if err == nil {
				add(s.Addr())
			}
		}
		if ns, err := linux.InitMntNS(p); err == nil {
			add(ns.Addr())
			for m, err := range linux.ForEachMount(ns) {
				if err == nil {
					add(m.Addr())
				}
			}
		}
		for _, path := range []string{"/proc", "/bin/workload"} {
			if pi := linux.ReadPathInfo(p, path); pi.Error == "" {
				add(uint64(pi.Dentry))
				add(uint64(pi.Inode))
			}
		}
		if devs, err := linux.NetDevices(p); err == nil {
			for _, d := range devs {
				add(uint64(d.Dev))
				for _, c := range d.TC {
					add(uint64(c.Filter))
					add(uint64(c.Prog))
				}
			}
		}
		for _, v := range []string{"init_task", "prog_idr", "map_idr", "link_idr", "init_pid_ns", "modules", "bpf_kallsyms", "mod_tree", "slab_caches", "init_net"} {
			if x, err := p.Variable(v); err == nil {
				add(x.Addr())
			}
		}
		if prb, err := p.Variable("prb"); err == nil {
			if rb, err := prb.Deref(); err == nil {
				add(rb.Addr())
				for _, m := range []string{"desc_ring.descs", "desc_ring.infos", "text_data_ring.data"} {
					if v, err := rb.Path(m); err == nil {
						if a, err := v.Uint(); err == nil {
							add(a)
						}
					}
				}
			}
		}
	})
	if setupErr != nil {
		tb.Skip(setupErr)
	}
}

// patches decodes the fuzzer's input: records of a target index (2
// bytes), an offset from it (2 bytes, signed), a length (1 byte) and
// that many bytes; at most 16 records.
func patches(data []byte) map[uint64]byte {
	out := map[uint64]byte{}
	for n := 0; len(data) >= 5 && n < 16; n++ {
		idx := int(binary.LittleEndian.Uint16(data)) % len(targets)
		off := int64(int16(binary.LittleEndian.Uint16(data[2:])))
		l := int(data[4]) % 32
		data = data[5:]
		if l > len(data) {
			l = len(data)
		}
		a := uint64(int64(targets[idx]) + off)
		for i := range l {
			out[a+uint64(i)] = data[i]
		}
		data = data[l:]
	}
	return out
}

// walk runs the walkers over the damaged kernel.
func walk(p *objects.Program) {
	linux.PSRows(p)
	bpf.SelectProgs(p, bpf.Selector{})
	bpf.SelectMaps(p, bpf.Selector{})
	bpf.SelectLinks(p, bpf.Selector{})
	for range linux.ForEachModule(p) {
	}
	linux.ReadPrintkRing(p)
	linux.SlabInfos(p)
	if ns, err := linux.InitMntNS(p); err == nil {
		linux.Mounts(ns)
	}
	linux.ReadPathInfo(p, "/bin/workload")
	linux.ReadNet(p)
	bpf.ReadNetShow(p)
	if b, err := orc.NewBacktracer(target{p, base}); err == nil {
		b.Collect(orc.Selection{AllTasks: true})
		b.Collect(orc.Selection{AllCPUs: true})
	}
}

// FuzzWalkers: go test ./internal/walkfuzz -fuzz FuzzWalkers (with the
// lab's basic scenario built).
func FuzzWalkers(f *testing.F) {
	setup(f)
	f.Add([]byte{})
	// A task's tasks.next made garbage; a cycle; an IDR node zeroed.
	f.Add([]byte{10, 0, 0, 0, 8, 0x1d, 0x4b, 0x1d, 0x4b, 0x1d, 0x4b, 0x1d, 0x4b})
	f.Add([]byte{20, 0, 8, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		ps := patches(data)
		p := objects.NewProgram(overlay{mem, ps}, base.Types(), base.Symbols(), objects.WithDecls(base.Program().Decls()), objects.WithLimit(1<<16))
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			walk(p)
		}()
		select {
		case r := <-done:
			if r != nil {
				panic(fmt.Sprintf("walkers panicked on %d patched bytes: %v", len(ps), r))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("walkers ran for more than 30 s on %d patched bytes", len(ps))
		}
		if n := len(p.Damaged()); n > 10000 {
			t.Fatalf("%d damage entries", n)
		}
	})
}
