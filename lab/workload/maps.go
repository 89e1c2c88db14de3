package main

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// kiValue mirrors struct ki_value in bpf/ki.bpf.c: the value of ki_hash.
type kiValue struct {
	Counters [4]uint64
	Name     [16]byte
	Flags    uint32
	ID       uint32
}

// kiLPMKey mirrors struct ki_lpm_key in bpf/ki.bpf.c: the key of ki_lpm.
type kiLPMKey struct {
	PrefixLen uint32
	Addr      [4]byte
}

// lpmPrefixes are the entries of ki_lpm: prefix -> value.
var lpmPrefixes = []struct {
	addr  [4]byte
	bits  uint32
	value uint32
}{
	{[4]byte{0, 0, 0, 0}, 0, 1},
	{[4]byte{10, 0, 0, 0}, 8, 2},
	{[4]byte{10, 1, 0, 0}, 16, 3},
	{[4]byte{10, 1, 2, 0}, 24, 4},
	{[4]byte{172, 16, 0, 0}, 12, 5},
	{[4]byte{192, 168, 0, 0}, 16, 6},
	{[4]byte{192, 168, 7, 42}, 32, 7},
}

// Contents of the deterministic maps, as written to the ready file.
const (
	hashContent      = `keys 1..8: counters={k,10k,100k,1000k} name="ki_entry_%02d"(k) flags=0x100+k id=k`
	arrayContent     = `all 16 slots: value=0x1000+i`
	countersContent  = `program run counters (not deterministic): 0 kprobe, 1 tracepoint, 2 fentry, 3 cgroup_skb, 4 xdp, 5 sock_filter, 6 tail_tgt, 7 rb_produce; 3..7 as the test runs found them (the pending records' runs are not counted)`
	pcpuArrayContent = `all 8 slots: value on cpu c = 0xa000+0x10*i+c`
	pcpuHashContent  = `keys 100..104: value on cpu c = 1000*k+c`
	lruContent       = `keys 1..10: value=k*k+0x5000`
	lpmContent       = `0.0.0.0/0=1 10.0.0.0/8=2 10.1.0.0/16=3 10.1.2.0/24=4 172.16.0.0/12=5 192.168.0.0/16=6 192.168.7.42/32=7`
	queueContent     = `values 0x1001,0x1002,0x1003,0x1004 (u32, pushed in that order)`
	stackMapContent  = `values 0x2001,0x2002,0x2003 (u32, pushed in that order)`
	lruPcpuContent   = `keys 1..4: value on cpu c = 0x100*k+c`
	noBTFContent     = `keys 1..5: value=0xc0de0000+k (u64), created without BTF`
	stackContent     = `kernel stacks of do_nanosleep callers, recorded by ki_kprobe`
	progArrayContent = `slot 0 = ki_tail_tgt`
)

