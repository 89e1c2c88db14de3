package bpfvm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

// callerCallee is a main program calling a subprogram at 8 that
// clobbers r6 and its own stack: 5*2 + 7 (r6 kept) + 100 (the caller's
// stack kept) = 117.
func callerCallee(call I) []I {
	return prog(
		mov64(r6, 7),                     // 0
		st(bpfinsn.SizeDW, r10, -8, 100), // 1
		mov64(r1, 5),                     // 2
		call,                             // 3: to 8
		alu64X(bpfinsn.OpAdd, r0, r6),    // 4
		ldx(bpfinsn.SizeDW, r1, r10, -8), // 5
		alu64X(bpfinsn.OpAdd, r0, r1),    // 6
		exit(),                           // 7
		mov64(r6, 1000),                  // 8
		st(bpfinsn.SizeDW, r10, -8, 1),   // 9
		mov64X(r0, r1),                   // 10
		alu64K(bpfinsn.OpMul, r0, 2),     // 11
		exit(),                           // 12
	)
}

func TestBPFToBPFCall(t *testing.T) {
	forms := map[string]I{
		// As loaded: imm is the offset.
		"loaded": callPseudo(4),
		// After jit_subprogs, as bpftool dumps it: off is the offset,
		// imm the subprogram's index.
		"jited": {Code: bpfinsn.CodeCall, Src: bpfinsn.PseudoCall, Off: 4, Imm: 1},
		// The interpreter's BPF_CALL_ARGS: off is the offset, imm the
		// interpreter's address.
		"interpreted": {Code: bpfinsn.ClassJMP | bpfinsn.OpCallArgs, Src: bpfinsn.PseudoCall, Off: 4, Imm: 0x12345},
		// BPF_CALL_ARGS as bpf_insn_prepare_dump shows it.
		"interpreted, dumped": {Code: bpfinsn.CodeCall, Src: bpfinsn.PseudoCall, Off: 4, Imm: 0x12345},
	}
	for name, call := range forms {
		t.Run(name, func(t *testing.T) {
			m := testMachine(Options{})
			if got := mustRun(t, m, callerCallee(call)); got != 117 {
				t.Errorf("r0 = %d, want 117", got)
			}
		})
	}
}

func TestFramesAtBreakpoint(t *testing.T) {
	m := testMachine(Options{})
	p := NewProgram("test", callerCallee(callPseudo(4)), []Subprog{{Start: 0, Addr: 0xffffffffc0001000}, {Start: 8, Addr: 0xffffffffc0002000}})
	m.SetBreakpoint(p, 10)
	if err := m.Start(p); err != nil {
		t.Fatal(err)
	}
	stop, err := m.Run()
	if err != nil || stop != StopBreakpoint {
		t.Fatalf("Run = %v, %v; want a breakpoint", stop, err)
	}
	fr := m.Frames()
	if len(fr) != 2 {
		t.Fatalf("%d frames, want 2", len(fr))
	}
	main, sub := fr[0], fr[1]
	if main.PC != 3 || main.Return != -1 || main.Regs[6] != 7 || main.StackTop != StackBase+StackStride || main.Func.Start != 0 {
		t.Errorf("main frame %+v", main)
	}
	if main.Stack[StackSize-8] != 100 {
		t.Errorf("main's stack slot -8 = %d, want 100", main.Stack[StackSize-8])
	}
	if sub.PC != 10 || sub.Return != 4 || sub.Regs[6] != 1000 || sub.Regs[10] != StackBase+2*StackStride || sub.Func != (Subprog{Start: 8, Addr: 0xffffffffc0002000}) {
		t.Errorf("subprogram frame %+v", sub)
	}
	if sub.Stack[StackSize-8] != 1 {
		t.Errorf("callee's stack slot -8 = %d, want 1", sub.Stack[StackSize-8])
	}
	// The breakpoint is not hit again when continuing from it.
	stop, err = m.Run()
	if err != nil || stop != StopExit || m.Return() != 117 {
		t.Fatalf("Run = %v, %v, r0 = %d; want exit with 117", stop, err, m.Return())
	}
	if _, err := m.Run(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Run after exit: %v", err)
	}
}

