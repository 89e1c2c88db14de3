package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// Sizes of the -scale objects.
const (
	bigHashEntries   = 1_000_000
	bigHashMax       = 1 << 20
	bigHashBatch     = 1 << 16
	smallProgCount   = 500
	smallProgMagic   = 0x5a5a0000 // KI_SMALL_MAGIC in bpf/small.bpf.c
	threadProcCount  = 20
	smallProgPattern = "ki_s%04d"
	threadProcName   = "ki_thr_%02d"
)

// scaleBigHash creates ki_big_hash and fills keys 0..bigHashEntries-1 with
// value key*3+7 (u64), in batches when the kernel supports
// BPF_MAP_UPDATE_BATCH, else one by one.
func (r *runner) scaleBigHash() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ki_big_hash", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: bigHashMax,
		Key: u32Type, Value: u64Type,
	})
	if err != nil {
		return fmt.Errorf("create ki_big_hash: %w", err)
	}
	keys := make([]uint32, 0, bigHashBatch)
	vals := make([]uint64, 0, bigHashBatch)
	batched := true
	for start := 0; start < bigHashEntries; start += bigHashBatch {
		keys, vals = keys[:0], vals[:0]
		for k := start; k < start+bigHashBatch && k < bigHashEntries; k++ {
			keys = append(keys, uint32(k))
			vals = append(vals, uint64(k)*3+7)
		}
		if batched {
			_, err := m.BatchUpdate(keys, vals, nil)
			if errors.Is(err, ebpf.ErrNotSupported) {
				r.note("ki_big_hash: BPF_MAP_UPDATE_BATCH not supported, filling one by one")
				batched = false
			} else if err != nil {
				return fmt.Errorf("batch update of ki_big_hash at key %d: %w", start, err)
			} else {
				continue
			}
		}
		for i := range keys {
			if err := m.Update(keys[i], vals[i], ebpf.UpdateAny); err != nil {
				return fmt.Errorf("ki_big_hash[%d]: %w", keys[i], err)
			}
		}
	}
	r.addMap("ki_big_hash", m, true, fmt.Sprintf("keys 0..%d: value=3k+7 (u64)", bigHashEntries-1),
		func() (int, error) { return bigHashEntries, nil })
	return nil
}

// scalePrograms loads smallProgCount copies of ki_small from small.bpf.o
// named ki_s0000.., each returning a distinct constant so that each has a
// distinct tag, and a BTF function of its own name.
func (r *runner) scalePrograms() error {
	path := filepath.Join(r.cfg.BPFDir, smallObject)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	tmpl := spec.Programs["ki_small"]
	if tmpl == nil {
		return fmt.Errorf("%s has no program ki_small", path)
	}
	progs := make(map[string]*ebpf.ProgramSpec, smallProgCount)
	for i := 0; i < smallProgCount; i++ {
		ps := tmpl.Copy()
		ps.Name = fmt.Sprintf(smallProgPattern, i)
		if err := patchConstant(ps.Instructions, smallProgMagic, smallProgMagic+int64(i)); err != nil {
			return fmt.Errorf("%s: %w", ps.Name, err)
		}
		// The kernel names a program's kallsyms symbol after its BTF
		// func_info (bpf_prog_<tag>_<func>), not after the program name:
		// rename the BTF function too, or all copies would be "ki_small".
		if fn := btf.FuncMetadata(&ps.Instructions[0]); fn != nil {
			renamed := *fn
			renamed.Name = ps.Name
			ps.Instructions[0] = btf.WithFuncMetadata(ps.Instructions[0], &renamed)
		}
		progs[ps.Name] = ps
	}
	spec.Programs = progs
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("load %d small programs: %w", smallProgCount, verifierDetail(err))
	}
	keep = append(keep, coll)
	for i := 0; i < smallProgCount; i++ {
		name := fmt.Sprintf(smallProgPattern, i)
		r.addProg(name, coll.Programs[name], "")
	}
	return nil
}

// patchConstant replaces the immediate old by new in the one instruction
// of insns that has it.
func patchConstant(insns asm.Instructions, old, new int64) error {
	n := 0
	for i := range insns {
		if insns[i].Constant == old && insns[i].OpCode.Class().IsALU() {
			insns[i].Constant = new
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("found %d instructions with constant %#x, want 1", n, old)
	}
	return nil
}

// scaleThreads starts threadProcCount "threads" sleepers named
// ki_thr_00.. and waits until all their threads block.
func (r *runner) scaleThreads() error {
	specs := make([]sleeperSpec, threadProcCount)
	for i := range specs {
		specs[i] = sleeperSpec{fmt.Sprintf(threadProcName, i), kindThreads}
	}
	started, err := r.spawnSleepers(specs)
	if err != nil {
		return err
	}
	for _, s := range started {
		rec, err := waitSleeper(s.cmd.Process.Pid, s.name, s.kind)
		if err != nil {
			return err
		}
		r.ready.Sleepers = append(r.ready.Sleepers, rec)
	}
	return nil
}
