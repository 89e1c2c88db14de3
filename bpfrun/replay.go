package bpfrun

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// Sentinel errors.
var (
	// ErrInvalid: a run the kernel would refuse with -EINVAL (a data_in
	// shorter than an Ethernet header, a ctx_in with fields it does not
	// take, ...).
	ErrInvalid = errors.New("invalid test run")
	// ErrNotSupported: a program type BPF_PROG_TEST_RUN does not run, or
	// that bpfrun does not build a context for.
	ErrNotSupported = errors.New("not supported")
)

// Replayer replays the BPF programs of one kernel. It is safe for
// concurrent use; its Sessions are not.
type Replayer struct {
	prog     *objects.Program
	syms     *kallsyms.Table
	callBase uint64

	mu     sync.Mutex
	loaded map[uint64]*Prog // by struct bpf_prog address
	lay    *layouts
	layErr error
	lruLay *lruLayout

	ctxOnce sync.Once
	skbLay  *skbLayout
	skbErr  error
	xdpOnce sync.Once
	xdpLay  *xdpLayout
	xdpErr  error
}

// New returns a replayer of the kernel p, naming the functions programs
// call with syms (nil: none, every call fails as unimplemented).
func New(p *objects.Program, syms *kallsyms.Table) *Replayer {
	r := &Replayer{prog: p, syms: syms, loaded: map[uint64]*Prog{}}
	r.callBase, _ = p.Symbol("__bpf_call_base")
	return r
}

// FromKernel returns a replayer of an opened kernel.
func FromKernel(k *kinspect.Kernel) *Replayer { return New(k.Program(), k.Symbols()) }

// Program is the kernel the replayer reads (the dump, without the
// overlay).
func (r *Replayer) Program() *objects.Program { return r.prog }

// Prog is a program ready to run: the kernel's model of it and its
// instructions as the kernel holds them.
type Prog struct {
	*bpf.Prog
	// Addr is the struct bpf_prog's address.
	Addr uint64
	// VM is the program for bpfvm: prog->insnsi with the subprograms'
	// JIT addresses.
	VM *bpfvm.Program
	// Funcs are the JIT images (none when not JITed).
	Funcs []bpf.ProgFunc
	// Starts are the first instructions of the subprograms, in the
	// order of Funcs (func_info, else the call targets).
	Starts []int
	// Source is the program's func_info and line_info (empty without
	// BTF).
	Source *bpf.Source

	xlOnce sync.Once
	xl     *bpfinsn.Program
	xlErr  error
	syms   *kallsyms.Table

	jitOnce sync.Once
	jit     []*JITImage
	jitErr  error
}

// Load prepares a program of the kernel for running; programs are
// loaded once per replayer.
func (r *Replayer) Load(bp *bpf.Prog) (*Prog, error) {
	addr, _ := bp.Obj.Address()
	r.mu.Lock()
	p, ok := r.loaded[addr]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := r.load(bp, addr)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if q, ok := r.loaded[addr]; ok {
		return q, nil
	}
	r.loaded[addr] = p
	return p, nil
}

// LoadAt loads the program whose struct bpf_prog is at addr (a
// prog_array slot, a ksym's program).
func (r *Replayer) LoadAt(addr uint64) (*Prog, error) {
	r.mu.Lock()
	p, ok := r.loaded[addr]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	v, err := r.prog.ObjectOf("struct bpf_prog", addr)
	if err != nil {
		return nil, err
	}
	bp, err := bpf.NewProg(v)
	if err != nil {
		return nil, err
	}
	return r.Load(bp)
}

