package bpfrun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// Options configure a Session: what the kernel would have taken from
// the CPU and task running the program, and the values of the helpers
// that read clocks and random numbers.
type Options struct {
	// CPU is the CPU the runs are on: bpf_get_smp_processor_id, and the
	// copy of per-CPU map values lookups return (default 0).
	CPU int
	// PID is the thread whose task is current (bpf_get_current_pid_tgid,
	// _comm, _task, _uid_gid): a task of the dump; 0 is the CPU's idle
	// task (swapper/CPU).
	PID int
	// Clock and Random are the values bpf_ktime_get_*_ns and
	// bpf_get_prandom_u32 return, in order (then bpfvm's defaults).
	Clock, Random []uint64
	// Budget bounds each run's instructions (0: bpfvm.DefaultBudget).
	Budget uint64
}

// Session runs programs on one machine: map updates and other writes to
// kernel memory persist from one run to the next, as in the kernel. It
// is not safe for concurrent use.
type Session struct {
	r    *Replayer
	lay  *layouts
	m    *bpfvm.Machine
	opts Options
	view *objects.Program

	maps     map[uint64]*mapInfo // by struct bpf_map address
	used     map[uint64]bool     // maps of the programs run
	progs    map[uint64]*Prog    // programs run (tail calls included)
	pcpuNext uint64              // the next per-CPU pointer to hand out
	rbProd   map[uint64]uint64   // bytes each ring buffer took in the runs
	mapErrs  []error
	grewAny  bool // a map element was allocated
}

// NewSession returns a session over the replayer's kernel. Errors wrap
// objects.ErrNotFound for a PID or CPU the dump does not have.
func (r *Replayer) NewSession(o Options) (*Session, error) {
	lay, err := r.layouts()
	if err != nil {
		return nil, err
	}
	s := &Session{r: r, lay: lay, opts: o, maps: map[uint64]*mapInfo{}, used: map[uint64]bool{},
		progs: map[uint64]*Prog{}, rbProd: map[uint64]uint64{}}
	if len(lay.cpus) > 0 {
		if _, ok := lay.cpuIndex[o.CPU]; !ok {
			return nil, fmt.Errorf("CPU %d is not a possible CPU (%v): %w", o.CPU, lay.cpus, objects.ErrNotFound)
		}
	}
	vo := bpfvm.Options{
		Budget:   o.Budget,
		CallBase: r.callBase,
		Syms:     symbolsAt{r},
		CPU:      uint32(o.CPU),
		Clock:    bpfvm.Series{Values: o.Clock},
		Random:   bpfvm.Series{Values: o.Random},
	}
	if off, err := r.prog.PerCPUOffset(o.CPU); err == nil {
		vo.PerCPUOffset = off
	}
	task, err := s.task(o)
	if err != nil {
		return nil, err
	}
	vo.Task = task
	vo.Helpers = s.registry()
	vo.TailCalls = bpfvm.TailCallFunc(s.tailCall)
	s.m = bpfvm.New(r.prog.Memory(), vo)
	return s, nil
}

// Machine is the session's machine.
func (s *Session) Machine() *bpfvm.Machine { return s.m }

// Replayer is the session's replayer.
func (s *Session) Replayer() *Replayer { return s.r }

// task finds the current task of the runs.
func (s *Session) task(o Options) (*bpfvm.Task, error) {
	p := s.r.prog
	var t objects.Value
	var err error
	if o.PID == 0 {
		t, err = linux.IdleTask(p, o.CPU)
	} else {
		t, err = linux.FindTask(p, o.PID)
	}
	if err != nil {
		if o.PID == 0 {
			// A kernel without the walkers' types (a synthetic one):
			// no current task, as the helpers then report.
			return nil, nil
		}
		return nil, fmt.Errorf("task %d: %w", o.PID, err)
	}
	info, err := linux.NewTask(t)
	if err != nil {
		return nil, err
	}
	task := &bpfvm.Task{PID: uint32(info.TID), TGID: uint32(info.PID), Comm: info.Comm, Addr: info.Addr}
	if uid, err := t.Path("cred->uid.val"); err == nil {
		if x, err := uid.Uint(); err == nil {
			task.UID = uint32(x)
		}
	}
	if gid, err := t.Path("cred->gid.val"); err == nil {
		if x, err := gid.Uint(); err == nil {
			task.GID = uint32(x)
		}
	}
	return task, nil
}

// View is the kernel as the session's runs left it: the dump's memory
// under the overlay, and the machine's own (the values it allocated), for
// the objects engine and the bpf package's walkers.
func (s *Session) View() *objects.Program {
	if s.view == nil {
		p := s.r.prog
		s.view = objects.NewProgram(overlay{s.m}, p.Types(), symbolizer{p}, objects.WithDecls(p.Decls()), objects.WithLimit(p.Limit()))
	}
	return s.view
}

// overlay reads the machine's memory: the base through the overlay, and
// the machine's own regions.
type overlay struct{ m *bpfvm.Machine }

