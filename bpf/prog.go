package bpf

import (
	"encoding/binary"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// Walkers of the BPF programs of kernel/bpf/syscall.c (prog_idr) and
// their data: what bpf_prog_get_info_by_fd hands bpftool, read from
// memory.

// Bounds on what a program's fields may claim, checked before reading.
const (
	maxProgInsns  = 4 << 20  // xlated instructions (the verifier's limit is 1M, patching grows it)
	maxProgFuncs  = 1 << 12  // subprograms (BPF_MAX_SUBPROGS is 256)
	maxProgMaps   = 1 << 12  // used maps (MAX_USED_MAPS is 64)
	maxJitedLen   = 64 << 20 // bytes of one JIT image
	maxProgBTFLen = 16 << 20 // BTF_MAX_SIZE
)

// Prog is a loaded BPF program: struct bpf_prog and its struct
// bpf_prog_aux, with what bpftool's "prog show" prints. The instructions,
// BTF, line info and JIT images are read on demand by the methods.
type Prog struct {
	// Obj is the struct bpf_prog; Aux its struct bpf_prog_aux.
	Obj objects.Value
	Aux objects.Value
	ID  uint32
	// Type is enum bpf_prog_type; TypeName its name as libbpf spells
	// it ("socket_filter", "xdp") from the kernel's BTF enum.
	Type     uint32
	TypeName string
	// Name is aux->name (at most 15 bytes).
	Name string
	Tag  [bpfinsn.TagSize]byte
	GPL  bool
	// Jited says the program was JIT-compiled.
	Jited bool
	// Len is the number of xlated instructions (prog->len).
	Len uint32
	// JitedLen is the size of the JIT image, summed over subprograms.
	JitedLen uint64
	// Pages is prog->pages: the program's memory in pages, what fdinfo
	// reports as memlock (pages << PAGE_SHIFT).
	Pages uint64
	// LoadTime is when the program was loaded, in ns since boot
	// (ktime_get_boottime_ns).
	LoadTime uint64
	// UID is the loader's user ID (aux->user->uid).
	UID uint32
	// MapIDs are the IDs of the maps the program uses, in order.
	MapIDs []uint32
	// BTFID is the ID of the program's BTF (0: none); BTFAddr its struct btf.
	BTFID   uint32
	BTFAddr uint64
	// VerifiedInsns is aux->verified_insns (5.16+; 0 before).
	VerifiedInsns uint32
	// ExpectedAttachType is prog->expected_attach_type, and
	// AttachTypeName its enum bpf_attach_type name ("trace_fentry").
	ExpectedAttachType uint32
	AttachTypeName     string
	// AttachBTFID is the BTF type ID of the attach target (fentry,
	// fexit, LSM, ...), in the BTF AttachBTFObjID (0 without one), and
	// AttachFuncName that target's name.
	AttachBTFID    uint32
	AttachBTFObjID uint32
	AttachFuncName string
	// FuncCnt is the number of subprograms the JIT made images of (0:
	// one image, the program's).
	FuncCnt uint32
	// Problems are fields that could not be read (a used map, the BTF
	// object, the user on a page the dump lacks): the program is shown
	// without them.
	Problems []string

	srcOnce sync.Once
	src     *Source
	srcErr  error
}

// ProgFunc is one JIT image of a program: its main function or a
// subprogram (aux->func[i]).
type ProgFunc struct {
	// Prog is the struct bpf_prog of the image.
	Prog objects.Value
	Addr uint64 // bpf_func
	Len  uint32 // jited_len
	// Name is its kallsyms name (aux->ksym.name), like
	// "bpf_prog_5139583ea8dc4717_ki_sum_value".
	Name string
}

// ProgStats are the program's run statistics, summed over CPUs
// (bpf_prog_get_stats); zero unless kernel.bpf_stats_enabled was on.
type ProgStats struct {
	RunTimeNs       uint64
	RunCnt          uint64
	RecursionMisses uint64
}

// ProgForEach yields every BPF program of the kernel in ID order,
// from prog_idr, as bpftool's "prog show" lists them (the kernel's
// bpf_prog_get_next_id walks the same IDR). A damaged IDR node or a
// program that cannot be read is a *objects.Damage, noted in the
// Program's damage log, and the walk goes on; when it met damage, the
// JIT-compiled programs the IDR lost are recovered from bpf_kallsyms
// and yielded last.
func ProgForEach(p *objects.Program) iter.Seq2[*Prog, error] {
	return func(yield func(*Prog, error) bool) {
		seen := map[uint32]bool{}
		damaged := false
		for bp, err := range idrWalk(p, "prog_idr", "struct bpf_prog", NewProg, func(bp *Prog) uint32 { return bp.ID }) {
			if err != nil {
				damaged = damaged || objects.IsDamage(err)
			}
			if bp != nil {
				seen[bp.ID] = true
			}
			if !yield(bp, err) {
				return
			}
		}
		if damaged {
			ksymProgs(p, seen, yield)
		}
	}
}

// ksymProgs yields the programs on bpf_kallsyms that prog_idr did not
// give (not in seen): the second index of JIT-compiled programs, for
// when the IDR is damaged. A program's bpf_ksym sits in its
// bpf_prog_aux, whose prog points back at it; subprograms (their aux's
// func_idx non-zero) are part of their main program and skipped.
func ksymProgs(p *objects.Program, seen map[uint32]bool, yield func(*Prog, error) bool) {
	var found []string
	for k, err := range KsymForEach(p) {
		if err != nil {
			if objects.IsDamage(err) {
				continue
			}
			break
		}
		ks, err := NewKsym(k)
		if err != nil || !ks.Prog {
			continue
		}
		aux, err := objects.ContainerOf(k, "struct bpf_prog_aux", "ksym")
		if err != nil {
			continue
		}
		if fi, err := aux.MemberUint("func_idx"); err != nil || fi != 0 {
			continue
		}
		pv, err := aux.Member("prog")
		if err != nil {
			continue
		}
		bp, err := NewProg(pv)
		if err != nil || bp.ID == 0 || seen[bp.ID] {
			continue
		}
		seen[bp.ID] = true
		found = append(found, fmt.Sprintf("id %d (%s)", bp.ID, bp.Name))
		if !yield(bp, nil) {
			return
		}
	}
	if len(found) > 0 {
		yield(nil, p.NoteDamage(&objects.Damage{Walk: "prog_idr", Expected: "every program",
			Found:    fmt.Sprintf("%d more on bpf_kallsyms: %s", len(found), strings.Join(found, ", ")),
			Recovery: "found through bpf_kallsyms", Err: objects.ErrCorrupt}))
	}
}

// ProgByID returns the program with the given ID. Errors wrap
// ErrNotFound.
func ProgByID(p *objects.Program, id uint32) (*Prog, error) {
	for bp, err := range ProgForEach(p) {
		if err != nil {
			if bp == nil && objects.IsDamage(err) {
				continue
			}
			if bp == nil {
				return nil, err
			}
		}
		if bp.ID == id {
			return bp, nil
		}
	}
	return nil, fmt.Errorf("no BPF program with id %d: %w", id, objects.ErrNotFound)
}

// NewProg reads the struct bpf_prog v (or the one v points to).
func NewProg(v objects.Value) (*Prog, error) {
	addr, err := objects.ObjectAddr(v, "bpf prog")
	if err != nil {
		return nil, err
	}
	p := v.Program()
	obj, r, err := p.ReadStruct("struct bpf_prog", addr)
	if err != nil {
		return nil, err
	}
	bp := &Prog{Obj: obj}
	bp.Type = uint32(r.Uint("type"))
	bp.Len = uint32(r.Uint("len"))
	bp.Jited = r.Uint("jited") != 0
	bp.GPL = r.Uint("gpl_compatible") != 0
	bp.Pages = r.Uint("pages")
	bp.ExpectedAttachType = uint32(r.Uint("expected_attach_type"))
	jitedLen := r.Uint("jited_len")
	copy(bp.Tag[:], r.Bytes("tag"))
	auxAddr := r.Uint("aux")
	if r.Err() != nil {
		return nil, fmt.Errorf("struct bpf_prog at %#x: %w", addr, r.Err())
	}
	if auxAddr == 0 {
		return nil, fmt.Errorf("struct bpf_prog at %#x: NULL aux: %w", addr, objects.ErrCorrupt)
	}
	aux, a, err := p.ReadStruct("struct bpf_prog_aux", auxAddr)
	if err != nil {
		return nil, fmt.Errorf("bpf prog at %#x: %w", addr, err)
	}
	bp.Aux = aux
	bp.ID = uint32(a.Uint("id"))
	bp.Name = objects.CString(a.Bytes("name"))
	bp.LoadTime = a.Uint("load_time")
	bp.FuncCnt = uint32(a.Uint("func_cnt"))
	// real_func_cnt: 6.7+ ("bpf: Implement support for
	// adding hidden subprogs"): the images, hidden exception callbacks
	// included; func_cnt before.
	if n := a.OptUint("real_func_cnt"); n != 0 {
		bp.FuncCnt = uint32(n)
	}
	bp.AttachBTFID = uint32(a.Uint("attach_btf_id"))
	bp.VerifiedInsns = uint32(a.OptUint("verified_insns")) // 5.16+
	bp.BTFAddr = a.Uint("btf")
	mapCnt := a.Uint("used_map_cnt")
	mapsAddr := a.Uint("used_maps")
	userAddr := a.Uint("user")
	attachBTF := a.OptUint("attach_btf") // 5.11+
	attachName := a.Uint("attach_func_name")
	if a.Err() != nil {
		return nil, fmt.Errorf("bpf prog at %#x: struct bpf_prog_aux at %#x: %w", addr, auxAddr, a.Err())
	}
	fail := func(err error) (*Prog, error) { return nil, fmt.Errorf("bpf prog %d: %w", bp.ID, err) }
	bp.TypeName = EnumName(p, "enum bpf_prog_type", "BPF_PROG_TYPE_", uint64(bp.Type))
	bp.AttachTypeName = EnumName(p, "enum bpf_attach_type", "BPF_", uint64(bp.ExpectedAttachType))
	if bp.FuncCnt > maxProgFuncs {
		return fail(fmt.Errorf("func_cnt %d: %w", bp.FuncCnt, objects.ErrCorrupt))
	}
	bp.JitedLen = jitedLen
	if bp.FuncCnt > 0 && bp.Jited {
		fs, err := bp.Funcs()
		if err != nil {
			return fail(err)
		}
		bp.JitedLen = 0
		for _, f := range fs {
			bp.JitedLen += uint64(f.Len)
		}
	}
	if userAddr != 0 {
		u, err := p.ObjectOf("struct user_struct", userAddr)
		if err == nil {
			var uv objects.Value
			if uv, err = u.Path("uid.val"); err == nil {
				var x uint64
				x, err = uv.Uint()
				bp.UID = uint32(x)
			}
		}
		if err != nil {
			bp.Problems = append(bp.Problems, fmt.Sprintf("uid: user at %#x: %v", userAddr, err))
		}
	}
	if mapCnt > maxProgMaps {
		return fail(fmt.Errorf("used_map_cnt %d: %w", mapCnt, objects.ErrCorrupt))
	}
	if mapCnt > 0 {
		ptrs, err := p.ReadPointers(mapsAddr, int(mapCnt))
		if err != nil {
			bp.Problems = append(bp.Problems, fmt.Sprintf("map_ids: used_maps at %#x: %v", mapsAddr, err))
		}
		for _, mp := range ptrs {
			id, err := p.UintAt("struct bpf_map", mp, "id")
			if err != nil {
				bp.Problems = append(bp.Problems, fmt.Sprintf("map_ids: used map at %#x: %v", mp, err))
				continue
			}
			bp.MapIDs = append(bp.MapIDs, uint32(id))
		}
	}
	if bp.BTFAddr != 0 {
		id, err := p.UintAt("struct btf", bp.BTFAddr, "id")
		if err != nil {
			bp.Problems = append(bp.Problems, fmt.Sprintf("btf_id: btf at %#x: %v", bp.BTFAddr, err))
		}
		bp.BTFID = uint32(id)
	}
	if attachBTF != 0 {
		if id, err := p.UintAt("struct btf", attachBTF, "id"); err == nil {
			bp.AttachBTFObjID = uint32(id)
		}
	}
	if attachName != 0 {
		bp.AttachFuncName, _ = p.ReadCString(attachName, 512)
	}
	return bp, nil
}

// Memlock is what fdinfo reports as the program's memlock: prog->pages
// pages of 4 KiB (x86-64's PAGE_SHIFT is 12).
func (bp *Prog) Memlock() uint64 { return bp.Pages << 12 }

// Stats sums the program's per-CPU run statistics (prog->stats) over
// the possible CPUs, as bpf_prog_get_stats does.
func (bp *Prog) Stats() (ProgStats, error) {
	var st ProgStats
	p := bp.Obj.Program()
	sv, err := bp.Obj.Member("stats")
	if err != nil {
		return st, err
	}
	if a, err := sv.Uint(); err != nil || a == 0 {
		return st, err
	}
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return st, err
	}
	for _, cpu := range cpus {
		s, err := p.PerCPU(sv, cpu)
		if err != nil {
			return st, fmt.Errorf("bpf prog %d stats: %w", bp.ID, err)
		}
		b, err := s.Bytes()
		if err != nil {
			return st, fmt.Errorf("bpf prog %d stats on CPU %d: %w", bp.ID, cpu, err)
		}
		r := p.StructFrom(s.Type(), b)
		// u64_stats_t is a local64_t on 64-bit: its first 8 bytes.
		for _, m := range []struct {
			name string
			dst  *uint64
		}{{"cnt", &st.RunCnt}, {"nsecs", &st.RunTimeNs}, {"misses", &st.RecursionMisses}} {
			if f := r.Bytes(m.name); len(f) >= 8 {
				*m.dst += binary.LittleEndian.Uint64(f)
			}
		}
	}
	return st, nil
}

