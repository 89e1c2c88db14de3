package orc

import (
	"encoding/binary"
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
				c.err = err
				return
			}
			s, err := bpf.NewKsym(kv)
			if err != nil {
				c.err = err
				return
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

// maxLineInfo bounds nr_linfo (BPF_COMPLEXITY_LIMIT_INSNS is 1M).
const maxLineInfo = 1 << 20

func (k *Kernel) readBPFLines(sym BPFSymbol) *bpfLines {
	bl := &bpfLines{}
	p := k.prog
	aux, err := objects.ContainerOf(sym.ksym, "struct bpf_prog_aux", "ksym")
	if err != nil {
		bl.err = fmt.Errorf("BPF program %s: %w", sym.Name, err)
		return bl
	}
	get := func(path string) uint64 {
		if bl.err != nil {
			return 0
		}
		v, err := aux.Path(path)
		var x uint64
		if err == nil {
			x, err = v.Uint()
		}
		if err != nil {
			bl.err = fmt.Errorf("BPF program %s: aux.%s: %w", sym.Name, path, err)
		}
		return x
	}
	bl.id = uint32(get("id"))
	if bl.id == 0 && bl.err == nil {
		// A subprogram's aux has no ID: find the program whose func[]
		// holds it.
		bl.id = k.mainProgID(get("prog"))
	}
	n := get("nr_linfo")
	linfo := get("linfo")
	jited := get("jited_linfo")
	idx := get("linfo_idx")
	btfAddr := get("btf")
	if bl.err != nil || n == 0 || linfo == 0 || jited == 0 || btfAddr == 0 {
		return bl
	}
	if n > maxLineInfo || idx >= n {
		bl.err = fmt.Errorf("BPF program %s: nr_linfo %d, linfo_idx %d: %w", sym.Name, n, idx, ErrCorrupt)
		return bl
	}
	lt, err := p.Type("struct bpf_line_info")
	if err != nil {
		bl.err = err
		return bl
	}
	recSize := uint64(sizeOf(lt))
	off := map[string]uint64{}
	for _, m := range []string{"insn_off", "file_name_off", "line_col"} {
		o, _, err := p.MemberOffset("struct bpf_line_info", m)
		if err != nil {
			bl.err = err
			return bl
		}
		off[m] = o
	}
	recs := make([]byte, n*recSize)
	addrs := make([]byte, n*8)
	if err := k.read(recs, linfo); err != nil {
		bl.err = fmt.Errorf("BPF program %s: read line info at %#x: %w", sym.Name, linfo, err)
		return bl
	}
	if err := k.read(addrs, jited); err != nil {
		bl.err = fmt.Errorf("BPF program %s: read JIT line addresses at %#x: %w", sym.Name, jited, err)
		return bl
	}
	btf, _ := p.ObjectOf("struct btf", btfAddr)
	strs, err1 := btf.Member("strings")
	so, err2 := btf.Member("start_str_off")
	var strAddr, start uint64
	if err := firstErr(err1, err2); err == nil {
		strAddr, err1 = strs.Uint()
		start, err2 = so.Uint()
	}
	if err := firstErr(err1, err2); err != nil {
		bl.err = fmt.Errorf("BPF program %s: its BTF: %w", sym.Name, err)
		return bl
	}
	names := map[uint32]string{}
	for i := idx; i < n; i++ {
		a := binary.LittleEndian.Uint64(addrs[i*8:])
		if a < sym.Start || a >= sym.End {
			continue
		}
		r := recs[i*recSize:]
		fo := binary.LittleEndian.Uint32(r[off["file_name_off"]:])
		lc := binary.LittleEndian.Uint32(r[off["line_col"]:])
		name, ok := names[fo]
		if !ok && uint64(fo) >= start {
			name, _ = p.ReadCString(strAddr+uint64(fo)-start, 4096)
			names[fo] = name
		}
		bl.addrs = append(bl.addrs, a)
		// BPF_LINE_INFO_LINE_NUM / _LINE_COL: line in the high 22 bits.
		bl.lines = append(bl.lines, BPFLine{File: name, Line: lc >> 10, Col: lc & 0x3ff,
			InsnOff: binary.LittleEndian.Uint32(r[off["insn_off"]:])})
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
