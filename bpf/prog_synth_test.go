package bpf

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/bpfinsn"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// insn encodes a struct bpf_insn (include/uapi/linux/bpf.h): code,
// dst_reg:4 and src_reg:4, off, imm, little-endian.
func insn(code, dst, src uint8, off int16, imm int32) []byte {
	b := []byte{code, dst | src<<4, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(b[2:], uint16(off))
	binary.LittleEndian.PutUint32(b[4:], uint32(imm))
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

const (
	callBase   = 0xffffffff81000000 // __bpf_call_base
	htabLookup = 0xffffffff81300000 // a hash map's ops->map_lookup_elem
	loadTime   = 123456789
)

// progKernel lays out two maps, a BTF object and two programs:
//
//   - map 3 "cfg", an array of one 8-byte value, directly addressable
//     (its ops' map_direct_value_meta is array_map_direct_value_meta);
//   - map 4 "counts", a hash map whose ops->map_lookup_elem is htabLookup;
//   - BTF 7 with a function a_long_function_name;
//   - prog 1 "short", a socket filter: r1 = map 4; r2 = r10; r2 += -4;
//     call map 4's lookup directly; r0 = 0; exit — what the verifier
//     leaves of "call bpf_map_lookup_elem"; JITed, GPL, with func_info,
//     line info, per-CPU stats and its user;
//   - prog 2 "a_long_function", tracing fentry of do_unlinkat, JITed into
//     two images (aux->func), loading the value of map 3 at offset 4.
func progKernel(t *testing.T) (*bpfKernel, map[string]sk.Obj, uint32) {
	k := newBPF(t)
	k.Syms["__bpf_call_base"] = callBase
	objs := map[string]sk.Obj{}

	arr, m3 := k.mapIn("bpf_array", 8, 3, MapTypeArray, 4, 8, 1, "cfg")
	arr.Set("elem_size", 8)
	m3.Set("ops", k.New("bpf_map_ops").Set("map_direct_value_meta", symArrayMeta).Addr)
	k.M.U64(arr.At("value"), 0x1122334455667788)
	_, m4 := k.mapIn("bpf_htab", 0, 4, MapTypeHash, 4, 8, 16, "counts")
	m4.Set("ops", k.New("bpf_map_ops").Set("map_lookup_elem", htabLookup).Addr)
	objs["m3"], objs["m4"], objs["arr"] = m3, m4, arr

	fn := &btf.Func{Name: "a_long_function_name", Type: &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}}
	raw, fnID := rawBTF(t, "a_long_function_name", fn)
	bt := k.btfObj(7, "", raw)
	vmlinux := k.btfObj(1, "vmlinux", raw).Set("kernel_btf", 1)
	objs["btf"], objs["vmlinux"] = bt, vmlinux

	// prog 1.
	kernelInsns := cat(
		insn(0x18, 1, 0, 0, int32(uint32(m4.Addr))), insn(0, 0, 0, 0, int32(uint32(m4.Addr>>32))),
		insn(0xbf, 2, 10, 0, 0),
		insn(0x07, 2, 0, 0, -4),
		insn(0x85, 0, 0, 0, int32(htabLookup-callBase)),
		insn(0xb7, 0, 0, 0, 0),
		insn(0x95, 0, 0, 0, 0))
	p1, aux1 := k.prog(1, 1, "short", kernelInsns)
	// The tag: SHA-1 of the instructions as loaded (kernel/bpf/core.c
	// bpf_prog_calc_tag), the map load's immediates zeroed.
	loaded := cat(
		insn(0x18, 1, 1, 0, 0), insn(0, 0, 0, 0, 0),
		insn(0xbf, 2, 10, 0, 0),
		insn(0x07, 2, 0, 0, -4),
		insn(0x85, 0, 0, 0, 1), // BPF_FUNC_map_lookup_elem
		insn(0xb7, 0, 0, 0, 0),
		insn(0x95, 0, 0, 0, 0))
	sum := sha1.Sum(loaded)
	p1.Bytes("tag", sum[:8]).Set("jited", 1).Set("gpl_compatible", 1).Set("pages", 1).Set("jited_len", 40).Set("bpf_func", 0xffffffffa0001000)
	k.M.Write(0xffffffffa0001000, []byte("\x0f\x1f\x44\x00\x00JITCODE"))
	k.M.Write(0xffffffffa0001000+13, make([]byte, 27))
	used := k.M.Alloc(16)
	k.M.U64(used, m3.Addr)
	k.M.U64(used+8, m4.Addr)
	fi := k.New("bpf_func_info").Set("insn_off", 0).Set("type_id", uint64(fnID))
	li := k.M.Alloc(32)
	k.M.Obj(k.S("bpf_line_info"), li).Set("insn_off", 0).Set("file_name_off", 1).Set("line_off", 2).Set("line_col", 3<<10|5)
	k.M.Obj(k.S("bpf_line_info"), li+16).Set("insn_off", 5).Set("file_name_off", 1).Set("line_off", 9).Set("line_col", 4<<10|1)
	jl := k.M.Alloc(16)
	k.M.U64(jl, 0xffffffffa0001000)
	k.M.U64(jl+8, 0xffffffffa0001020)
	user := k.New("user_struct").Set("uid.val", 1000)
	aux1.Set("load_time", loadTime).Set("used_map_cnt", 2).Set("used_maps", used).Set("btf", bt.Addr).Set("verified_insns", 7).
		Set("func_info", fi.Addr).Set("func_info_cnt", 1).Set("linfo", li).Set("nr_linfo", 2).Set("jited_linfo", jl).Set("user", user.Addr)
	// Per-CPU statistics at a per-CPU offset of its own.
	const statsOff = 0x3000
	p1.Set("stats", statsOff)
	for cpu := range 2 {
		k.M.Obj(k.S("bpf_prog_stats"), sk.PerCPUAddr(cpu, statsOff)).Set("cnt.v", uint64(10+cpu)).Set("nsecs.v", uint64(1000*(cpu+1))).Set("misses.v", uint64(cpu))
	}
	objs["p1"], objs["aux1"] = p1, aux1

	// prog 2: r1 = &cfg's value + 4; r0 = 0; exit.
	va := arr.At("value") + 4
	p2, aux2 := k.prog(2, 26, "a_long_function", cat(
		insn(0x18, 1, 0, 0, int32(uint32(va))), insn(0, 0, 0, 0, int32(uint32(va>>32))),
		insn(0xb7, 0, 0, 0, 0), insn(0x95, 0, 0, 0, 0)))
	p2.Set("expected_attach_type", 24).Set("jited", 1).Set("jited_len", 99)
	var funcs []uint64
	for i, img := range []struct {
		addr uint64
		len  uint64
		name string
	}{{0xffffffffa0002000, 30, "bpf_prog_0000000000000000_a_long_function"}, {0xffffffffa0003000, 12, ""}} {
		fp, faux := k.prog(2, 26, "", nil)
		fp.Set("bpf_func", img.addr).Set("jited_len", img.len)
		faux.Str("ksym.name", img.name)
		funcs = append(funcs, fp.Addr)
		_ = i
	}
	fa := k.M.Alloc(16)
	k.M.U64(fa, funcs[0])
	k.M.U64(fa+8, funcs[1])
	used2 := k.M.Alloc(8)
	k.M.U64(used2, m3.Addr)
	aux2.Set("func_cnt", 2).Set("func", fa).Set("attach_btf_id", 55).Set("attach_btf", vmlinux.Addr).
		Set("attach_func_name", k.Str("do_unlinkat")).Set("used_map_cnt", 1).Set("used_maps", used2).Set("load_time", loadTime+1)
	objs["p2"], objs["aux2"] = p2, aux2

	k.idr("prog_idr", map[uint64]uint64{1: p1.Addr, 2: p2.Addr})
	k.idr("map_idr", map[uint64]uint64{3: m3.Addr, 4: m4.Addr})
	k.idr("btf_idr", map[uint64]uint64{1: vmlinux.Addr, 7: bt.Addr})
	return k, objs, fnID
}

func TestProgs(t *testing.T) {
	k, objs, fnID := progKernel(t)
	var got []string
	for bp, err := range ProgForEach(k.p) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %q %x gpl=%v jited=%v len=%d jlen=%d mem=%d load=%d uid=%d maps=%v btf=%d vi=%d attach=%s/%d/%d/%q funcs=%d",
			bp.ID, bp.TypeName, bp.Name, bp.Tag, bp.GPL, bp.Jited, bp.Len, bp.JitedLen, bp.Memlock(), bp.LoadTime, bp.UID, bp.MapIDs, bp.BTFID, bp.VerifiedInsns,
			bp.AttachTypeName, bp.AttachBTFID, bp.AttachBTFObjID, bp.AttachFuncName, bp.FuncCnt))
	}
	tag1 := objs["p1"]
	var tag [8]byte
	k.M.ReadVirt(tag[:], tag1.At("tag"))
	want := []string{
		fmt.Sprintf(`1 socket_filter "short" %x gpl=true jited=true len=7 jlen=40 mem=4096 load=123456789 uid=1000 maps=[3 4] btf=7 vi=7 attach=cgroup_inet_ingress/0/0/"" funcs=0`, tag),
		`2 tracing "a_long_function" 0000000000000000 gpl=false jited=true len=4 jlen=42 mem=0 load=123456790 uid=0 maps=[3] btf=0 vi=0 attach=trace_fentry/55/1/"do_unlinkat" funcs=2`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("programs\ngot  %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}

	p1, err := ProgByID(k.p, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ProgByID(k.p, 9); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("ProgByID(9): %v", err)
	}
	st, err := p1.Stats()
	if err != nil || st != (ProgStats{RunCnt: 21, RunTimeNs: 3000, RecursionMisses: 1}) {
		t.Errorf("stats %+v, %v", st, err)
	}
	fi, err := p1.FuncInfo()
	if err != nil || len(fi) != 1 || fi[0] != (bpfinsn.FuncRecord{InsnOff: 0, TypeID: fnID}) {
		t.Errorf("func_info %+v, %v", fi, err)
	}
	li, err := p1.LineInfo()
	if err != nil || fmt.Sprint(li) != fmt.Sprint([]bpfinsn.LineRecord{{InsnOff: 0, FileNameOff: 1, LineOff: 2, LineCol: 3<<10 | 5}, {InsnOff: 5, FileNameOff: 1, LineOff: 9, LineCol: 4<<10 | 1}}) {
		t.Errorf("line_info %+v, %v", li, err)
	}
	jl, err := p1.JitedLineInfo()
	if err != nil || fmt.Sprintf("%x", jl) != "[ffffffffa0001000 ffffffffa0001020]" {
		t.Errorf("jited_line_info %x, %v", jl, err)
	}
	if n, ok := p1.BTFFuncName(); !ok || n != "a_long_function_name" {
		t.Errorf("BTFFuncName = %q, %v", n, ok)
	}
	if n := p1.FullName(); n != "short" {
		t.Errorf("FullName of a short name = %q", n)
	}
	fs, err := p1.Funcs()
	if err != nil || len(fs) != 1 || fs[0].Addr != 0xffffffffa0001000 || fs[0].Len != 40 || fs[0].Name != kallsyms.BPFProgName(p1.Tag, "short") {
		t.Errorf("funcs of prog 1: %+v, %v", fs, err)
	}
	img, err := fs[0].Image()
	if err != nil || !strings.HasPrefix(string(img), "\x0f\x1f\x44\x00\x00JITCODE") || len(img) != 40 {
		t.Errorf("image %q, %v", img, err)
	}
	insns, err := p1.Insns()
	if err != nil || len(insns) != 7 || insns[4].Imm != int32(htabLookup-callBase) {
		t.Errorf("insns %v, %v", insns, err)
	}
	x, err := p1.XlatedInsns()
	// bpf_insn_prepare_dump: the map's address becomes its id.
	if err != nil || x[0].Src != bpfinsn.PseudoMapFD || x[0].Imm != 4 || x[1].Imm != 0 {
		t.Errorf("xlated %v, %v", x, err)
	}
	l, err := p1.AsLoaded(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Match || l.Tag != p1.Tag || l.Insns[4].Imm != 1 {
		t.Errorf("as loaded: tag %x, kernel's %x, insns %v, kept %v", l.Tag, p1.Tag, l.Insns, l.Kept)
	}

	p2, err := ProgByID(k.p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := p2.FullName(); n != "a_long_function" {
		t.Errorf("FullName without BTF = %q", n)
	}
	// bpftool's get_prog_full_name: a name that fills aux->name's 15
	// bytes is completed from BTF when the program has func_info.
	withBTF := &Prog{Obj: p2.Obj, Aux: p1.Aux, ID: p2.ID, BTFAddr: p1.BTFAddr, Name: "a_long_function"}
	if n := withBTF.FullName(); n != "a_long_function_name" {
		t.Errorf("FullName from BTF = %q", n)
	}
	if _, ok := p2.BTFFuncName(); ok {
		t.Errorf("BTFFuncName without BTF")
	}
	if _, err := p2.BTF(); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("BTF of a program without: %v", err)
	}
	fs, err = p2.Funcs()
	if err != nil || len(fs) != 2 || fs[0].Name != "bpf_prog_0000000000000000_a_long_function" || fs[1].Name != kallsyms.BPFProgName(p2.Tag, "a_long_function") ||
		fs[0].Addr != 0xffffffffa0002000 || fs[1].Len != 12 {
		t.Errorf("funcs of prog 2: %+v, %v", fs, err)
	}
	x, err = p2.XlatedInsns()
	// A load of an address in the directly addressable value of map 3:
	// BPF_PSEUDO_MAP_VALUE, the id, the offset in the second half.
	if err != nil || x[0].Src != bpfinsn.PseudoMapValue || x[0].Imm != 3 || x[1].Imm != 4 {
		t.Errorf("xlated of prog 2 %v, %v", x, err)
	}
	if st, err := p2.Stats(); err != nil || st != (ProgStats{}) {
		t.Errorf("stats without stats: %+v, %v", st, err)
	}
	if fi, err := p2.FuncInfo(); err != nil || fi != nil {
		t.Errorf("func_info without: %v, %v", fi, err)
	}
	if jl, err := p2.JitedLineInfo(); err != nil || jl != nil {
		t.Errorf("jited_line_info without: %v, %v", jl, err)
	}
	users, err := BTFUsersOf(k.p)
	if err != nil || fmt.Sprint(users[7]) != "&{[1] []}" || len(users) != 1 {
		t.Errorf("BTF users %v, %v", users, err)
	}
}

// TestProgDamage: a program whose id disagrees with its IDR slot, a
// NULL aux, implausible counts, an absent page: errors that name the
// address or the program, and the walk goes on.
func TestProgDamage(t *testing.T) {
	k, objs, _ := progKernel(t)
	p1, aux1, p2, aux2 := objs["p1"], objs["aux1"], objs["p2"], objs["aux2"]

	aux2.Set("id", 5)
	var errs []error
	n := 0
	for bp, err := range ProgForEach(k.p) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		_ = bp
	}
	if n != 1 || len(errs) != 1 || !errors.Is(errs[0], objects.ErrCorrupt) || !strings.Contains(errs[0].Error(), fmt.Sprintf("%#x", p2.Addr)) {
		t.Errorf("id 5 in slot 2: %d good, %v", n, errs)
	}
	aux2.Set("id", 2)

	for _, tc := range []struct {
		name   string
		damage func()
		fix    func()
		want   error
		where  string
	}{
		{"NULL aux", func() { p1.Set("aux", 0) }, func() { p1.Set("aux", aux1.Addr) }, objects.ErrCorrupt, fmt.Sprintf("%#x", p1.Addr)},
		{"used_map_cnt", func() { aux1.Set("used_map_cnt", 1<<20) }, func() { aux1.Set("used_map_cnt", 2) }, objects.ErrCorrupt, "bpf prog 1"},
		{"func_cnt", func() { aux2.Set("func_cnt", 1<<20) }, func() { aux2.Set("func_cnt", 2) }, objects.ErrCorrupt, "bpf prog 2"},
		{"aux absent", func() { p1.Set("aux", 0xffff888077000000) }, func() { p1.Set("aux", aux1.Addr) }, sk.ErrFault, "0xffff888077000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.damage()
			defer tc.fix()
			var errs []error
			n := 0
			for _, err := range ProgForEach(k.p) {
				if err != nil {
					errs = append(errs, err)
				} else {
					n++
				}
			}
			if n != 1 || len(errs) != 1 || !errors.Is(errs[0], tc.want) || !strings.Contains(errs[0].Error(), tc.where) {
				t.Errorf("%d good, errors %v", n, errs)
			}
		})
	}

	// A used map absent: the program, without that map's id, and the
	// problem.
	k.M.U64(must(k.p.ReadU64(aux1.At("used_maps"))), 0xffff888077000000)
	bp, err := ProgByID(k.p, 1)
	if err != nil || len(bp.MapIDs) != 1 || len(bp.Problems) != 1 || !strings.Contains(bp.Problems[0], "used map at 0xffff888077000000") {
		t.Errorf("used map absent: %+v, %v", bp, err)
	}
	k.M.U64(must(k.p.ReadU64(aux1.At("used_maps"))), objs["m3"].Addr)

	bp, err = ProgByID(k.p, 1)
	if err != nil {
		t.Fatal(err)
	}
	bp.Len = 1 << 30
	if _, err := bp.Insns(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("len 1<<30: %v", err)
	}
	aux1.Set("nr_linfo", 1<<30)
	if _, err := bp.LineInfo(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("nr_linfo 1<<30: %v", err)
	}
	if _, err := bp.JitedLineInfo(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("jited nr_linfo 1<<30: %v", err)
	}
	if _, err := (ProgFunc{Name: "f", Len: 1 << 30, Addr: 1}).Image(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("an image of 1 GiB: %v", err)
	}
	if _, err := (ProgFunc{Name: "f", Len: 4}).Image(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("an image at NULL: %v", err)
	}
	bt := objs["btf"]
	bt.Set("data_size", 1<<30)
	if _, err := bp.BTF(); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("btf of 1 GiB: %v", err)
	}
	if n := bp.FullName(); n != "short" {
		t.Errorf("FullName with broken BTF = %q", n)
	}
	// No prog_idr at all.
	k2 := newBPF(t)
	if _, err := ProgByID(k2.p, 1); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("no prog_idr: %v", err)
	}
}

func must[T any](x T, err error) T {
	if err != nil {
		panic(err)
	}
	return x
}