// Insns reads the program's instructions as they sit in the kernel
// (prog->insnsi, prog->len of them), after the verifier's rewrites.
func (bp *Prog) Insns() ([]bpfinsn.Insn, error) {
	if bp.Len > maxProgInsns {
		return nil, fmt.Errorf("bpf prog %d: len %d: %w", bp.ID, bp.Len, objects.ErrCorrupt)
	}
	iv, err := bp.Obj.Member("insnsi")
	if err != nil {
		return nil, fmt.Errorf("bpf prog %d: %w", bp.ID, err)
	}
	addr, _ := iv.Address()
	b := make([]byte, int(bp.Len)*bpfinsn.InsnSize)
	if err := bp.Obj.Program().Read(b, addr); err != nil {
		return nil, fmt.Errorf("bpf prog %d: instructions: %w", bp.ID, err)
	}
	return bpfinsn.Decode(b)
}

// UsedMaps describes the program's maps as bpf_map_from_imm needs
// them. A map is directly addressable when its ops' map_direct_value_meta
// is the array map's (array_map_direct_value_meta, which accepts a
// single-element array); other implementations are not modelled.
func (bp *Prog) UsedMaps() ([]bpfinsn.MapRef, error) {
	p := bp.Obj.Program()
	cnt, err := bp.Aux.Member("used_map_cnt")
	if err != nil {
		return nil, err
	}
	n, err := cnt.Uint()
	if err != nil || n == 0 {
		return nil, err
	}
	if n > maxProgMaps {
		return nil, fmt.Errorf("bpf prog %d: used_map_cnt %d: %w", bp.ID, n, objects.ErrCorrupt)
	}
	mv, err := bp.Aux.Member("used_maps")
	if err != nil {
		return nil, err
	}
	ma, err := mv.Uint()
	if err != nil {
		return nil, err
	}
	ptrs, err := p.ReadPointers(ma, int(n))
	if err != nil {
		return nil, fmt.Errorf("bpf prog %d: used_maps: %w", bp.ID, err)
	}
	arrayMeta, _ := p.Symbol("array_map_direct_value_meta")
	var out []bpfinsn.MapRef
	for _, addr := range ptrs {
		m, err := NewMap(p.Pointer(nil, addr))
		if err != nil {
			m2, err2 := p.ObjectOf("struct bpf_map", addr)
			if err2 != nil {
				return nil, err
			}
			m = &Map{Obj: m2}
			id, err := p.UintAt("struct bpf_map", addr, "id")
			if err != nil {
				return nil, fmt.Errorf("bpf prog %d: used map at %#x: %w", bp.ID, addr, err)
			}
			m.ID = uint32(id)
		}
		ref := bpfinsn.MapRef{Addr: addr, ID: m.ID}
		if meta, err := m.Obj.Path("ops->map_direct_value_meta"); err == nil && arrayMeta != 0 {
			if fn, err := meta.Uint(); err == nil && fn == arrayMeta && m.MaxEntries == 1 {
				if arr, err := objects.ContainerOf(m.Obj, "struct bpf_array", "map"); err == nil {
					if val, err := arr.Member("value"); err == nil {
						ref.ValueAddr, _ = val.Address()
						if es, err := arr.Member("elem_size"); err == nil {
							ref.ValueSize, _ = es.Uint()
							ref.Direct = true
						}
					}
				}
			}
		}
		out = append(out, ref)
	}
	return out, nil
}

