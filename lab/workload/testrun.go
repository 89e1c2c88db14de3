package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// The test runs: every test-runnable program of the workload (socket
// filter, tc, XDP, cgroup_skb, raw tracepoint) is run with
// BPF_PROG_TEST_RUN on several inputs, chosen to take every branch,
// from one recorded map state; truth/testrun/NAME.json records what the
// kernel returned and every map entry each run changed (the format is
// documented in bpfrun/truth_test.go). After each run the changed entries
// are written back and the output maps drained, so every run starts from
// the same state and the dump holds it.

const testrunObject = "testrun.bpf.o"

// testrunCPU is the CPU the test runs are pinned to (the spinner's is 1).
const testrunCPU = 0

// Contents of testrun.bpf.o's maps, as written to the ready file.
const (
	trHashContent  = `keys 1..4: value=100*k (u64)`
	trArrayContent = `all 8 slots: value=0x10+i (u64)`
	trPcpuContent  = `all 4 slots: value on cpu c = 0x700+0x10*i+c`
	trLRUContent   = `keys 1..8: value=0x300+k (u64)`
	trLPMContent   = `10.9.0.0/16=0x21 10.9.1.0/24=0x22 192.0.2.0/24=0x23`
	trProgsContent = `slot 0 = ki_tr_tail0, slot 1 = ki_tr_tail1`
)

// trLPM are the entries of ki_tr_lpm.
var trLPM = []struct {
	addr  [4]byte
	bits  uint32
	value uint32
}{
	{[4]byte{10, 9, 0, 0}, 16, 0x21},
	{[4]byte{10, 9, 1, 0}, 24, 0x22},
	{[4]byte{192, 0, 2, 0}, 24, 0x23},
}

// loadTestrun loads testrun.bpf.o, fills its maps and installs the tail
// call targets. Its programs are only test-run, never attached.
func (r *runner) loadTestrun() error {
	path := filepath.Join(r.cfg.BPFDir, testrunObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
	}
	keep = append(keep, coll)
	r.tr = coll
	m, p := coll.Maps, coll.Programs
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("possible CPUs: %w", err)
	}
	fixed := func(n int) func() (int, error) { return func() (int, error) { return n, nil } }

	for k := uint32(1); k <= 4; k++ {
		if err := m["ki_tr_hash"].Update(k, uint64(100*k), ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_tr_hash[%d]: %w", k, err)
		}
	}
	r.addMap("ki_tr_hash", m["ki_tr_hash"], true, trHashContent, keysOf(m["ki_tr_hash"]))
	for i := uint32(0); i < 8; i++ {
		if err := m["ki_tr_array"].Update(i, uint64(0x10+i), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("ki_tr_array[%d]: %w", i, err)
		}
	}
	r.addMap("ki_tr_array", m["ki_tr_array"], true, trArrayContent, fixed(8))
	for i := uint32(0); i < 4; i++ {
		vals := make([]uint64, ncpu)
		for c := range vals {
			vals[c] = uint64(0x700 + 0x10*i + uint32(c))
		}
		if err := m["ki_tr_pcpu"].Update(i, vals, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("ki_tr_pcpu[%d]: %w", i, err)
		}
	}
	r.addMap("ki_tr_pcpu", m["ki_tr_pcpu"], true, trPcpuContent, fixed(4))
	for k := uint32(1); k <= 8; k++ {
		if err := m["ki_tr_lru"].Update(k, uint64(0x300+k), ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_tr_lru[%d]: %w", k, err)
		}
	}
	r.addMap("ki_tr_lru", m["ki_tr_lru"], true, trLRUContent, keysOf(m["ki_tr_lru"]))
	for _, e := range trLPM {
		if err := m["ki_tr_lpm"].Update(kiLPMKey{PrefixLen: e.bits, Addr: e.addr}, e.value, ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_tr_lpm %v/%d: %w", e.addr, e.bits, err)
		}
	}
	r.addMap("ki_tr_lpm", m["ki_tr_lpm"], true, trLPMContent, keysOf(m["ki_tr_lpm"]))
	for i, name := range []string{"ki_tr_tail0", "ki_tr_tail1"} {
		if err := m["ki_tr_progs"].Update(uint32(i), p[name], ebpf.UpdateAny); err != nil {
			return fmt.Errorf("install %s in ki_tr_progs: %w", name, err)
		}
	}
	r.addMap("ki_tr_progs", m["ki_tr_progs"], false, trProgsContent, progArraySlots(m["ki_tr_progs"]))
	r.addMap("ki_tr_rb", m["ki_tr_rb"], false, "ki_tr_rawtp's records, consumed after each test run", fixed(0))
	perfContent := "no perf events installed"
	installed := 0
	if rd, err := perf.NewReader(m["ki_tr_perf"], os.Getpagesize()); err != nil {
		r.note("ki_tr_perf: opening per-CPU perf buffers failed: %v", err)
	} else {
		keep = append(keep, rd)
		r.trPerf = rd
		installed = ncpu
		perfContent = fmt.Sprintf("a BPF output perf event on each of %d CPUs; ki_tr_xdp's records consumed after each test run", ncpu)
	}
	r.addMap("ki_tr_perf", m["ki_tr_perf"], false, perfContent, func() (int, error) { return installed, nil })

	r.addProg("ki_tr_sock", p["ki_tr_sock"], "")
	r.addProg("ki_tr_tc", p["ki_tr_tc"], "")
	r.addProg("ki_tr_tail0", p["ki_tr_tail0"], "ki_tr_progs[0]")
	r.addProg("ki_tr_tail1", p["ki_tr_tail1"], "ki_tr_progs[1]")
	r.addProg("ki_tr_xdp", p["ki_tr_xdp"], "")
	r.addProg("ki_tr_cgskb", p["ki_tr_cgskb"], "")
	r.addProg("ki_tr_rawtp", p["ki_tr_rawtp"], "")
	return r.loadLRUEv()
}

