package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// Walkers of the struct_ops maps of kernel/bpf/bpf_struct_ops.c: maps of
// type BPF_MAP_TYPE_STRUCT_OPS whose one value is a kernel ops table
// (struct tcp_congestion_ops, ...) with BPF programs in its function
// pointers, as bpftool's "struct_ops" command shows them.

// MapTypeStructOps is BPF_MAP_TYPE_STRUCT_OPS.
const MapTypeStructOps = 26

// structOpsValuePrefix starts the name of every struct_ops value type:
// bpf_struct_ops_tcp_congestion_ops wraps struct tcp_congestion_ops.
const structOpsValuePrefix = "bpf_struct_ops_"

// The states of a struct_ops map's kernel value (enum
// bpf_struct_ops_state).
const (
	StructOpsStateInit = 0
)

// StructOps is a struct_ops map: a struct bpf_map embedded in a
// struct bpf_struct_ops_map, with the value bpf_map_lookup_elem returns
// for it.
type StructOps struct {
	// ID and Name are the map's.
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	Map  *Map   `json:"-"`
	// Obj is the struct bpf_struct_ops_map.
	Obj objects.Value `json:"obj"`
	// ValueType is the map's value type in vmlinux BTF
	// (map->btf_vmlinux_value_type_id), struct bpf_struct_ops_NAME;
	// KernelStruct is NAME ("tcp_congestion_ops"), what bpftool's
	// get_kern_struct_ops_name prints.
	ValueType    btf.Type `json:"-"`
	KernelStruct string   `json:"kernel_struct_ops"`
	// State is kvalue's enum bpf_struct_ops_state (0 INIT: nothing
	// registered yet; INUSE; TOBEFREE; READY: 6.4+, waiting for a
	// link); StateName its enumerator's name.
	State     uint32 `json:"-"`
	StateName string `json:"state,omitempty"`
	// Value is what bpf_struct_ops_map_sys_lookup_elem hands user space
	// for key 0 (map->value_size bytes): all zero in state INIT, else a
	// copy of st_map->uvalue (the value user space wrote, with each
	// function pointer replaced by its program's id) with state and
	// refcnt filled in.
	Value []byte `json:"-"`
	// Funcs are the function-pointer members of the kernel struct, in
	// member order, with the program id each holds in Value.
	Funcs []StructOpsFunc `json:"funcs"`
	// ValueErr says why Value (and State, Funcs) could not be read: a
	// page missing from the dump.
	ValueErr error `json:"error,omitempty"`
}

// StructOpsFunc is one function pointer of a struct_ops value.
type StructOpsFunc struct {
	// Member is its name in the kernel struct ("ssthresh").
	Member string `json:"member"`
	// ProgID is the id of the program it holds (0: none).
	ProgID uint32 `json:"prog_id"`
}

// StructOpsForEach yields every struct_ops map in ID order, from
// map_idr, as bpftool's "struct_ops show" lists them. A map that cannot
// be read is yielded with its error (and nil when its struct bpf_map
// could not be read either).
func StructOpsForEach(p *objects.Program) iter.Seq2[*StructOps, error] {
	return func(yield func(*StructOps, error) bool) {
		for m, err := range MapForEach(p) {
			if err != nil {
				if !yield(nil, err) || m == nil {
					return
				}
				continue
			}
			if m.Type != MapTypeStructOps {
				continue
			}
			if !yield(NewStructOps(m)) {
				return
			}
		}
	}
}

// NewStructOps reads the struct_ops map m; a failure to read its value
// is kept in ValueErr. Errors wrap ErrType for a
// map of another type, ErrNotFound for a kernel whose BTF lacks struct
// bpf_struct_ops_map, ErrCorrupt for a value type id vmlinux's BTF does
// not have.
func NewStructOps(m *Map) (*StructOps, error) {
	if m.Type != MapTypeStructOps {
		return nil, fmt.Errorf("map %d: a %s map, not struct_ops: %w", m.ID, m.TypeName, objects.ErrType)
	}
	p := m.Obj.Program(
	// struct bpf_struct_ops_map is private to bpf_struct_ops.c but, like
	// every type of vmlinux, in its BTF.
	)

	st, err := m.container("struct bpf_struct_ops_map")
	if err != nil {
		return nil, fmt.Errorf("struct_ops map %d: %w", m.ID, err)
	}
	s := &StructOps{ID: m.ID, Name: m.Name, Map: m, Obj: st}
	if s.ValueType, err = structOpsValueType(p, m); err != nil {
		return nil, err
	}
	s.KernelStruct = strings.TrimPrefix(s.ValueType.TypeName(), structOpsValuePrefix)
	if err := s.readValue(); err != nil {
		s.Value, s.Funcs = nil, nil
		s.ValueErr = fmt.Errorf("struct_ops map %d: %w", m.ID, err)
	}
	return s, nil
}

