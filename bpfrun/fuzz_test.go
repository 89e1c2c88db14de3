package bpfrun

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/bpfvm"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
)

// The fuzz target: arbitrary instructions, calling the replay's helpers
// on real map layouts, over maps whose memory the input overwrites (in
// the overlay: corrupt buckets, chains, trie nodes, slots), with an
// arbitrary packet. A run never panics, ends within its budget (helpers
// bound their walks), and fails only with an error.

// fuzzWorld is a synthetic kernel with a map of each kind and a program,
// made once.
type fuzzWorld struct {
	k       *synth
	r       *Replayer
	base    *Prog
	maps    []uint64 // struct bpf_map addresses
	corrupt []uint64 // where the input's memory goes
}

var (
	fuzzOnce sync.Once
	fuzzW    *fuzzWorld
)

func newFuzzWorld(t *testing.T) *fuzzWorld {
	fuzzOnce.Do(func() {
		k := newSynth(t)
		w := &fuzzWorld{k: k}
		h := k.Htab(1, bpf.MapTypeHash, 4, 8, 8, 4, 7, k.Ops("htab_map_lookup_elem", "htab_map_update_elem", "htab_map_delete_elem"))
		e := k.Add(h, sk.LE32(1), htabHash(sk.LE32(1), 7), sk.LE64(0x11))
		lru := k.Htab(2, bpf.MapTypeLRUHash, 4, 8, 2, 2, 9, 0)
		k.Add(lru, sk.LE32(3), htabHash(sk.LE32(3), 9), sk.LE64(0x33))
		pc := k.Htab(3, bpf.MapTypePerCPUHash, 4, 4, 4, 2, 5, 0)
		k.Add(pc, sk.LE32(5), htabHash(sk.LE32(5), 5), sk.LE64(0x6000))
		arr, vals := k.Array(4, bpf.MapTypeArray, 8, 4, 0)
		pa, pptrs := k.Array(5, bpf.MapTypePerCPUArray, 4, 2, 0)
		k.M.U64(pptrs, 0x7000)
		tr := k.Trie(6, 4, 4, 4, 0)
		progs, slots := k.Array(7, bpf.MapTypeProgArray, 4, 2, 0)
		target := k.Prog(300, 1, "target", bpfinsn.Encode(prog(mov(r0, 7), exit())))
		k.M.U64(slots, target.Addr)
		w.maps = []uint64{h.M.Addr, lru.M.Addr, pc.M.Addr, arr.Member("map").Addr, pa.Member("map").Addr, tr.Member("map").Addr, progs.Member("map").Addr}
		w.corrupt = []uint64{h.Buckets, e, vals, tr.At("root"), slots, pptrs}
		w.r = k.replayer()
		base := k.Prog(299, 1, "fuzz", bpfinsn.Encode(prog(mov(r0, 0), exit())), w.maps...)
		var err error
		if w.base, err = w.r.LoadAt(base.Addr); err != nil {
			t.Fatal(err)
		}
		fuzzW = w
	})
	if fuzzW == nil {
		t.Fatal("no fuzz world")
	}
	return fuzzW
}

// fuzzProgram decodes the input: b[0] the number of instructions (at
// most 64), then they, where a helper call's imm picks one of the
// kernel's functions and a 64-bit load's imm one of the maps; then the
// memory written over the maps (up to 256 bytes, in 32-byte pieces at
// each corruptible place); the rest is the packet.
func (w *fuzzWorld) fuzzProgram(b []byte) ([]bpfinsn.Insn, [][]byte, []byte) {
	if len(b) < 1 {
		return nil, nil, nil
	}
	n := int(b[0]) % 65
	b = b[1:]
	if n*8 > len(b) {
		n = len(b) / 8
	}
	insns, _ := bpfinsn.Decode(b[:n*8])
	b = b[n*8:]
	for i := range insns {
		in := &insns[i]
		switch {
		case in.Code == bpfinsn.CodeCall && in.Src == 0:
			name := kernelFuncs[int(uint32(in.Imm))%len(kernelFuncs)]
			in.Imm = int32(funcAddr(name) - callBase)
		case in.Code == bpfinsn.CodeLdImm64 && in.Src == 0 && i+1 < len(insns) && in.Imm&1 == 1:
			a := w.maps[int(uint32(in.Imm)>>1)%len(w.maps)]
			in.Imm, insns[i+1].Imm = int32(uint32(a)), int32(uint32(a>>32))
		}
	}
	var pieces [][]byte
	for i := 0; i < len(w.corrupt) && len(b) >= 32 && len(pieces) < 8; i++ {
		if b[0]&1 == 1 {
			pieces = append(pieces, b[1:32])
		} else {
			pieces = append(pieces, nil)
		}
		b = b[32:]
	}
	return insns, pieces, b
}

