package bpfrun

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfvm"
)

// The longest-prefix-match trie of kernel/bpf/lpm_trie.c on its kernel
// layout: struct lpm_trie's root, struct lpm_trie_node's two children,
// prefixlen, flags and data (the prefix, then the value). A key is struct
// bpf_lpm_trie_key: a u32 prefixlen, then the data.

// lpmFlagIM is LPM_TREE_NODE_FLAG_IM: an intermediate node, no element.
const lpmFlagIM = 1

type lpmNode struct {
	addr      uint64
	child     [2]uint64
	prefixlen uint32
	flags     uint32
	data      []byte
}

func (s *Session) lpmNode(mi *mapInfo, addr uint64) (*lpmNode, error) {
	l := s.lay
	n := &lpmNode{addr: addr}
	var err error
	for i := range n.child {
		if n.child[i], err = s.u64(addr + uint64(l.nodeChild) + 8*uint64(i)); err != nil {
			return nil, err
		}
	}
	if n.prefixlen, err = s.u32(addr + uint64(l.nodePrefixlen)); err != nil {
		return nil, err
	}
	if n.flags, err = s.u32(addr + uint64(l.nodeFlags)); err != nil {
		return nil, err
	}
	n.data, err = s.bytes(addr+uint64(l.nodeData), int(mi.dataSize))
	return n, err
}

// longestPrefixMatch is the number of leading bits node and key share, at
// most the shorter prefix.
func longestPrefixMatch(node *lpmNode, keyLen uint32, key []byte) uint32 {
	limit := min(node.prefixlen, keyLen)
	var n uint32
	for i := 0; i < len(key) && n < limit; i++ {
		x := node.data[i] ^ key[i]
		if x == 0 {
			n += 8
			continue
		}
		for b := 7; b >= 0 && x&(1<<b) == 0; b-- {
			n++
		}
		break
	}
	return min(n, limit)
}

// extractBit is bit index of data, most significant first.
func extractBit(data []byte, index uint32) int {
	return int(data[index/8]>>(7-index%8)) & 1
}

// lpmKey reads a key: its prefix length and data.
func (s *Session) lpmKey(mi *mapInfo, keyAddr uint64) (uint32, []byte, error) {
	b, err := s.bytes(keyAddr, 4+int(mi.dataSize))
	if err != nil {
		return 0, nil, err
	}
	return binary.LittleEndian.Uint32(b), b[4:], nil
}

func (s *Session) trieMap(mapAddr uint64, what string) (*mapInfo, error) {
	mi, err := s.mapOf(mapAddr, what)
	if err != nil {
		return nil, err
	}
	if mi.typ != bpf.MapTypeLPMTrie {
		return nil, fmt.Errorf("%s of %s, not an LPM trie", what, mi)
	}
	return mi, nil
}

// trieLookup is trie_lookup_elem: the value of the longest prefix
// matching the key, NULL if none.
func (s *Session) trieLookup(mapAddr, keyAddr uint64) (uint64, error) {
	mi, err := s.trieMap(mapAddr, "trie_lookup_elem")
	if err != nil {
		return 0, err
	}
	keyLen, key, err := s.lpmKey(mi, keyAddr)
	if err != nil {
		return 0, err
	}
	var found *lpmNode
	addr, err := s.u64(mi.arrBase + uint64(s.lay.trieRoot))
	for steps := 0; err == nil && addr != 0; steps++ {
		if steps > int(mi.maxPrefix)+1 {
			return 0, fmt.Errorf("%s: a path longer than %d nodes", mi, mi.maxPrefix+1)
		}
		var node *lpmNode
		if node, err = s.lpmNode(mi, addr); err != nil {
			break
		}
		match := longestPrefixMatch(node, keyLen, key)
		if uint64(match) == mi.maxPrefix {
			found = node
			break
		}
		if match < node.prefixlen {
			break
		}
		if node.flags&lpmFlagIM == 0 {
			found = node
		}
		if node.prefixlen >= uint32(8*len(key)) {
			break
		}
		addr = node.child[extractBit(key, node.prefixlen)]
	}
	if err != nil || found == nil {
		return 0, err
	}
	return found.addr + uint64(s.lay.nodeData) + mi.dataSize, nil
}

// trieNewNode allocates a node with a prefix and, unless im, a value.
func (s *Session) trieNewNode(mi *mapInfo, prefixlen uint32, data, value []byte, im bool) (uint64, error) {
	l := s.lay
	// An intermediate node has no value in the kernel
	// (lpm_trie_node_alloc(trie, NULL)); it gets the room anyway, zeroed,
	// because readers of a dump find slab memory there, never a fault.
	size := int(l.nodeSize) + int(mi.dataSize) + int(mi.value)
	r, err := s.m.Alloc(fmt.Sprintf("%s node", mi), size, false)
	if err != nil {
		return 0, err
	}
	s.grewAny = true
	b := r.Bytes()
	binary.LittleEndian.PutUint32(b[l.nodePrefixlen:], prefixlen)
	if im {
		binary.LittleEndian.PutUint32(b[l.nodeFlags:], lpmFlagIM)
	}
	copy(b[l.nodeData:], data)
	if !im {
		copy(b[int(l.nodeData)+int(mi.dataSize):], value)
	}
	return r.Addr, nil
}

func (s *Session) childSlot(node uint64, bit int) uint64 {
	return node + uint64(s.lay.nodeChild) + 8*uint64(bit)
}

// trieEntries reads and writes lpm_trie.n_entries.
func (s *Session) trieEntries(mi *mapInfo, delta int64) (uint64, error) {
	at := mi.arrBase + uint64(s.lay.trieNEntries)
	n, err := s.u64(at)
	if err != nil || delta == 0 {
		return n, err
	}
	return n, s.put64(at, uint64(int64(n)+delta))
}

