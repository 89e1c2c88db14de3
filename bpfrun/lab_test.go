package bpfrun_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/orc"
)

// Replays of the lab workload's programs (lab/workload/bpf/ki.bpf.c,
// spin.bpf.c) on the lab's dumps, with inputs built here. Each
// expectation says where it comes from: the program's source, the map
// contents the workload wrote (truth/workload.json: "content"), the
// kernel's test run (net/bpf/test_run.c).

// workload is what the tests read of truth/workload.json.
type workload struct {
	Progs []struct {
		Name    string `json:"name"`
		ID      uint32 `json:"id"`
		TypeNum uint32 `json:"type_num"`
	} `json:"progs"`
	Notes []string `json:"notes"`
	Maps  []struct {
		Name string `json:"name"`
		ID   uint32 `json:"id"`
	} `json:"maps"`
	Spinner struct {
		ProgID uint32 `json:"prog_id"`
		TID    int    `json:"tid"`
		CPU    int    `json:"cpu"`
	} `json:"spinner"`
}

func (w *workload) mapID(t *testing.T, name string) uint32 {
	for _, m := range w.Maps {
		if m.Name == name {
			return m.ID
		}
	}
	t.Fatalf("workload.json has no map %s", name)
	return 0
}

// labKernels opens every scenario's ELF dump (the replay reads memory as
// every format gives it; basic's other formats are run too).
func labKernels(t *testing.T) map[string]*kinspect.Kernel {
	out := labkernel.All(t, "elf")
	for name, k := range labkernel.All(t) {
		if labkernel.Scenario(name).Scenario == "basic" {
			out[name] = k
		}
	}
	if len(out) == 0 {
		t.Skip("no lab dumps (go run ./lab basic)")
	}
	return out
}

func readWorkload(t *testing.T, s *labdata.Scenario) *workload {
	var w workload
	labdata.ReadJSON(t, s.Path("truth/workload.json"), &w)
	return &w
}

// ipv4 is an Ethernet frame of n bytes carrying an IPv4 header to dst.
func ipv4(n int, dst [4]byte) []byte {
	b := make([]byte, n)
	copy(b[6:], []byte{2, 0, 0, 0, 0, 1})
	b[12], b[13], b[14] = 8, 0, 0x45
	if n >= 34 {
		copy(b[30:], dst[:])
	}
	return b
}