func (o overlay) ReadVirt(p []byte, addr uint64) (int, error) {
	if err := o.m.Read(addr, p); err == nil {
		return len(p), nil
	}
	// The readable prefix, a page, then a byte at a time.
	n := 0
	for n < len(p) {
		a := addr + uint64(n)
		k := min(len(p)-n, 4096-int(a%4096))
		if err := o.m.Read(a, p[n:n+k]); err != nil {
			for i := 0; i < k; i++ {
				if err := o.m.Read(a+uint64(i), p[n:n+1]); err != nil {
					return n, err
				}
				n++
			}
			continue
		}
		n += k
	}
	return n, nil
}

// symbolizer resolves names as the replayer's kernel does.
type symbolizer struct{ p *objects.Program }

func (s symbolizer) Resolve(name string) (uint64, error) { return s.p.Symbol(name) }

// read and write helpers over the machine.

func (s *Session) u64(addr uint64) (uint64, error) { return s.m.ReadUint(addr, 8) }
func (s *Session) u32(addr uint64) (uint32, error) {
	x, err := s.m.ReadUint(addr, 4)
	return uint32(x), err
}
func (s *Session) put64(addr, v uint64) error { return s.m.WriteUint(addr, 8, v) }

func (s *Session) bytes(addr uint64, n int) ([]byte, error) {
	if n < 0 || n > 1<<24 {
		return nil, fmt.Errorf("read of %d bytes at %#x: size beyond any object: %w", n, addr, bpfvm.ErrFault)
	}
	b := make([]byte, n)
	return b, s.m.Read(addr, b)
}

// mapInfo is a map the programs use, with what its operations need.
type mapInfo struct {
	addr  uint64
	model *bpf.Map
	typ   uint32
	key   uint32
	value uint32
	max   uint32
	flags uint32
	// ops are the names of the map's lookup, update and delete.
	opsLookup, opsUpdate, opsDelete string

	// Hash maps.
	buckets, nBuckets, elemSize, valOff uint64
	hashrnd                             uint32
	count                               int64 // elements, -1 before counted

	// Arrays.
	arrElem, arrMask, arrBase uint64

	// LPM tries.
	dataSize, maxPrefix uint64

	// dump is the map's entries in the dump (MapChanges).
	dump *mapState
}

func (mi *mapInfo) String() string {
	return fmt.Sprintf("map %d (%s %s)", mi.model.ID, mi.model.TypeName, mi.model.Name)
}

func (mi *mapInfo) percpu() bool {
	switch mi.typ {
	case bpf.MapTypePerCPUHash, bpf.MapTypeLRUPerCPUHash, bpf.MapTypePerCPUArray:
		return true
	}
	return false
}

func (mi *mapInfo) lru() bool {
	return mi.typ == bpf.MapTypeLRUHash || mi.typ == bpf.MapTypeLRUPerCPUHash
}

func (mi *mapInfo) hash() bool {
	switch mi.typ {
	case bpf.MapTypeHash, bpf.MapTypePerCPUHash, bpf.MapTypeLRUHash, bpf.MapTypeLRUPerCPUHash:
		return true
	}
	return false
}

