package bpfvm

import (
	"errors"
	"fmt"
	"sort"

	"github.com/kinspect/kinspect/bpfinsn"
)

// HelperFunc is the Go implementation of a kernel function a program
// calls: a BPF helper (bpf_ktime_get_ns), a map operation the verifier
// called directly (htab_map_lookup_elem) or a kfunc. args are R1-R5; the
// result goes to R0. An error stops the run; a helper reports the
// kernel's own errors (-EINVAL, -EFAULT) in its result, as the kernel
// does, and returns an error only for what the kernel could not have
// done (a write to memory the program may not write).
type HelperFunc func(m *Machine, args [5]uint64) (uint64, error)

// Registry maps kernel symbol names to their Go implementations.
type Registry struct {
	funcs map[string]HelperFunc
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{funcs: map[string]HelperFunc{}} }

// Register makes fn the implementation of the kernel function name
// (its kallsyms name, "htab_map_lookup_elem"), replacing any other.
func (r *Registry) Register(name string, fn HelperFunc) { r.funcs[name] = fn }

// Lookup returns the implementation of name.
func (r *Registry) Lookup(name string) (HelperFunc, bool) {
	if r == nil {
		return nil, false
	}
	fn, ok := r.funcs[name]
	return fn, ok
}

// Names returns the names registered, sorted.
func (r *Registry) Names() []string {
	var out []string
	for n := range r.funcs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Clone returns a copy to register more functions in.
func (r *Registry) Clone() *Registry {
	c := NewRegistry()
	if r != nil {
		for n, fn := range r.funcs {
			c.funcs[n] = fn
		}
	}
	return c
}

// TailCaller finds the targets of tail calls: the program in slot index
// of the prog_array map at mapAddr (struct bpf_map), as the kernel reads
// array->ptrs[index]. inRange is index < max_entries; prog is nil for an
// empty slot. TailCall must have no side effect: the machine applies the
// kernel's order of checks (range, MAX_TAIL_CALL_CNT, then the slot).
type TailCaller interface {
	TailCall(m *Machine, mapAddr uint64, index uint32) (prog *Program, inRange bool, err error)
}

// TailCallFunc adapts a function to TailCaller.
type TailCallFunc func(m *Machine, mapAddr uint64, index uint32) (*Program, bool, error)

// TailCall calls f.
func (f TailCallFunc) TailCall(m *Machine, mapAddr uint64, index uint32) (*Program, bool, error) {
	return f(m, mapAddr, index)
}

// MaxTailCallCnt is the kernel's MAX_TAIL_CALL_CNT: the tail calls one
// run may make.
const MaxTailCallCnt = 33

// MaxCallFrames is the kernel's MAX_CALL_FRAMES: the main program and
// BPF-to-BPF calls (callbacks included) nested.
const MaxCallFrames = 8

type helperEntry struct {
	name string
	fn   HelperFunc
}

// helperName names the function at addr for errors.
func (m *Machine) helperName(addr uint64) string {
	if m.opts.Syms != nil {
		if s, ok := m.opts.Syms.SymbolAt(addr); ok {
			return s
		}
	}
	return fmt.Sprintf("%#x", addr)
}

// callHelper runs the call at pc (BPF_CALL of a kernel function, imm
// relative to __bpf_call_base).
func (m *Machine) callHelper(pc int, in *bpfinsn.Insn) error {
	addr := m.opts.CallBase + uint64(int64(in.Imm))
	e, ok := m.helperCache[addr]
	if !ok {
		e.name = m.helperName(addr)
		e.fn, _ = m.opts.Helpers.Lookup(e.name)
		if m.helperCache == nil {
			m.helperCache = map[uint64]helperEntry{}
		}
		m.helperCache[addr] = e
	}
	if e.fn == nil {
		kind := "helper"
		if in.Src == bpfinsn.PseudoKfuncCall {
			kind = "kfunc"
		}
		return m.errAt(pc, ErrUnknownHelper, fmt.Sprintf("call of %s %s at %#x, which has no implementation", kind, e.name, addr), nil)
	}
	r := &m.r
	v, err := e.fn(m, [5]uint64{r[1], r[2], r[3], r[4], r[5]})
	if err != nil {
		return m.helperErr(pc, e.name, err)
	}
	r[0] = v
	return nil
}

// helperErr turns a helper's error into the run's: an error of a nested
// run (a callback) stands as it is.
func (m *Machine) helperErr(pc int, name string, err error) error {
	var xe *ExecError
	if errors.As(err, &xe) {
		return err
	}
	e := m.errAt(pc, ErrHelper, "helper "+name, err)
	var me *MemError
	if errors.As(err, &me) {
		e.Addr, e.HasAddr = me.Addr, true
	}
	return e
}

// tailCall applies BPF_TAIL_CALL at pc: the program to continue with, nil
// to fall through.
func (m *Machine) tailCall(pc int) (*Program, error) {
	if m.opts.TailCalls == nil {
		return nil, m.errAt(pc, ErrUnknownHelper, "tail call with no TailCaller", nil)
	}
	mapAddr, index := m.r[2], uint32(m.r[3])
	p, inRange, err := m.opts.TailCalls.TailCall(m, mapAddr, index)
	if err != nil {
		return nil, m.helperErr(pc, "bpf_tail_call", err)
	}
	if !inRange || m.tailCalls >= MaxTailCallCnt {
		return nil, nil
	}
	m.tailCalls++
	if p != nil {
		m.progSlot(p)
	}
	return p, nil
}

// progSlot numbers the programs the machine ran, for FuncBase addresses.
func (m *Machine) progSlot(p *Program) int {
	if k, ok := m.slots[p]; ok {
		return k
	}
	if m.slots == nil {
		m.slots = map[*Program]int{}
	}
	m.slots[p] = len(m.progs)
	m.progs = append(m.progs, p)
	return len(m.progs) - 1
}

const funcSlotShift = 24

// FuncAddr returns the code address of the function at instruction start
// of p, as a BPF_PSEUDO_FUNC load gives it to the program: its JIT
// address when p's Subprogs know it, else an address at FuncBase.
func (m *Machine) FuncAddr(p *Program, start int) uint64 {
	k := sort.Search(len(p.entries), func(k int) bool { return p.entries[k].Start >= start })
	if k < len(p.entries) && p.entries[k].Start == start && p.entries[k].Addr != 0 {
		return p.entries[k].Addr
	}
	return FuncBase + uint64(m.progSlot(p))<<funcSlotShift + uint64(start)*8
}

// FuncAt maps a code address back to its program and instruction: one
// that FuncAddr gave, or the JIT address of a Subprog of a program the
// machine ran.
func (m *Machine) FuncAt(addr uint64) (*Program, int, bool) {
	if addr >= FuncBase && addr < AllocBase {
		off := addr - FuncBase
		slot, idx := off>>funcSlotShift, off&(1<<funcSlotShift-1)
		if idx%8 != 0 || slot >= uint64(len(m.progs)) || idx/8 >= uint64(m.progs[slot].Len()) {
			return nil, 0, false
		}
		return m.progs[slot], int(idx / 8), true
	}
	for _, p := range m.progs {
		for _, e := range p.entries {
			if e.Addr == addr && addr != 0 {
				return p, e.Start, true
			}
		}
	}
	return nil, 0, false
}

// Call runs the BPF function at code address fn (a callback a helper was
// given, from a BPF_PSEUDO_FUNC load) with args in R1-R5, and returns its
// R0, as the kernel calls a callback from bpf_loop. The caller's
// registers are kept. The callback runs in a frame of its own, counts
// against the budget and is traced; breakpoints in it do not stop it.
// Errors are *ExecError values naming the callback's instruction.
func (m *Machine) Call(fn uint64, args ...uint64) (uint64, error) {
	if len(args) > 5 {
		return 0, m.errAt(m.pc, ErrHelper, fmt.Sprintf("callback with %d arguments", len(args)), nil)
	}
	p, start, ok := m.FuncAt(fn)
	if !ok {
		e := m.errAt(m.pc, ErrFault, fmt.Sprintf("callback address %#x is not a BPF function", fn), nil)
		e.Addr, e.HasAddr = fn, true
		return 0, e
	}
	if len(m.frames) >= MaxCallFrames {
		return 0, m.errAt(m.pc, ErrCallDepth, fmt.Sprintf("callback call beyond %d frames", MaxCallFrames), nil)
	}
	saved, pc := m.r, m.pc
	m.pushFrame(p, -1, frameCallback)
	for i, a := range args {
		m.r[1+i] = a
	}
	m.pc = start
	depth := len(m.frames)
	if err := m.run(depth, false, nil); err != nil {
		return 0, err
	}
	r0 := m.r[0]
	m.r, m.pc = saved, pc
	return r0, nil
}
