package bpfinsn

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// labOpcodes returns each lab program's xlated bytes from bpftool's
// "opcodes" dumps (truth/xlated/ID.opcodes.txt).
func labOpcodes(tb testing.TB) [][]byte {
	root := os.Getenv("KINSPECT_LAB_DIR")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "kinspect-lab")
	}
	files, _ := filepath.Glob(filepath.Join(root, "*", "truth", "xlated", "*.opcodes.txt"))
	var out [][]byte
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		var prog []byte
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			l := sc.Text()
			if !strings.HasPrefix(l, "       ") {
				continue
			}
			b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(l), " ", ""))
			if err == nil {
				prog = append(prog, b...)
			}
		}
		fh.Close()
		out = append(out, prog)
	}
	return out
}

// FuzzDecode renders arbitrary bytes as instructions in every form:
// no panic, and the text names each instruction bpftool would.
func FuzzDecode(f *testing.F) {
	for _, p := range labOpcodes(f) {
		f.Add(p)
	}
	f.Add([]byte{0x85, 0x10, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x95, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x18, 0x10, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		insns, err := Decode(b)
		if err != nil {
			return
		}
		p := &Program{Insns: insns, FuncAddrs: []uint64{1, 2}, CallBase: 0xffffffff81000000,
			Funcs: []Func{{InsnOff: 0, Proto: "int f()"}, {InsnOff: 3, Proto: "int g()"}},
			Lines: []Line{{InsnOff: 0, Src: "x"}, {InsnOff: 2, Src: "y"}, {InsnOff: 1}}}
		var w bytes.Buffer
		if err := p.WriteText(&w, TextOptions{Opcodes: true, Linum: true}); err != nil {
			t.Fatal(err)
		}
		p.JSON(TextOptions{Opcodes: true, Linum: true})
		if err := p.WriteDot(io.Discard); err != nil {
			t.Fatal(err)
		}
		Tag(insns)
		PrepareDump(insns, []MapRef{{Addr: 0, ID: 1, Direct: true, ValueSize: 1 << 40}})
	})
}

// labBTF returns the .BTF sections of the lab's BPF objects.
func labBTF(tb testing.TB) [][]byte {
	root := os.Getenv("KINSPECT_LAB_DIR")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "kinspect-lab")
	}
	files, _ := filepath.Glob(filepath.Join(root, "bin-*", "*.bpf.o"))
	var out [][]byte
	for _, f := range files {
		ef, err := elf.Open(f)
		if err != nil {
			continue
		}
		if s := ef.Section(".BTF"); s != nil {
			if b, err := s.Data(); err == nil {
				out = append(out, b)
			}
		}
		ef.Close()
		if len(out) >= 3 {
			break
		}
	}
	return out
}

// FuzzParseBTF parses arbitrary bytes as a program's BTF and renders
// prototypes and lines from it: errors, never a panic.
func FuzzParseBTF(f *testing.F) {
	for _, b := range labBTF(f) {
		f.Add(b)
	}
	f.Add([]byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := ParseBTF(raw)
		if err != nil {
			return
		}
		for id := uint32(0); id < 32; id++ {
			b.FuncProto(id)
			b.FuncName(id)
		}
		b.Lines([]LineRecord{{LineOff: 1, FileNameOff: 1 << 31}, {LineOff: 0}})
	})
}

func TestLabBTFProtos(t *testing.T) {
	bs := labBTF(t)
	if len(bs) == 0 {
		t.Skip("no lab BPF objects")
	}
	b, err := ParseBTF(bs[0])
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for id := uint32(1); id < 2000; id++ {
		if s := b.FuncProto(id); strings.HasPrefix(s, "int ki_xdp(") {
			found = s == "int ki_xdp(struct xdp_md * ctx)"
			if !found {
				t.Errorf("prototype %q", s)
			}
		}
	}
	if !found {
		t.Log("ki_xdp not in the first object")
	}
}

// FuzzAsLoaded undoes verifier rewrites on arbitrary instructions (as a
// corrupt dump could hold): no panic, no endless loop, and the rebuilt
// program hashes.
func FuzzAsLoaded(f *testing.F) {
	for _, p := range labOpcodes(f) {
		f.Add(p)
	}
	// An inlined array lookup's shape, and a call and a tail call.
	f.Add([]byte{0x07, 0x01, 0, 0, 0x10, 0x01, 0, 0, 0x61, 0x20, 0, 0, 0, 0, 0, 0,
		0x35, 0, 0x03, 0, 0x08, 0, 0, 0, 0x27, 0, 0, 0, 0x08, 0, 0, 0,
		0x85, 0, 0, 0, 0x10, 0, 0, 0, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		insns, err := Decode(b)
		if err != nil {
			return
		}
		maps := []MapRef{{Addr: 0xffff888000001000, ID: 7}, {Addr: 0xffff888000002000, ID: 8, Direct: true, ValueAddr: 0xffff888000002110, ValueSize: 8}}
		facts := KernelFacts{
			CallBase: 0xffffffff81000000,
			Helper: func(addr uint64) (int32, bool) {
				if addr >= 0xffffffff81000000 && addr < 0xffffffff81000100 {
					return int32(addr - 0xffffffff81000000), true
				}
				return 0, false
			},
			Kfunc:         func(addr uint64, off int16) (int32, bool) { return int32(addr & 0xff), off == 0 },
			Syms:          ResolverFunc(func(addr uint64) (string, bool) { return "sym", addr&1 == 0 }),
			HtabLookup:    0xffffffff81000200,
			ArrayValueOff: 272, HtabKeyOff: 48, LRURefOff: 40,
			Maps: []MapShape{{Type: 2, KeySize: 4, MaxEntries: 8, ElemSize: 8, IndexMask: 7}, {Type: 1, KeySize: 4, MaxEntries: 64}},
			Ctx:  []CtxField{{Name: "__sk_buff.len", CtxOff: 0, CtxSize: 4, KernOff: 112, KernSize: 4}},
		}
		l := AsLoaded(insns, maps, facts)
		Tag(l.Insns)
	})
}
