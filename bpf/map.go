package bpf

import (
	"bytes"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// BPF map types (enum bpf_map_type, include/uapi/linux/bpf.h). The UAPI
// numbers never change; the names come from the kernel's own BTF enum.
const (
	MapTypeHash           = 1
	MapTypeArray          = 2
	MapTypeProgArray      = 3
	MapTypePerfEventArray = 4
	MapTypePerCPUHash     = 5
	MapTypePerCPUArray    = 6
	MapTypeStackTrace     = 7
	MapTypeCgroupArray    = 8
	MapTypeLRUHash        = 9
	MapTypeLRUPerCPUHash  = 10
	MapTypeLPMTrie        = 11
	MapTypeArrayOfMaps    = 12
	MapTypeHashOfMaps     = 13
	MapTypeDevmap         = 14
	MapTypeCPUMap         = 16
	MapTypeQueue          = 22
	MapTypeStack          = 23
	MapTypeRingBuf        = 27
)

// BPF_F_NO_PREALLOC, BPF_F_STACK_BUILD_ID, BPF_F_MMAPABLE (map_flags).
const (
	bpfFNoPrealloc   = 1 << 0
	bpfFStackBuildID = 1 << 5
	bpfFMmapable     = 1 << 10
)

// Map is a BPF map (struct bpf_map) with what bpftool's "map show"
// prints, read from kernel memory.
type Map struct {
	// Obj is the struct bpf_map.
	Obj objects.Value `json:"obj"`
	ID  uint32        `json:"id"`
	// Type is enum bpf_map_type; TypeName its name as bpftool spells it
	// ("hash", "lru_percpu_hash"), from the kernel's BTF enum, or the
	// number for a value the enum lacks.
	Type       uint32 `json:"-"`
	TypeName   string `json:"type"`
	Name       string `json:"name"`
	Flags      uint32 `json:"flags"`
	KeySize    uint32 `json:"bytes_key"`
	ValueSize  uint32 `json:"bytes_value"`
	MaxEntries uint32 `json:"max_entries"`
	MapExtra   uint64 `json:"map_extra,omitempty"`
	// BTFID is the id of the map's BTF object (0: none);
	// BTFKeyTypeID and BTFValueTypeID are type ids within it, and
	// BTFVmlinuxValueTypeID a vmlinux type id (struct_ops maps).
	BTFID                 uint32 `json:"btf_id"`
	BTFKeyTypeID          uint32 `json:"btf_key_type_id,omitempty"`
	BTFValueTypeID        uint32 `json:"btf_value_type_id,omitempty"`
	BTFVmlinuxValueTypeID uint32 `json:"btf_vmlinux_value_type_id,omitempty"`
	// BTFAddr is the struct btf of the map's BTF (0: none); BTFErr says
	// why its id could not be read (a page missing from the dump).
	BTFAddr uint64 `json:"-"`
	BTFErr  error  `json:"btf_error,omitempty"`
	Frozen  bool   `json:"frozen"`
	// Owner is the program type a prog_array, devmap or cpumap is bound
	// to (fdinfo's owner_prog_type, owner_jited); nil when unbound.
	Owner *MapOwner `json:"owner,omitempty"`
}

// MapOwner is the program type a map of programs is bound to.
type MapOwner struct {
	ProgType     uint32 `json:"-"`
	ProgTypeName string `json:"prog_type"`
	Jited        bool   `json:"jited"`
}

// EnumName names value v of the named enum of p's BTF as bpftool and
// libbpf do: lower case, prefix removed ("BPF_MAP_TYPE_LRU_HASH" with
// prefix "BPF_MAP_TYPE_" is "lru_hash"). Aliases marked _DEPRECATED lose
// to their current name. A value the enum lacks gives its number.
func EnumName(p *objects.Program, enum, prefix string, v uint64) string {
	t, err := p.Type(enum)
	if err == nil {
		if e, ok := btfload.Underlying(t).(*btf.Enum); ok {
			best := ""
			for _, ev := range e.Values {
				if ev.Value != v || !strings.HasPrefix(ev.Name, prefix) {
					continue
				}
				if best == "" || strings.HasSuffix(best, "_DEPRECATED") {
					best = ev.Name
				}
			}
			if best != "" {
				return strings.ToLower(strings.TrimPrefix(best, prefix))
			}
		}
	}
	return strconv.FormatUint(v, 10)
}

// MapForEach yields every BPF map of the kernel, in ID order, from
// map_idr (kernel/bpf/syscall.c), as bpftool's "map show" lists them.
// A damaged IDR node or a map that cannot be read at all is a
// *objects.Damage, noted in the Program's damage log, and the walk goes
// on; a map read in part comes with its error. When the walk met
// damage, the maps the IDR lost but a program uses (prog->aux->used_maps,
// the second index of maps) are yielded last, and named in one more
// *objects.Damage.
func MapForEach(p *objects.Program) iter.Seq2[*Map, error] {
	return func(yield func(*Map, error) bool) {
		seen := map[uint32]bool{}
		damaged := false
		for m, err := range idrWalk(p, "map_idr", "struct bpf_map", NewMap, func(m *Map) uint32 { return m.ID }) {
			if m != nil {
				seen[m.ID] = true
			} else if objects.IsDamage(err) {
				damaged = true
			}
			if !yield(m, err) {
				return
			}
		}
		if damaged {
			usedMapsOfProgs(p, seen, yield)
		}
	}
}

// usedMapsOfProgs yields the maps the programs use that are not in seen.
func usedMapsOfProgs(p *objects.Program, seen map[uint32]bool, yield func(*Map, error) bool) {
	var found []string
	for bp, err := range ProgForEach(p) {
		if err != nil && bp == nil {
			if objects.IsDamage(err) {
				continue
			}
			break
		}
		mv, err1 := bp.Aux.Member("used_maps")
		cnt, err2 := bp.Aux.MemberUint("used_map_cnt")
		if err1 != nil || err2 != nil || cnt > maxProgMaps {
			continue
		}
		ma, err := mv.Uint()
		if err != nil {
			continue
		}
		ptrs, _ := p.ReadPointers(ma, int(cnt))
		for _, a := range ptrs {
			m, err := NewMap(p.Pointer(nil, a))
			if err != nil || m.ID == 0 || seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			found = append(found, fmt.Sprintf("id %d (%s, used by program %d)", m.ID, m.Name, bp.ID))
			if !yield(m, nil) {
				return
			}
		}
	}
	if len(found) > 0 {
		yield(nil, p.NoteDamage(&objects.Damage{Walk: "map_idr", Expected: "every map",
			Found:    fmt.Sprintf("%d more used by programs: %s", len(found), strings.Join(found, ", ")),
			Recovery: "found through the programs' used_maps", Err: objects.ErrCorrupt}))
	}
}

// MapByID returns the map with the given ID. Errors wrap ErrNotFound.
func MapByID(p *objects.Program, id uint32) (*Map, error) {
	for m, err := range MapForEach(p) {
		if err != nil && m == nil {
			if objects.IsDamage(err) {
				continue
			}
			return nil, err
		}
		if m.ID == id {
			return m, err
		}
	}
	return nil, fmt.Errorf("no BPF map with id %d: %w", id, objects.ErrNotFound)
}

// NewMap reads the struct bpf_map v (or the one v points to).
func NewMap(v objects.Value) (*Map, error) {
	addr, err := objects.ObjectAddr(v, "bpf map")
	if err != nil {
		return nil, err
	}
	p := v.Program()
	obj, err := p.ObjectOf("struct bpf_map", addr)
	if err != nil {
		return nil, err
	}
	b, err := obj.Bytes()
	if err != nil {
		return nil, fmt.Errorf("read struct bpf_map at %#x: %w", addr, err)
	}
	r := p.StructFrom(obj.Type(), b)
	m := &Map{Obj: obj}
	m.ID = uint32(r.Uint("id"))
	m.Type = uint32(r.Uint("map_type"))
	m.KeySize = uint32(r.Uint("key_size"))
	m.ValueSize = uint32(r.Uint("value_size"))
	m.MaxEntries = uint32(r.Uint("max_entries"))
	m.Flags = uint32(r.Uint("map_flags"))
	m.MapExtra = r.OptUint("map_extra") // 5.16+ (9330986c0300 "bpf: Add bloom filter map implementation")
	m.BTFKeyTypeID = uint32(r.Uint("btf_key_type_id"))
	m.BTFValueTypeID = uint32(r.Uint("btf_value_type_id"))
	m.BTFVmlinuxValueTypeID = uint32(r.OptUint("btf_vmlinux_value_type_id"))
	m.BTFAddr = r.Uint("btf")
	m.Frozen = r.Uint("frozen") != 0
	if nb := r.Bytes("name"); nb != nil {
		if i := bytes.IndexByte(nb, 0); i >= 0 {
			nb = nb[:i]
		}
		m.Name = string(nb)
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("struct bpf_map at %#x: %w", addr, r.Err())
	}
	m.TypeName = EnumName(p, "enum bpf_map_type", "BPF_MAP_TYPE_", uint64(m.Type))
	if m.BTFAddr != 0 {
		bv, err := p.ObjectOf("struct btf", m.BTFAddr)
		if err == nil {
			var id objects.Value
			if id, err = bv.Member("id"); err == nil {
				var x uint64
				x, err = id.Uint()
				m.BTFID = uint32(x)
			}
		}
		if err != nil {
			m.BTFErr = fmt.Errorf("map %d: its BTF at %#x: %w", m.ID, m.BTFAddr, err)
		}
	}
	if err := m.readOwner(); err != nil {
		return nil, err
	}
	return m, nil
}

// readOwner reads the program type a map of programs is bound to.
func (m *Map) readOwner() error {
	switch m.Type {
	case MapTypeProgArray, MapTypeDevmap, MapTypeCPUMap:
	default:
		return nil
	}
	ov, err := m.Obj.Member("owner")
	if err != nil {
		// Before 5.13 the owner sat in struct bpf_array_aux
		// (not supported: every kernel the lab covers has bpf_map.owner).
		return nil
	}
	if _, ok := btfload.Underlying(ov.Type()).(*btf.Pointer); ok {
		// struct bpf_map_owner *owner: allocated when a program is
		// first bound (backported to 6.1.y/6.12.y stable, upstream
		// 6.17: "bpf: Move bpf map owner out of common struct").
		a, err := ov.Uint()
		if err != nil {
			return fmt.Errorf("map %d: owner: %w", m.ID, err)
		}
		if a == 0 {
			return nil
		}
		if ov, err = ov.Deref(); err != nil {
			return fmt.Errorf("map %d: owner: %w", m.ID, err)
		}
	}
	tv, err := ov.Member("type")
	if err != nil {
		return fmt.Errorf("map %d: owner: %w", m.ID, err)
	}
	typ, err := tv.Uint()
	if err != nil {
		return fmt.Errorf("map %d: owner type: %w", m.ID, err)
	}
	if typ == 0 {
		return nil
	}
	jv, err := ov.Member("jited")
	if err != nil {
		return fmt.Errorf("map %d: owner: %w", m.ID, err)
	}
	j, err := jv.Uint()
	if err != nil {
		return fmt.Errorf("map %d: owner jited: %w", m.ID, err)
	}
	m.Owner = &MapOwner{ProgType: uint32(typ), Jited: j != 0,
		ProgTypeName: EnumName(m.Obj.Program(), "enum bpf_prog_type", "BPF_PROG_TYPE_", typ)}
	return nil
}

// IsPerCPU says whether the map keeps a value per possible CPU.
func (m *Map) IsPerCPU() bool {
	switch m.Type {
	case MapTypePerCPUHash, MapTypePerCPUArray, MapTypeLRUPerCPUHash, 21: // 21: percpu_cgroup_storage
		return true
	}
	return false
}

// container returns the map's containing object of the named type (the
// struct bpf_map is its member "map").
func (m *Map) container(typeName string) (objects.Value, error) {
	return objects.ContainerOf(m.Obj, typeName, "map")
}

// Memlock returns what the kernel reports as the map's memory use
// (fdinfo "memlock", bpftool's bytes_memlock): the map type's own
// accounting (map_ops->map_mem_usage) where the kernel has it, else the
// older estimate from key, value and entry sizes. Errors wrap
// ErrNotSupported for a type whose accounting this does not model.
func (m *Map) Memlock() (uint64, error) {
	p := m.Obj.Program()
	ops, err := p.Type("struct bpf_map_ops")
	if err != nil {
		return 0, err
	}
	if _, err := p.FindMember(btfload.Underlying(ops), "map_mem_usage"); err != nil {
		// Before 6.4: bpf_map_memory_footprint() in kernel/bpf/syscall.c,
		// round_up(key + value, 8) * max_entries, rounded up to pages.
		size := (uint64(m.KeySize) + uint64(m.ValueSize) + 7) &^ 7
		return (uint64(m.MaxEntries)*size + 4095) &^ 4095, nil
	}
	// 6.4+ (90a5527d7686 "bpf: add new map ops ->map_mem_usage"): each
	// map type accounts its own memory.
	return m.memUsage()
}

// memUsage mirrors the map types' map_mem_usage (6.4+).
func (m *Map) memUsage() (uint64, error) {
	p := m.Obj.Program()
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return 0, err
	}
	ncpu := uint64(len(cpus))
	entries := uint64(m.MaxEntries)
	switch m.Type {
	case MapTypeArray, MapTypePerCPUArray, MapTypeProgArray, MapTypePerfEventArray,
		MapTypeCgroupArray, MapTypeArrayOfMaps:
		// array_map_mem_usage (kernel/bpf/arraymap.c).
		arr, err := m.container("struct bpf_array")
		if err != nil {
			return 0, err
		}
		usage, err := p.SizeofType("struct bpf_array")
		if err != nil {
			return 0, err
		}
		es, err := arr.MemberUint("elem_size")
		if err != nil {
			return 0, err
		}
		switch {
		case m.Type == MapTypePerCPUArray:
			usage += entries*8 + entries*es*ncpu
		case m.Flags&bpfFMmapable != 0:
			usage = pageAlign(usage) + pageAlign(entries*es)
		default:
			usage += entries * es
		}
		return usage, nil
	case MapTypeHash, MapTypePerCPUHash, MapTypeLRUHash, MapTypeLRUPerCPUHash, MapTypeHashOfMaps:
		// htab_map_mem_usage (kernel/bpf/hashtab.c).
		h, err := m.container("struct bpf_htab")
		if err != nil {
			return 0, err
		}
		usage, err := p.SizeofType("struct bpf_htab")
		if err != nil {
			return 0, err
		}
		bsz, err := p.SizeofType("struct bucket")
		if err != nil {
			return 0, err
		}
		nb, err := h.MemberUint("n_buckets")
		if err != nil {
			return 0, err
		}
		es, err := h.MemberUint("elem_size")
		if err != nil {
			return 0, err
		}
		locks := uint64(8) // HASHTAB_MAP_LOCK_COUNT: the length of map_locked
		if lv, err := h.Member("map_locked"); err == nil {
			if n, err := lv.Len(); err == nil {
				locks = uint64(n)
			}
		}
		percpu := m.Type == MapTypePerCPUHash || m.Type == MapTypeLRUPerCPUHash
		lru := m.Type == MapTypeLRUHash || m.Type == MapTypeLRUPerCPUHash
		vs := (uint64(m.ValueSize) + 7) &^ 7
		usage += bsz*nb + 4*ncpu*locks
		if m.Flags&bpfFNoPrealloc == 0 {
			n := entries
			if !percpu && !lru {
				n += ncpu // extra_elems
			}
			usage += es * n
			if percpu {
				usage += vs * ncpu * n
			} else if !lru {
				usage += 8 * ncpu
			}
			return usage, nil
		}
		n, err := m.htabCount(h)
		if err != nil {
			return 0, err
		}
		usage += (es + 8) * n // llist_node per element
		if percpu {
			usage += (8+8)*n + vs*ncpu*n
		}
		return usage, nil
	case MapTypeLPMTrie:
		// trie_mem_usage (kernel/bpf/lpm_trie.c).
		tr, err := m.container("struct lpm_trie")
		if err != nil {
			return 0, err
		}
		ns, err := p.SizeofType("struct lpm_trie_node")
		if err != nil {
			return 0, err
		}
		ds, err := tr.MemberUint("data_size")
		if err != nil {
			return 0, err
		}
		n, err := tr.MemberUint("n_entries")
		if err != nil {
			return 0, err
		}
		return (ns + ds + uint64(m.ValueSize)) * n, nil
	case MapTypeQueue, MapTypeStack:
		// queue_stack_map_mem_usage (kernel/bpf/queue_stack_maps.c).
		usage, err := p.SizeofType("struct bpf_queue_stack")
		if err != nil {
			return 0, err
		}
		return usage + (entries+1)*uint64(m.ValueSize), nil
	case MapTypeStackTrace:
		// stack_map_mem_usage (kernel/bpf/stackmap.c).
		sm, err := m.container("struct bpf_stack_map")
		if err != nil {
			return 0, err
		}
		usage, err := p.SizeofType("struct bpf_stack_map")
		if err != nil {
			return 0, err
		}
		nb, err := sm.MemberUint("n_buckets")
		if err != nil {
			return 0, err
		}
		bs, err := p.SizeofType("struct stack_map_bucket")
		if err != nil {
			return 0, err
		}
		return usage + nb*8 + entries*(bs+uint64(m.ValueSize)), nil
	case MapTypeStructOps:
		// bpf_struct_ops_map_mem_usage (kernel/bpf/bpf_struct_ops.c).
		return m.structOpsMemUsage()
	case MapTypeRingBuf:
		// ringbuf_map_mem_usage (kernel/bpf/ringbuf.c).
		usage, err := p.SizeofType("struct bpf_ringbuf_map")
		if err != nil {
			return 0, err
		}
		rbm, err := m.container("struct bpf_ringbuf_map")
		if err != nil {
			return 0, err
		}
		rb, err := rbm.Member("rb")
		if err != nil {
			return 0, err
		}
		np, err := rb.MemberUint("nr_pages")
		if err != nil {
			return 0, err
		}
		off, _, err := p.MemberOffset("struct bpf_ringbuf", "consumer_pos")
		if err != nil {
			return 0, err
		}
		meta := off/4096 + 2 // RINGBUF_NR_META_PAGES: RINGBUF_PGOFF + RINGBUF_POS_PAGES
		return usage + np<<12 + (meta+2*(entries>>12))*8, nil
	}
	return 0, fmt.Errorf("memory use of a %s map: %w", m.TypeName, objects.ErrNotSupported)
}

