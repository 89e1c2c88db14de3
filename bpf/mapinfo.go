package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// MapInfo is the kernel's struct bpf_map_info for a map, as
// bpf_map_get_info_by_fd (kernel/bpf/syscall.c) fills it: Data holds
// Type's bytes, in the layout of the kernel's own BTF.
type MapInfo struct {
	Type btf.Type
	Data []byte
}

// Info fills the kernel's struct bpf_map_info for the map as
// bpf_map_get_info_by_fd does: type, id, sizes, flags, map_extra, name,
// the BTF ids (btf_id and the key and value type ids only when the map
// has BTF), btf_vmlinux_value_type_id and, for a struct_ops map on 6.9+,
// btf_vmlinux_id (the id of the BTF its value type is in). Members the
// kernel only fills for device-bound (offloaded) maps, which a dump
// cannot describe, stay zero, as do members this kernel's BTF lacks.
// Errors wrap ErrNotFound when the BTF has no struct bpf_map_info.
func (m *Map) Info() (*MapInfo, error) {
	p := m.Obj.Program()
	t, err := p.Type("struct bpf_map_info")
	if err != nil {
		return nil, err
	}
	st, ok := btfload.Underlying(t).(*btf.Struct)
	if !ok {
		return nil, fmt.Errorf("struct bpf_map_info: %w", objects.ErrType)
	}
	info := &MapInfo{Type: t, Data: make([]byte, st.Size)}
	fields := []struct {
		name string
		v    uint64
	}{
		{"type", uint64(m.Type)},
		{"id", uint64(m.ID)},
		{"key_size", uint64(m.KeySize)},
		{"value_size", uint64(m.ValueSize)},
		{"max_entries", uint64(m.MaxEntries)},
		{"map_flags", uint64(m.Flags)},
		{"map_extra", m.MapExtra},
		{"btf_vmlinux_value_type_id", uint64(m.BTFVmlinuxValueTypeID)},
	}
	if m.BTFAddr != 0 {
		if m.BTFErr != nil {
			return nil, m.BTFErr
		}
		fields = append(fields, []struct {
			name string
			v    uint64
		}{
			{"btf_id", uint64(m.BTFID)},
			{"btf_key_type_id", uint64(m.BTFKeyTypeID)},
			{"btf_value_type_id", uint64(m.BTFValueTypeID)},
		}...)
	}
	if m.Type == MapTypeStructOps {
		// 6.9+ ("bpf: pass btf object id in bpf_map_info"):
		// bpf_map_struct_ops_info_fill gives st_map->btf's id.
		if _, err := p.FindMember(st, "btf_vmlinux_id"); err == nil {
			sm, err := m.container("struct bpf_struct_ops_map")
			if err != nil {
				return nil, err
			}
			ba, err := sm.MemberUint("btf")
			if err != nil {
				return nil, fmt.Errorf("map %d: struct_ops btf: %w", m.ID, err)
			}
			var id uint64
			if ba != 0 {
				if id, err = p.UintAt("struct btf", ba, "id"); err != nil {
					return nil, fmt.Errorf("map %d: struct_ops btf at %#x: %w", m.ID, ba, err)
				}
			}
			fields = append(fields, struct {
				name string
				v    uint64
			}{"btf_vmlinux_id", id})
		}
	}
	for _, f := range fields {
		mi, err := p.FindMember(st, f.name)
		if err != nil {
			continue // a member this kernel does not have
		}
		n, err := btf.Sizeof(mi.Type)
		off := int(mi.BitOff / 8)
		if err != nil || mi.BitLen > 0 || off+n > len(info.Data) {
			return nil, fmt.Errorf("bpf_map_info.%s: %w", f.name, objects.ErrNotSupported)
		}
		switch n {
		case 4:
			binary.LittleEndian.PutUint32(info.Data[off:], uint32(f.v))
		case 8:
			binary.LittleEndian.PutUint64(info.Data[off:], f.v)
		default:
			return nil, fmt.Errorf("bpf_map_info.%s is %d bytes: %w", f.name, n, objects.ErrNotSupported)
		}
	}
	// memcpy(info.name, map->name, sizeof(map->name))
	if mi, err := p.FindMember(st, "name"); err == nil {
		nv, err := m.Obj.Member("name")
		if err != nil {
			return nil, err
		}
		b, err := nv.Bytes()
		if err != nil {
			return nil, fmt.Errorf("map %d name: %w", m.ID, err)
		}
		n, _ := btf.Sizeof(mi.Type)
		copy(info.Data[mi.BitOff/8:int(mi.BitOff/8)+min(n, len(b))], b)
	}
	return info, nil
}
