package linux

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// modSym is a symbol of a synthetic module's symtab.
type modSym struct {
	name     string
	addr     uint64
	typ      byte // typetab's letter
	exported bool // in mod->syms (EXPORT_SYMBOL)
}

// addModule lays out a struct module named name in state, with its
// areas (6.4+ mem[] by enum mod_mem_type, or core_layout and
// init_layout), its kallsyms (symtab of Elf64_Sym, strtab, typetab,
// entry 0 the null symbol as in an ELF symtab) and its exports
// (kernel_symbol entries, PREL32 offsets or pointers), and links it on
// the modules list after those given.
func (k *kernel) addModule(name string, state uint64, areas map[string][2]uint64, syms []modSym, refcnt uint32) sk.Obj {
	mod := k.New("module").Set("state", state).Str("name", name).Set("refcnt", uint64(refcnt))
	if k.L.ModuleLayout {
		for _, l := range []string{"core", "init"} {
			a := areas[l]
			mod.Set(l+"_layout.base", a[0]).Set(l+"_layout.size", a[1]).Set(l+"_layout.text_size", areas[l+"_text"][1])
		}
	} else {
		for i, n := range []string{"text", "data", "rodata", "ro_after_init", "init_text", "init_data", "init_rodata"} {
			mod.Set(fmt.Sprintf("mem[%d].base", i), areas[n][0]).Set(fmt.Sprintf("mem[%d].size", i), areas[n][1])
		}
	}
	all := append([]modSym{{}}, syms...)
	esym := k.S("elf64_sym")
	symtab := k.M.Alloc(uint64(len(all)) * uint64(esym.Size))
	strtab := []byte{0}
	types := make([]byte, len(all))
	var exports []modSym
	for i, s := range all {
		e := k.M.Obj(esym, symtab+uint64(i)*uint64(esym.Size))
		if s.name != "" {
			e.Set("st_name", uint64(len(strtab)))
			strtab = append(append(strtab, s.name...), 0)
		}
		e.Set("st_value", s.addr)
		types[i] = s.typ
		if s.exported {
			exports = append(exports, s)
		}
	}
	st := k.M.Alloc(uint64(len(strtab)))
	k.M.Write(st, strtab)
	tt := k.M.Alloc(uint64(len(types)))
	k.M.Write(tt, types)
	ks := k.New("mod_kallsyms").Set("symtab", symtab).Set("num_symtab", uint64(len(all))).Set("strtab", st).Set("typetab", tt)
	mod.Set("kallsyms", ks.Addr)
	// The export table and its names sit in module space, as
	// __ksymtab and __ksymtab_strings of the module's image do: PREL32
	// offsets reach only 2 GiB.
	ksym := k.S("kernel_symbol")
	tab := modSpace + k.exports*0x1000
	k.exports++
	strs := tab + 0x800
	for i, s := range exports {
		e := k.M.Obj(ksym, tab+uint64(i)*uint64(ksym.Size))
		name := strs
		k.M.String(name, s.name)
		strs += uint64(len(s.name) + 1)
		if k.L.AbsRelocs {
			e.Set("value", s.addr).Set("name", name).Set("namespace", 0)
		} else {
			// offset_to_ptr: the field's own address plus the offset.
			e.Set("value_offset", uint64(uint32(int32(s.addr-e.At("value_offset")))))
			e.Set("name_offset", uint64(uint32(int32(name-e.At("name_offset")))))
		}
	}
	mod.Set("syms", tab).Set("num_syms", uint64(len(exports)))
	return mod
}

func (k *kernel) linkModules(mods ...sk.Obj) {
	head := k.M.Global(k.Syms, "modules", 16)
	var nodes []uint64
	for _, m := range mods {
		nodes = append(nodes, m.At("list"))
	}
	k.M.List(head, nodes...)
}

const (
	modSpace = 0xffffffffc0800000 // where addModule puts export tables
	modText  = 0xffffffffc0001000
	modData  = 0xffffffffc0004000
	modRO    = 0xffffffffc0006000
)

// The symbols of module "synth": text at modText (0x2000 bytes), data
// at modData (0x1000), rodata at modRO (0x800). Where the kernel's
// address lookup puts their ends (find_kallsyms_symbol): the next named
// symbol, or the end of the area.
var synthSyms = []modSym{
	{"synth_init", modText, 't', false},
	{"synth_fn", modText + 0x100, 't', true},   // EXPORT_SYMBOL: upper case
	{"synth_gpl", modText + 0x180, 'T', false}, // EXPORT_SYMBOL_GPL only: lower case
	{"$x", modText + 0x200, 't', false},        // a mapping symbol: no boundary
	{"synth_var", modData + 0x10, 'D', false},  // size to the end of data
	{"synth_table", modRO + 0x0, 'r', true},    // exported data
	{"synth_gone", 0xffffffffc0100000, 't', false},
}