func TestCallDepth(t *testing.T) {
	m := testMachine(Options{})
	_, err := runProg(t, m, prog(callPseudo(1), exit(), callPseudo(-1), exit()))
	var xe *ExecError
	if !errors.As(err, &xe) || !errors.Is(err, ErrCallDepth) || xe.Insn != 2 {
		t.Fatalf("error %v, want ErrCallDepth at insn 2", err)
	}
	if n := len(m.Frames()); n != MaxCallFrames {
		t.Errorf("%d frames at the failure, want %d", n, MaxCallFrames)
	}
}

// progArray is a prog_array map at mapAddr for the tests.
type progArray struct {
	addr  uint64
	slots []*Program
	calls int
}

func (a *progArray) TailCall(_ *Machine, mapAddr uint64, index uint32) (*Program, bool, error) {
	a.calls++
	if mapAddr != a.addr {
		return nil, false, fmt.Errorf("%#x is not a prog_array", mapAddr)
	}
	if index >= uint32(len(a.slots)) {
		return nil, false, nil
	}
	return a.slots[index], true, nil
}

const progArrayAddr = 0xffff8880000a0000

// counting counts its runs in the u64 at ctx, then tail-calls slot
// index, then returns 99.
func counting(index int32, tail I) []I {
	return prog(
		mov64X(r6, r1),
		mov64(r2, 1),
		atomicOp(bpfinsn.SizeDW, r1, r2, 0, bpfinsn.OpAdd),
		mov64X(r1, r6),
		ldImm64(r2, progArrayAddr),
		mov64(r3, index),
		tail,
		mov64(r0, 99),
		exit(),
	)
}

func TestTailCalls(t *testing.T) {
	forms := map[string]I{
		"internal": tailCall(),
		"dumped":   {Code: bpfinsn.CodeCall, Imm: bpfinsn.HelperTailCall},
	}
	for name, tail := range forms {
		t.Run(name, func(t *testing.T) {
			cases := []struct {
				name    string
				index   int32
				runs    uint64
				tails   int
				wantErr bool
			}{
				// The kernel's limit: 33 tail calls, then fall through.
				{"self until the limit", 0, 1 + MaxTailCallCnt, MaxTailCallCnt, false},
				// Out of range: no count, fall through.
				{"out of range", 5, 1, 0, false},
				{"negative index is large", -1, 1, 0, false},
				// An empty slot counts.
				{"empty slot", 1, 1, 1, false},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := NewProgram("counting", counting(c.index, tail), nil)
					arr := &progArray{addr: progArrayAddr, slots: []*Program{p, nil}}
					m := testMachine(Options{TailCalls: arr})
					ctx, _ := m.Alloc("ctx", 8, false)
					r0, err := m.Exec(p, ctx.Addr)
					if err != nil {
						t.Fatal(err)
					}
					runs := uint64(ctx.Bytes()[0])
					if r0 != 99 || runs != c.runs || m.TailCallCount() != c.tails {
						t.Errorf("r0 %d, %d runs, %d tail calls; want 99, %d, %d", r0, runs, m.TailCallCount(), c.runs, c.tails)
					}
				})
			}
		})
	}
}

func TestTailCallFromSubprogram(t *testing.T) {
	// main calls sub, which tail-calls target: target's exit returns to
	// main, as the x86 JIT does.
	target := NewProgram("target", prog(mov64(r0, 42), exit()), nil)
	main := NewProgram("main", prog(
		callPseudo(2),                // 0: to 3
		alu64K(bpfinsn.OpAdd, r0, 1), // 1
		exit(),                       // 2
		ldImm64(r2, progArrayAddr),   // 3
		mov64(r3, 0),                 // 5
		tailCall(),                   // 6
		mov64(r0, 7),                 // 7
		exit(),                       // 8
	), nil)
	m := testMachine(Options{TailCalls: &progArray{addr: progArrayAddr, slots: []*Program{target}}})
	got, err := m.Exec(main)
	if err != nil || got != 43 {
		t.Fatalf("r0 = %d, %v; want 43", got, err)
	}
	// A TailCaller's error stops the run at the tail call.
	m = testMachine(Options{TailCalls: &progArray{addr: 1}})
	_, err = m.Exec(main)
	var xe *ExecError
	if !errors.As(err, &xe) || !errors.Is(err, ErrHelper) || xe.Insn != 6 || xe.Prog != "main" {
		t.Fatalf("error %v, want ErrHelper at main insn 6", err)
	}
}