// XlatedInsns returns the instructions as bpf_prog_get_info_by_fd hands
// them to a privileged reader (bpfinsn.PrepareDump over Insns and
// UsedMaps): what bpftool's "prog dump xlated" prints.
func (bp *Prog) XlatedInsns() ([]bpfinsn.Insn, error) {
	insns, err := bp.Insns()
	if err != nil {
		return nil, err
	}
	maps, err := bp.UsedMaps()
	if err != nil {
		return nil, fmt.Errorf("bpf prog %d: %w", bp.ID, err)
	}
	return bpfinsn.PrepareDump(insns, maps), nil
}

// readArray reads n records of the named struct type at the address
// in pointer member ptr of aux.
func (bp *Prog) readArray(ptr, typeName string, n uint64) ([]byte, int, error) {
	p := bp.Obj.Program()
	t, err := p.Type(typeName)
	if err != nil {
		return nil, 0, err
	}
	size, err := btf.Sizeof(t)
	if err != nil {
		return nil, 0, fmt.Errorf("size of %s: %v: %w", typeName, err, objects.ErrType)
	}
	if n > maxProgInsns {
		return nil, 0, fmt.Errorf("bpf prog %d: %d records of %s: %w", bp.ID, n, typeName, objects.ErrCorrupt)
	}
	pv, err := bp.Aux.Member(ptr)
	if err != nil {
		return nil, 0, err
	}
	a, err := pv.Uint()
	if err != nil {
		return nil, 0, err
	}
	if a == 0 || n == 0 {
		return nil, size, nil
	}
	b := make([]byte, int(n)*size)
	if err := p.Read(b, a); err != nil {
		return nil, 0, fmt.Errorf("bpf prog %d: %s: %w", bp.ID, ptr, err)
	}
	return b, size, nil
}