// structOpsValueType returns the struct_ops map's value type: vmlinux
// BTF's type btf_vmlinux_value_type_id.
func structOpsValueType(p *objects.Program, m *Map) (btf.Type, error) {
	if p.Types() == nil || p.Types().BTF() == nil {
		return nil, fmt.Errorf("struct_ops map %d: no vmlinux BTF: %w", m.ID, objects.ErrNotFound)
	}
	t, err := p.Types().BTF().TypeByID(btf.TypeID(m.BTFVmlinuxValueTypeID))
	if err != nil {
		return nil, fmt.Errorf("struct_ops map %d: vmlinux value type %d: %v: %w", m.ID, m.BTFVmlinuxValueTypeID, err, objects.ErrCorrupt)
	}
	return t, nil
}

// maxStructOpsValue bounds a struct_ops value before it is read (the
// largest kernel ops tables are a few hundred bytes).
const maxStructOpsValue = 1 << 16

// valuePath returns the path of a member of the common head of struct
// bpf_struct_ops_value (refcnt, state) in the value type t: 6.9+
// ("bpf: pass attached BTF to the bpf_struct_ops subsystem" series)
// wraps them in "common" (struct bpf_struct_ops_common_value).
func (s *StructOps) valuePath(t btf.Type, name string) string {
	if _, err := s.Obj.Program().FindMember(btfload.Underlying(t), "common"); err == nil {
		return "common." + name
	}
	return name
}

// readValue computes Value, State and Funcs as
// bpf_struct_ops_map_sys_lookup_elem does.
func (s *StructOps) readValue() error {
	p := s.Obj.Program()
	m := s.Map
	vsize, err := btf.Sizeof(s.ValueType)
	if err != nil {
		return fmt.Errorf("size of %s: %v: %w", s.ValueType.TypeName(), err, objects.ErrType)
	}
	if m.ValueSize > maxStructOpsValue || int(m.ValueSize) != vsize {
		return fmt.Errorf("value_size %d, %s has %d bytes: %w", m.ValueSize, s.ValueType.TypeName(), vsize, objects.ErrCorrupt)
	}
	kvalue, err := s.Obj.Member("kvalue")
	if err != nil {
		return err
	}
	sv, err := kvalue.Path(s.valuePath(kvalue.Type(), "state"))
	if err != nil {
		return err
	}
	state, err := sv.Uint()
	if err != nil {
		return fmt.Errorf("kvalue state: %w", err)
	}
	s.State = uint32(state)
	if s.StateName = objects.EnumName(sv.Type(), state); s.StateName == "" {
		s.StateName = fmt.Sprint(state)
	}
	s.Value = make([]byte, m.ValueSize)
	if s.State != StructOpsStateInit {
		ua, err := s.Obj.MemberUint("uvalue")
		if err != nil {
			return err
		}
		if ua == 0 {
			return fmt.Errorf("NULL uvalue: %w", objects.ErrCorrupt)
		}
		if err := p.Read(s.Value, ua); err != nil {
			return fmt.Errorf("uvalue at %#x: %w", ua, err)
		}
		refcnt, err := s.refcnt(kvalue)
		if err != nil {
			return err
		}
		val := p.Object(s.ValueType, 0)
		for _, f := range []struct {
			name string
			x    uint32
		}{{"state", s.State}, {"refcnt", refcnt}} {
			// refcount_set and the enum store write 4 bytes.
			v, err := val.Path(s.valuePath(s.ValueType, f.name))
			if err != nil {
				return err
			}
			if n, _ := btf.Sizeof(v.Type()); n != 4 || v.Addr()+4 > uint64(len(s.Value)) {
				return fmt.Errorf("%s.%s is %d bytes: %w", s.ValueType.TypeName(), f.name, n, objects.ErrNotSupported)
			}
			binary.LittleEndian.PutUint32(s.Value[v.Addr():], f.x)
		}
	}
	return s.readFuncs()
}

