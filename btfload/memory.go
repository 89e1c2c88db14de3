package btfload

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// Memory reads kernel virtual memory; *vmcore.KernelAS satisfies it.
type Memory interface {
	ReadVirt(p []byte, vaddr uint64) (int, error)
}

// Symbolizer finds a kernel symbol's run-time address; the kallsyms
// package's table satisfies it. Lookup's error should wrap ErrNotFound
// (of any package) when there is no such symbol.
type Symbolizer interface {
	Resolve(name string) (uint64, error)
}

// FromMemory reads vmlinux BTF from kernel memory between the symbols
// __start_BTF and __stop_BTF (the .BTF section, kept in memory since 5.2
// for /sys/kernel/btf/vmlinux). Errors wrap ErrNotFound (no such symbols:
// a kernel without CONFIG_DEBUG_INFO_BTF), ErrFormat, or the memory error
// naming the address.
func FromMemory(mem Memory, syms Symbolizer) (*Spec, error) {
	start, err := syms.Resolve("__start_BTF")
	if err != nil {
		return nil, fmt.Errorf("btf: find __start_BTF (a kernel without CONFIG_DEBUG_INFO_BTF has none): %w", err)
	}
	stop, err := syms.Resolve("__stop_BTF")
	if err != nil {
		return nil, fmt.Errorf("btf: find __stop_BTF: %w", err)
	}
	if stop <= start || stop-start > maxBTFSize {
		return nil, fmt.Errorf("btf: __start_BTF %#x, __stop_BTF %#x: not a plausible section: %w", start, stop, ErrFormat)
	}
	raw := make([]byte, stop-start)
	if _, err := mem.ReadVirt(raw, start); err != nil {
		return nil, fmt.Errorf("btf: read .BTF at %#x-%#x: %w", start, stop, err)
	}
	return Parse(raw, fmt.Sprintf("memory %#x-%#x", start, stop))
}

// reader reads typed fields through BTF member names.
type reader struct {
	mem  Memory
	spec *Spec
}

// offset returns the byte offset of member m of struct typ.
func (r reader) offset(typ, m string) (uint64, btf.Type, error) {
	t, err := r.spec.Type(typ)
	if err != nil {
		return 0, nil, err
	}
	s, ok := Underlying(t).(*btf.Struct)
	if !ok {
		return 0, nil, fmt.Errorf("%s is not a struct: %w", typ, ErrNotSupported)
	}
	off, mt, err := MemberOffset(s, m)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", typ, err)
	}
	return uint64(off / 8), mt, nil
}

func (r reader) u64(addr uint64) (uint64, error) {
	var b [8]byte
	if _, err := r.mem.ReadVirt(b[:], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// uint reads an unsigned integer of t's size.
func (r reader) uint(addr uint64, t btf.Type) (uint64, error) {
	n, err := btf.Sizeof(t)
	if err != nil || n > 8 || n == 0 {
		return 0, fmt.Errorf("read %s at %#x: not an integer: %w", TypeString(t), addr, ErrNotSupported)
	}
	var b [8]byte
	if _, err := r.mem.ReadVirt(b[:n], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// MemberOffset finds member name (which may sit inside anonymous structs
// and unions) in s, returning its bit offset from the start of s and its
// type. Errors wrap ErrNotFound and suggest close member names.
func MemberOffset(s *btf.Struct, name string) (uint32, btf.Type, error) {
	if off, t, ok := findMember(s.Members, name, 0); ok {
		return off, t, nil
	}
	return 0, nil, fmt.Errorf("no member named %s in struct %s%s: %w", name, s.Name, SuggestSuffix(Closest(name, MemberNames(s.Members), 5)), ErrNotFound)
}

func findMember(ms []btf.Member, name string, base uint32) (uint32, btf.Type, bool) {
	for _, m := range ms {
		if m.Name == name {
			return base + uint32(m.Offset), m.Type, true
		}
	}
	for _, m := range ms {
		if m.Name != "" {
			continue
		}
		switch u := Underlying(m.Type).(type) {
		case *btf.Struct:
			if off, t, ok := findMember(u.Members, name, base+uint32(m.Offset)); ok {
				return off, t, true
			}
		case *btf.Union:
			if off, t, ok := findMember(u.Members, name, base+uint32(m.Offset)); ok {
				return off, t, true
			}
		}
	}
	return 0, nil, false
}

// MemberNames lists the names reachable in ms, anonymous members'
// members included.
func MemberNames(ms []btf.Member) []string {
	var out []string
	for _, m := range ms {
		if m.Name != "" {
			out = append(out, m.Name)
			continue
		}
		switch u := Underlying(m.Type).(type) {
		case *btf.Struct:
			out = append(out, MemberNames(u.Members)...)
		case *btf.Union:
			out = append(out, MemberNames(u.Members)...)
		}
	}
	return out
}
