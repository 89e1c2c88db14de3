package bpfrun

import (
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// layouts are the offsets of the kernel structures the helpers work on,
// from the kernel's BTF (never typed by hand). A member a kernel lacks is
// -1 (noOff); a structure a kernel lacks leaves its offsets at noOff and
// its helpers fail saying which.
type layouts struct {
	// struct bpf_map and its ops.
	mapOps, mapType, mapKeySize, mapValueSize, mapMaxEntries, mapFlags, mapID int64
	opsLookup, opsUpdate, opsDelete                                           int64

	// kernel/bpf/hashtab.c.
	htabBuckets, htabNBuckets, htabElemSize, htabHashrnd int64
	bucketSize, bucketHead                               int64
	elemNext, elemPprev, elemHash, elemKey, elemLRURef   int64

	// kernel/bpf/arraymap.c.
	arrElemSize, arrIndexMask, arrValue, arrPtrs int64

	// kernel/bpf/lpm_trie.c.
	trieRoot, trieNEntries, trieMaxPrefixlen, trieDataSize  int64
	nodeChild, nodePrefixlen, nodeFlags, nodeData, nodeSize int64

	// The ring buffer (kernel/bpf/ringbuf.c) and perf events.
	rbMapRB, rbMask, rbConsumer, rbProducer int64
	eventEntryEvent, perfEventOncpu         int64

	// Per-CPU offsets of the possible CPUs, and their numbers.
	cpus     []int
	cpuOffs  []uint64
	cpuIndex map[int]int
}

const noOff = -1

// layouts computes the offsets once.
func (r *Replayer) layouts() (*layouts, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lay == nil && r.layErr == nil {
		r.lay, r.layErr = readLayouts(r.prog)
	}
	return r.lay, r.layErr
}

func readLayouts(p *objects.Program) (*layouts, error) {
	l := &layouts{}
	off := func(typ, path string) int64 {
		o, _, err := p.MemberOffset(typ, path)
		if err != nil {
			return noOff
		}
		return int64(o)
	}
	size := func(typ string) int64 {
		n, err := p.SizeofType(typ)
		if err != nil {
			return noOff
		}
		return int64(n)
	}
	const m = "struct bpf_map"
	l.mapOps, l.mapType, l.mapKeySize = off(m, "ops"), off(m, "map_type"), off(m, "key_size")
	l.mapValueSize, l.mapMaxEntries, l.mapFlags, l.mapID = off(m, "value_size"), off(m, "max_entries"), off(m, "map_flags"), off(m, "id")
	if l.mapOps < 0 || l.mapType < 0 || l.mapKeySize < 0 || l.mapValueSize < 0 || l.mapMaxEntries < 0 {
		return nil, fmt.Errorf("struct bpf_map: members ops, map_type, key_size, value_size, max_entries: %w", objects.ErrNotFound)
	}
	const ops = "struct bpf_map_ops"
	l.opsLookup, l.opsUpdate, l.opsDelete = off(ops, "map_lookup_elem"), off(ops, "map_update_elem"), off(ops, "map_delete_elem")

	const h, e = "struct bpf_htab", "struct htab_elem"
	l.htabBuckets, l.htabNBuckets, l.htabElemSize, l.htabHashrnd = off(h, "buckets"), off(h, "n_buckets"), off(h, "elem_size"), off(h, "hashrnd")
	l.bucketSize, l.bucketHead = size("struct bucket"), off("struct bucket", "head.first")
	l.elemNext, l.elemPprev, l.elemHash, l.elemKey = off(e, "hash_node.next"), off(e, "hash_node.pprev"), off(e, "hash"), off(e, "key")
	l.elemLRURef = off(e, "lru_node.ref")

	const a = "struct bpf_array"
	l.arrElemSize, l.arrIndexMask, l.arrValue, l.arrPtrs = off(a, "elem_size"), off(a, "index_mask"), off(a, "value"), off(a, "ptrs")

	const t, n = "struct lpm_trie", "struct lpm_trie_node"
	l.trieRoot, l.trieNEntries, l.trieMaxPrefixlen, l.trieDataSize = off(t, "root"), off(t, "n_entries"), off(t, "max_prefixlen"), off(t, "data_size")
	l.nodeChild, l.nodePrefixlen, l.nodeFlags, l.nodeData, l.nodeSize = off(n, "child"), off(n, "prefixlen"), off(n, "flags"), off(n, "data"), size(n)

	l.rbMapRB = off("struct bpf_ringbuf_map", "rb")
	const rb = "struct bpf_ringbuf"
	l.rbMask, l.rbConsumer, l.rbProducer = off(rb, "mask"), off(rb, "consumer_pos"), off(rb, "producer_pos")
	l.eventEntryEvent, l.perfEventOncpu = off("struct bpf_event_entry", "event"), off("struct perf_event", "oncpu")

	cpus, err := p.PossibleCPUs()
	if err == nil {
		l.cpus = cpus
		l.cpuOffs, err = p.PerCPUOffsets()
	}
	if err != nil {
		l.cpus, l.cpuOffs = nil, nil
	}
	l.cpuIndex = map[int]int{}
	for i, c := range l.cpus {
		l.cpuIndex[c] = i
	}
	return l, nil
}

// need fails naming what the kernel's BTF lacks when an offset is
// missing.
func need(what string, offs ...int64) error {
	for _, o := range offs {
		if o < 0 {
			return fmt.Errorf("%s: the kernel's BTF lacks a member bpfrun needs: %w", what, ErrNotSupported)
		}
	}
	return nil
}