// fillMaps fills every map of the core collection with its deterministic
// entries and registers them for the ready file. The ring buffer, perf
// event array, prog array and queue are filled by later phases.
func (r *runner) fillMaps() error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("possible CPUs: %w", err)
	}
	m := r.core.Maps
	fixed := func(n int) func() (int, error) { return func() (int, error) { return n, nil } }

	if err := fillHash(m["ki_hash"]); err != nil {
		return err
	}
	r.addMap("ki_hash", m["ki_hash"], true, hashContent, keysOf(m["ki_hash"]))

	for i := uint32(0); i < 16; i++ {
		if err := m["ki_array"].Update(i, uint64(0x1000+i), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("ki_array[%d]: %w", i, err)
		}
	}
	r.addMap("ki_array", m["ki_array"], true, arrayContent, fixed(16))
	r.addMap("ki_counters", m["ki_counters"], true, countersContent, fixed(8))

	for i := uint32(0); i < 8; i++ {
		vals := make([]uint64, ncpu)
		for c := range vals {
			vals[c] = uint64(0xa000 + 0x10*i + uint32(c))
		}
		if err := m["ki_pcpu_array"].Update(i, vals, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("ki_pcpu_array[%d]: %w", i, err)
		}
	}
	r.addMap("ki_pcpu_array", m["ki_pcpu_array"], true, pcpuArrayContent, fixed(8))

	for k := uint32(100); k <= 104; k++ {
		vals := make([]uint64, ncpu)
		for c := range vals {
			vals[c] = uint64(1000*k + uint32(c))
		}
		if err := m["ki_pcpu_hash"].Update(k, vals, ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_pcpu_hash[%d]: %w", k, err)
		}
	}
	r.addMap("ki_pcpu_hash", m["ki_pcpu_hash"], true, pcpuHashContent, keysOf(m["ki_pcpu_hash"]))

	for k := uint32(1); k <= 10; k++ {
		if err := m["ki_lru_hash"].Update(k, uint64(k*k+0x5000), ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_lru_hash[%d]: %w", k, err)
		}
	}
	r.addMap("ki_lru_hash", m["ki_lru_hash"], true, lruContent, keysOf(m["ki_lru_hash"]))

	for _, p := range lpmPrefixes {
		key := kiLPMKey{PrefixLen: p.bits, Addr: p.addr}
		if err := m["ki_lpm"].Update(key, p.value, ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_lpm %v/%d: %w", p.addr, p.bits, err)
		}
	}
	r.addMap("ki_lpm", m["ki_lpm"], true, lpmContent, keysOf(m["ki_lpm"]))

	for v := uint32(0x1001); v <= 0x1004; v++ {
		if err := m["ki_queue"].Update(nil, v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("push %#x onto ki_queue: %w", v, err)
		}
	}
	r.addMap("ki_queue", m["ki_queue"], false, queueContent, fixed(4))

	for v := uint32(0x2001); v <= 0x2003; v++ {
		if err := m["ki_stack"].Update(nil, v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("push %#x onto ki_stack: %w", v, err)
		}
	}
	r.addMap("ki_stack", m["ki_stack"], false, stackMapContent, fixed(3))

	for k := uint32(1); k <= 4; k++ {
		vals := make([]uint64, ncpu)
		for c := range vals {
			vals[c] = uint64(0x100*k + uint32(c))
		}
		if err := m["ki_lru_pcpu_hash"].Update(k, vals, ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_lru_pcpu_hash[%d]: %w", k, err)
		}
	}
	r.addMap("ki_lru_pcpu_hash", m["ki_lru_pcpu_hash"], true, lruPcpuContent, keysOf(m["ki_lru_pcpu_hash"]))

	r.addMap("ki_stack_trace", m["ki_stack_trace"], false, stackContent, keysOf(m["ki_stack_trace"]))

	nb, err := createNoBTFHash()
	if err != nil {
		return err
	}
	r.addMap("ki_hash_nobtf", nb, false, noBTFContent, keysOf(nb))
	return nil
}

// fillHash writes keys 1..8 of ki_hash.
func fillHash(m *ebpf.Map) error {
	for k := uint32(1); k <= 8; k++ {
		v := kiValue{
			Counters: [4]uint64{uint64(k), 10 * uint64(k), 100 * uint64(k), 1000 * uint64(k)},
			Flags:    0x100 + k,
			ID:       k,
		}
		copy(v.Name[:], fmt.Sprintf("ki_entry_%02d", k))
		if err := m.Update(k, v, ebpf.UpdateNoExist); err != nil {
			return fmt.Errorf("ki_hash[%d]: %w", k, err)
		}
	}
	return nil
}

// createNoBTFHash creates ki_hash_nobtf, a hash map without BTF, and fills
// keys 1..5.
func createNoBTFHash() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ki_hash_nobtf", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 32,
	})
	if err != nil {
		return nil, fmt.Errorf("create ki_hash_nobtf: %w", err)
	}
	for k := uint32(1); k <= 5; k++ {
		if err := m.Update(k, uint64(0xc0de0000+k), ebpf.UpdateNoExist); err != nil {
			m.Close()
			return nil, fmt.Errorf("ki_hash_nobtf[%d]: %w", k, err)
		}
	}
	return m, nil
}

// u32Type and u64Type are BTF types for maps created from Go.
var (
	u32Type = &btf.Int{Name: "__u32", Size: 4}
	u64Type = &btf.Int{Name: "__u64", Size: 8}
)

// keysOf returns a function that counts the keys of m by walking it with
// BPF_MAP_GET_NEXT_KEY.
func keysOf(m *ebpf.Map) func() (int, error) {
	return func() (int, error) { return countKeys(m) }
}

// countKeys counts the keys of m by walking it with BPF_MAP_GET_NEXT_KEY.
func countKeys(m *ebpf.Map) (int, error) {
	key := make([]byte, m.KeySize())
	next := make([]byte, m.KeySize())
	var cur any // nil: start from the first key
	n := 0
	for {
		err := m.NextKey(cur, next)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("next key after %d keys: %w", n, err)
		}
		n++
		copy(key, next)
		cur = key
		if n > int(m.MaxEntries())+1 {
			return n, fmt.Errorf("more keys than max_entries %d", m.MaxEntries())
		}
	}
}
