package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// maxBTFObjectSize bounds the BTF bytes read for one object.
const maxBTFObjectSize = 256 << 20

// BTF is a BTF object of the kernel (struct btf, kernel/bpf/btf.c):
// vmlinux's, a module's (split BTF on vmlinux's) or one a program loaded
// for its maps and programs, with what bpftool's "btf show" prints.
type BTF struct {
	// Obj is the struct btf.
	Obj  objects.Value `json:"obj"`
	ID   uint32        `json:"id"`
	Name string        `json:"name"` // "vmlinux", a module's name, or "" (5.11+: btf->name)
	// Size is the BTF's size in bytes (data_size).
	Size uint32 `json:"size"`
	// Kernel says the BTF is the kernel's or a module's (kernel_btf).
	Kernel bool `json:"kernel"`
	// Data is the address of the raw BTF bytes; BaseAddr the struct btf
	// a split BTF builds on (0: none).
	Data     uint64 `json:"-"`
	BaseAddr uint64 `json:"-"`
}

// BTFForEach yields the kernel's BTF objects in ID order, from btf_idr.
// A damaged IDR node or an object that cannot be read is a
// *objects.Damage, noted in the Program's damage log, and the walk goes
// on.
func BTFForEach(p *objects.Program) iter.Seq2[*BTF, error] {
	return idrWalk(p, "btf_idr", "struct btf", NewBTF, func(b *BTF) uint32 { return b.ID })
}

// BTFByID returns the BTF object with the given ID. Errors wrap
// ErrNotFound.
func BTFByID(p *objects.Program, id uint32) (*BTF, error) {
	for b, err := range BTFForEach(p) {
		if err != nil && b == nil {
			if objects.IsDamage(err) {
				continue
			}
			return nil, err
		}
		if b.ID == id {
			return b, err
		}
	}
	return nil, fmt.Errorf("no BTF object with id %d: %w", id, objects.ErrNotFound)
}

// NewBTF reads the struct btf v is or points to.
func NewBTF(v objects.Value) (*BTF, error) {
	addr, err := objects.ObjectAddr(v, "btf")
	if err != nil {
		return nil, err
	}
	p := v.Program()
	obj, err := p.ObjectOf("struct btf", addr)
	if err != nil {
		return nil, err
	}
	b, err := obj.Bytes()
	if err != nil {
		return nil, fmt.Errorf("read struct btf at %#x: %w", addr, err)
	}
	r := p.StructFrom(obj.Type(), b)
	o := &BTF{Obj: obj}
	o.ID = uint32(r.Uint("id"))
	o.Size = uint32(r.Uint("data_size"))
	o.Data = r.Uint("data")
	o.BaseAddr = r.OptUint("base_btf") // 5.11+ (split BTF)
	o.Kernel = r.OptUint("kernel_btf") != 0
	if nb := r.Bytes("name"); nb != nil { // 5.11+ (36e68442d1af "bpf: Load and verify kernel module BTFs")
		if i := bytes.IndexByte(nb, 0); i >= 0 {
			nb = nb[:i]
		}
		o.Name = string(nb)
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("struct btf at %#x: %w", addr, r.Err())
	}
	return o, nil
}

// Bytes reads the object's raw BTF (header, types, strings). Errors wrap
// ErrCorrupt for an implausible size, or the memory error.
func (o *BTF) Bytes() ([]byte, error) {
	if o.Size == 0 || o.Size > maxBTFObjectSize || o.Data == 0 {
		return nil, fmt.Errorf("btf %d at %#x: data %#x of %d bytes: %w", o.ID, o.Obj.Addr(), o.Data, o.Size, objects.ErrCorrupt)
	}
	raw := make([]byte, o.Size)
	if err := o.Obj.Program().Read(raw, o.Data); err != nil {
		return nil, fmt.Errorf("btf %d: read %d bytes at %#x: %w", o.ID, o.Size, o.Data, err)
	}
	return raw, nil
}

// Spec parses the object's BTF: on its own, or, for split BTF (a
// module's), on vmlinux (the Program's types). Errors wrap btfload's.
func (o *BTF) Spec() (*btfload.Spec, error) {
	raw, err := o.Bytes()
	if err != nil {
		return nil, err
	}
	src := fmt.Sprintf("btf %d memory %#x+%#x", o.ID, o.Data, o.Size)
	if o.BaseAddr != 0 {
		base := o.Obj.Program().Types()
		if base.Base() != nil {
			base = base.Base()
		}
		return btfload.ParseSplit(raw, base, o.Name, src)
	}
	return btfload.Parse(raw, src)
}