// loopProg calls bpf_loop(n, callback, &sum, flags) and returns
// ret*1000 + sum; the callback adds its index to sum and stops after
// index stop.
func loopProg(n int32, flags int32, stop int32) []I {
	return prog(
		st(bpfinsn.SizeDW, r10, -8, 0),   // 0
		mov64(r1, n),                     // 1
		ldFunc(r2, 12-2-1),               // 2: callback at 12
		mov64X(r3, r10),                  // 4
		alu64K(bpfinsn.OpAdd, r3, -8),    // 5
		mov64(r4, flags),                 // 6
		call("bpf_loop"),                 // 7
		alu64K(bpfinsn.OpMul, r0, 1000),  // 8
		ldx(bpfinsn.SizeDW, r1, r10, -8), // 9
		alu64X(bpfinsn.OpAdd, r0, r1),    // 10
		exit(),                           // 11
		ldx(bpfinsn.SizeDW, r3, r2, 0),   // 12: callback(index, ctx)
		alu64X(bpfinsn.OpAdd, r3, r1),    // 13
		stx(bpfinsn.SizeDW, r2, r3, 0),   // 14
		mov64(r0, 0),                     // 15
		jmpK(bpfinsn.OpJNE, r1, stop, 1), // 16
		mov64(r0, 1),                     // 17
		exit(),                           // 18
	)
}

func TestBPFLoop(t *testing.T) {
	cases := []struct {
		name           string
		n, flags, stop int32
		subprogs       []Subprog
		want           uint64
	}{
		{"all", 10, 0, -1, nil, 10*1000 + 45},
		{"stops when the callback returns 1", 10, 0, 3, nil, 4*1000 + 6},
		{"zero loops", 0, 0, -1, nil, 0},
		{"callback at its JIT address", 5, 0, -1, []Subprog{{Start: 12, Addr: 0xffffffffc0003000}}, 5*1000 + 10},
		{"flags", 10, 1, -1, nil, Errno(errnoEINVAL) * 1000},
		{"too many", 1<<23 + 1, 0, -1, nil, Errno(errnoE2BIG) * 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testMachine(Options{})
			p := NewProgram("loop", loopProg(c.n, c.flags, c.stop), c.subprogs)
			got, err := m.Exec(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("r0 = %d, want %d", got, c.want)
			}
		})
	}
}

func TestCallbackAddresses(t *testing.T) {
	m := testMachine(Options{})
	p := NewProgram("p", prog(ldFunc(r0, 2), exit(), mov64(r0, 0), exit()), []Subprog{{Start: 0, Addr: 0xffffffffc0000000}})
	addr, err := m.Exec(p)
	if err != nil {
		t.Fatal(err)
	}
	if addr < FuncBase || addr >= AllocBase {
		t.Fatalf("callback address %#x, want one at FuncBase", addr)
	}
	q, i, ok := m.FuncAt(addr)
	if !ok || q != p || i != 3 {
		t.Errorf("FuncAt(%#x) = %v, %d, %v; want p, 3", addr, q, i, ok)
	}
	if _, _, ok := m.FuncAt(0xffffffffc0000000); !ok {
		t.Errorf("FuncAt of a Subprog's JIT address failed")
	}
	if _, _, ok := m.FuncAt(addr + 4); ok {
		t.Errorf("FuncAt of a misaligned address succeeded")
	}
	// A callback at a bad address is a fault of the helper's call.
	_, err = runProg(t, m, prog(mov64(r1, 1), ldImm64(r2, 0xffffffff81234567), mov64(r3, 0), mov64(r4, 0), call("bpf_loop"), exit()))
	var xe *ExecError
	if !errors.As(err, &xe) || !errors.Is(err, ErrFault) || xe.Insn != 5 || xe.Addr != 0xffffffff81234567 {
		t.Errorf("error %v, want a fault at insn 5", err)
	}
}