func pageAlign(x uint64) uint64 { return (x + 4095) &^ 4095 }

// htabCount reads a hash map's element count: the per-CPU counter's sum
// or the atomic count, whichever the map uses.
func (m *Map) htabCount(h objects.Value) (uint64, error) {
	if u, err := h.MemberUint("use_percpu_counter"); err == nil && u != 0 {
		pc, err := h.Member("pcount")
		if err != nil {
			return 0, err
		}
		n, err := pc.MemberUint("count")
		if err != nil {
			return 0, err
		}
		sum := int64(n)
		cnt, err := pc.Member("counters")
		if err == nil {
			cpus, _ := m.Obj.Program().PossibleCPUs()
			for _, c := range cpus {
				cv, err := m.Obj.Program().PerCPU(cnt, c)
				if err != nil {
					return 0, err
				}
				x, err := cv.Int()
				if err != nil {
					return 0, err
				}
				sum += x
			}
		}
		return uint64(max(sum, 0)), nil
	}
	cv, err := h.Path("count.counter")
	if err != nil {
		return 0, err
	}
	return cv.Uint()
}

// FormatTypes returns the key and value types bpftool formats the map's
// elements with: its BTF object's, or vmlinux's (given) for a struct_ops
// value; nil, nil for a map without BTF.
func (m *Map) FormatTypes(vmlinux *btf.Spec) (key, value btf.Type, err error) {
	if m.BTFVmlinuxValueTypeID == 0 && (m.BTFValueTypeID == 0 || m.BTFID == 0) {
		return nil, nil, nil
	}
	var spec *btf.Spec
	if m.BTFAddr != 0 {
		o, err := NewBTF(m.Obj.Program().Pointer(nil, m.BTFAddr))
		if err != nil {
			return nil, nil, err
		}
		s, err := o.Spec()
		if err != nil {
			return nil, nil, fmt.Errorf("map %d: BTF %d: %w", m.ID, o.ID, err)
		}
		spec = s.BTF()
	}
	return m.KeyValueTypes(spec, vmlinux)
}
