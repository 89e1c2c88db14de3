package bpfrun

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// A small assembler for the tests (the kernel's BPF_* macros of
// include/linux/filter.h), and a synthetic kernel whose functions the
// programs call by address, as the verifier leaves them.

type I = bpfinsn.Insn

const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
	r6
	r7
	r8
	r9
	r10
)

func mov(dst uint8, imm int32) I {
	return I{Code: bpfinsn.ClassALU64 | bpfinsn.OpMov | bpfinsn.SrcK, Dst: dst, Imm: imm}
}
func movX(dst, src uint8) I {
	return I{Code: bpfinsn.ClassALU64 | bpfinsn.OpMov | bpfinsn.SrcX, Dst: dst, Src: src}
}
func add(dst uint8, imm int32) I {
	return I{Code: bpfinsn.ClassALU64 | bpfinsn.OpAdd | bpfinsn.SrcK, Dst: dst, Imm: imm}
}
func ldx(size, dst, src uint8, off int16) I {
	return I{Code: bpfinsn.ClassLDX | bpfinsn.ModeMEM | size, Dst: dst, Src: src, Off: off}
}
func stx(size, dst, src uint8, off int16) I {
	return I{Code: bpfinsn.ClassSTX | bpfinsn.ModeMEM | size, Dst: dst, Src: src, Off: off}
}
func st(size, dst uint8, off int16, imm int32) I {
	return I{Code: bpfinsn.ClassST | bpfinsn.ModeMEM | size, Dst: dst, Off: off, Imm: imm}
}
func exit() I { return I{Code: bpfinsn.ClassJMP | bpfinsn.OpExit} }
func ld64(dst uint8, v uint64) []I {
	return []I{{Code: bpfinsn.CodeLdImm64, Dst: dst, Imm: int32(uint32(v))}, {Imm: int32(uint32(v >> 32))}}
}
func tailCall() I { return I{Code: bpfinsn.ClassJMP | bpfinsn.OpTailCall} }

// prog flattens instructions and []I groups.
func prog(parts ...any) []I {
	var out []I
	for _, p := range parts {
		switch x := p.(type) {
		case I:
			out = append(out, x)
		case []I:
			out = append(out, x...)
		default:
			panic(fmt.Sprintf("prog: %T", p))
		}
	}
	return out
}

// The synthetic kernel's text: __bpf_call_base and the functions programs
// call, in order.
const callBase = 0xffffffff81000000

var kernelFuncs = []string{
	"__htab_map_lookup_elem", "htab_map_lookup_elem", "htab_lru_map_lookup_elem", "htab_percpu_map_lookup_elem",
	"htab_map_update_elem", "htab_lru_map_update_elem", "htab_percpu_map_update_elem", "htab_map_delete_elem",
	"array_map_lookup_elem", "percpu_array_map_lookup_elem", "array_map_update_elem", "array_map_delete_elem",
	"trie_lookup_elem", "trie_update_elem", "trie_delete_elem",
	"bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_map_delete_elem",
	"bpf_skb_load_bytes", "bpf_skb_store_bytes", "bpf_xdp_adjust_head", "bpf_xdp_adjust_tail", "bpf_xdp_adjust_meta",
	"bpf_ringbuf_output", "bpf_perf_event_output", "bpf_xdp_event_output", "bpf_get_smp_processor_id",
	"bpf_ktime_get_ns", "bpf_skb_vlan_push",
}

func funcAddr(name string) uint64 {
	for i, n := range kernelFuncs {
		if n == name {
			return callBase + 0x100*uint64(i+1)
		}
	}
	panic("no kernel function " + name)
}

// call is BPF_CALL of a kernel function, as the verifier leaves it.
func call(name string) I {
	return I{Code: bpfinsn.CodeCall, Imm: int32(funcAddr(name) - callBase)}
}

// synth is a synthetic kernel with the BPF types and named functions.
type synth struct {
	*sk.BPFKernel
	t *testing.T
	p *objects.Program
}

// Program is the kernel's object engine (made once, after the types).
func (k *synth) Program(tb testing.TB) *objects.Program {
	if k.p == nil {
		k.p = objects.NewProgram(k.M, k.B.Spec(tb), k.Syms)
	}
	return k.p
}

func newSynth(t *testing.T) *synth {
	k := &synth{BPFKernel: sk.NewBPFKernel(), t: t}
	k.Syms["__bpf_call_base"] = callBase
	for _, n := range kernelFuncs {
		k.Syms[n] = funcAddr(n)
	}
	return k
}

// replayer opens the kernel built so far.
func (k *synth) replayer() *Replayer {
	var sb strings.Builder
	var names []string
	for n := range k.Syms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&sb, "%016x T %s\n", k.Syms[n], n)
	}
	syms, err := kallsyms.ParseProcKallsyms(strings.NewReader(sb.String()))
	if err != nil {
		k.t.Fatal(err)
	}
	return New(k.Program(k.t), syms)
}

// load builds a program of insns using maps and loads it.
func (k *synth) load(r *Replayer, typ uint64, insns []I, maps ...uint64) *Prog {
	p := k.Prog(uint32(100+len(r.loaded)), typ, "test", bpfinsn.Encode(insns), maps...)
	lp, err := r.LoadAt(p.Addr)
	if err != nil {
		k.t.Fatal(err)
	}
	return lp
}