// trInput is one test run's input.
type trInput struct {
	data   []byte
	ctx    []byte
	repeat uint32
}

// Truth file types: bpfrun/truth_test.go's format.
type trFile struct {
	ProgID   uint32 `json:"prog_id"`
	ProgName string `json:"prog_name"`
	ProgType string `json:"prog_type"`
	Note     string `json:"note,omitempty"`
	// ReplayProgID, ReplayMaps and Chained: see lruev.go.
	ReplayProgID uint32            `json:"replay_prog_id,omitempty"`
	ReplayMaps   map[string]uint32 `json:"replay_maps,omitempty"`
	Chained      bool              `json:"chained,omitempty"`
	Runs         []trRun           `json:"runs"`
}

type trRun struct {
	DataIn     string     `json:"data_in"`
	CtxIn      string     `json:"ctx_in,omitempty"`
	Repeat     uint32     `json:"repeat"`
	CPU        int        `json:"cpu"`
	PID        int        `json:"pid"`
	Retval     uint32     `json:"retval"`
	DataOut    *string    `json:"data_out,omitempty"`
	CtxOut     *string    `json:"ctx_out,omitempty"`
	MapChanges []trChange `json:"map_changes"`
}

type trChange struct {
	MapID  uint32  `json:"map_id"`
	Key    string  `json:"key"`
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// skbCtxSize is the struct __sk_buff given as ctx_in: the 6.1 uapi
// layout's size (the kernel accepts a longer one if the rest is zero).
const skbCtxSize = 192

// skbCtx returns a struct __sk_buff for ctx_in with mark, priority and
// cb[0..4] set: the fields BPF_PROG_TEST_RUN takes from user space.
func skbCtx(mark, priority uint32, cb ...uint32) []byte {
	b := make([]byte, skbCtxSize)
	binary.LittleEndian.PutUint32(b[8:], mark)
	binary.LittleEndian.PutUint32(b[32:], priority)
	for i, v := range cb {
		binary.LittleEndian.PutUint32(b[48+4*i:], v)
	}
	return b
}

// ether returns an n-byte Ethernet frame of type typ carrying payload
// (cut at n), padded with a counting pattern.
func ether(typ uint16, payload []byte, n int) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, byte(typ >> 8), byte(typ)}
	b = append(b, payload...)
	if len(b) > n {
		b = b[:n]
	}
	for i := len(b); i < n; i++ {
		b = append(b, byte(i))
	}
	return b
}