func TestCallbackFault(t *testing.T) {
	// A fault inside a callback names the callback's instruction.
	m := testMachine(Options{})
	p := prog(
		mov64(r1, 3), ldFunc(r2, 5), mov64(r3, 0), mov64(r4, 0), call("bpf_loop"), exit(),
		ldx(bpfinsn.SizeDW, r0, r3, 0), exit(), // 7: *(u64 *)0
	)
	_, err := runProg(t, m, p)
	var xe *ExecError
	if !errors.As(err, &xe) || !errors.Is(err, ErrFault) || xe.Insn != 7 || xe.Addr != 0 {
		t.Fatalf("error %v, want a fault at insn 7", err)
	}
	if n := len(m.Frames()); n != 2 {
		t.Errorf("%d frames at the fault, want 2 (the callback's)", n)
	}
}

func TestHelperRegistry(t *testing.T) {
	reg := StandardHelpers().Clone()
	var seen [5]uint64
	reg.Register("test_helper", func(m *Machine, args [5]uint64) (uint64, error) {
		seen = args
		// Write through the machine's memory: the caller's stack.
		if err := m.WriteUint(args[0], 8, 0xabcdef); err != nil {
			return 0, err
		}
		return 77, nil
	})
	reg.Register("test_fail", func(m *Machine, args [5]uint64) (uint64, error) {
		return 0, m.WriteUint(args[0], 8, 1)
	})
	m := testMachine(Options{Helpers: reg})
	got := mustRun(t, m, prog(
		mov64X(r1, r10), alu64K(bpfinsn.OpAdd, r1, -8), mov64(r2, 2), mov64(r3, 3), mov64(r4, 4), mov64(r5, 5),
		call("test_helper"),
		ldx(bpfinsn.SizeDW, r1, r10, -8),
		alu64X(bpfinsn.OpAdd, r0, r1),
		exit()))
	if got != 77+0xabcdef || seen != [5]uint64{StackBase + StackStride - 8, 2, 3, 4, 5} {
		t.Errorf("r0 = %#x, args %#x", got, seen)
	}
	_, err := runProg(t, m, prog(mov64(r1, 0), call("test_fail"), exit()))
	var xe *ExecError
	if !errors.As(err, &xe) || !errors.Is(err, ErrHelper) || !errors.Is(err, ErrFault) || xe.Insn != 1 || !xe.HasAddr || xe.Addr != 0 {
		t.Errorf("error %v, want ErrHelper and ErrFault at insn 1, address 0", err)
	}
	if _, ok := StandardHelpers().Lookup("test_helper"); ok {
		t.Errorf("Clone shares its functions with the original")
	}
}

func TestKfuncCall(t *testing.T) {
	// A kfunc call (BPF_PSEUDO_KFUNC_CALL) is dispatched by address too.
	reg := NewRegistry()
	reg.Register("test_helper", func(*Machine, [5]uint64) (uint64, error) { return 5, nil })
	m := testMachine(Options{Helpers: reg})
	in := call("test_helper")
	in.Src = bpfinsn.PseudoKfuncCall
	if got := mustRun(t, m, prog(in, exit())); got != 5 {
		t.Errorf("r0 = %d", got)
	}
	in = call("not_implemented")
	in.Src = bpfinsn.PseudoKfuncCall
	if _, err := runProg(t, m, prog(in, exit())); err == nil || !errors.Is(err, ErrUnknownHelper) {
		t.Errorf("error %v", err)
	}
}
