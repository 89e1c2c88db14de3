// Package synthkernel makes small synthetic kernels for tests that must
// run without the lab: sparse memory written byte by byte, a symbol
// table, and BTF built from cilium/ebpf/btf types. Tests then open them
// with objects.NewProgram. Expected values come from what the test wrote,
// laid out as the kernel's headers define the structures.
//
// The parts:
//   - Mem: sparse memory (Write, U64..., Drop for a page a dump lacks),
//     Alloc/AllocPage/Global to place objects, and builders of the
//     kernel's containers: List, Hlist, RBTree, XArray, IDR, CPUs.
//   - BTF: kernel-shaped types (C layout of just the members declared,
//     At for a fixed offset, Bitfield), enums, typedefs, per-CPU
//     variables, and the containers' own types (ListHead, IDR, ...).
//   - Obj: writes an object's members by name (Set, Str, Bytes, At), at
//     the offsets its BTF type gives, so a test never hand-types one.
//   - Kernel (linux.go): the Linux types the walkers read (tasks,
//     runqueues, workers, files, mounts, dentries, timekeeper, modules,
//     printk), in the newest or an older layout, with builders of
//     tasks, thread groups, fdtables, dentries, mounts and namespaces.
package synthkernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// ErrFault is what reading an unwritten page fails with.
var ErrFault = errors.New("synthetic fault")

// Mem is sparse memory: 4 KiB pages, made when first written; reading a
// page never written faults (ErrFault). It satisfies objects.Memory.
type Mem struct {
	pages map[uint64][]byte
	next  uint64 // Alloc's next address
	stat  uint64 // Global's
}

// NewMem returns empty memory.
func NewMem() *Mem { return &Mem{pages: map[uint64][]byte{}} }

// ReadVirt reads len(p) bytes at vaddr, or up to the first absent page.
func (m *Mem) ReadVirt(p []byte, vaddr uint64) (int, error) {
	n := 0
	for n < len(p) {
		a := vaddr + uint64(n)
		pg, ok := m.pages[a&^4095]
		if !ok {
			return n, fmt.Errorf("read %#x: %w", a, ErrFault)
		}
		n += copy(p[n:], pg[a&4095:])
	}
	return n, nil
}

// Write writes b at addr.
func (m *Mem) Write(addr uint64, b []byte) {
	for len(b) > 0 {
		pg, ok := m.pages[addr&^4095]
		if !ok {
			pg = make([]byte, 4096)
			m.pages[addr&^4095] = pg
		}
		n := copy(pg[addr&4095:], b)
		b, addr = b[n:], addr+uint64(n)
	}
}

// U64 writes a little-endian u64 at addr.
func (m *Mem) U64(addr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	m.Write(addr, b[:])
}

// U32 writes a little-endian u32 at addr.
func (m *Mem) U32(addr uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	m.Write(addr, b[:])
}

// U16 writes a little-endian u16 at addr.
func (m *Mem) U16(addr uint64, v uint16) {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	m.Write(addr, b[:])
}

// U8 writes a byte at addr.
func (m *Mem) U8(addr uint64, v uint8) { m.Write(addr, []byte{v}) }

// String writes s and a NUL at addr.
func (m *Mem) String(addr uint64, s string) { m.Write(addr, append([]byte(s), 0)) }

// Drop removes the page holding addr, so that reading it faults (a page
// a filtered dump excluded).
func (m *Mem) Drop(addr uint64) { delete(m.pages, addr&^4095) }

// Syms is a symbol table over a map; it satisfies objects.Symbolizer and
// btfload.Symbolizer.
type Syms map[string]uint64

// Resolve returns name's address; an unknown name wraps
// btfload.ErrNotFound.
func (s Syms) Resolve(name string) (uint64, error) {
	if a, ok := s[name]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("no symbol named %s: %w", name, btfload.ErrNotFound)
}

// Names lists the symbols (objects.SymbolLister).
func (s Syms) Names(f func(string)) {
	for n := range s {
		f(n)
	}
}

// Spec marshals types (and every type they refer to) into BTF and parses
// it as vmlinux's.
func Spec(tb testing.TB, types ...btf.Type) *btfload.Spec {
	tb.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := btfload.Parse(raw, "synthetic")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// WalkErr runs a walker to its end or its first error: how many elements
// came before it, and the error.
func WalkErr[T any](seq func(func(T, error) bool)) (int, error) {
	n := 0
	for _, err := range seq {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