// ipv4Frame returns an n-byte Ethernet frame with an IPv4 header of
// protocol proto to dst.
func ipv4Frame(proto byte, dst [4]byte, n int) []byte {
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(n-14))
	ip[8] = 64
	ip[9] = proto
	copy(ip[12:16], []byte{10, 0, 0, 1})
	copy(ip[16:20], dst[:])
	return ether(0x0800, ip, n)
}

// rawtpCtx returns a raw tracepoint's ctx_in: the u64 arguments.
func rawtpCtx(args ...uint64) []byte {
	b := make([]byte, 8*len(args))
	for i, a := range args {
		binary.LittleEndian.PutUint64(b[8*i:], a)
	}
	return b
}

// testrunInputs are the inputs of each program, by name, and why a
// branch is not taken where one is not.
func testrunInputs() (map[string][]trInput, map[string]string) {
	sockPayload := func(b0, b1, b2 byte, n int) []byte {
		return ether(0x0800, []byte{b0, b1, b2, 0x11, 0x22, 0x33, 0x44, 0x55}, n)
	}
	big := ether(0x0800, []byte{4, 3, 15, 0xff, 0xfe, 0xfd, 0xfc, 0xfb}, 40)
	in := map[string][]trInput{
		"ki_tr_sock": {
			{data: ether(0x88b5, []byte{1, 0, 5}, 17)},  // short: bpf_skb_load_bytes fails
			{data: sockPayload(1, 0, 5, 40)},            // lookup hit: += 5
			{data: sockPayload(1, 0, 5, 40), repeat: 3}, // three times
			{data: sockPayload(6, 0, 9, 40)},            // lookup miss: insert
			{data: sockPayload(2, 1, 0, 40)},            // delete hit
			{data: sockPayload(7, 1, 0, 40)},            // delete miss
			{data: sockPayload(3, 2, 0x44, 60)},         // LRU update through a BPF-to-BPF call
			{data: sockPayload(4, 3, 10, 60)},           // bpf_loop 10 times
			{data: big},                                 // bpf_loop stopped by its callback
			{data: sockPayload(5, 3, 0, 40), repeat: 2}, // bpf_loop 0 times
		},
		"ki_tr_tc": {
			{data: ipv4Frame(17, [4]byte{10, 9, 1, 2}, 34)},                              // short: the port load fails
			{data: ipv4Frame(17, [4]byte{10, 9, 1, 2}, 64), ctx: skbCtx(0, 3)},           // /24 match: mark, per-CPU count
			{data: ipv4Frame(6, [4]byte{10, 9, 7, 7}, 80), ctx: skbCtx(0, 0), repeat: 2}, // /16 match
			{data: ipv4Frame(17, [4]byte{8, 8, 8, 8}, 64)},                               // no match: MAC rewritten, shot
			{data: ether(0x86dd, nil, 70), ctx: skbCtx(0, 0, 0, 5)},                      // tail call to slot 0
			{data: ether(0x86dd, nil, 90), ctx: skbCtx(1, 0, 0, 0x33)},                   // tail call to slot 1
			{data: ether(0x86dd, nil, 60), ctx: skbCtx(2, 0)},                            // empty slot
			{data: ether(0x0806, nil, 42), ctx: skbCtx(5, 0)},                            // other: len + mark
			{data: ether(0x0806, nil, 14)},                                               // other, header only
		},
		"ki_tr_tail0": {
			{data: ether(0x88b5, nil, 14)},
			{data: ether(0x86dd, nil, 60), ctx: skbCtx(0, 0)},
			{data: ether(0x0800, nil, 100), ctx: skbCtx(4, 1, 9, 9)},
			{data: ether(0x0806, nil, 42), repeat: 2},
			{data: ether(0x86dd, nil, 1000)},
		},
		"ki_tr_tail1": {
			{data: ether(0x88b5, nil, 14)},
			{data: ether(0x86dd, nil, 60), ctx: skbCtx(0, 0, 0, 0x5a)},
			{data: ether(0x0800, nil, 100), ctx: skbCtx(4, 1, 9, 0xffffffff)},
			{data: ether(0x0806, nil, 42), repeat: 2},
			{data: ether(0x86dd, nil, 1000), ctx: skbCtx(0, 0, 1, 2, 3, 4, 5)},
		},
		"ki_tr_xdp": {
			{data: append([]byte{0}, ether(0x0800, nil, 63)...)}, // pop 14
			{data: append([]byte{4}, ether(0x0800, nil, 19)...)}, // pop fails: less than 14 left
			{data: append([]byte{1}, ether(0x0800, nil, 39)...)}, // push 4
			{data: append([]byte{2}, ether(0x0800, nil, 63)...)}, // trim 8
			{data: append([]byte{6}, ether(0x0800, nil, 17)...)}, // trim fails: less than 14 left
			{data: append([]byte{3}, ether(0x0800, nil, 49)...)}, // grow 16
		},
		"ki_tr_cgskb": {
			{data: ether(0x88b5, []byte{0x45, 0, 0, 0, 0}, 19)}, // short: the load fails
			{data: ipv4Frame(17, [4]byte{10, 9, 1, 2}, 64)},     // UDP: per-CPU add
			{data: ipv4Frame(6, [4]byte{10, 9, 1, 2}, 14+34)},   // TCP: LRU key 2 deleted
			{data: ipv4Frame(6, [4]byte{10, 9, 1, 2}, 14+60)},   // TCP: LRU key 28 absent
			{data: ipv4Frame(1, [4]byte{10, 9, 1, 2}, 64)},      // ICMP: dropped
			{data: ipv4Frame(47, [4]byte{10, 9, 1, 2}, 77), repeat: 2},
		},
		"ki_tr_rawtp": {
			{ctx: rawtpCtx(0x1234, 39)},             // ringbuf record
			{ctx: rawtpCtx(0x02010910, 5)},          // 16.9.1.2: no match
			{ctx: rawtpCtx(0x0201090a, 5)},          // 10.9.1.2: /24
			{ctx: rawtpCtx(0x0807090a, 15)},         // 10.9.7.8: /16
			{ctx: rawtpCtx(0x0807060504030201, 20)}, // bpf_loop 4 times
			{ctx: rawtpCtx(0xf0f1f2f3f4f5f6f7, 31)}, // bpf_loop stopped by its callback
			{ctx: rawtpCtx(2, 100)},                 // per-CPU update, delete hit
			{ctx: rawtpCtx(12, 1000)},               // per-CPU update, delete miss
			{ctx: rawtpCtx(3, 64, 0xdead)},          // a longer ctx_in
		},
		// The core object's programs.
		"ki_sock_filter": {
			{data: ether(0x88b5, nil, 14)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 64)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 100), repeat: 2},
			{data: ether(0x86dd, nil, 70)},
			{data: ether(0x0806, nil, 1500)}, // key 11: no entry
		},
		"ki_tail_entry": {
			{data: ether(0x88b5, nil, 14)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 64)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 100), repeat: 2},
			{data: ether(0x86dd, nil, 70)},
			{data: ether(0x0806, nil, 1200)}, // the empty slot 3
		},
		"ki_tail_tgt": {
			{data: ether(0x88b5, nil, 14)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 64)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 100), repeat: 3},
			{data: ether(0x86dd, nil, 70)},
			{data: ether(0x0806, nil, 300)},
		},
		"ki_rb_produce": {
			{data: ether(0x88b5, nil, 14)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 64), ctx: skbCtx(7, 0)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 100), repeat: 2},
			{data: ether(0x86dd, nil, 70), ctx: skbCtx(0xffffffff, 2)},
			{data: ether(0x0806, nil, 300)},
		},
		"ki_cgroup_skb": {
			{data: ether(0x88b5, nil, 14)},
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 64)},
			{data: ipv4Frame(6, [4]byte{10, 1, 2, 3}, 100), repeat: 2},
			{data: ether(0x86dd, nil, 70)},
			{data: ether(0x0806, nil, 300)},
		},
		"ki_xdp": {
			{data: ether(0x88b5, nil, 14)},                               // too short for IPv4
			{data: ipv4Frame(17, [4]byte{10, 1, 2, 3}, 64)},              // /24
			{data: ipv4Frame(17, [4]byte{192, 168, 7, 42}, 64)},          // /32
			{data: ipv4Frame(17, [4]byte{8, 8, 8, 8}, 100)},              // /0
			{data: ether(0x86dd, make([]byte, 40), 70)},                  // not IPv4
			{data: ipv4Frame(17, [4]byte{172, 17, 0, 1}, 34), repeat: 2}, // /12, just long enough
		},
		"ki_spin": {
			{data: ether(0x88b5, nil, 14)},
			{data: ether(0x88b5, nil, 64), ctx: skbCtx(1, 0)},
			{data: ether(0x0800, nil, 65), ctx: skbCtx(0x12345678, 0)},
			{data: ether(0x86dd, nil, 200)},
			{data: ether(0x0806, nil, 1514), ctx: skbCtx(0xffffffff, 0)},
		},
	}
	in[lruevRun] = lruevInputs()
	notes := map[string]string{
		lruevRun:        "chained: each run starts from the state the one before left; replayed on " + lruevTwin + ", whose maps hold the state the first run started from (lruev.bpf.c)",
		"ki_xdp":        "run before ki_perf_events has perf buffers: bpf_perf_event_output fails with ENOENT (its result is not used), so no record is left",
		"ki_tr_xdp":     "its records in ki_tr_perf are consumed after each run; ki_tr_array[6] holds bpf_perf_event_output's result",
		"ki_tr_rawtp":   "its records in ki_tr_rb are consumed after each run",
		"ki_rb_produce": "its records in ki_ringbuf are consumed after each run (before the pending records are written)",
	}
	return in, notes
}

