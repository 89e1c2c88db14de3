package bpfvm

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

// fuzzBudget keeps each input quick.
const fuzzBudget = 1 << 12

// fuzzInput builds a machine and a program from arbitrary bytes: b[0]
// chooses the mode (bit 0: trace hook, bit 1: stepping with breakpoints),
// b[1:3] the number of instructions (at most 512), then the instructions,
// then the kernel memory at kernelData (at most 8 KiB) and the context.
func fuzzInput(b []byte) (mode byte, insns []I, mem []byte) {
	if len(b) < 3 {
		return 0, nil, nil
	}
	mode = b[0]
	n := int(binary.LittleEndian.Uint16(b[1:])) % 513
	b = b[3:]
	if n*bpfinsn.InsnSize > len(b) {
		n = len(b) / bpfinsn.InsnSize
	}
	insns, _ = bpfinsn.Decode(b[:n*bpfinsn.InsnSize])
	mem = b[n*bpfinsn.InsnSize:]
	if len(mem) > 8192 {
		mem = mem[:8192]
	}
	return mode, insns, mem
}

// FuzzRun runs arbitrary instructions over arbitrary memory: it never
// panics, ends within the budget, and fails only with an *ExecError.
func FuzzRun(f *testing.F) {
	for _, p := range labXlated(f) {
		f.Add(append([]byte{0, byte(len(p) / 8), byte(len(p) / 8 >> 8)}, p...))
	}
	seeds := [][]I{
		aluLoop(), stackLoop(), loopProg(5, 0, 3), callerCallee(callPseudo(4)), counting(0, tailCall()),
		prog(ldImm64(r1, kernelData), atomicOp(bpfinsn.SizeDW, r1, r1, 8, bpfinsn.AtomicCmpXchg), call("bpf_probe_read_kernel_str"), exit()),
		prog(mov64(r1, 1<<23), ldFunc(r2, 2), call("bpf_loop"), exit(), mov64(r0, 0), exit()),
	}
	for k, s := range seeds {
		b := bpfinsn.Encode(s)
		f.Add(append([]byte{byte(k), byte(len(s)), byte(len(s) >> 8)}, append(b, "some kernel memory"...)...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mode, insns, mem := fuzzInput(b)
		if len(insns) == 0 {
			return
		}
		p := NewProgram("fuzz", insns, []Subprog{{Start: 0, Addr: 0xffffffffc0000000}})
		reg := StandardHelpers().Clone()
		reg.Register("test_helper", func(m *Machine, a [5]uint64) (uint64, error) {
			return a[0] ^ a[1], m.WriteUint(a[2], 1, a[3])
		})
		var events uint64
		opts := Options{
			Budget:    fuzzBudget,
			CallBase:  callBase,
			Syms:      testSyms(),
			Helpers:   reg,
			TailCalls: &progArray{addr: kernelData, slots: []*Program{p, nil}},
			Task:      &Task{PID: 1, TGID: 1, Comm: "fuzz"},
			MaxAlloc:  1 << 20,
		}
		if mode&1 != 0 {
			opts.Trace = func(ev *TraceEvent) { events++; _ = ev.Changed() }
		}
		m := New(&fakeMem{base: kernelData, data: mem}, opts)
		ctx, _ := m.Alloc("ctx", 64, mode&4 != 0)
		copy(ctx.Bytes(), mem)
		var err error
		if mode&2 != 0 {
			for i := 0; i < len(insns); i += 3 {
				m.SetBreakpoint(p, i)
			}
			if err = m.Start(p, ctx.Addr); err == nil {
				for err == nil && !m.Exited() {
					var stop Stop
					if stop, err = m.Run(); err == nil && stop == StopBreakpoint {
						_ = m.Frames()
						_, err = m.StepOver()
					}
				}
			}
		} else {
			_, err = m.Exec(p, ctx.Addr)
		}
		if m.Executed() > fuzzBudget {
			t.Fatalf("executed %d instructions, budget %d", m.Executed(), fuzzBudget)
		}
		if err != nil {
			var xe *ExecError
			if !errors.As(err, &xe) {
				t.Fatalf("error %v (%T) is not an *ExecError", err, err)
			}
			_ = err.Error()
		}
		if mode&1 != 0 && events > m.Executed() {
			t.Fatalf("%d trace events for %d instructions", events, m.Executed())
		}
		_ = m.Changes()
	})
}

// labXlated returns the lab programs' xlated instructions (bpftool's
// "opcodes" dumps), when the lab was built.
func labXlated(tb testing.TB) [][]byte {
	root := os.Getenv("KINSPECT_LAB_DIR")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "kinspect-lab")
	}
	files, _ := filepath.Glob(filepath.Join(root, "basic", "truth", "xlated", "*.opcodes.txt"))
	var out [][]byte
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var p []byte
		for _, l := range strings.Split(string(text), "\n") {
			if !strings.HasPrefix(l, "       ") {
				continue
			}
			if b, err := hex.DecodeString(strings.Join(strings.Fields(l), "")); err == nil {
				p = append(p, b...)
			}
		}
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	return out
}
