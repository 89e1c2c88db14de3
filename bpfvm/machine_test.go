package bpfvm

import (
	"errors"
	"reflect"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

func TestStep(t *testing.T) {
	m := testMachine(Options{})
	p := NewProgram("test", callerCallee(callPseudo(4)), nil)
	if _, err := m.Step(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Step before Start: %v", err)
	}
	if err := m.Start(p); err != nil {
		t.Fatal(err)
	}
	var pcs []int
	var depths []int
	for {
		_, pc := m.PC()
		pcs = append(pcs, pc)
		depths = append(depths, len(m.Frames()))
		stop, err := m.Step()
		if err != nil {
			t.Fatal(err)
		}
		if stop == StopExit {
			break
		}
	}
	wantPCs := []int{0, 1, 2, 3, 8, 9, 10, 11, 12, 4, 5, 6, 7}
	wantDepths := []int{1, 1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1, 1}
	if !reflect.DeepEqual(pcs, wantPCs) || !reflect.DeepEqual(depths, wantDepths) {
		t.Errorf("stepped through %v at depths %v, want %v, %v", pcs, depths, wantPCs, wantDepths)
	}
	if !m.Exited() || m.Return() != 117 || m.Executed() != 13 {
		t.Errorf("exited %v, r0 %d, executed %d", m.Exited(), m.Return(), m.Executed())
	}
}

func TestStepOverAndOut(t *testing.T) {
	m := testMachine(Options{})
	p := NewProgram("test", callerCallee(callPseudo(4)), nil)
	if err := m.Start(p); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := m.StepOver(); err != nil {
			t.Fatal(err)
		}
	}
	// At the call: StepOver runs the callee.
	if _, pc := m.PC(); pc != 3 {
		t.Fatalf("pc %d, want 3", pc)
	}
	if stop, err := m.StepOver(); err != nil || stop != StopStep {
		t.Fatalf("StepOver: %v %v", stop, err)
	}
	if _, pc := m.PC(); pc != 4 || len(m.Frames()) != 1 || m.Regs()[0] != 10 {
		t.Errorf("after StepOver: pc %d, %d frames, r0 %d; want 4, 1, 10", pc, len(m.Frames()), m.Regs()[0])
	}
	// StepInto then StepOut.
	m.Start(p)
	for i := 0; i < 5; i++ {
		m.Step()
	}
	if _, pc := m.PC(); pc != 9 {
		t.Fatalf("pc %d, want 9", pc)
	}
	if stop, err := m.StepOut(); err != nil || stop != StopStep {
		t.Fatalf("StepOut: %v %v", stop, err)
	}
	if _, pc := m.PC(); pc != 4 || len(m.Frames()) != 1 {
		t.Errorf("after StepOut: pc %d, %d frames", pc, len(m.Frames()))
	}
	// A breakpoint inside the callee stops StepOver.
	m.Start(p)
	m.SetBreakpoint(p, 11)
	for i := 0; i < 3; i++ {
		m.Step()
	}
	if stop, err := m.StepOver(); err != nil || stop != StopBreakpoint {
		t.Fatalf("StepOver into a breakpoint: %v %v", stop, err)
	}
	if _, pc := m.PC(); pc != 11 {
		t.Errorf("pc %d, want 11", pc)
	}
	if got := m.Breakpoints(p); !reflect.DeepEqual(got, []int{11}) {
		t.Errorf("breakpoints %v", got)
	}
	m.ClearBreakpoint(p, 11)
	if stop, err := m.StepOut(); err != nil || stop != StopStep {
		t.Fatalf("StepOut: %v %v", stop, err)
	}
	// StepOut of the main frame runs to the exit.
	if stop, err := m.StepOut(); err != nil || stop != StopExit || m.Return() != 117 {
		t.Fatalf("StepOut of main: %v %v %d", stop, err, m.Return())
	}
}

func TestBreakpointsInLoop(t *testing.T) {
	m := testMachine(Options{})
	p := NewProgram("loop", prog(
		mov64(r0, 0), mov64(r1, 3),
		alu64X(bpfinsn.OpAdd, r0, r1), // 2
		alu64K(bpfinsn.OpSub, r1, 1),
		jmpK(bpfinsn.OpJNE, r1, 0, -3),
		exit()), nil)
	m.SetBreakpoint(p, 2)
	m.SetBreakpoint(p, 5)
	m.Start(p)
	var hits []uint64
	for {
		stop, err := m.Run()
		if err != nil {
			t.Fatal(err)
		}
		if stop == StopExit {
			break
		}
		_, pc := m.PC()
		hits = append(hits, uint64(pc)<<8|m.Regs()[r1])
	}
	// Insn 2 with r1 = 3, 2, 1, then insn 5 with r1 = 0.
	want := []uint64{2<<8 | 3, 2<<8 | 2, 2<<8 | 1, 5 << 8}
	if !reflect.DeepEqual(hits, want) {
		t.Errorf("hits %#x, want %#x", hits, want)
	}
	if m.Return() != 6 {
		t.Errorf("r0 %d", m.Return())
	}
}