// FuncInfo reads the program's func_info records (aux->func_info,
// func_info_cnt of them), their offsets as the verifier left them.
func (bp *Prog) FuncInfo() ([]bpfinsn.FuncRecord, error) {
	n, err := bp.Aux.MemberUint("func_info_cnt")
	if err != nil {
		return nil, err
	}
	b, size, err := bp.readArray("func_info", "struct bpf_func_info", n)
	if err != nil || b == nil {
		return nil, err
	}
	if size < bpfinsn.FuncInfoSize {
		return nil, fmt.Errorf("struct bpf_func_info is %d bytes: %w", size, objects.ErrNotSupported)
	}
	out := make([]bpfinsn.FuncRecord, n)
	for i := range out {
		r := b[i*size:]
		out[i] = bpfinsn.FuncRecord{InsnOff: binary.LittleEndian.Uint32(r), TypeID: binary.LittleEndian.Uint32(r[4:])}
	}
	return out, nil
}

// LineInfo reads the program's line_info records (aux->linfo, nr_linfo).
func (bp *Prog) LineInfo() ([]bpfinsn.LineRecord, error) {
	n, err := bp.Aux.MemberUint("nr_linfo")
	if err != nil {
		return nil, err
	}
	b, size, err := bp.readArray("linfo", "struct bpf_line_info", n)
	if err != nil || b == nil {
		return nil, err
	}
	if size < bpfinsn.LineInfoSize {
		return nil, fmt.Errorf("struct bpf_line_info is %d bytes: %w", size, objects.ErrNotSupported)
	}
	out := make([]bpfinsn.LineRecord, n)
	for i := range out {
		r := b[i*size:]
		out[i] = bpfinsn.LineRecord{InsnOff: binary.LittleEndian.Uint32(r), FileNameOff: binary.LittleEndian.Uint32(r[4:]),
			LineOff: binary.LittleEndian.Uint32(r[8:]), LineCol: binary.LittleEndian.Uint32(r[12:])}
	}
	return out, nil
}