func FuzzReplay(f *testing.F) {
	calls := func(name string) I { return call(name) }
	idx := func(name string) int32 {
		for i, n := range kernelFuncs {
			if n == name {
				return int32(i)
			}
		}
		return 0
	}
	mapLoad := func(dst uint8, m int) []I {
		return []I{{Code: bpfinsn.CodeLdImm64, Dst: dst, Imm: int32(m<<1 | 1)}, {}}
	}
	_ = calls
	seeds := [][]I{
		prog(mapLoad(r1, 0), st(bpfinsn.SizeW, r10, -4, 1), movX(r2, r10), add(r2, -4), I{Code: bpfinsn.CodeCall, Imm: idx("htab_map_lookup_elem")}, exit()),
		prog(mapLoad(r1, 0), st(bpfinsn.SizeW, r10, -4, 9), movX(r2, r10), add(r2, -4), movX(r3, r10), add(r3, -4), mov(r4, 0),
			I{Code: bpfinsn.CodeCall, Imm: idx("htab_map_update_elem")}, exit()),
		prog(mapLoad(r1, 5), st(bpfinsn.SizeW, r10, -8, 24), st(bpfinsn.SizeW, r10, -4, 0x0a), movX(r2, r10), add(r2, -8), movX(r3, r10), add(r3, -8), mov(r4, 0),
			I{Code: bpfinsn.CodeCall, Imm: idx("trie_update_elem")}, mapLoad(r1, 5), movX(r2, r10), add(r2, -8), I{Code: bpfinsn.CodeCall, Imm: idx("trie_lookup_elem")}, exit()),
		prog(mapLoad(r2, 6), mov(r3, 0), tailCall(), exit()),
		prog(movX(r6, r1), mov(r2, 0), movX(r3, r10), add(r3, -8), mov(r4, 8), I{Code: bpfinsn.CodeCall, Imm: idx("bpf_skb_load_bytes")}, exit()),
	}
	for _, s := range seeds {
		b := append([]byte{byte(len(s))}, bpfinsn.Encode(s)...)
		mem := make([]byte, 32*6)
		mem[0] = 1 // corrupt the buckets: a chain into itself
		binary.LittleEndian.PutUint64(mem[1:], 0)
		f.Add(append(append(b, mem...), make([]byte, 60)...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newFuzzWorld(t)
		insns, pieces, pkt := w.fuzzProgram(b)
		if len(insns) == 0 {
			return
		}
		s, err := w.r.NewSession(Options{Budget: 1 << 12})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pieces {
			if p != nil {
				_ = s.m.Write(w.corrupt[i], p)
			}
		}
		p := &Prog{Prog: w.base.Prog, Addr: w.base.Addr, VM: bpfvm.NewProgram("fuzz", insns, nil), Starts: []int{0}, Source: &bpf.Source{}, syms: w.base.syms}
		if len(pkt) < 14 {
			pkt = append(pkt, make([]byte, 14-len(pkt))...)
		}
		start := time.Now()
		res, err := s.Run(p, RunOptions{DataIn: pkt, Trace: len(pkt)%2 == 0})
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("a run took %v", d)
		}
		if res != nil && res.Insns > 1<<12 {
			t.Errorf("%d instructions beyond the budget", res.Insns)
		}
		var xe *bpfvm.ExecError
		if err != nil && !errors.As(err, &xe) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotSupported) && res == nil {
			t.Logf("error: %v", err)
		}
	})
}
