package btfload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// LivePath is where a running kernel exposes its BTF.
const LivePath = "/sys/kernel/btf/vmlinux"

// maxBTFSize bounds a BTF blob read from memory or a file: the 6.12
// vmlinux BTF is about 6 MiB.
const maxBTFSize = 256 << 20

// Spec is the BTF of vmlinux or of one module (split BTF on top of
// vmlinux's). Types are decoded on first use. It is safe for concurrent
// use.
type Spec struct {
	// Name is "vmlinux" or the module's name.
	Name string
	// Source says where the bytes came from, for messages: a path, or
	// "memory 0xffffffff82a00000-0xffffffff82f5c2a1".
	Source string

	spec *btf.Spec
	base *Spec
	raw  []byte

	once sync.Once
	ix   *nameIndex
	ixe  error

	mu     sync.Mutex
	byName map[string]btf.Type // resolved C type names
	percpu []PerCPUVar         // .data..percpu, sorted by name
}

// Parse parses vmlinux BTF. Errors wrap ErrFormat.
func Parse(raw []byte, source string) (s *Spec, err error) {
	return parse(raw, nil, "vmlinux", source)
}

// ParseSplit parses the split BTF of a module on top of base, its
// vmlinux BTF. Errors wrap ErrFormat.
func ParseSplit(raw []byte, base *Spec, module, source string) (*Spec, error) {
	if base == nil {
		return nil, fmt.Errorf("btf: module %s: split BTF needs a base: %w", module, ErrNotSupported)
	}
	return parse(raw, base, module, source)
}

func parse(raw []byte, base *Spec, name, source string) (s *Spec, err error) {
	if _, err := parseHeader(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("btf: %s: decoder panicked: %v: %w", source, r, ErrFormat)
		}
	}()
	var sp *btf.Spec
	if base == nil {
		sp, err = btf.LoadSpecFromReader(bytes.NewReader(raw))
	} else {
		sp, err = btf.LoadSplitSpecFromReader(bytes.NewReader(raw), base.spec)
	}
	if err != nil {
		return nil, fmt.Errorf("btf: %s: %v: %w", source, err, ErrFormat)
	}
	return &Spec{Name: name, Source: source, spec: sp, base: base, raw: raw, byName: map[string]btf.Type{}}, nil
}

// LoadFile reads vmlinux BTF from a raw BTF file such as
// /sys/kernel/btf/vmlinux. Errors wrap ErrFormat or the *fs.PathError.
func LoadFile(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("btf: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("btf: %w", err)
	}
	if fi.Size() > maxBTFSize {
		return nil, fmt.Errorf("btf: %s: %d bytes is more than BTF ever is: %w", path, fi.Size(), ErrFormat)
	}
	// sysfs files report size 4096 or the true size; read to the end.
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("btf: %w", err)
	}
	return Parse(buf.Bytes(), path)
}

// LoadLive reads the running kernel's vmlinux BTF from LivePath.
func LoadLive() (*Spec, error) { return LoadFile(LivePath) }

// BTF returns the underlying cilium/ebpf spec.
func (s *Spec) BTF() *btf.Spec { return s.spec }

// Base returns the vmlinux Spec of a module's Spec, nil for vmlinux.
func (s *Spec) Base() *Spec { return s.base }

// Raw returns the BTF bytes the Spec was parsed from.
func (s *Spec) Raw() []byte { return s.raw }

// index returns the name index, built on first call.
func (s *Spec) index() (*nameIndex, error) {
	s.once.Do(func() {
		var base *nameIndex
		if s.base != nil {
			if base, s.ixe = s.base.index(); s.ixe != nil {
				return
			}
		}
		s.ix, s.ixe = parseIndex(s.raw, base)
	})
	return s.ix, s.ixe
}

// TypeNames calls f with the C name of every named type (with its tag:
// "struct task_struct", "enum bpf_prog_type", "u64"), in BTF order,
// the base's first for a module.
func (s *Spec) TypeNames(f func(name string)) error {
	if s.base != nil {
		if err := s.base.TypeNames(f); err != nil {
			return err
		}
	}
	ix, err := s.index()
	if err != nil {
		return err
	}
	ix.names(func(kind uint8, name string) {
		switch kind {
		case BTFKindStruct:
			f("struct " + name)
		case BTFKindUnion:
			f("union " + name)
		case BTFKindEnum, BTFKindEnum64:
			f("enum " + name)
		case BTFKindInt, BTFKindTypedef, BTFKindFloat:
			f(name)
		}
	})
	return nil
}

// anyByName returns the types called name (without a tag), in this spec
// and its base.
func (s *Spec) anyByName(name string) []btf.Type {
	var out []btf.Type
	if s.base != nil {
		out = s.base.anyByName(name)
	}
	ts, err := s.spec.AnyTypesByName(name)
	if err == nil || errors.Is(err, btf.ErrNotFound) {
		for _, t := range ts {
			dup := false
			for _, o := range out {
				if o == t {
					dup = true
				}
			}
			if !dup {
				out = append(out, t)
			}
		}
	}
	return out
}

// sizeofType is btf.Sizeof.
func sizeofType(t btf.Type) (int, error) { return btf.Sizeof(t) }