// refcnt returns the reference count the lookup reports. Until 6.3 it
// is kvalue's own refcnt, set to 1 when the map is registered and raised
// by each user (each TCP socket of a congestion control). 6.4 ("bpf:
// Retire the struct_ops map kvalue->refcnt.", in the series that brought
// struct bpf_struct_ops_link) reports the map's references less its user
// references, at least 0, and leaves kvalue's refcnt at 0; Debian's
// 6.1.y has that change too, without the links. So: a kernel with
// struct bpf_struct_ops_link, or whose registered map has a kvalue
// refcnt of 0 (which the old code never leaves while the map is in
// use), reports the map's count.
func (s *StructOps) refcnt(kvalue objects.Value) (uint32, error) {
	p := s.Obj.Program()
	v, err := kvalue.Path(s.valuePath(kvalue.Type(), "refcnt") + ".refs.counter")
	if err != nil {
		return 0, err
	}
	kref, err := v.Uint()
	if err != nil {
		return 0, fmt.Errorf("kvalue refcnt: %w", err)
	}
	if _, err := p.Type("struct bpf_struct_ops_link"); err != nil && kref != 0 {
		return uint32(kref), nil
	}
	var n [2]int64
	for i, path := range []string{"refcnt.counter", "usercnt.counter"} {
		v, err := s.Map.Obj.Path(path)
		if err == nil {
			n[i], err = v.Int()
		}
		if err != nil {
			return 0, fmt.Errorf("map %s: %w", path, err)
		}
	}
	return uint32(max(n[0]-n[1], 0)), nil
}

// readFuncs lists the kernel struct's function pointers (the value
// type's member "data") and the program ids Value holds in them.
func (s *StructOps) readFuncs() error {
	val := s.Obj.Program().Object(s.ValueType, 0)
	data, err := val.Member("data")
	if err != nil {
		return err
	}
	st, ok := btfload.Underlying(data.Type()).(*btf.Struct)
	if !ok {
		return fmt.Errorf("%s.data is not a struct: %w", s.ValueType.TypeName(), objects.ErrType)
	}
	for _, mb := range st.Members {
		ptr, ok := btfload.Underlying(mb.Type).(*btf.Pointer)
		if !ok {
			continue
		}
		if _, ok := btfload.Underlying(ptr.Target).(*btf.FuncProto); !ok {
			continue
		}
		off := data.Addr() + uint64(mb.Offset/8)
		if off+8 > uint64(len(s.Value)) {
			return fmt.Errorf("%s.data.%s beyond the value: %w", s.ValueType.TypeName(), mb.Name, objects.ErrCorrupt)
		}
		s.Funcs = append(s.Funcs, StructOpsFunc{Member: mb.Name, ProgID: uint32(binary.LittleEndian.Uint64(s.Value[off:]))})
	}
	return nil
}

// structOpsMemUsage is bpf_struct_ops_map_mem_usage (6.4+): the struct
// bpf_struct_ops_map with its value's data, the user copy of the value,
// a bpf_link pointer per function (funcs_cnt where the map has it;
// before, one per member of the value type), a bpf_ksym pointer per
// function where the map has ksyms, and the trampoline page.
func (m *Map) structOpsMemUsage() (uint64, error) {
	p := m.Obj.Program()
	st, err := m.container("struct bpf_struct_ops_map")
	if err != nil {
		return 0, err
	}
	vt, err := structOpsValueType(p, m)
	if err != nil {
		return 0, err
	}
	vsize, err := btf.Sizeof(vt)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %v: %w", vt.TypeName(), err, objects.ErrType)
	}
	stSize, err := p.SizeofType("struct bpf_struct_ops_map")
	if err != nil {
		return 0, err
	}
	headSize, err := p.SizeofType("struct bpf_struct_ops_value")
	if err != nil {
		return 0, err
	}
	var ptrs uint64
	if n, err := st.MemberUint("funcs_cnt"); err == nil {
		ptrs = n
		// The kernel symbols of the trampolines (6.13, and
		// Debian's 6.12.y) add a struct bpf_ksym pointer per
		// function.
		if _, err := st.Member("ksyms"); err == nil {
			ptrs += n
		}
	} else if s, ok := btfload.Underlying(vt).(*btf.Struct); ok {
		ptrs = uint64(len(s.Members))
	}
	return stSize + uint64(vsize) - headSize + uint64(vsize) + ptrs*8 + 4096, nil
}