// BTFUsers are the programs and maps that use a BTF object, by ID.
type BTFUsers struct {
	ProgIDs []uint32 `json:"prog_ids"`
	MapIDs  []uint32 `json:"map_ids"`
}

// BTFUsersOf returns, for each BTF object ID, the programs
// (prog->aux->btf) and maps (map->btf) that use it, as bpftool's "btf
// show" lists them; IDs ascending.
func BTFUsersOf(p *objects.Program) (map[uint32]*BTFUsers, error) {
	out := map[uint32]*BTFUsers{}
	get := func(id uint32) *BTFUsers {
		u := out[id]
		if u == nil {
			u = &BTFUsers{}
			out[id] = u
		}
		return u
	}
	for m, err := range MapForEach(p) {
		if err != nil && m == nil {
			if objects.IsDamage(err) {
				continue
			}
			return nil, err
		}
		if m.BTFID != 0 {
			get(m.BTFID).MapIDs = append(get(m.BTFID).MapIDs, m.ID)
		}
	}
	for bp, err := range ProgForEach(p) {
		if err != nil && bp == nil {
			if objects.IsDamage(err) {
				continue
			}
			return nil, err
		}
		if bp.BTFID != 0 {
			get(bp.BTFID).ProgIDs = append(get(bp.BTFID).ProgIDs, bp.ID)
		}
	}
	for _, u := range out {
		slices.Sort(u.ProgIDs)
		slices.Sort(u.MapIDs)
	}
	return out, nil
}

// BTFShow is a BTF object as bpftool's "btf show" lists it: with the
// programs and maps that use it.
type BTFShow struct {
	*BTF
	BTFUsers
}

// SelectBTFs returns the BTF objects s names (SelectAll or an id) with
// their users. A BTF object that cannot be read entirely is returned
// with the walk's error; a walk that breaks returns what it found.
// Errors wrap objects.ErrNotFound when s names nothing.
func SelectBTFs(p *objects.Program, s Selector) ([]*BTFShow, error) {
	users, err := BTFUsersOf(p)
	if err != nil {
		return nil, err
	}
	var out []*BTFShow
	var errs []error
	for b, err := range BTFForEach(p) {
		if err != nil {
			if b == nil {
				if objects.IsDamage(err) {
					continue
				}
				return out, errors.Join(append(errs, err)...)
			}
			errs = append(errs, err)
		}
		if s.Kind == SelectID && b.ID != s.ID {
			continue
		}
		bs := &BTFShow{BTF: b}
		if u := users[b.ID]; u != nil {
			bs.BTFUsers = *u
		}
		out = append(out, bs)
	}
	if s.Kind == SelectID && len(out) == 0 {
		return nil, fmt.Errorf("no BTF object with id %d: %w", s.ID, objects.ErrNotFound)
	}
	return out, errors.Join(errs...)
}

// btfCHeader and btfCFooter wrap bpftool's "format c" output.
const btfCHeader = `#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

`
const btfCFooter = `#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
`

// DumpC renders the object's types as C, as bpftool's "btf dump id N
// format c" does: every type (as bpftool asks libbpf for each id in turn,
// the order btf_dump follows depends on all of them), within bpftool's
// vmlinux.h guards.
func (o *BTF) DumpC() (string, error) {
	spec, err := o.Spec()
	if err != nil {
		return "", fmt.Errorf("btf %d: %w", o.ID, err)
	}
	var types []btf.Type
	for t, err := range spec.BTF().All() {
		if err != nil {
			return "", fmt.Errorf("btf %d: %w", o.ID, err)
		}
		types = append(types, t)
	}
	return btfCHeader + btfload.FormatC(types...) + btfCFooter, nil
}

// Raw decodes the object as written (bpftool's raw "btf dump"): a
// module's split BTF on vmlinux's, which the caller gives.
func (o *BTF) Raw(vmlinux *btfload.Spec) (*btfload.RawBTF, error) {
	raw, err := o.Bytes()
	if err != nil {
		return nil, err
	}
	var base *btfload.RawBTF
	if o.BaseAddr != 0 {
		vm := vmlinux
		for vm.Base() != nil {
			vm = vm.Base()
		}
		if base, err = btfload.ParseRawBTF(vm.Raw(), nil); err != nil {
			return nil, fmt.Errorf("btf %d: vmlinux BTF: %w", o.ID, err)
		}
	}
	rb, err := btfload.ParseRawBTF(raw, base)
	if err != nil {
		return nil, fmt.Errorf("btf %d: %w", o.ID, err)
	}
	return rb, nil
}
