package orc

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/objects"
)

// BPFSymbol is a BPF image on bpf_kallsyms: a program or subprogram, a
// trampoline or a dispatcher.
type BPFSymbol struct {
	bpf.Ksym
	ksym objects.Value
}

type bpfCache struct {
	once sync.Once
	syms []BPFSymbol // by Start
	err  error

	mu    sync.Mutex
	lines map[uint64]*bpfLines // by ksym address
}

func (k *Kernel) bpfSymbols() ([]BPFSymbol, error) {
	c := &k.bpf
	c.once.Do(func() {
		for kv, err := range bpf.KsymForEach(k.prog) {
			if err != nil {
				if objects.IsDamage(err) {
					continue
				}
				c.err = err
				return
			}
			s, err := bpf.NewKsym(kv)
			if err != nil {
				continue // noted by bpf.AddSymbols, which ran at open
			}
			c.syms = append(c.syms, BPFSymbol{Ksym: *s, ksym: kv})
		}
		sort.Slice(c.syms, func(i, j int) bool { return c.syms[i].Start < c.syms[j].Start })
	})
	return c.syms, c.err
}

// BPFSymbolAt returns the BPF image holding ip (is_bpf_text_address).
func (k *Kernel) BPFSymbolAt(ip uint64) (BPFSymbol, bool) {
	syms, _ := k.bpfSymbols()
	i := sort.Search(len(syms), func(i int) bool { return syms[i].Start > ip }) - 1
	if i >= 0 && ip < syms[i].End {
		return syms[i], true
	}
	return BPFSymbol{}, false
}

// isText says whether ip is kernel code (__kernel_text_address): vmlinux
// text, a module's text, or a BPF image.
func (k *Kernel) isText(ip uint64) bool {
	if ip >= k.textStart && ip < k.textStop || k.initText(ip) {
		return true
	}
	if m, _ := k.moduleAt(ip); m != nil {
		return true
	}
	_, ok := k.BPFSymbolAt(ip)
	return ok
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// BPFLine is a BPF program's source position, from its line info
// (struct bpf_line_info, as bpftool prog dump jited linum shows it).
type BPFLine struct {
	File string
	Line uint32
	Col  uint32
	// InsnOff is the BPF instruction the line record starts at.
	InsnOff uint32
}

// Prog is what a frame in a BPF program knows of it.
type Prog struct {
	ID   uint32 // the program's ID (bpftool prog show id)
	Name string // the ksym's name: bpf_prog_TAG_NAME
	// Line is the source line holding the frame's instruction, when the
	// program has line info (loaded with BTF).
	Line *BPFLine
	// LineErr says why Line is missing when the program's line info
	// could not be read (a page the dump left out).
	LineErr error
}

// bpfLines is one program image's line table: the JIT address of each
// line record (prog->aux->jited_linfo) with the record.
type bpfLines struct {
	id    uint32
	addrs []uint64
	lines []BPFLine
	err   error
}

// BPFProgAt describes the BPF program holding ip: its ID and the source
// line of ip (for a return address, pass the address minus one). ok is
// false when ip is in no BPF program (a trampoline or dispatcher is
// named but has no ID). Errors are about reading its line info; the
// rest is still filled.
func (k *Kernel) BPFProgAt(ip uint64) (Prog, bool, error) {
	sym, ok := k.BPFSymbolAt(ip)
	if !ok {
		return Prog{}, false, nil
	}
	out := Prog{Name: sym.Name}
	if !sym.Prog {
		return out, true, nil
	}
	c := &k.bpf
	c.mu.Lock()
	bl := c.lines[sym.Addr]
	c.mu.Unlock()
	if bl == nil {
		bl = k.readBPFLines(sym)
		c.mu.Lock()
		if c.lines == nil {
			c.lines = map[uint64]*bpfLines{}
		}
		c.lines[sym.Addr] = bl
		c.mu.Unlock()
	}
	out.ID = bl.id
	best := -1
	for i, a := range bl.addrs {
		if a >= sym.Start && a < sym.End && a <= ip && (best < 0 || a >= bl.addrs[best]) {
			best = i
		}
	}
	if best >= 0 {
		l := bl.lines[best]
		out.Line = &l
	}
	return out, true, bl.err
}

// readBPFLines finds the program a BPF symbol belongs to and takes, from
// its source information (bpf.Prog.Source, decoded once), the lines whose
// JIT address is in the symbol's image.
func (k *Kernel) readBPFLines(sym BPFSymbol) *bpfLines {
	bl := &bpfLines{}
	aux, err := objects.ContainerOf(sym.ksym, "struct bpf_prog_aux", "ksym")
	if err != nil {
		bl.err = fmt.Errorf("BPF program %s: %w", sym.Name, err)
		return bl
	}
	id, err := aux.MemberUint("id")
	if err != nil {
		bl.err = fmt.Errorf("BPF program %s: aux.id: %w", sym.Name, err)
		return bl
	}
	bl.id = uint32(id)
	if bl.id == 0 {
		// A subprogram's aux has no ID: find the program whose func[]
		// holds it.
		prog, err := aux.MemberUint("prog")
		if err != nil {
			bl.err = fmt.Errorf("BPF program %s: aux.prog: %w", sym.Name, err)
			return bl
		}
		if bl.id = k.mainProgID(prog); bl.id == 0 {
			return bl
		}
	}
	bp, err := bpf.ProgByID(k.prog, bl.id)
	if err != nil {
		bl.err = fmt.Errorf("BPF program %s: %w", sym.Name, err)
		return bl
	}
	src, err := bp.Source()
	if err != nil {
		bl.err = fmt.Errorf("BPF program %s: %w", sym.Name, err)
		return bl
	}
	for i, a := range src.JitAddrs {
		if a < sym.Start || a >= sym.End {
			continue
		}
		l := src.Lines[i]
		bl.addrs = append(bl.addrs, a)
		bl.lines = append(bl.lines, BPFLine{File: l.File, Line: l.LineNum, Col: l.LineCol, InsnOff: l.InsnOff})
	}
	return bl
}

// mainProgID finds the ID of the program one of whose subprograms
// (aux->func[]) is the bpf_prog at prog; 0 if none.
func (k *Kernel) mainProgID(prog uint64) uint32 {
	idr, err := k.prog.Variable("prog_idr")
	if err != nil || prog == 0 {
		return 0
	}
	for e, err := range objects.IDRForEachEntry(idr, "struct bpf_prog") {
		if err != nil {
			if objects.IsDamage(err) {
				continue
			}
			return 0
		}
		n, err1 := e.Value.Path("aux->func_cnt")
		fn, err2 := e.Value.Path("aux->func")
		if firstErr(err1, err2) != nil {
			continue
		}
		cnt, _ := n.Uint()
		for i := range min(cnt, 256) {
			f, err := fn.Index(int64(i))
			if err != nil {
				break
			}
			if a, _ := f.Uint(); a == prog {
				return uint32(e.Index)
			}
		}
	}
	return 0
}
