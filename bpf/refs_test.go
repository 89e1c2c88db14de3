package bpf

import (
	"slices"
	"strconv"
	"testing"
)

// TestIDHashmap: the replay of libbpf's hashmap keeps every entry, and
// gives one ID's entries last-appended first while no resize splits
// them (two pins of one map: bpftool prints the later-found first).
func TestIDHashmap(t *testing.T) {
	var m idHashmap
	m.add(45, "/sys/fs/bpf/ki/maps/ki_hash_again")
	m.add(45, "/sys/fs/bpf/ki_hash")
	if got := m.get(45); !slices.Equal(got, []string{"/sys/fs/bpf/ki_hash", "/sys/fs/bpf/ki/maps/ki_hash_again"}) {
		t.Errorf("get(45) = %q", got)
	}
	var big idHashmap
	for i := range 1000 {
		big.add(uint32(i%37), strconv.Itoa(i))
	}
	n := 0
	for k := range uint32(37) {
		for _, v := range big.get(k) {
			if x, _ := strconv.Atoi(v); uint32(x%37) != k {
				t.Errorf("get(%d) has %s", k, v)
			}
			n++
		}
	}
	if n != 1000 || big.size != 1000 || len(big.buckets) != 2048 {
		t.Errorf("%d entries found, size %d, %d buckets", n, big.size, len(big.buckets))
	}
	if (&idHashmap{}).get(1) != nil || (*idHashmap)(nil).get(1) != nil {
		t.Error("an empty map has entries")
	}
}
