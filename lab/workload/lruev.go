package main

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
)

// LRU eviction truth (bpf/lruev.bpf.c): the object is loaded twice, and
// only the first copy is test-run, its runs chained; the second copy's
// maps keep the state the runs started from, for the replay.

const lruevObject = "lruev.bpf.o"

// Names of the two copies: the kernel runs lruevRun; the replay runs
// lruevTwin, whose maps are lruevMaps' keys (lruevRun's are their values).
const (
	lruevRun  = "ki_tr_lruev_k"
	lruevTwin = "ki_tr_lruev"
)

var lruevMaps = map[string]string{"ki_tr_lrue": "ki_tr_lrue_k", "ki_tr_lrup": "ki_tr_lrup_k"}

// lruevCopies are the two loaded copies.
type lruevCopies struct {
	run, twin *ebpf.Collection
}

// loadLRUEv loads lruev.bpf.o twice, the first copy under the names of
// lruevRun and lruevMaps' values.
func (r *runner) loadLRUEv() error {
	path := filepath.Join(r.cfg.BPFDir, lruevObject)
	load := func(rename bool) (*ebpf.Collection, error) {
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		if rename {
			spec.Programs[lruevTwin].Name = lruevRun
			for twin, run := range lruevMaps {
				spec.Maps[twin].Name = run
			}
		}
		coll, err := ebpf.NewCollection(spec)
		if err != nil {
			return nil, fmt.Errorf("create objects of %s: %w", path, verifierDetail(err))
		}
		keep = append(keep, coll)
		return coll, nil
	}
	run, err := load(true)
	if err != nil {
		return err
	}
	twin, err := load(false)
	if err != nil {
		return err
	}
	r.lruev = &lruevCopies{run: run, twin: twin}
	empty := func() (int, error) { return 0, nil }
	for twinName, runName := range lruevMaps {
		r.addMap(twinName, twin.Maps[twinName], true, "empty: the state "+lruevRun+"'s test runs started from", empty)
		r.addMap(runName, run.Maps[twinName], true, "what "+lruevRun+"'s chained test runs left", keysOf(run.Maps[twinName]))
	}
	r.addProg(lruevRun, run.Programs[lruevTwin], "")
	r.addProg(lruevTwin, twin.Programs[lruevTwin], "")
	return nil
}

// lruevReplay fills tf's replay fields: the twin program and the twin of
// each map.
func (r *runner) lruevReplay(tf *trFile) error {
	info, err := r.lruev.twin.Programs[lruevTwin].Info()
	if err != nil {
		return err
	}
	id, _ := info.ID()
	tf.ReplayProgID = uint32(id)
	tf.ReplayMaps = map[string]uint32{}
	for twinName := range lruevMaps {
		ri, err := r.lruev.run.Maps[twinName].Info()
		if err != nil {
			return err
		}
		ti, err := r.lruev.twin.Maps[twinName].Info()
		if err != nil {
			return err
		}
		rid, _ := ri.ID()
		tid, _ := ti.ID()
		tf.ReplayMaps[strconv.FormatUint(uint64(rid), 10)] = uint32(tid)
	}
	tf.Chained = true
	return nil
}

// lruevOps is ki_tr_lruev's packet: an Ethernet header, then the
// (operation, key) pairs, zeros after them: 32 in all.
func lruevOps(ops ...[2]byte) []byte {
	b := ether(0x88b5, nil, 14)
	for _, o := range ops {
		b = append(b, o[0], o[1])
	}
	return append(b, make([]byte, 14+2*32-len(b))...)
}

// lruevInputs are ki_tr_lruev_k's chained runs: fill both maps (the
// per-CPU-list map, 4 elements per CPU, evicts already), reference some
// keys and insert past the size, replace and delete, then turn the whole
// map over.
func lruevInputs() []trInput {
	const look, upd, del, noex, exist = 1, 2, 3, 4, 5
	var in []trInput
	add := func(ops ...[2]byte) { in = append(in, trInput{data: lruevOps(ops...)}) }
	add([2]byte{upd, 1}, [2]byte{upd, 2}, [2]byte{upd, 3}, [2]byte{upd, 4}, [2]byte{upd, 5}, [2]byte{upd, 6}, [2]byte{upd, 7}, [2]byte{upd, 8})
	add([2]byte{look, 2}, [2]byte{look, 4}, [2]byte{look, 6}, [2]byte{look, 8}, [2]byte{upd, 9}, [2]byte{upd, 10})
	add([2]byte{noex, 11}, [2]byte{look, 9}, [2]byte{del, 4}, [2]byte{upd, 12}, [2]byte{exist, 2}, [2]byte{noex, 2}, [2]byte{exist, 30})
	var all [][2]byte
	for k := byte(1); k <= 12; k++ {
		all = append(all, [2]byte{look, k})
	}
	add(append(all, [2]byte{upd, 13}, [2]byte{upd, 14}, [2]byte{upd, 15}, [2]byte{upd, 16})...)
	add([2]byte{del, 9}, [2]byte{del, 10}, [2]byte{del, 11}, [2]byte{del, 12}, [2]byte{upd, 1}, [2]byte{upd, 2}, [2]byte{upd, 3}, [2]byte{upd, 4}, [2]byte{upd, 5}, [2]byte{upd, 6})
	var turn [][2]byte
	for k := byte(20); k < 36; k++ {
		turn = append(turn, [2]byte{upd, k})
	}
	add(turn...)
	in = append(in, trInput{data: lruevOps([2]byte{upd, 40}, [2]byte{look, 40}, [2]byte{upd, 41}), repeat: 3})
	add([2]byte{look, 1}, [2]byte{9, 0}, [2]byte{upd, 50})             // an unknown operation ends the list
	in = append(in, trInput{data: ether(0x88b5, []byte{upd, 60}, 40)}) // too short for 32 operations
	return in
}