// JitedLineInfo reads the JIT address of each line_info record
// (aux->jited_linfo), as bpf_prog_get_info_by_fd's jited_line_info.
func (bp *Prog) JitedLineInfo() ([]uint64, error) {
	n, err := bp.Aux.MemberUint("nr_linfo")
	if err != nil || n == 0 {
		return nil, err
	}
	if n > maxProgInsns {
		return nil, fmt.Errorf("bpf prog %d: nr_linfo %d: %w", bp.ID, n, objects.ErrCorrupt)
	}
	a, err := bp.Aux.MemberUint("jited_linfo")
	if err != nil || a == 0 {
		return nil, err
	}
	return bp.Obj.Program().ReadPointers(a, int(n))
}

// BTF reads the program's BTF (aux->btf: data, data_size). Errors wrap
// ErrNotFound for a program without BTF.
func (bp *Prog) BTF() (*bpfinsn.BTF, error) {
	if bp.BTFAddr == 0 {
		return nil, fmt.Errorf("bpf prog %d has no BTF: %w", bp.ID, objects.ErrNotFound)
	}
	p := bp.Obj.Program()
	size, err := p.UintAt("struct btf", bp.BTFAddr, "data_size")
	if err != nil {
		return nil, fmt.Errorf("bpf prog %d: btf: %w", bp.ID, err)
	}
	if size > maxProgBTFLen {
		return nil, fmt.Errorf("bpf prog %d: btf data_size %d: %w", bp.ID, size, objects.ErrCorrupt)
	}
	data, err := p.UintAt("struct btf", bp.BTFAddr, "data")
	if err != nil {
		return nil, fmt.Errorf("bpf prog %d: btf: %w", bp.ID, err)
	}
	b := make([]byte, size)
	if err := p.Read(b, data); err != nil {
		return nil, fmt.Errorf("bpf prog %d: btf data: %w", bp.ID, err)
	}
	return bpfinsn.ParseBTF(b)
}

