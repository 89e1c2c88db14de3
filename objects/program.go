package objects

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

// Memory reads kernel virtual memory; *vmcore.KernelAS satisfies it.
type Memory interface {
	ReadVirt(p []byte, vaddr uint64) (int, error)
}

// Symbolizer finds a symbol's run-time address (the kallsyms table
// satisfies it). Errors should wrap an ErrNotFound when there is none.
type Symbolizer interface {
	Resolve(name string) (uint64, error)
}

// SymbolLister is optionally implemented by a Symbolizer to offer close
// names when a symbol is not found.
type SymbolLister interface {
	Names(func(name string))
}

// DefaultLimit bounds every walk unless WithLimit says otherwise.
const DefaultLimit = 1 << 22

// Program is a kernel to inspect: memory, types, symbols and
// declarations. Safe for concurrent use.
type Program struct {
	mem   Memory
	types *btfload.Spec
	syms  Symbolizer
	decls *btfload.Decls
	// typeFallback finds types vmlinux's BTF lacks (WithTypeFallback).
	typeFallback func(name string) (btf.Type, error)
	limit        int

	mu      sync.RWMutex
	members map[memberKey]MemberInfo
	vars    map[string]Value
	// probes memoizes answers about what the kernel has (name -> bool).
	probes sync.Map
	memos  sync.Map
	// damage is what walkers went past (NoteDamage).
	damage damageLog
	// explain says why a page is missing (WithExplain).
	explain func(error) string
}

// Probe answers a question about the kernel once: f's first answer is
// kept under name.
func (p *Program) Probe(name string, f func() bool) bool {
	if v, ok := p.probes.Load(name); ok {
		return v.(bool)
	}
	b := f()
	p.probes.Store(name, b)
	return b
}

// Memo computes a fact about the kernel once (f's first answer, error
// included, is kept under key): what every command asks the same way,
// such as the boot time.
func (p *Program) Memo(key string, f func() (any, error)) (any, error) {
	type answer struct {
		v   any
		err error
	}
	if a, ok := p.memos.Load(key); ok {
		return a.(answer).v, a.(answer).err
	}
	v, err := f()
	a, _ := p.memos.LoadOrStore(key, answer{v, err})
	return a.(answer).v, a.(answer).err
}

// Option configures a Program.
type Option func(*Program)

// WithDecls sets the declarations of global variables (default
// btfload.NewDecls(), the built-in table).
func WithDecls(d *btfload.Decls) Option { return func(p *Program) { p.decls = d } }

// WithExplain sets how NoteDamage explains a fault: f returns why the
// page an error names is missing from the dump (Damage.Page), or "".
func WithExplain(f func(error) string) Option { return func(p *Program) { p.explain = f } }

// WithTypeFallback sets where Type looks for a type vmlinux's BTF lacks
// (the modules' split BTF: a module's own structs, such as struct
// veth_priv). f's errors should wrap ErrNotFound when it has none.
func WithTypeFallback(f func(name string) (btf.Type, error)) Option {
	return func(p *Program) { p.typeFallback = f }
}

// WithLimit bounds every walk to n entries (default DefaultLimit).
func WithLimit(n int) Option { return func(p *Program) { p.limit = n } }

// NewProgram returns a Program reading mem (nil: no memory, see
// NoMemory), typed by types, with symbols from syms (nil: none).
func NewProgram(mem Memory, types *btfload.Spec, syms Symbolizer, opts ...Option) *Program {
	p := &Program{mem: mem, types: types, syms: syms, limit: DefaultLimit,
		members: map[memberKey]MemberInfo{}, vars: map[string]Value{}}
	for _, o := range opts {
		o(p)
	}
	if p.decls == nil {
		p.decls = btfload.NewDecls()
	}
	if p.mem == nil {
		p.mem = NoMemory(errors.New("no memory was given"))
	}
	if p.syms == nil {
		p.syms = noSymbols{}
	}
	return p
}

// NoMemory is a Memory whose every read fails with ErrNoMemory and why,
// for a kernel whose types are known but whose memory is not (a live
// kernel without a readable /proc/kcore).
func NoMemory(why error) Memory { return noMemory{why} }

type noMemory struct{ why error }

func (m noMemory) ReadVirt(p []byte, vaddr uint64) (int, error) {
	return 0, fmt.Errorf("read %#x: %w: %w", vaddr, ErrNoMemory, m.why)
}

type noSymbols struct{}

func (noSymbols) Resolve(name string) (uint64, error) {
	return 0, fmt.Errorf("no symbol named %s (no symbol table): %w", name, ErrNotFound)
}

// Types returns the BTF the Program is typed by.
func (p *Program) Types() *btfload.Spec { return p.types }