var synthWant = []kallsyms.Symbol{
	{Name: "synth_init", Addr: modText, Type: 't', Size: 0x100},
	{Name: "synth_fn", Addr: modText + 0x100, Type: 'T', Size: 0x80},
	{Name: "synth_gpl", Addr: modText + 0x180, Type: 't', Size: 0x2000 - 0x180},
	{Name: "$x", Addr: modText + 0x200, Type: 't', Size: 0x2000 - 0x200},
	{Name: "synth_var", Addr: modData + 0x10, Type: 'd', Size: 0x1000 - 0x10},
	{Name: "synth_table", Addr: modRO, Type: 'R', Size: 0x800},
	{Name: "synth_gone", Addr: 0xffffffffc0100000, Type: 't'},
}

func TestModules(t *testing.T) {
	for _, l := range []sk.LinuxLayout{{}, {AbsRelocs: true}} {
		t.Run(fmt.Sprintf("absolute %v", l.AbsRelocs), func(t *testing.T) {
			k := newKernel(t, l)
			synth := k.addModule("synth", 0, map[string][2]uint64{"text": {modText, 0x2000}, "data": {modData, 0x1000}, "rodata": {modRO, 0x800}}, synthSyms, 3)
			coming := k.addModule("coming", 1, map[string][2]uint64{"text": {0xffffffffc0010000, 0x1000}}, []modSym{{"coming_fn", 0xffffffffc0010000, 't', false}}, 1)
			unformed := k.addModule("unformed", 3, nil, []modSym{{"half", 0xffffffffc0020000, 't', false}}, 1)
			k.linkModules(synth, coming, unformed)

			var got []string
			for mod, err := range ForEachModule(k.p) {
				if err != nil {
					t.Fatal(err)
				}
				m, err := NewModule(mod)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %s %#x %#x %d", m.Name, m.State, m.Base, m.Size, m.Refcount))
			}
			want := "synth MODULE_STATE_LIVE 0xffffffffc0001000 0x3800 2|coming MODULE_STATE_COMING 0xffffffffc0010000 0x1000 0|unformed MODULE_STATE_UNFORMED 0x0 0x0 0"
			if s := strings.Join(got, "|"); s != want {
				t.Errorf("modules\ngot  %s\nwant %s", s, want)
			}
			m, _ := NewModule(k.value(t, "module", synth.Addr))
			var regions []string
			for _, r := range m.Regions {
				if r.Size > 0 {
					regions = append(regions, fmt.Sprintf("%s@%#x+%#x", r.Name, r.Base, r.Size))
				}
			}
			if s := strings.Join(regions, " "); s != "text@0xffffffffc0001000+0x2000 data@0xffffffffc0004000+0x1000 rodata@0xffffffffc0006000+0x800" || len(m.Regions) != 7 {
				t.Errorf("regions %s (%d)", s, len(m.Regions))
			}

			syms, err := ModuleKallsyms(k.value(t, "module", synth.Addr))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(syms) != fmt.Sprint(synthWant) {
				t.Errorf("symbols\ngot  %v\nwant %v", syms, synthWant)
			}

			tab, err := kallsyms.ParseProcKallsyms(strings.NewReader("ffffffff81000000 T _stext\n"))
			if err != nil {
				t.Fatal(err)
			}
			if err := AddModuleSymbols(k.p, tab); err != nil {
				t.Fatal(err)
			}
			for name, mod := range map[string]string{"synth_fn": "synth", "coming_fn": "coming"} {
				s, err := tab.Lookup(name)
				if err != nil || len(s) != 1 || s[0].Module != mod {
					t.Errorf("%s: %v, %v", name, s, err)
				}
			}
			if _, err := tab.Lookup("half"); err == nil {
				t.Errorf("a symbol of an unformed module was added")
			}
		})
	}
}

// TestModuleLayout: before 6.4 a module has core_layout and init_layout,
// each text then the rest.
func TestModuleLayout(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{ModuleLayout: true})
	mod := k.addModule("old", 0, map[string][2]uint64{
		"core": {0xffffffffc0100000, 0x5000}, "core_text": {0, 0x3000},
		"init": {0xffffffffc0200000, 0x1000}, "init_text": {0, 0x800},
	}, []modSym{{"old_fn", 0xffffffffc0100040, 't', false}, {"old_data", 0xffffffffc0103000, 'd', false}}, 1)
	k.linkModules(mod)
	m, err := NewModule(k.value(t, "module", mod.Addr))
	if err != nil {
		t.Fatal(err)
	}
	var regions []string
	for _, r := range m.Regions {
		regions = append(regions, fmt.Sprintf("%s@%#x+%#x", r.Name, r.Base, r.Size))
	}
	want := "text@0xffffffffc0100000+0x3000 data@0xffffffffc0103000+0x2000 init_text@0xffffffffc0200000+0x800 init_data@0xffffffffc0200800+0x800"
	if s := strings.Join(regions, " "); s != want || m.Base != 0xffffffffc0100000 || m.Size != 0x6000 {
		t.Errorf("regions %s, base %#x size %#x", s, m.Base, m.Size)
	}
	syms, err := ModuleKallsyms(k.value(t, "module", mod.Addr))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(syms) != fmt.Sprint([]kallsyms.Symbol{{Name: "old_fn", Addr: 0xffffffffc0100040, Type: 't', Size: 0x3000 - 0x40}, {Name: "old_data", Addr: 0xffffffffc0103000, Type: 'd', Size: 0x2000}}) {
		t.Errorf("symbols %v", syms)
	}
}