// mapAt decodes the struct bpf_map at addr once per session.
func (s *Session) mapAt(addr uint64) (*mapInfo, error) {
	if mi, ok := s.maps[addr]; ok {
		return mi, nil
	}
	p := s.r.prog
	v, err := p.ObjectOf("struct bpf_map", addr)
	if err != nil {
		return nil, err
	}
	model, err := bpf.NewMap(v)
	if err != nil {
		return nil, fmt.Errorf("map at %#x: %w", addr, err)
	}
	mi := &mapInfo{addr: addr, model: model, typ: model.Type, key: model.KeySize, value: model.ValueSize,
		max: model.MaxEntries, flags: model.Flags, count: -1}
	l := s.lay
	if ops, err := p.ReadU64(addr + uint64(l.mapOps)); err == nil && ops != 0 {
		name := func(off int64) string {
			if off < 0 {
				return ""
			}
			fn, err := p.ReadU64(ops + uint64(off))
			if err != nil || fn == 0 {
				return ""
			}
			n, _ := symbolsAt{s.r}.SymbolAt(fn)
			return n
		}
		mi.opsLookup, mi.opsUpdate, mi.opsDelete = name(l.opsLookup), name(l.opsUpdate), name(l.opsDelete)
	}
	switch {
	case mi.hash():
		if err := need("struct bpf_htab", l.htabBuckets, l.htabNBuckets, l.htabElemSize, l.htabHashrnd, l.bucketSize, l.bucketHead,
			l.elemNext, l.elemPprev, l.elemHash, l.elemKey); err != nil {
			return nil, err
		}
		h, err := objects.ContainerOf(v, "struct bpf_htab", "map")
		if err != nil {
			return nil, err
		}
		b := h.Addr()
		if mi.buckets, err = p.ReadU64(b + uint64(l.htabBuckets)); err != nil {
			return nil, err
		}
		var buf [4]byte
		for _, f := range []struct {
			off int64
			dst *uint64
		}{{l.htabNBuckets, &mi.nBuckets}, {l.htabElemSize, &mi.elemSize}} {
			if err := p.Read(buf[:], b+uint64(f.off)); err != nil {
				return nil, err
			}
			*f.dst = uint64(binary.LittleEndian.Uint32(buf[:]))
		}
		if err := p.Read(buf[:], b+uint64(l.htabHashrnd)); err != nil {
			return nil, err
		}
		mi.hashrnd = binary.LittleEndian.Uint32(buf[:])
		if mi.nBuckets == 0 || mi.nBuckets&(mi.nBuckets-1) != 0 {
			return nil, fmt.Errorf("%s: n_buckets %d: %w", mi, mi.nBuckets, objects.ErrCorrupt)
		}
		mi.valOff = uint64(l.elemKey) + (uint64(mi.key)+7)&^7
	case mi.typ == bpf.MapTypeArray, mi.typ == bpf.MapTypePerCPUArray, mi.typ == bpf.MapTypeProgArray, mi.typ == bpf.MapTypePerfEventArray:
		if err := need("struct bpf_array", l.arrElemSize, l.arrIndexMask, l.arrValue, l.arrPtrs); err != nil {
			return nil, err
		}
		a, err := objects.ContainerOf(v, "struct bpf_array", "map")
		if err != nil {
			return nil, err
		}
		es, err1 := p.UintAt("struct bpf_array", a.Addr(), "elem_size")
		mask, err2 := p.UintAt("struct bpf_array", a.Addr(), "index_mask")
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		mi.arrElem, mi.arrMask, mi.arrBase = es, mask, a.Addr()+uint64(l.arrValue)
		if mi.typ != bpf.MapTypeArray {
			mi.arrElem, mi.arrBase = 8, a.Addr()+uint64(l.arrPtrs)
		}
	case mi.typ == bpf.MapTypeLPMTrie:
		if err := need("struct lpm_trie", l.trieRoot, l.trieNEntries, l.trieMaxPrefixlen, l.trieDataSize, l.nodeChild, l.nodePrefixlen,
			l.nodeFlags, l.nodeData, l.nodeSize); err != nil {
			return nil, err
		}
		t, err := objects.ContainerOf(v, "struct lpm_trie", "map")
		if err != nil {
			return nil, err
		}
		if mi.dataSize, err = p.ReadU64(t.Addr() + uint64(l.trieDataSize)); err != nil {
			return nil, err
		}
		if mi.maxPrefix, err = p.ReadU64(t.Addr() + uint64(l.trieMaxPrefixlen)); err != nil {
			return nil, err
		}
		if mi.dataSize > 256 || mi.maxPrefix != 8*mi.dataSize {
			return nil, fmt.Errorf("%s: data_size %d, max_prefixlen %d: %w", mi, mi.dataSize, mi.maxPrefix, objects.ErrCorrupt)
		}
		mi.arrBase = t.Addr() // the struct lpm_trie
	}
	s.maps[addr] = mi
	return mi, nil
}

// useMap marks a map a program run used, for MapChanges.
func (s *Session) useMap(addr uint64) { s.used[addr] = true }

// percpuCopy is the address of the current CPU's copy of the per-CPU
// object at pptr (this_cpu_ptr).
func (s *Session) percpuCopy(pptr uint64) uint64 { return pptr + s.m.Options().PerCPUOffset }

// allocPercpu allocates size zeroed bytes of per-CPU memory: a pointer
// whose copy on every possible CPU (pointer plus the CPU's per-CPU
// offset) the machine maps, at addresses the dump does not hold (beyond
// the kernel's own per-CPU chunks).
func (s *Session) allocPercpu(size uint64) (uint64, error) {
	l := s.lay
	if len(l.cpuOffs) == 0 {
		return 0, fmt.Errorf("per-CPU allocation: the possible CPUs are unknown: %w", ErrNotSupported)
	}
	size = (size + 7) &^ 7
	for try := 0; try < 8; try++ {
		if s.pcpuNext == 0 {
			// 1 TiB above the per-CPU areas, where the direct map
			// holds no memory of a machine with less.
			s.pcpuNext = uint64(1)<<40 + uint64(try)<<40
		}
		p := s.pcpuNext
		ok := true
		for _, off := range l.cpuOffs {
			if err := s.m.MapAt(p+off, int(size)); err != nil {
				if errors.Is(err, bpfvm.ErrNoMemory) {
					return 0, err
				}
				ok = false
				break
			}
		}
		if ok {
			s.grewAny = true
			s.pcpuNext += size
			return p, nil
		}
		s.pcpuNext = 0
	}
	return 0, fmt.Errorf("per-CPU allocation of %d bytes: no free range: %w", size, bpfvm.ErrNoMemory)
}

// Used are the maps the session's runs used (of the programs run, tail
// calls included), by address.
func (s *Session) Used() []uint64 {
	var out []uint64
	for a := range s.used {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