func run(t *testing.T, r *bpfrun.Replayer, name string, ro bpfrun.RunOptions, o bpfrun.Options) *bpfrun.Result {
	t.Helper()
	p, err := r.Prog(bpf.Selector{Kind: bpf.SelectName, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(p, ro, o)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// counted checks that the run's only map change is ki_counters[idx]
// growing by n (ki_count, an atomic add of 1 per run).
func counted(t *testing.T, w *workload, res *bpfrun.Result, idx uint32, n uint64) {
	t.Helper()
	id := w.mapID(t, "ki_counters")
	if len(res.MapChanges) != 1 {
		t.Fatalf("map changes %+v, want ki_counters[%d] only", res.MapChanges, idx)
	}
	c := res.MapChanges[0]
	if c.MapID != id || !bytes.Equal(c.Key, binary.LittleEndian.AppendUint32(nil, idx)) || c.Before == nil || c.After == nil {
		t.Fatalf("map change %+v, want ki_counters (%d) [%d]", c, id, idx)
	}
	before, after := binary.LittleEndian.Uint64(*c.Before), binary.LittleEndian.Uint64(*c.After)
	if after != before+n {
		t.Errorf("ki_counters[%d]: %d -> %d, want +%d", idx, before, after, n)
	}
}

func TestLabReplay(t *testing.T) {
	for name, k := range labKernels(t) {
		t.Run(name, func(t *testing.T) {
			w := readWorkload(t, labkernel.Scenario(name))
			r := bpfrun.FromKernel(k)

			// ki_xdp: XDP_PASS, the packet unchanged, a perf record
			// {KI_PERF_MAGIC, sum of ki_hash[1], packet length, the
			// value of the longest ki_lpm prefix of the IPv4 daddr}.
			// ki_hash key 1: counters {1, 10, 100, 1000}, id 1 (the
			// workload's content "counters={k,10k,100k,1000k} id=k"):
			// 1112; ki_lpm's prefixes are the workload's.
			for _, c := range []struct {
				pkt []byte
				lpm uint32
			}{
				{ipv4(64, [4]byte{10, 1, 2, 3}), 4}, {ipv4(60, [4]byte{10, 1, 9, 9}), 3}, {ipv4(60, [4]byte{10, 9, 9, 9}), 2},
				{ipv4(80, [4]byte{172, 16, 5, 5}), 5}, {ipv4(60, [4]byte{192, 168, 7, 42}), 7}, {ipv4(60, [4]byte{192, 168, 9, 1}), 6},
				{ipv4(60, [4]byte{8, 8, 8, 8}), 1},
				{append(ipv4(60, [4]byte{10, 1, 2, 3})[:12], make([]byte, 48)...), 0}, // not IPv4
				{ipv4(33, [4]byte{}), 0},                                              // shorter than Ethernet + IPv4
			} {
				res := run(t, r, "ki_xdp", bpfrun.RunOptions{DataIn: c.pkt}, bpfrun.Options{})
				if res.Retval != 2 || !bytes.Equal(res.DataOut, c.pkt) {
					t.Errorf("ki_xdp: retval %d, data_out changed %v", res.Retval, !bytes.Equal(res.DataOut, c.pkt))
				}
				want := binary.LittleEndian.AppendUint64(nil, 0x4b495f50455246)
				want = binary.LittleEndian.AppendUint64(want, 1112)
				want = binary.LittleEndian.AppendUint32(want, uint32(len(c.pkt)))
				want = binary.LittleEndian.AppendUint32(want, c.lpm)
				if len(res.Outputs) != 1 || res.Outputs[0].Helper != "bpf_xdp_event_output" || res.Outputs[0].MapID != w.mapID(t, "ki_perf_events") ||
					!bytes.Equal(res.Outputs[0].Data, want) {
					t.Errorf("ki_xdp to %v: outputs %+v, want % x", c.pkt[30:34], res.Outputs, want)
				}
				counted(t, w, res, 4, 1)
			}

			// ki_sock_filter: ki_lru_hash[1] is 0x5001 (k*k+0x5000), not
			// 0: it returns skb->len, the packet after the Ethernet header.
			res := run(t, r, "ki_sock_filter", bpfrun.RunOptions{DataIn: ipv4(70, [4]byte{}), Repeat: 3}, bpfrun.Options{CPU: 1})
			if res.Retval != 70-14 {
				t.Errorf("ki_sock_filter: retval %d, want %d", res.Retval, 70-14)
			}
			if want := append(make([]byte, 14), ipv4(70, [4]byte{})[14:]...); !bytes.Equal(res.DataOut, want) {
				t.Errorf("ki_sock_filter: data_out % x", res.DataOut)
			}
			counted(t, w, res, 5, 3)

			// ki_cgroup_skb lets everything pass.
			res = run(t, r, "ki_cgroup_skb", bpfrun.RunOptions{DataIn: ipv4(40, [4]byte{})}, bpfrun.Options{})
			if res.Retval != 1 {
				t.Errorf("ki_cgroup_skb: retval %d", res.Retval)
			}
			counted(t, w, res, 3, 1)

			// ki_tail_entry tail-calls ki_prog_array[0], ki_tail_tgt,
			// which counts and returns 42.
			res = run(t, r, "ki_tail_entry", bpfrun.RunOptions{DataIn: ipv4(40, [4]byte{})}, bpfrun.Options{})
			if res.Retval != 42 {
				t.Errorf("ki_tail_entry: retval %d, want the target's 42", res.Retval)
			}
			counted(t, w, res, 6, 1)

			// ki_rb_produce: a ring buffer record {KI_RB_MAGIC, skb->len,
			// skb->mark}, the mark from ctx_in's __sk_buff.
			usize, err := k.Program().SizeofType("struct __sk_buff")
			if err != nil {
				t.Fatal(err)
			}
			markOff, _, err := k.Program().MemberOffset("struct __sk_buff", "mark")
			if err != nil {
				t.Fatal(err)
			}
			ctx := make([]byte, usize)
			binary.LittleEndian.PutUint32(ctx[markOff:], 0xbeef)
			res = run(t, r, "ki_rb_produce", bpfrun.RunOptions{DataIn: ipv4(50, [4]byte{}), CtxIn: ctx}, bpfrun.Options{})
			want := binary.LittleEndian.AppendUint64(nil, 0x4b495f524242)
			want = binary.LittleEndian.AppendUint32(want, 50-14)
			want = binary.LittleEndian.AppendUint32(want, 0xbeef)
			if res.Retval != 0 || len(res.Outputs) != 1 || res.Outputs[0].Helper != "bpf_ringbuf_output" || !bytes.Equal(res.Outputs[0].Data, want) {
				t.Errorf("ki_rb_produce: retval %d, outputs %+v, want % x", res.Retval, res.Outputs, want)
			}
			if m := binary.LittleEndian.Uint32(res.CtxOut[markOff:]); m != 0xbeef {
				t.Errorf("ki_rb_produce: ctx_out mark %#x", m)
			}
			counted(t, w, res, 7, 1)

			// ki_spin: acc & 0xff after KI_SPIN_ITERS rounds of the
			// source's xorshift, from x = skb->len | 1, acc = skb->mark.
			binary.LittleEndian.PutUint32(ctx[markOff:], 77)
			res = run(t, r, "ki_spin", bpfrun.RunOptions{DataIn: make([]byte, 64), CtxIn: ctx}, bpfrun.Options{})
			if x, acc := spinLoop(50, 77, 2048); res.Retval != uint32(acc&0xff) {
				t.Errorf("ki_spin: retval %d, want %d (x %#x)", res.Retval, acc&0xff, x)
			}
			if len(res.MapChanges) != 0 || res.Insns < 2048*21 {
				t.Errorf("ki_spin: %d instructions, changes %+v", res.Insns, res.MapChanges)
			}
		})
	}
}

// spinLoop is ki_spin's loop (spin.bpf.c) run n times.
func spinLoop(length, mark uint32, n int) (x, acc uint64) {
	x, acc = uint64(length|1), uint64(mark)
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		acc += x * 0x9e3779b97f4a7c15
		acc ^= acc >> 29
	}
	return x, acc
}

// TestLabUnimplemented: ki_kprobe calls bpf_get_stackid, which replay
// does not implement: the run stops there, naming it and the
// instruction.
func TestLabUnimplemented(t *testing.T) {
	s := labdata.Require(t, "basic")
	k := labkernel.Open(t, s, "elf")
	r := bpfrun.FromKernel(k)
	p, err := r.Prog(bpf.Selector{Kind: bpf.SelectName, Name: "ki_kprobe"})
	if err != nil {
		t.Fatal(err)
	}
	// A kprobe has no test run: run its instructions on a zeroed pt_regs.
	if _, err := r.Run(p, bpfrun.RunOptions{}, bpfrun.Options{}); !errors.Is(err, bpfrun.ErrNotSupported) {
		t.Errorf("a test run of a kprobe program: %v", err)
	}
	ss, err := r.NewSession(bpfrun.Options{})
	if err != nil {
		t.Fatal(err)
	}
	regs, err := ss.Machine().Alloc("pt_regs", 168, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ss.Machine().Exec(p.VM, regs.Addr)
	var xe *bpfvm.ExecError
	call := -1
	for i := range p.VM.Insns {
		if strings.Contains(p.InsnText(i), "call bpf_get_stackid") {
			call = i
		}
	}
	if call < 0 || !errors.As(err, &xe) || !errors.Is(err, bpfvm.ErrUnknownHelper) || xe.Insn != call || !strings.Contains(err.Error(), "bpf_get_stackid") {
		t.Errorf("ki_kprobe: %v; want the call of bpf_get_stackid at insn %d", err, call)
	}
}

// kdScenarios are the lab's kdump scenarios (a capture kernel's dump
// after a crash; some with a BPF program in a soft lockup), run where
// built.
var kdScenarios = []string{"kd-bug", "kd-hardirq", "kd-lockup", "kd-oops", "kd-softirq", "kd-sysrq", "kd-warn"}

// dumpScenarios are the built scenarios with dumps, the kdump ones
// included.
func dumpScenarios(t *testing.T) []*labdata.Scenario {
	var out []*labdata.Scenario
	seen := map[string]bool{}
	for _, s := range labdata.Built(t) {
		if !s.Live {
			out = append(out, s)
			seen[s.Scenario] = true
		}
	}
	for _, n := range kdScenarios {
		if s, err := labdata.Load(n); err == nil && !seen[n] {
			out = append(out, s)
		}
	}
	return out
}

// stackFrames unwinds every CPU of the dump and returns the BPF view of
// each BPF frame, with the stacks' names.
func stackStates(t *testing.T, k *kinspect.Kernel) []bpfrun.StackState {
	t.Helper()
	b, err := orc.NewBacktracer(k)
	if err != nil {
		t.Fatal(err)
	}
	bts, err := b.Collect(orc.Selection{AllCPUs: true})
	if len(bts) == 0 {
		t.Fatalf("no stacks: %v", err)
	}
	return bpfrun.FromKernel(k).State(bts)
}

// TestLabSpinnerState: the state of ki_spin, running on CPU 1 of every
// scenario (lab/workload/spinner.go: BPF_PROG_TEST_RUN of 64 zero bytes,
// no ctx_in), found on the CPU's stack (through the NMI's pt_regs on the
// panic scenario): the instruction is in the loop, its line the loop's,
// and the registers are exactly what a replay of the same test run holds
// when it reaches that instruction with the same loop count (r2): r0 the
// accumulator, r1 the multiplier 0x9e3779b97f4a7c15, r3 x, r4 and r5 the
// loop's temporaries.
func TestLabSpinnerState(t *testing.T) {
	for _, sc := range dumpScenarios(t) {
		t.Run(sc.Scenario, func(t *testing.T) {
			k := labkernel.Open(t, sc, "elf")
			w := readWorkload(t, sc)
			var spin *bpfrun.FrameState
			for _, st := range stackStates(t, k) {
				for i, f := range st.Frames {
					if f.ProgID == w.Spinner.ProgID && st.CPU == w.Spinner.CPU {
						spin = &st.Frames[i]
					}
				}
			}
			if spin == nil {
				t.Fatalf("no frame of ki_spin (prog %d) on CPU %d", w.Spinner.ProgID, w.Spinner.CPU)
			}
			if !spin.Exact || !spin.Interrupted || spin.Mid {
				t.Fatalf("ki_spin at %#x: exact %v interrupted %v mid %v (%s)", uint64(spin.PC), spin.Exact, spin.Interrupted, spin.Mid, spin.How)
			}
			r := bpfrun.FromKernel(k)
			p, err := r.Prog(bpf.Selector{Kind: bpf.SelectID, ID: spin.ProgID})
			if err != nil {
				t.Fatal(err)
			}
			// Continuing from the dump's state replays the rest of that
			// run: it returns what the spinner's run returns, acc & 0xff
			// of 2048 rounds from x = 50 | 1 (64 bytes but the Ethernet
			// header), acc = 0.
			resume := func() {
				s2, err := r.NewSession(bpfrun.Options{CPU: w.Spinner.CPU})
				if err != nil {
					t.Fatal(err)
				}
				rd, err := s2.Resume(p, *spin)
				if err != nil {
					t.Fatal(err)
				}
				pos, err := rd.Continue()
				if _, acc := spinLoop(50, 0, 2048); err != nil || pos.Stop != "exit" || rd.Result().Retval != uint32(acc&0xff) {
					t.Errorf("resumed: %+v %v, want retval %d", pos, err, acc&0xff)
				}
			}
			if spin.Insn == -1 {
				// Caught entering the program (between two runs of the
				// test run's loop): r1 is the test run's skb, of 50 bytes.
				if l, err := k.Program().UintAt("struct sk_buff", uint64(spin.Regs[1].Value), "len"); err != nil || l != 50 {
					t.Errorf("in the prologue: r1 %#x, skb->len %d %v", uint64(spin.Regs[1].Value), l, err)
				}
				resume()
				t.Logf("in the prologue, r1 (the skb) %#x", uint64(spin.Regs[1].Value))
				return
			}
			// The loop: from the backward jump's target to the jump.
			lo, hi := -1, -1
			for i, in := range p.VM.Insns {
				if in.Code == bpfinsn.ClassJMP|bpfinsn.OpJA && in.Off < 0 {
					lo, hi = i+1+int(in.Off), i
				}
			}
			// Rarely, the pause comes after the loop's last round, on
			// the way out: then the replay below must reach the same
			// registers there.
			after := spin.Insn > hi
			if spin.Insn < lo {
				t.Errorf("insn %d, not in the loop %d-%d", spin.Insn, lo, hi)
			}
			lines := map[uint32]bool{}
			for i := lo; i <= hi; i++ {
				if l, ok := p.Line(i); ok {
					lines[l.LineNum] = true
				}
			}
			if l, ok := p.Line(spin.Insn); after && ok {
				t.Logf("insn %d: after the loop %d-%d, at line %d", spin.Insn, lo, hi, l.LineNum)
				lines[l.LineNum] = true
			}
			if spin.Line == nil || !strings.HasSuffix(spin.Line.File, "spin.bpf.c") || !lines[spin.Line.LineNum] {
				t.Errorf("line %+v, not one of the loop's %v", spin.Line, lines)
			}
			reg := func(i int) uint64 { return uint64(spin.Regs[i].Value) }
			if reg(1) != 0x9e3779b97f4a7c15 {
				t.Errorf("r1 %#x, want the multiplier", reg(1))
			}
			// Replay the spinner's run to the same point.
			s, err := r.NewSession(bpfrun.Options{CPU: w.Spinner.CPU})
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.Debug(p, bpfrun.RunOptions{DataIn: make([]byte, 64)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Break(fmt.Sprint(spin.Insn)); err != nil {
				t.Fatal(err)
			}
			for n := 0; ; n++ {
				pos, err := d.Continue()
				if err != nil || pos.Stop != "breakpoint" || n > 2048 {
					t.Fatalf("the replay never reached insn %d with r2 %#x: %+v %v", spin.Insn, reg(2), pos, err)
				}
				if uint64(d.Regs()[2].Value) == reg(2) {
					break
				}
			}
			got := d.Regs()
			for i := 0; i <= 5; i++ {
				if uint64(got[i].Value) != reg(i) {
					t.Errorf("r%d: the dump's %#x, the replay's %#x at insn %d", i, reg(i), uint64(got[i].Value), spin.Insn)
				}
			}
			resume()
			t.Logf("insn %d (%s), line %d; r0 %#x r1 %#x r2 %#x (%d iterations left) r3 %#x r4 %#x r5 %#x",
				spin.Insn, spin.Text, spin.Line.LineNum, reg(0), reg(1), reg(2), reg(2), reg(3), reg(4), reg(5))
		})
	}
}

// TestLabBPFCalls: kd-lockup's ki_lockup, in a soft lockup inside its
// bpf_loop (inlined), interrupted in the callback ki_lockup_step: the two
// frames are chained, the caller at its call, with the r6-r9 its callee
// saved or left alone. From the program (truth/xlated/ID.txt): r1 =
// 8388608 then r6 = r1 (the loop's bound), r8 = r3 = r10 - 16 (the ctx
// struct on the caller's stack), which the callee gets in r2; r4 holds
// the multiplier in the callee.
func TestLabBPFCalls(t *testing.T) {
	s := labdata.Require(t, "kd-lockup")
	k := labkernel.Open(t, s, "elf")
	var frames []bpfrun.FrameState
	for _, st := range stackStates(t, k) {
		for _, f := range st.Frames {
			if f.ProgName == "ki_lockup" {
				frames = append(frames, f)
			}
		}
	}
	v := func(f bpfrun.FrameState, i int) uint64 {
		if !f.Regs[i].Known {
			t.Errorf("%s: r%d unknown", f.Func, i)
		}
		return uint64(f.Regs[i].Value)
	}
	if len(frames) == 1 {
		// The watchdog's interrupt came in the inlined loop between two
		// calls of the callback: the program's frame alone, interrupted,
		// its registers from the interrupt's.
		main := frames[0]
		if main.Func != "ki_lockup" || main.Depth != 0 || !main.Interrupted {
			t.Fatalf("the one frame: %s depth %d interrupted %v, want ki_lockup's, interrupted", main.Func, main.Depth, main.Interrupted)
		}
		if v(main, 6) != 8388608 {
			t.Errorf("r6 %#x, want the loop bound 8388608", v(main, 6))
		}
		if v(main, 8) != v(main, 10)-16 {
			t.Errorf("the ctx: r8 %#x, r10-16 %#x", v(main, 8), v(main, 10)-16)
		}
		t.Logf("interrupted in the program at insn %d %q, not in the callback", main.Insn, main.Text)
		return
	}
	if len(frames) != 2 {
		t.Fatalf("%d frames of ki_lockup, want the callback's and the program's, or the program's alone", len(frames))
	}
	step, main := frames[0], frames[1]
	if step.Func != "ki_lockup_step" || main.Func != "ki_lockup" || step.CalledFrom != main.Frame || step.Depth != 1 || main.Depth != 0 {
		t.Fatalf("the chain: %s called from #%d (depth %d), %s depth %d", step.Func, step.CalledFrom, step.Depth, main.Func, main.Depth)
	}
	if main.Interrupted || !strings.Contains(main.Text, "call") || !main.Exact {
		t.Errorf("the caller: insn %d %q, want its call", main.Insn, main.Text)
	}
	if v(main, 6) != 8388608 {
		t.Errorf("the caller's r6 %#x, want the loop bound 8388608", v(main, 6))
	}
	if v(main, 8) != v(main, 10)-16 || v(step, 2) != v(main, 8) {
		t.Errorf("the ctx: caller r8 %#x, r10-16 %#x, callee r2 %#x", v(main, 8), v(main, 10)-16, v(step, 2))
	}
	if v(step, 4) != 0x9e3779b97f4a7c15 {
		t.Errorf("the callee's r4 %#x", v(step, 4))
	}
	if main.Regs[0].Known || main.Regs[5].Known {
		t.Errorf("the caller's scratch registers are not known")
	}
}