func TestTrace(t *testing.T) {
	var evs []TraceEvent
	m := testMachine(Options{Trace: func(ev *TraceEvent) { evs = append(evs, *ev) }})
	got := mustRun(t, m, loopProg(2, 0, -1))
	if got != 2*1000+1 {
		t.Fatalf("r0 %d", got)
	}
	if uint64(len(evs)) != m.Executed() {
		t.Errorf("%d events for %d instructions", len(evs), m.Executed())
	}
	// The callback's instructions (at depth 1) come before the helper's
	// call (insn 7) completes.
	var seq []int
	for _, ev := range evs {
		seq = append(seq, ev.Depth*100+ev.Index)
	}
	want := []int{0, 1, 2, 4, 5, 6, 112, 113, 114, 115, 116, 118, 112, 113, 114, 115, 116, 118, 7, 8, 9, 10, 11}
	if !reflect.DeepEqual(seq, want) {
		t.Errorf("trace %v,\nwant %v", seq, want)
	}
	// The callback's first load: r3 = *(u64 *)(r2 + 0), r2 the caller's
	// r10-8.
	ev := evs[6]
	if ev.Access.Addr != StackBase+StackStride-8 || ev.Access.Size != 8 || ev.Access.Write {
		t.Errorf("access %+v", ev.Access)
	}
	if ch := ev.Changed(); len(ch) != 0 {
		t.Errorf("changed %v, want none (sum is 0, r3 was 0)", ch)
	}
	// The second callback's r3 += r1 (index 1).
	if ch := evs[13].Changed(); evs[13].Index != 13 || !reflect.DeepEqual(ch, []int{3}) || evs[13].After[3] != 1 {
		t.Errorf("event 13: insn %d changed %v", evs[13].Index, ch)
	}
	if ev.Insn != (bpfinsn.Insn{Code: bpfinsn.ClassLDX | bpfinsn.ModeMEM | bpfinsn.SizeDW, Dst: r3, Src: r2}) {
		t.Errorf("insn %+v", ev.Insn)
	}
	// The helper's call: r0 set, the caller's registers kept.
	ev = evs[18]
	if ev.Index != 7 || ev.After[0] != 2 || ev.After[10] != ev.Before[10] || !reflect.DeepEqual(ev.Changed(), []int{0}) {
		t.Errorf("call event %+v", ev)
	}
	if s := ev.After.String(); s[:12] != "r0=0x2 r1=0x" {
		t.Errorf("Regs.String %q", s)
	}
}

func TestRegistersAX(t *testing.T) {
	// Constant blinding writes BPF_REG_AX (11) into xlated code.
	m := testMachine(Options{})
	got := mustRun(t, m, prog(
		mov64(11, 0x12345678^0x55),
		alu64K(bpfinsn.OpXor, 11, 0x55),
		mov64X(r0, 11),
		exit()))
	if got != 0x12345678 {
		t.Errorf("r0 %#x", got)
	}
	if RegName(11) != "ax" || RegName(10) != "r10" {
		t.Errorf("names %s %s", RegName(11), RegName(10))
	}
}

func TestStartArgs(t *testing.T) {
	m := testMachine(Options{})
	p := NewProgram("args", prog(mov64X(r0, r5), alu64X(bpfinsn.OpAdd, r0, r1), exit()), nil)
	got, err := m.Exec(p, 1, 2, 3, 4, 5)
	if err != nil || got != 6 || m.Ctx() != 1 {
		t.Errorf("r0 %d, ctx %d, %v", got, m.Ctx(), err)
	}
	if err := m.Start(p, 1, 2, 3, 4, 5, 6); err == nil {
		t.Errorf("six arguments accepted")
	}
	// The budget and the tail call count start afresh; memory stays.
	m = testMachine(Options{Budget: 10})
	for i := 0; i < 3; i++ {
		if _, err := m.Exec(NewProgram("inc", prog(ldImm64(r1, kernelData), atomicOp(bpfinsn.SizeDW, r1, r1, 0, bpfinsn.OpAdd), mov64(r0, 0), exit()), nil)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := m.ReadUint(kernelData, 8)
	kd := uint64(kernelData)
	if want := uint64(0x0706050403020100) + 3*kd; err != nil || v != want {
		t.Errorf("after three runs: %#x, %v; want %#x", v, err, want)
	}
	// 0x0706050403020100 + 3*0xffff888000100000 = 0x07049e8403320100:
	// bytes 2, 4, 5 and 6 differ.
	ch := m.Changes()
	if len(ch) != 2 || ch[0].Addr != kernelData+2 || string(ch[0].After) != "\x32" || ch[1].Addr != kernelData+4 || len(ch[1].After) != 3 {
		t.Errorf("changes %+v", ch)
	}
}

func TestInvalid(t *testing.T) {
	p := NewProgram("bad", prog(mov64(r0, 0), I{Code: 0x8f}, ldImm64(r1, 1), exit()), nil)
	if p.Invalid(0) != "" || p.Invalid(1) == "" || p.Invalid(3) == "" || p.Len() != 5 {
		t.Errorf("Invalid: %q %q %q", p.Invalid(0), p.Invalid(1), p.Invalid(3))
	}
	if e := p.Entries(); len(e) != 1 || e[0].Start != 0 {
		t.Errorf("entries %+v", e)
	}
}

func TestStartAt(t *testing.T) {
	// r0 += r1 + *(u64 *)(r10 - 8), from instruction 2 on.
	p := NewProgram("resume", prog(mov64(r0, 100), mov64(r1, 100),
		ldx(bpfinsn.SizeDW, r2, r10, -8), alu64X(bpfinsn.OpAdd, r0, r1), alu64X(bpfinsn.OpAdd, r0, r2), exit()), nil)
	m := New(nil, Options{})
	stack := make([]byte, 16)
	stack[8] = 5 // r10 - 8
	if err := m.StartAt(p, 2, Regs{0: 1, 1: 2, 10: 0xdead}, stack); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Run(); err != nil || st != StopExit || m.Return() != 8 {
		t.Errorf("resumed run: %v %v r0 %d, want 1 + 2 + 5", st, err, m.Return())
	}
	if err := m.StartAt(p, 7, Regs{}, nil); !errors.Is(err, ErrBadInsn) {
		t.Errorf("resume past the end: %v", err)
	}
}