// volatileEntry says whether a map entry changes outside the test runs,
// so that a change seen around a run is not the run's: ki_counters[0..2]
// count attached kprobe, tracepoint and fentry runs (Go's runtime calls
// nanosleep all the time), and no test-run program writes them.
func volatileEntry(mapName string, key []byte) bool {
	return mapName == "ki_counters" && len(key) == 4 && binary.LittleEndian.Uint32(key) < 3
}

// keepCounters runs fn, which runs programs that count in ki_counters
// (the pending records' ki_rb_produce and ki_xdp), and writes back the
// counters it moved, but the volatile ones: the test runs' truth has the
// counters' values before those runs, and the dump must hold them.
func (r *runner) keepCounters(fn func() error) error {
	m := r.core.Maps["ki_counters"]
	before := map[uint32]uint64{}
	for i := uint32(3); i < m.MaxEntries(); i++ {
		var v uint64
		if err := m.Lookup(i, &v); err != nil {
			return fmt.Errorf("ki_counters[%d]: %w", i, err)
		}
		before[i] = v
	}
	if err := fn(); err != nil {
		return err
	}
	for i, v := range before {
		if err := m.Update(i, v, ebpf.UpdateExist); err != nil {
			return fmt.Errorf("ki_counters[%d]: %w", i, err)
		}
	}
	return nil
}

