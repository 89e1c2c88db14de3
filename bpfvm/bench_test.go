package bpfvm

import (
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

// benchLoops is the iterations of the benchmark programs.
const benchLoops = 1 << 20

// aluLoop is a tight loop: 3 instructions an iteration.
func aluLoop() []I {
	return prog(
		mov64(r0, 0),
		mov64(r1, benchLoops),
		alu64X(bpfinsn.OpAdd, r0, r1),
		alu64K(bpfinsn.OpSub, r1, 1),
		jmpK(bpfinsn.OpJNE, r1, 0, -3),
		exit())
}

// stackLoop keeps its counter on the stack and a sum in a map value
// (kernel memory through the overlay): 8 instructions an iteration.
func stackLoop() []I {
	return prog(
		st(bpfinsn.SizeDW, r10, -8, benchLoops),
		ldImm64(r6, kernelData+0x40),
		mov64(r0, 0),
		ldx(bpfinsn.SizeDW, r1, r10, -8), // 4
		ldx(bpfinsn.SizeDW, r2, r6, 0),
		alu64X(bpfinsn.OpAdd, r2, r1),
		stx(bpfinsn.SizeDW, r6, r2, 0),
		alu64K(bpfinsn.OpSub, r1, 1),
		stx(bpfinsn.SizeDW, r10, r1, -8),
		alu32X(bpfinsn.OpXor, r0, r1),
		jmpK(bpfinsn.OpJNE, r1, 0, -8),
		exit())
}

func benchRun(b *testing.B, insns []I, trace TraceFunc) {
	m := testMachine(Options{Budget: 1 << 40, Trace: trace})
	p := NewProgram("bench", insns, nil)
	b.ResetTimer()
	var n uint64
	for i := 0; i < b.N; i++ {
		if _, err := m.Exec(p); err != nil {
			b.Fatal(err)
		}
		n += m.Executed()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds()/1e6, "Minsn/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/insn")
}

// BenchmarkALULoop: replayed instructions per second without tracing.
func BenchmarkALULoop(b *testing.B) { benchRun(b, aluLoop(), nil) }

// BenchmarkMemLoop: with stack and kernel memory accesses.
func BenchmarkMemLoop(b *testing.B) { benchRun(b, stackLoop(), nil) }

// BenchmarkALULoopTraced: the cost of a trace hook (that keeps nothing).
func BenchmarkALULoopTraced(b *testing.B) {
	var changed int
	benchRun(b, aluLoop(), func(ev *TraceEvent) { changed += len(ev.Changed()) })
}

// BenchmarkMemLoopTraced: the cost of a trace hook with memory accesses.
func BenchmarkMemLoopTraced(b *testing.B) {
	benchRun(b, stackLoop(), func(*TraceEvent) {})
}