// Decls returns the Program's declarations of global variables.
func (p *Program) Decls() *btfload.Decls { return p.decls }

// Limit is the most entries a walk visits.
func (p *Program) Limit() int { return p.limit }

// Memory returns the memory the Program reads.
func (p *Program) Memory() Memory { return p.mem }

// Type resolves a C type name (see btfload.Spec.Type), in vmlinux's BTF,
// then where WithTypeFallback says.
func (p *Program) Type(name string) (btf.Type, error) {
	if p.typeFallback == nil {
		return p.types.Type(name)
	}
	// Without the close names first: a module's type misses vmlinux.
	t, err := p.types.Lookup(name)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return t, err
	}
	mt, merr := p.typeFallback(name)
	if merr == nil {
		return mt, nil
	}
	_, err = p.types.Type(name) // the error with close names
	if !errors.Is(merr, ErrNotFound) {
		return nil, fmt.Errorf("%w (%v)", err, merr)
	}
	return nil, err
}

// Object returns the object of type t at addr; nothing is read yet.
func (p *Program) Object(t btf.Type, addr uint64) Value {
	return Value{prog: p, typ: t, addr: addr, lvalue: true}
}

// ObjectOf returns the object of the named type at addr.
func (p *Program) ObjectOf(typeName string, addr uint64) (Value, error) {
	t, err := p.Type(typeName)
	if err != nil {
		return Value{}, err
	}
	return p.Object(t, addr), nil
}

// Symbol returns a symbol's address.
func (p *Program) Symbol(name string) (uint64, error) { return p.syms.Resolve(name) }

// Variable returns the global variable called name: typed by its
// declaration (Decls), or, for a per-CPU variable, by the BTF DATASEC
// .data..percpu (its address is then the per-CPU offset: see PerCPU).
// Errors wrap ErrNotFound, saying whether the symbol exists but lacks a
// declaration, with close names.
func (p *Program) Variable(name string) (Value, error) {
	p.mu.RLock()
	v, ok := p.vars[name]
	p.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := p.variable(name)
	if err != nil {
		return Value{}, err
	}
	p.mu.Lock()
	p.vars[name] = v
	p.mu.Unlock()
	return v, nil
}

func (p *Program) variable(name string) (Value, error) {
	if d, ok := p.decls.Lookup(name); ok {
		t, err := p.types.Resolve(d.Type)
		if err != nil {
			return Value{}, fmt.Errorf("variable %s declared as %q: %w", name, d, err)
		}
		addr, err := p.syms.Resolve(name)
		if err != nil {
			return Value{}, fmt.Errorf("variable %s: %w", name, err)
		}
		return p.Object(t, addr), nil
	}
	if pv, err := p.types.PerCPUVar(name); err == nil {
		addr, serr := p.syms.Resolve(name)
		if serr != nil {
			start, err := p.syms.Resolve("__per_cpu_start")
			if err != nil {
				return Value{}, fmt.Errorf("per-CPU variable %s: %w", name, serr)
			}
			addr = start + uint64(pv.Offset)
		}
		v := p.Object(pv.Type, addr)
		v.percpu = true
		return v, nil
	}
	if addr, err := p.syms.Resolve(name); err == nil {
		return Value{}, fmt.Errorf("symbol %s (at %#x) has no type: global variables have no BTF; declare it, e.g. --declare 'struct foo %s': %w", name, addr, name, ErrNotFound)
	}
	cands := p.decls.Names()
	if vs, err := p.types.PerCPUVars(); err == nil {
		for _, v := range vs {
			cands = append(cands, v.Name)
		}
	}
	if sl, ok := p.syms.(SymbolLister); ok {
		sl.Names(func(n string) { cands = append(cands, n) })
	}
	return Value{}, fmt.Errorf("no symbol named %s%s: %w", name, btfload.SuggestSuffix(btfload.Closest(name, cands, 5)), ErrNotFound)
}

// Enumerator returns the value of the enumerator called name, of any
// enum of the kernel's BTF, named or anonymous (drgn's prog.constant):
// the first of that name. The table is built on first use, from the
// BTF's wire format. Errors wrap ErrNotFound.
func (p *Program) Enumerator(name string) (uint64, error) {
	v, err := p.Memo("objects enumerators", func() (any, error) {
		if p.types == nil {
			return map[string]uint64{}, nil
		}
		return p.types.Enumerators()
	})
	if err != nil {
		return 0, err
	}
	x, ok := v.(map[string]uint64)[name]
	if !ok {
		return 0, fmt.Errorf("no enumerator named %s in the kernel's BTF: %w", name, ErrNotFound)
	}
	return x, nil
}