// ValueObject returns Value as a value of ValueType (not in memory: its
// members read from the bytes), or false when Value could not be read.
func (s *StructOps) ValueObject() (objects.Value, bool) {
	if s.Value == nil {
		return objects.Value{}, false
	}
	return s.Obj.Program().ValueOf(s.ValueType, s.Value), true
}

// structOpsEntries yields a struct_ops map's one element: key 0 and the
// value bpf_struct_ops_map_sys_lookup_elem returns (StructOps.Value).
func (m *Map) structOpsEntries(yield func(*MapEntry, error) bool) error {
	s, err := NewStructOps(m)
	if err != nil {
		return err
	}
	yield(&MapEntry{Key: make([]byte, m.KeySize), Value: s.Value, Err: s.ValueErr}, nil)
	return nil
}

// SelectStructOps returns the struct_ops maps s names, as bpftool's
// struct_ops do_one_id and do_search find them: by id (an error when that
// map is not a struct_ops map), by name, or all of them (SelectAll).
func SelectStructOps(p *objects.Program, s Selector) ([]*StructOps, error) {
	if s.Kind == SelectID {
		m, err := MapByID(p, s.ID)
		if errors.Is(err, objects.ErrNotFound) {
			return nil, fmt.Errorf("can't get map by id (%d): %w", s.ID, err)
		}
		if err != nil {
			return nil, err
		}
		if m.Type != MapTypeStructOps {
			return nil, fmt.Errorf("%s id %d is not a struct_ops map", m.Name, m.ID)
		}
		so, err := NewStructOps(m)
		if err != nil {
			return nil, err
		}
		return []*StructOps{so}, nil
	}
	var out []*StructOps
	for so, err := range StructOpsForEach(p) {
		if err != nil {
			return out, err
		}
		if s.Kind != SelectName || so.Map.Name == s.Name {
			out = append(out, so)
		}
	}
	return out, nil
}

// WriteDump writes what bpftool's "struct_ops dump" shows of the map
// (its __do_dump): {"bpf_map_info": INFO} then {"bpf_struct_ops_NAME":
// VALUE}, both through the kernel's BTF, function pointers holding a
// program id as its signature and name (plain: the text variant).
func (s *StructOps) WriteDump(w TokenWriter, plain bool) error {
	info, err := s.Map.Info()
	if err != nil {
		return fmt.Errorf("struct_ops map %d: bpf_map_info: %w", s.Map.ID, err)
	}
	if s.ValueErr != nil {
		return fmt.Errorf("can't lookup struct_ops map %s id %d: %w", s.Map.Name, s.Map.ID, s.ValueErr)
	}
	p := s.Obj.Program()
	names := map[uint32]string{}
	progName := func(id uint32) (string, bool) {
		if n, ok := names[id]; ok {
			return n, n != ""
		}
		bp, err := ProgByID(p, id)
		n, ok := "", false
		if err == nil {
			n, ok = bp.BTFFuncName()
		}
		names[id] = n
		return n, ok
	}
	opts := BTFDumpOptions{Plain: plain, ProgName: progName}
	w.BeginObject()
	w.Name("bpf_map_info")
	err = DumpBTFValueWith(w, info.Type, info.Data, opts)
	w.EndObject()
	if err != nil {
		return fmt.Errorf("struct_ops map %d: bpf_map_info: %w", s.Map.ID, err)
	}
	w.BeginObject()
	w.Name(s.ValueType.TypeName())
	err = DumpBTFValueWith(w, s.ValueType, s.Value, opts)
	w.EndObject()
	if err != nil {
		return fmt.Errorf("struct_ops map %d: %w", s.Map.ID, err)
	}
	return nil
}