func (r *Replayer) load(bp *bpf.Prog, addr uint64) (*Prog, error) {
	insns, err := bp.Insns()
	if err != nil {
		return nil, err
	}
	funcs, err := bp.Funcs()
	if err != nil {
		return nil, err
	}
	src, err := bp.Source()
	if err != nil {
		src = &bpf.Source{}
	}
	p := &Prog{Prog: bp, Addr: addr, Funcs: funcs, Source: src, syms: r.syms}
	// The subprograms: func_info's starts (the order of aux->func),
	// else every call target; the first is the program itself.
	for _, f := range src.Funcs {
		p.Starts = append(p.Starts, int(f.InsnOff))
	}
	if len(p.Starts) == 0 {
		probe := bpfvm.NewProgram(bp.Name, insns, nil)
		for _, e := range probe.Entries() {
			p.Starts = append(p.Starts, e.Start)
		}
	}
	sort.Ints(p.Starts)
	if len(p.Starts) == 0 || p.Starts[0] != 0 {
		p.Starts = append([]int{0}, p.Starts...)
	}
	var subs []bpfvm.Subprog
	for i, s := range p.Starts {
		sp := bpfvm.Subprog{Start: s}
		if i < len(funcs) && len(funcs) == len(p.Starts) {
			sp.Addr = funcs[i].Addr
		}
		subs = append(subs, sp)
	}
	name := bp.Name
	if name == "" {
		name = fmt.Sprintf("prog%d", bp.ID)
	}
	p.VM = bpfvm.NewProgram(name, insns, subs)
	return p, nil
}

// Xlated is the program's dump (prog dump xlated): its instructions as
// the kernel hands them out, with names for the traces.
func (p *Prog) Xlated() (*bpfinsn.Program, error) {
	p.xlOnce.Do(func() { p.xl, p.xlErr = p.Prog.DumpXlated(p.syms) })
	return p.xl, p.xlErr
}

// InsnText is instruction i as "prog dump xlated" prints it ("r0 = 1",
// "call bpf_map_lookup_elem#1"); the raw form when the dump cannot be
// had.
func (p *Prog) InsnText(i int) string {
	if x, err := p.Xlated(); err == nil && i >= 0 && i < len(x.Insns) {
		return x.InsnText(i)
	}
	if i < 0 || i >= len(p.VM.Insns) {
		return ""
	}
	return bpfinsn.Format(p.VM.Insns, i)
}

// Line is the source line of instruction i (the line_info record at or
// before it), ok false without one.
func (p *Prog) Line(i int) (bpfinsn.Line, bool) {
	var best bpfinsn.Line
	ok := false
	for _, l := range p.Source.Lines {
		if int(l.InsnOff) > i {
			break
		}
		best, ok = l, true
	}
	return best, ok
}

// FuncName is the name of the subprogram holding instruction i: its BTF
// name, else the program's for the first and "func_N" for the others.
func (p *Prog) FuncName(i int) string {
	k := sort.SearchInts(p.Starts, i+1) - 1
	if k < 0 {
		k = 0
	}
	if k < len(p.Source.Funcs) {
		if n := protoName(p.Source.Funcs[k].Proto); n != "" {
			return n
		}
	}
	if k == 0 {
		return p.Name
	}
	return fmt.Sprintf("func_%d", p.Starts[k])
}

// protoName is the function's name in a prototype func_info renders
// ("int ki_xdp(struct xdp_md * ctx)": "ki_xdp").
func protoName(proto string) string {
	i := strings.IndexByte(proto, '(')
	if i < 0 {
		return ""
	}
	j := i
	for j > 0 && (proto[j-1] == '_' || unicode.IsLetter(rune(proto[j-1])) || unicode.IsDigit(rune(proto[j-1]))) {
		j--
	}
	return proto[j:i]
}

// symbolsAt resolves call targets to the symbol starting exactly there,
// the kernel's table first, then the programs' own JIT images.
type symbolsAt struct{ r *Replayer }

func (s symbolsAt) SymbolAt(addr uint64) (string, bool) {
	if s.r.syms != nil {
		if n, ok := s.r.syms.NameAt(addr); ok {
			return n, true
		}
	}
	return "", false
}