// trieUpdate is trie_update_elem (6.1-6.12: BPF_NOEXIST and BPF_EXIST
// are accepted and not checked; a full trie refuses even a replacement).
func (s *Session) trieUpdate(mapAddr, keyAddr, valueAddr, flags uint64) (uint64, error) {
	mi, err := s.trieMap(mapAddr, "trie_update_elem")
	if err != nil {
		return 0, err
	}
	if flags > bpfExist {
		return bpfvm.Errno(eINVAL), nil
	}
	keyLen, key, err := s.lpmKey(mi, keyAddr)
	if err != nil {
		return 0, err
	}
	if uint64(keyLen) > mi.maxPrefix {
		return bpfvm.Errno(eINVAL), nil
	}
	value, err := s.bytes(valueAddr, int(mi.value))
	if err != nil {
		return 0, err
	}
	n, err := s.trieEntries(mi, 0)
	if err != nil {
		return 0, err
	}
	if n == uint64(mi.max) {
		return bpfvm.Errno(eNOSPC), nil
	}
	nn, err := s.trieNewNode(mi, keyLen, key, value, false)
	if err != nil {
		return 0, err
	}
	if _, err := s.trieEntries(mi, 1); err != nil {
		return 0, err
	}
	slot := mi.arrBase + uint64(s.lay.trieRoot)
	var node *lpmNode
	var match uint32
	for steps := 0; ; steps++ {
		addr, err := s.u64(slot)
		if err != nil {
			return 0, err
		}
		if addr == 0 {
			node = nil
			break
		}
		if steps > int(mi.maxPrefix)+1 {
			return 0, fmt.Errorf("%s: a path longer than %d nodes", mi, mi.maxPrefix+1)
		}
		if node, err = s.lpmNode(mi, addr); err != nil {
			return 0, err
		}
		match = longestPrefixMatch(node, keyLen, key)
		if node.prefixlen != match || node.prefixlen == keyLen || uint64(node.prefixlen) == mi.maxPrefix {
			break
		}
		slot = s.childSlot(addr, extractBit(key, node.prefixlen))
	}
	if node == nil {
		return 0, s.put64(slot, nn)
	}
	if node.prefixlen == match {
		// Replace the node (same prefix).
		for i, c := range node.child {
			if err := s.put64(s.childSlot(nn, i), c); err != nil {
				return 0, err
			}
		}
		if node.flags&lpmFlagIM == 0 {
			if _, err := s.trieEntries(mi, -1); err != nil {
				return 0, err
			}
		}
		return 0, s.put64(slot, nn)
	}
	if match == keyLen {
		// The new node is an ancestor of node.
		if err := s.put64(s.childSlot(nn, extractBit(node.data, match)), node.addr); err != nil {
			return 0, err
		}
		return 0, s.put64(slot, nn)
	}
	im, err := s.trieNewNode(mi, match, node.data, nil, true)
	if err != nil {
		return 0, err
	}
	a, b := node.addr, nn
	if extractBit(key, match) == 0 {
		a, b = nn, node.addr
	}
	if err := s.put64(s.childSlot(im, 0), a); err != nil {
		return 0, err
	}
	if err := s.put64(s.childSlot(im, 1), b); err != nil {
		return 0, err
	}
	return 0, s.put64(slot, im)
}

// trieDelete is trie_delete_elem.
func (s *Session) trieDelete(mapAddr, keyAddr uint64) (uint64, error) {
	mi, err := s.trieMap(mapAddr, "trie_delete_elem")
	if err != nil {
		return 0, err
	}
	keyLen, key, err := s.lpmKey(mi, keyAddr)
	if err != nil {
		return 0, err
	}
	if uint64(keyLen) > mi.maxPrefix {
		return bpfvm.Errno(eINVAL), nil
	}
	trim := mi.arrBase + uint64(s.lay.trieRoot)
	trim2 := trim
	var parent, node *lpmNode
	var match uint32
	for steps := 0; ; steps++ {
		addr, err := s.u64(trim)
		if err != nil {
			return 0, err
		}
		if addr == 0 {
			node = nil
			break
		}
		if steps > int(mi.maxPrefix)+1 {
			return 0, fmt.Errorf("%s: a path longer than %d nodes", mi, mi.maxPrefix+1)
		}
		if node, err = s.lpmNode(mi, addr); err != nil {
			return 0, err
		}
		match = longestPrefixMatch(node, keyLen, key)
		if node.prefixlen != match || node.prefixlen == keyLen {
			break
		}
		parent, trim2 = node, trim
		trim = s.childSlot(addr, extractBit(key, node.prefixlen))
	}
	if node == nil || node.prefixlen != keyLen || node.prefixlen != match || node.flags&lpmFlagIM != 0 {
		return bpfvm.Errno(eNOENT), nil
	}
	if _, err := s.trieEntries(mi, -1); err != nil {
		return 0, err
	}
	if node.child[0] != 0 && node.child[1] != 0 {
		return 0, s.m.WriteUint(node.addr+uint64(s.lay.nodeFlags), 4, uint64(node.flags|lpmFlagIM))
	}
	if parent != nil && parent.flags&lpmFlagIM != 0 && node.child[0] == 0 && node.child[1] == 0 {
		other := parent.child[0]
		if node.addr == parent.child[0] {
			other = parent.child[1]
		}
		return 0, s.put64(trim2, other)
	}
	next := node.child[0]
	if next == 0 {
		next = node.child[1]
	}
	return 0, s.put64(trim, next)
}