// testRuns runs the programs of testrunInputs that only selects and
// writes DIR/NAME.json; it does nothing without -testrun.
func (r *runner) testRuns(only func(name string) bool) error {
	dir := r.cfg.TestrunDir
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	inputs, notes := testrunInputs()
	progs := map[string]*ebpf.Program{"ki_spin": r.spin}
	for n, p := range r.core.Programs {
		progs[n] = p
	}
	for n, p := range r.tr.Programs {
		progs[n] = p
	}
	progs[lruevRun] = r.lruev.run.Programs[lruevTwin]
	// ki_tr_xdp's perf records, consumed after each run.
	drainPerf := func() error {
		if r.trPerf == nil {
			return nil
		}
		for {
			r.trPerf.SetDeadline(time.Now().Add(10 * time.Millisecond))
			if _, err := r.trPerf.Read(); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return nil
				}
				return fmt.Errorf("drain ki_tr_perf: %w", err)
			}
		}
	}

	names := make([]string, 0, len(inputs))
	for n := range inputs {
		if only(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	total := 0
	for _, name := range names {
		p := progs[name]
		if p == nil {
			return fmt.Errorf("no program %s", name)
		}
		tf, err := testrunProg(name, p, inputs[name], drainPerf, name == lruevRun)
		if err == nil && name == lruevRun {
			err = r.lruevReplay(tf)
		}
		if err != nil {
			// A failed run leaves no truth file: the test sees the
			// program missing, and the note says why.
			r.note("test runs of %s: %v", name, err)
			continue
		}
		tf.Note = notes[name]
		if err := writeJSONFile(filepath.Join(dir, name+".json"), tf); err != nil {
			return err
		}
		total += len(tf.Runs)
	}
	r.logf("test runs: %d programs, %d runs, written to %s", len(names), total, dir)
	return nil
}

// trMap is a map a program uses, as the test runs snapshot it.
type trMap struct {
	id   uint32
	name string
	m    *ebpf.Map
	vlen int // the value as BPF_MAP_LOOKUP_ELEM returns it
}

// snapshotable says whether BPF_MAP_LOOKUP_ELEM reads t's entries by key
// (the maps whose entries bpfrun's MapChanges compares).
func snapshotable(t ebpf.MapType) bool {
	switch t {
	case ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash, ebpf.Array, ebpf.PerCPUArray, ebpf.LPMTrie:
		return true
	}
	return false
}

// testrunProg runs p on every input, pinned to testrunCPU. After each
// run it restores the maps (unless chained: then each run starts from
// the state the one before left), consumes the records of the ring
// buffers p uses and calls drainPerf.
func testrunProg(name string, p *ebpf.Program, inputs []trInput, drainPerf func() error, chained bool) (*trFile, error) {
	info, err := p.Info()
	if err != nil {
		return nil, err
	}
	id, _ := info.ID()
	tf := &trFile{ProgID: uint32(id), ProgName: name, ProgType: progTypeName(p.Type())}
	ids, err := usedMaps(info)
	if err != nil {
		return nil, err
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	var maps []*trMap
	var rings []*ringbuf.Reader
	drain := func() error {
		for _, rd := range rings {
			for rd.AvailableBytes() > 0 {
				rd.SetDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := rd.Read(); err != nil {
					return fmt.Errorf("drain ring buffer: %w", err)
				}
			}
		}
		return drainPerf()
	}
	for _, mid := range ids {
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			return nil, fmt.Errorf("map %d: %w", mid, err)
		}
		defer m.Close()
		if m.Type() == ebpf.RingBuf {
			rd, err := ringbuf.NewReader(m)
			if err != nil {
				return nil, fmt.Errorf("map %d: ring buffer reader: %w", mid, err)
			}
			defer rd.Close()
			rings = append(rings, rd)
		}
		if !snapshotable(m.Type()) {
			continue
		}
		mi, err := m.Info()
		if err != nil {
			return nil, err
		}
		tm := &trMap{id: uint32(mid), name: mi.Name, m: m, vlen: int(m.ValueSize())}
		if m.Type() == ebpf.PerCPUHash || m.Type() == ebpf.LRUCPUHash || m.Type() == ebpf.PerCPUArray {
			tm.vlen = (int(m.ValueSize()) + 7) / 8 * 8 * ncpu
		}
		maps = append(maps, tm)
	}

	err = onCPU(testrunCPU, func() error {
		tid := unix.Gettid()
		for i, in := range inputs {
			before, err := snapshotMaps(maps)
			if err != nil {
				return err
			}
			run := trRun{DataIn: hex.EncodeToString(in.data), Repeat: in.repeat, CPU: testrunCPU, PID: tid}
			opts := &ebpf.RunOptions{Repeat: in.repeat}
			if in.data != nil {
				opts.Data = in.data
				opts.DataOut = make([]byte, len(in.data)+4096)
			}
			var ctxOut []byte
			if in.ctx != nil {
				opts.Context = in.ctx
				run.CtxIn = hex.EncodeToString(in.ctx)
				if p.Type() != ebpf.RawTracepoint {
					ctxOut = make([]byte, len(in.ctx))
					opts.ContextOut = ctxOut
				}
			}
			ret, err := p.Run(opts)
			if err != nil {
				return fmt.Errorf("run %d: %w", i, err)
			}
			run.Retval = ret
			if in.data != nil {
				s := hex.EncodeToString(opts.DataOut)
				run.DataOut = &s
			}
			if ctxOut != nil {
				s := hex.EncodeToString(ctxOut)
				run.CtxOut = &s
			}
			after, err := snapshotMaps(maps)
			if err != nil {
				return err
			}
			run.MapChanges = []trChange{}
			for mi, tm := range maps {
				changes := diffMap(tm, before[mi], after[mi])
				run.MapChanges = append(run.MapChanges, changes...)
				if chained {
					continue
				}
				if err := restoreMap(tm, before[mi], after[mi]); err != nil {
					return fmt.Errorf("run %d: restore map %s: %w", i, tm.name, err)
				}
			}
			if err := drain(); err != nil {
				return err
			}
			tf.Runs = append(tf.Runs, run)
		}
		return nil
	})
	return tf, err
}

// usedMaps returns the IDs of the maps a program uses and, through its
// prog arrays, the maps of the programs it can tail-call.
func usedMaps(info *ebpf.ProgramInfo) ([]ebpf.MapID, error) {
	seenProg := map[ebpf.ProgramID]bool{}
	seenMap := map[ebpf.MapID]bool{}
	var out []ebpf.MapID
	var visit func(info *ebpf.ProgramInfo) error
	visit = func(info *ebpf.ProgramInfo) error {
		if id, ok := info.ID(); ok {
			if seenProg[id] {
				return nil
			}
			seenProg[id] = true
		}
		ids, _ := info.MapIDs()
		for _, mid := range ids {
			if seenMap[mid] {
				continue
			}
			seenMap[mid] = true
			out = append(out, mid)
			m, err := ebpf.NewMapFromID(mid)
			if err != nil {
				return fmt.Errorf("map %d: %w", mid, err)
			}
			if m.Type() != ebpf.ProgramArray {
				m.Close()
				continue
			}
			for i := uint32(0); i < m.MaxEntries(); i++ {
				var pid uint32
				if err := m.Lookup(i, &pid); err != nil {
					continue // an empty slot
				}
				p, err := ebpf.NewProgramFromID(ebpf.ProgramID(pid))
				if err != nil {
					m.Close()
					return fmt.Errorf("program %d in map %d: %w", pid, mid, err)
				}
				pinfo, err := p.Info()
				p.Close()
				if err != nil {
					m.Close()
					return err
				}
				if err := visit(pinfo); err != nil {
					m.Close()
					return err
				}
			}
			m.Close()
		}
		return nil
	}
	err := visit(info)
	return out, err
}

// progTypeName names a program type as bpftool does.
func progTypeName(t ebpf.ProgramType) string {
	switch t {
	case ebpf.SocketFilter:
		return "socket_filter"
	case ebpf.SchedCLS:
		return "sched_cls"
	case ebpf.XDP:
		return "xdp"
	case ebpf.CGroupSKB:
		return "cgroup_skb"
	case ebpf.RawTracepoint:
		return "raw_tracepoint"
	}
	return t.String()
}

// mapSnap is a map's entries: value bytes by key.
type mapSnap map[string][]byte

// snapshotMaps reads every entry of every map.
func snapshotMaps(maps []*trMap) ([]mapSnap, error) {
	out := make([]mapSnap, len(maps))
	for i, tm := range maps {
		s := mapSnap{}
		key := make([]byte, tm.m.KeySize())
		next := make([]byte, tm.m.KeySize())
		first := true
		for n := 0; ; n++ {
			var err error
			if first {
				err = bpfMapCall(unix.BPF_MAP_GET_NEXT_KEY, tm.m.FD(), nil, next, 0)
			} else {
				err = bpfMapCall(unix.BPF_MAP_GET_NEXT_KEY, tm.m.FD(), key, next, 0)
			}
			if errors.Is(err, unix.ENOENT) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("map %s: next key: %w", tm.name, err)
			}
			if n > int(tm.m.MaxEntries())+1 {
				return nil, fmt.Errorf("map %s: more keys than max_entries", tm.name)
			}
			first = false
			copy(key, next)
			val := make([]byte, tm.vlen)
			err = bpfMapCall(unix.BPF_MAP_LOOKUP_ELEM, tm.m.FD(), key, val, 0)
			if errors.Is(err, unix.ENOENT) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("map %s: lookup % x: %w", tm.name, key, err)
			}
			s[string(key)] = val
		}
		out[i] = s
	}
	return out, nil
}

