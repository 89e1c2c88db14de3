package orc

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// patched is kernel memory with some bytes replaced.
type patched struct {
	base    objects.Memory
	patches map[uint64]byte
}

func (m *patched) ReadVirt(p []byte, vaddr uint64) (int, error) {
	n, err := m.base.ReadVirt(p, vaddr)
	for i := range p[:n] {
		if b, ok := m.patches[vaddr+uint64(i)]; ok {
			p[i] = b
		}
	}
	return n, err
}

func (m *patched) put64(addr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	for i, x := range b {
		m.patches[addr+uint64(i)] = x
	}
}

// TestCorruptStacks damages a sleeping task's stack, and the ORC lookup
// table, in many ways: every unwind must end — with ErrCorrupt or
// ErrFormat, or cleanly — within the frame limit, never loop or panic.
func TestCorruptStacks(t *testing.T) {
	sc := labdata.Require(t, "basic")
	lk := openLab(t, sc, "elf")
	task, err := linux.FindTask(lk.prog, 2) // kthreadd, asleep
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := task.Address()
	stack, err := lk.orc.TaskStack(task)
	if err != nil {
		t.Fatal(err)
	}
	spv, err := task.Path("thread.sp")
	if err != nil {
		t.Fatal(err)
	}
	tsp, _ := spv.Uint()
	good, err := lk.orc.UnwindTask(task)
	if err != nil || good.Err != nil || len(good.Frames) < 3 {
		t.Fatalf("the undamaged trace: %v %+v", err, good)
	}
	l, err := lk.orc.layouts()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	tests := []struct {
		name  string
		patch func(m *patched)
		want  error // nil: any end, clean or not
	}{
		{"zeroed stack", func(m *patched) {
			for a := tsp; a < stack.End; a += 8 {
				m.put64(a, 0)
			}
		}, ErrCorrupt},
		{"return address to itself", func(m *patched) {
			// Every slot holds the first return address: each frame
			// looks the same, the stack pointer must still climb.
			for a := tsp; a < stack.End; a += 8 {
				m.put64(a, good.Frames[0].PC)
			}
		}, ErrCorrupt},
		{"thread.sp outside the stack", func(m *patched) {
			off, _, _ := lk.prog.MemberOffset("struct task_struct", "thread.sp")
			m.put64(ta+off, stack.End+0x1000)
		}, ErrCorrupt},
		{"return address into data", func(m *patched) {
			m.put64(good.Frames[1].Slot, stack.Begin)
		}, ErrCorrupt},
		{"random stack", func(m *patched) {
			for a := tsp; a < stack.End; a += 8 {
				m.put64(a, rng.Uint64())
			}
		}, nil},
		{"random kernel-text return addresses", func(m *patched) {
			for a := tsp + l.frameSize; a < stack.End; a += 8 {
				m.put64(a, lk.orc.textStart+uint64(rng.Int63n(int64(lk.orc.textStop-lk.orc.textStart))))
			}
		}, nil},
		{"bad orc_lookup", func(m *patched) {
			for i := uint64(0); i < uint64(lk.orc.numBlocks); i++ {
				var b [4]byte
				binary.LittleEndian.PutUint32(b[:], 0xfffffff0)
				for j, x := range b {
					m.patches[lk.orc.lookupAddr+4*i+uint64(j)] = x
				}
			}
		}, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &patched{base: lk.prog.Memory(), patches: map[uint64]byte{}}
			tt.patch(m)
			prog := objects.NewProgram(m, lk.prog.Types(), lk.syms)
			k, err := Load(prog, lk.dump.Release())
			if err != nil {
				t.Fatal(err)
			}
			tv, err := prog.ObjectOf("struct task_struct", ta)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			tr, err := k.UnwindTask(tv)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if len(tr.Frames) > k.maxDepth {
				t.Errorf("%d frames", len(tr.Frames))
			}
			if tt.want != nil && !errors.Is(tr.Err, tt.want) {
				t.Errorf("err %v, want %v (frames %d, end %q)", tr.Err, tt.want, len(tr.Frames), tr.End)
			}
			if tr.Err != nil && tr.Reliable {
				t.Error("a trace that stopped early is marked reliable")
			}
			t.Logf("%d frames, end %q, err %v", len(tr.Frames), tr.End, tr.Err)
		})
	}
}
