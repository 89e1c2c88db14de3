package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// lpmEntries walks struct lpm_trie (kernel/bpf/lpm_trie.c) in post-order,
// child[0] before child[1] before the node, as trie_get_next_key does;
// intermediate nodes (LPM_TREE_NODE_FLAG_IM) are not entries. A key is
// the node's prefixlen (u32) and data_size bytes of data; the value
// follows the data.
func (m *Map) lpmEntries(yield func(*MapEntry, error) bool) error {
	p := m.Obj.Program()
	tr, err := m.container("struct lpm_trie")
	if err != nil {
		return err
	}
	root, err := tr.MemberUint("root")
	if err != nil {
		return err
	}
	ds, err := tr.MemberUint("data_size")
	if err != nil {
		return err
	}
	// LPM_DATA_SIZE_MAX: trie_alloc refuses longer keys; a larger
	// data_size is corruption, and would size every node read.
	if ds+4 != uint64(m.KeySize) || ds > lpmDataSizeMax {
		return fmt.Errorf("map %d: lpm trie at %#x: data_size %d for key_size %d: %w", m.ID, tr.Addr(), ds, m.KeySize, objects.ErrCorrupt)
	}
	childOff, _, err := p.MemberOffset("struct lpm_trie_node", "child")
	if err != nil {
		return err
	}
	plOff, _, err := p.MemberOffset("struct lpm_trie_node", "prefixlen")
	if err != nil {
		return err
	}
	flOff, _, err := p.MemberOffset("struct lpm_trie_node", "flags")
	if err != nil {
		return err
	}
	dataOff, _, err := p.MemberOffset("struct lpm_trie_node", "data")
	if err != nil {
		return err
	}
	nodeSize := dataOff + ds + uint64(m.ValueSize)
	g := p.NewGuard(fmt.Sprintf("map %d: lpm trie at %#x", m.ID, tr.Addr()))
	e := &MapEntry{Key: make([]byte, m.KeySize)}
	var walk func(node uint64, depth int) error
	walk = func(node uint64, depth int) error {
		if node == 0 {
			return nil
		}
		if depth > 8*int(ds)+2 {
			return fmt.Errorf("map %d: lpm trie deeper than %d bits at node %#x: %w", m.ID, 8*ds, node, objects.ErrCorrupt)
		}
		if err := g.Visit(node); err != nil {
			return err
		}
		buf := make([]byte, nodeSize)
		if err := p.Read(buf, node); err != nil {
			return fmt.Errorf("map %d: read trie node %#x: %w", m.ID, node, err)
		}
		for c := uint64(0); c < 2; c++ {
			if err := walk(binary.LittleEndian.Uint64(buf[childOff+8*c:]), depth+1); err != nil {
				return err
			}
		}
		if binary.LittleEndian.Uint32(buf[flOff:])&1 != 0 { // LPM_TREE_NODE_FLAG_IM
			return nil
		}
		copy(e.Key, buf[plOff:plOff+4])
		copy(e.Key[4:], buf[dataOff:dataOff+ds])
		e.Value = buf[dataOff+ds : nodeSize]
		if !yield(e, nil) {
			return errStop
		}
		return nil
	}
	return stopped(walk(root, 0))
}

// lpmDataSizeMax is LPM_DATA_SIZE_MAX (kernel/bpf/lpm_trie.c).
const lpmDataSizeMax = 256

// lpmLookup finds the longest prefix matching key, as trie_lookup_elem.
func (m *Map) lpmLookup(key []byte) (*MapEntry, error) {
	plen := binary.LittleEndian.Uint32(key)
	var best *MapEntry
	bestLen := -1
	for e, err := range m.Entries() {
		if err != nil {
			return nil, err
		}
		el := binary.LittleEndian.Uint32(e.Key)
		if el > plen || int(el) <= bestLen || !prefixMatch(e.Key[4:], key[4:], el) {
			continue
		}
		best, bestLen = cloneEntry(e), int(el)
	}
	if best == nil {
		return nil, fmt.Errorf("map %d: no prefix matches key % x: %w", m.ID, key, objects.ErrNotFound)
	}
	return best, nil
}

func prefixMatch(a, b []byte, n uint32) bool {
	for i := uint32(0); i < n; i++ {
		if i/8 >= uint32(len(a)) || i/8 >= uint32(len(b)) {
			return false
		}
		mask := byte(0x80 >> (i % 8))
		if a[i/8]&mask != b[i/8]&mask {
			return false
		}
	}
	return true
}