// diffMap lists the entries that differ between before and after,
// leaving out volatile ones.
func diffMap(tm *trMap, before, after mapSnap) []trChange {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []trChange
	for _, k := range sorted {
		b, inB := before[k]
		a, inA := after[k]
		if inB == inA && bytes.Equal(a, b) {
			continue
		}
		if volatileEntry(tm.name, []byte(k)) {
			continue
		}
		c := trChange{MapID: tm.id, Key: hex.EncodeToString([]byte(k))}
		if inB {
			s := hex.EncodeToString(b)
			c.Before = &s
		}
		if inA {
			s := hex.EncodeToString(a)
			c.After = &s
		}
		out = append(out, c)
	}
	return out
}

// restoreMap writes back the entries a run changed (not the volatile
// ones, which other programs own).
func restoreMap(tm *trMap, before, after mapSnap) error {
	for k, a := range after {
		b, ok := before[k]
		if volatileEntry(tm.name, []byte(k)) || (ok && bytes.Equal(a, b)) {
			continue
		}
		if !ok {
			if err := bpfMapCall(unix.BPF_MAP_DELETE_ELEM, tm.m.FD(), []byte(k), nil, 0); err != nil {
				return fmt.Errorf("delete % x: %w", k, err)
			}
			continue
		}
		if err := bpfMapCall(unix.BPF_MAP_UPDATE_ELEM, tm.m.FD(), []byte(k), b, unix.BPF_ANY); err != nil {
			return fmt.Errorf("update % x: %w", k, err)
		}
	}
	for k, b := range before {
		if _, ok := after[k]; ok || volatileEntry(tm.name, []byte(k)) {
			continue
		}
		if err := bpfMapCall(unix.BPF_MAP_UPDATE_ELEM, tm.m.FD(), []byte(k), b, unix.BPF_NOEXIST); err != nil {
			return fmt.Errorf("re-create % x: %w", k, err)
		}
	}
	return nil
}

// bpfMapAttr is union bpf_attr for the BPF_MAP_*_ELEM commands.
type bpfMapAttr struct {
	mapFD uint32
	_     uint32
	key   uint64
	value uint64 // value, or next_key for BPF_MAP_GET_NEXT_KEY
	flags uint64
}

// bpfMapCall is bpf(cmd) on a map with raw key and value buffers: the
// bytes exactly as the kernel reads and writes them (a per-CPU value is
// every possible CPU's, each padded to 8 bytes), which cilium/ebpf's
// typed per-CPU API does not hand out.
func bpfMapCall(cmd int, fd int, key, value []byte, flags uint64) error {
	attr := bpfMapAttr{mapFD: uint32(fd), flags: flags}
	if len(key) > 0 {
		attr.key = uint64(uintptr(unsafe.Pointer(&key[0])))
	}
	if len(value) > 0 {
		attr.value = uint64(uintptr(unsafe.Pointer(&value[0])))
	}
	_, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if e != 0 {
		return e
	}
	return nil
}