// Funcs returns the program's JIT images: one per subprogram
// (aux->func[i]) for a program with BPF-to-BPF calls, else its own.
// A program that is not JITed has none.
func (bp *Prog) Funcs() ([]ProgFunc, error) {
	if !bp.Jited {
		return nil, nil
	}
	p := bp.Obj.Program()
	addrs := []uint64{0}
	if bp.FuncCnt > 0 {
		fa, err := bp.Aux.MemberUint("func")
		if err != nil {
			return nil, err
		}
		if addrs, err = p.ReadPointers(fa, int(bp.FuncCnt)); err != nil {
			return nil, fmt.Errorf("bpf prog %d: func: %w", bp.ID, err)
		}
	} else {
		addrs[0], _ = bp.Obj.Address()
	}
	out := make([]ProgFunc, 0, len(addrs))
	for i, a := range addrs {
		obj, r, err := p.ReadStruct("struct bpf_prog", a)
		if err != nil {
			return nil, fmt.Errorf("bpf prog %d: func[%d]: %w", bp.ID, i, err)
		}
		f := ProgFunc{Prog: obj, Addr: r.Uint("bpf_func"), Len: uint32(r.Uint("jited_len"))}
		aux := r.Uint("aux")
		if r.Err() != nil {
			return nil, fmt.Errorf("bpf prog %d: func[%d]: %w", bp.ID, i, r.Err())
		}
		if i == 0 && bp.FuncCnt > 0 {
			// The main function's symbol is the program's own ksym
			// (named from its BTF func_info); func[0]'s ksym is not
			// listed, and its name is the program's name, which differs
			// when the loader renamed the program.
			aux, _ = bp.Aux.Address()
		}
		if aux != 0 {
			if av, err := p.ObjectOf("struct bpf_prog_aux", aux); err == nil {
				// aux->ksym: 5.8+ ("bpf: Add bpf_ksym_add/del functions").
				if nv, err := av.Path("ksym.name"); err == nil {
					f.Name, _ = nv.CString()
				}
			}
		}
		if f.Name == "" {
			f.Name = kallsyms.BPFProgName(bp.Tag, bp.Name)
		}
		out = append(out, f)
	}
	return out, nil
}