// TestModuleDamage: a cyclic module list, a NULL kallsyms, an absent
// symtab page, an implausible count: errors that name the address.
func TestModuleDamage(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	a := k.addModule("a", 0, map[string][2]uint64{"text": {modText, 0x2000}}, []modSym{{"a_fn", modText, 't', false}}, 1)
	b := k.addModule("b", 0, map[string][2]uint64{"text": {modText + 0x10000, 0x1000}}, []modSym{{"b_fn", modText + 0x10000, 't', false}}, 1)
	k.linkModules(a, b)

	// b's symtab moved to a page of its own, then dropped.
	symtab := k.M.AllocPage(2 * 24)
	ks, _ := k.p.ReadU64(b.At("kallsyms"))
	old, _ := k.p.ReadU64(k.Obj("mod_kallsyms", ks).At("symtab"))
	buf := make([]byte, 48)
	k.M.ReadVirt(buf, old)
	k.M.Write(symtab, buf)
	k.Obj("mod_kallsyms", ks).Set("symtab", symtab)
	k.M.Drop(symtab)
	tab, _ := kallsyms.ParseProcKallsyms(strings.NewReader("ffffffff81000000 T _stext\n"))
	err := AddModuleSymbols(k.p, tab)
	if !errors.Is(err, sk.ErrFault) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", symtab)) || !strings.Contains(err.Error(), "module b") {
		t.Errorf("absent symtab: %v", err)
	}
	if s, err := tab.Lookup("a_fn"); err != nil || len(s) != 1 {
		t.Errorf("the readable module's symbols: %v, %v", s, err)
	}

	k.Obj("mod_kallsyms", ks).Set("num_symtab", 1<<30)
	if _, err := ModuleKallsyms(k.value(t, "module", b.Addr)); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", ks)) {
		t.Errorf("implausible num_symtab: %v", err)
	}
	k.Obj("mod_kallsyms", ks).Set("num_symtab", 2).Set("strtab", 0)
	if _, err := ModuleKallsyms(k.value(t, "module", b.Addr)); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("NULL strtab: %v", err)
	}
	b.Set("kallsyms", 0)
	if _, err := ModuleKallsyms(k.value(t, "module", b.Addr)); !errors.Is(err, objects.ErrCorrupt) || !strings.Contains(err.Error(), "module b") {
		t.Errorf("NULL kallsyms: %v", err)
	}
	b.Set("num_syms", 1<<30)
	if _, err := moduleExports(k.value(t, "module", b.Addr)); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("implausible num_syms: %v", err)
	}

	// b's next points back at a: a cycle, named.
	k.M.U64(b.At("list"), a.At("list"))
	var werr error
	n := 0
	for _, err := range ForEachModule(k.p) {
		if err != nil {
			werr = err
			break
		}
		n++
	}
	if !errors.Is(werr, objects.ErrCorrupt) || !strings.Contains(werr.Error(), fmt.Sprintf("%#x", a.At("list"))) || n != 2 {
		t.Errorf("cyclic list after %d: %v", n, werr)
	}
	if err := AddModuleSymbols(k.p, tab); !errors.Is(err, objects.ErrCorrupt) {
		t.Errorf("AddModuleSymbols on a cyclic list: %v", err)
	}
	// No modules symbol at all.
	k2 := newKernel(t, sk.LinuxLayout{})
	for _, err := range ForEachModule(k2.p) {
		if !errors.Is(err, objects.ErrNotFound) {
			t.Errorf("no modules: %v", err)
		}
	}
}

func TestIsMappingSymbol(t *testing.T) {
	var got []string
	for _, s := range []string{"$x", ".L123", "L0", "main", "x$"} {
		if isMappingSymbol(s) {
			got = append(got, s)
		}
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[$x .L123 L0]" {
		t.Errorf("mapping symbols %v", got)
	}
	if upper('a') != 'A' || upper('A') != 'A' || lower('Q') != 'q' || lower('?') != '?' {
		t.Errorf("upper/lower")
	}
}
