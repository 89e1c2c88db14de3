package bpfrun_test

import (
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// Replay speed: the lab's ki_spin (2048 rounds of xorshift, 43,014
// instructions a run) replayed from the basic dump, as prog run runs it
// (the context built, the run, the map changes looked for), without and
// with --trace.

func benchSpin(b *testing.B, trace bool) {
	s, err := labdata.Load("basic")
	if err != nil {
		b.Skip("basic is not built")
	}
	k := labkernel.Open(b, s, "elf")
	r := bpfrun.FromKernel(k)
	p, err := r.Prog(bpf.Selector{Kind: bpf.SelectName, Name: "ki_spin"})
	if err != nil {
		b.Fatal(err)
	}
	ss, err := r.NewSession(bpfrun.Options{})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64)
	b.ResetTimer()
	var n uint64
	for i := 0; i < b.N; i++ {
		res, err := ss.Run(p, bpfrun.RunOptions{DataIn: data, Trace: trace})
		if err != nil {
			b.Fatal(err)
		}
		n += res.Insns
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds()/1e6, "Minsn/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/insn")
}

// BenchmarkReplay: replayed instructions per second, without tracing.
func BenchmarkReplay(b *testing.B) { benchSpin(b, false) }

// BenchmarkReplayTraced: the same with --trace (each instruction's
// TraceStep: its text, the registers it changed).
func BenchmarkReplayTraced(b *testing.B) { benchSpin(b, true) }