// Image reads a JIT image's bytes.
func (f ProgFunc) Image() ([]byte, error) {
	if f.Len > maxJitedLen {
		return nil, fmt.Errorf("JIT image %s: %d bytes: %w", f.Name, f.Len, objects.ErrCorrupt)
	}
	if f.Addr == 0 {
		return nil, fmt.Errorf("JIT image %s: NULL bpf_func: %w", f.Name, objects.ErrCorrupt)
	}
	b := make([]byte, f.Len)
	if err := f.Prog.Program().Read(b, f.Addr); err != nil {
		return nil, fmt.Errorf("JIT image %s: %w", f.Name, err)
	}
	return b, nil
}

// FullName is the program's name as bpftool's get_prog_full_name gives
// it: aux->name, unless that fills its 15 bytes and the program has
// BTF and func_info, when the name of its first function in BTF.
func (bp *Prog) FullName() string {
	if len(bp.Name) < 15 || bp.BTFAddr == 0 {
		return bp.Name
	}
	fi, err := bp.FuncInfo()
	if err != nil || len(fi) == 0 {
		return bp.Name
	}
	b, err := bp.BTF()
	if err != nil {
		return bp.Name
	}
	if n, ok := b.FuncName(fi[0].TypeID); ok {
		return n
	}
	return bp.Name
}

// BTFFuncName is the name of the program's first function in its BTF
// (func_info[0]), as bpftool's dump_prog_id_as_func_ptr finds it; ok is
// false for a program without BTF or func_info.
func (bp *Prog) BTFFuncName() (name string, ok bool) {
	if bp.BTFAddr == 0 {
		return "", false
	}
	fi, err := bp.FuncInfo()
	if err != nil || len(fi) == 0 {
		return "", false
	}
	b, err := bp.BTF()
	if err != nil {
		return "", false
	}
	return b.FuncName(fi[0].TypeID)
}
