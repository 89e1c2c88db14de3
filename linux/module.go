package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// Walkers of include/linux/module.h and kernel/module/kallsyms.c.

// ForEachModule yields each struct module on the modules list, as
// list_for_each_entry(mod, &modules, list) (what /proc/modules shows).
//
// A broken link is a *objects.Damage, noted in the Program's damage log;
// the list is then walked backward from its head, and the modules still
// missing are looked up in the kernel's second index of modules, the
// latched rbtrees of mod_tree (CONFIG_MODULES_TREE_LOOKUP: both copies,
// each a tree of every module's memory areas), yielded last and named
// in one more *objects.Damage.
func ForEachModule(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		head, err := p.Variable("modules")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("module list: %w", err))
			return
		}
		seen := map[uint64]bool{}
		damaged := false
		for m, err := range objects.ListForEachEntry(head, "struct module", "list") {
			if err != nil {
				if d := p.DamageOf(err, "modules"); d != nil {
					damaged = true
					if !yield(objects.Value{}, d) {
						return
					}
					continue
				}
				yield(objects.Value{}, fmt.Errorf("module list: %w", err))
				return
			}
			seen[m.Addr()] = true
			if !yield(m, nil) {
				return
			}
		}
		if !damaged {
			return
		}
		var found []string
		for m, err := range modTreeModules(p) {
			if err != nil {
				continue // noted
			}
			if seen[m.Addr()] {
				continue
			}
			seen[m.Addr()] = true
			name, _ := m.Member("name")
			s, _ := name.CString()
			found = append(found, fmt.Sprintf("%s (%#x)", s, m.Addr()))
			if !yield(m, nil) {
				return
			}
		}
		if len(found) > 0 {
			yield(objects.Value{}, p.NoteDamage(&objects.Damage{Walk: "modules", Expected: "every module on the modules list",
				Found: fmt.Sprintf("%d more: %s", len(found), strings.Join(found, ", ")), Recovery: "found through mod_tree",
				Err: objects.ErrCorrupt}))
		}
	}
}

// modTreeModules yields the module of every node of mod_tree's two
// latched rbtrees (kernel/module/tree_lookup.c: struct mod_tree_node
// {mod, node}, the latch_tree_node's node[i] in tree[i]); a module
// comes once per memory area and tree.
func modTreeModules(p *objects.Program) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		mt, err := p.Variable("mod_tree")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		for i := range 2 {
			root, err := mt.Path(fmt.Sprintf("root.tree[%d]", i))
			if err != nil {
				yield(objects.Value{}, err)
				return
			}
			for n, err := range objects.RBTreeForEachEntry(root, "struct mod_tree_node", fmt.Sprintf("node.node[%d]", i)) {
				if err != nil {
					if d := p.DamageOf(err, fmt.Sprintf("mod_tree.root.tree[%d]", i)); d != nil {
						yield(objects.Value{}, d)
						continue
					}
					yield(objects.Value{}, err)
					break
				}
				m, err := n.Member("mod")
				if err == nil {
					m, err = m.Deref()
				}
				if err != nil {
					continue
				}
				if !yield(m, nil) {
					return
				}
			}
		}
	}
}

// ModuleRegion is one of a module's memory areas.
type ModuleRegion struct {
	// Name is the area: with module_memory (6.4+) the mod_mem_type
	// without "MOD_", lower case ("text", "data", "rodata",
	// "ro_after_init", "init_text", ...); with module_layout "text" and
	// "data" (the rest of the core layout), "init_text" and "init_data".
	Name string
	Base uint64
	Size uint64
}

// Contains says whether addr is in the region.
func (r ModuleRegion) Contains(addr uint64) bool { return addr >= r.Base && addr-r.Base < r.Size }

// Module is what /proc/modules shows of a loaded module.
type Module struct {
	Addr  uint64 // the struct module
	Name  string
	State string // enum module_state's name: MODULE_STATE_LIVE, ...
	// Base is the address of the module's core text, and Size the bytes
	// of all its areas, as /proc/modules prints them.
	Base, Size uint64
	// Refcount is module_refcount (refcnt - MODULE_REF_BASE); -1 without
	// CONFIG_MODULE_UNLOAD.
	Refcount int
	Regions  []ModuleRegion
	// Taints are the taint bits the module brought (mod->taints: O for
	// out of tree, E unsigned, P proprietary, ...).
	Taints uint64
}

// NewModule reads a struct module. Errors name the module's address.
func NewModule(mod objects.Value) (*Module, error) {
	addr, err := objects.ObjectAddr(mod, "read module")
	if err != nil {
		return nil, err
	}
	m := Module{Addr: addr, Refcount: -1}
	fail := func(err error) (*Module, error) {
		return nil, fmt.Errorf("module at %#x: %w", addr, err)
	}
	nv, err := mod.Member("name")
	if err == nil {
		m.Name, err = nv.CString()
	}
	if err != nil {
		return fail(err)
	}
	sv, err := mod.Member("state")
	if err == nil {
		m.State, err = sv.EnumName()
	}
	if err != nil {
		return fail(fmt.Errorf("module %s: %w", m.Name, err))
	}
	if m.Regions, err = moduleRegions(mod); err != nil {
		return fail(fmt.Errorf("module %s: %w", m.Name, err))
	}
	for _, r := range m.Regions {
		if r.Name == "text" {
			m.Base = r.Base
		}
		m.Size += r.Size
	}
	if tv, err := mod.MemberUint("taints"); err == nil {
		m.Taints = tv
	}
	if rc, err := mod.Path("refcnt.counter"); err == nil {
		n, err := rc.Int()
		if err != nil {
			return fail(fmt.Errorf("module %s: %w", m.Name, err))
		}
		m.Refcount = int(int32(n)) - 1 // MODULE_REF_BASE
	}
	return &m, nil
}

// moduleRegions reads a module's memory areas: mod->mem[] (6.4+,
// ac3b43283923 "module: replace module_layout with module_memory"),
// indexed by enum mod_mem_type; else core_layout and init_layout (and
// data_layout where it is a member, 6.0-6.3 with
// CONFIG_ARCH_WANTS_MODULES_DATA_IN_VMALLOC).
func moduleRegions(mod objects.Value) ([]ModuleRegion, error) {
	p := mod.Program()
	if mem, err := mod.Member("mem"); err == nil {
		n, err := mem.Len()
		if err != nil {
			return nil, err
		}
		names := map[uint64]string{}
		var et *btf.Enum
		if t, err := p.Type("enum mod_mem_type"); err == nil {
			et, _ = btfload.Underlying(t).(*btf.Enum)
		}
		if et != nil {
			for _, v := range et.Values {
				names[v.Value] = strings.ToLower(strings.TrimPrefix(v.Name, "MOD_"))
			}
		}
		var out []ModuleRegion
		for i := range n {
			e, err := mem.Index(int64(i))
			if err != nil {
				return nil, err
			}
			r, err := regionOf(e, "base", "size")
			if err != nil {
				return nil, fmt.Errorf("mem[%d]: %w", i, err)
			}
			r.Name = names[uint64(i)]
			if r.Name == "" {
				r.Name = fmt.Sprintf("mem%d", i)
			}
			out = append(out, r)
		}
		return out, nil
	} else if !errors.Is(err, objects.ErrNotFound) {
		return nil, err
	}
	var out []ModuleRegion
	for _, l := range []struct{ member, prefix string }{{"core_layout", ""}, {"data_layout", "data_"}, {"init_layout", "init_"}} {
		lv, err := mod.Member(l.member)
		if errors.Is(err, objects.ErrNotFound) && l.member == "data_layout" {
			continue
		}
		if err != nil {
			return nil, err
		}
		whole, err := regionOf(lv, "base", "size")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.member, err)
		}
		ts, err := lv.Member("text_size")
		if err != nil {
			return nil, err
		}
		text, err := ts.Uint()
		if err != nil {
			return nil, err
		}
		text = min(text, whole.Size)
		if l.member == "data_layout" {
			out = append(out, ModuleRegion{Name: "data_vmalloc", Base: whole.Base, Size: whole.Size})
			continue
		}
		out = append(out,
			ModuleRegion{Name: l.prefix + "text", Base: whole.Base, Size: text},
			ModuleRegion{Name: l.prefix + "data", Base: whole.Base + text, Size: whole.Size - text})
	}
	return out, nil
}

func regionOf(v objects.Value, base, size string) (ModuleRegion, error) {
	b, err := v.Member(base)
	if err != nil {
		return ModuleRegion{}, err
	}
	ba, err := b.Uint()
	if err != nil {
		return ModuleRegion{}, err
	}
	s, err := v.Member(size)
	if err != nil {
		return ModuleRegion{}, err
	}
	sz, err := s.Uint()
	if err != nil {
		return ModuleRegion{}, err
	}
	return ModuleRegion{Base: ba, Size: sz}, nil
}

// maxModuleSymbols bounds a module's num_symtab.
const maxModuleSymbols = 1 << 20

// ModuleKallsyms returns the symbols of a module as /proc/kallsyms lists
// them (module_get_kallsym, s_show): each named entry of mod->kallsyms
// (struct mod_kallsyms: symtab, num_symtab, strtab, typetab), its type
// letter from typetab, upper case when the module exports it with
// EXPORT_SYMBOL (is_exported looks in mod->syms only, so
// EXPORT_SYMBOL_GPL symbols stay lower case). Each Size is what the
// kernel's address lookup (find_kallsyms_symbol) gives: the distance to
// the module's next named symbol, or to the end of the symbol's area.
// Errors name the module and the table's address; they wrap
// ErrCorrupt for counts past any plausible bound, ErrNotSupported for a
// kernel without typetab (before 5.2).
func ModuleKallsyms(mod objects.Value) ([]kallsyms.Symbol, error) {
	m, err := NewModule(mod)
	if err != nil {
		return nil, err
	}
	syms, err := moduleKallsyms(mod, m)
	if err != nil {
		return nil, fmt.Errorf("symbols of module %s at %#x: %w", m.Name, m.Addr, err)
	}
	return syms, nil
}

func moduleKallsyms(mod objects.Value, m *Module) ([]kallsyms.Symbol, error) {
	p := mod.Program()
	ksp, err := mod.Member("kallsyms")
	if err != nil {
		return nil, err
	}
	ks, err := ksp.Deref()
	if err != nil {
		return nil, err
	}
	symtabV, err := ks.Member("symtab")
	if err != nil {
		return nil, err
	}
	symtab, err := symtabV.Uint()
	if err != nil {
		return nil, err
	}
	nv, err := ks.Member("num_symtab")
	if err != nil {
		return nil, err
	}
	n, err := nv.Uint()
	if err != nil {
		return nil, err
	}
	strtabV, err := ks.Member("strtab")
	if err != nil {
		return nil, err
	}
	strtab, err := strtabV.Uint()
	if err != nil {
		return nil, err
	}
	typetabV, err := ks.Member("typetab")
	if errors.Is(err, objects.ErrNotFound) {
		return nil, fmt.Errorf("struct mod_kallsyms has no typetab (a kernel before 5.2): %w", objects.ErrNotSupported)
	}
	if err != nil {
		return nil, err
	}
	typetab, err := typetabV.Uint()
	if err != nil {
		return nil, err
	}
	if n > maxModuleSymbols {
		return nil, fmt.Errorf("num_symtab %d at %#x is implausible: %w", n, ks.Addr(), objects.ErrCorrupt)
	}
	if n == 0 {
		return nil, nil
	}
	if symtab == 0 || strtab == 0 || typetab == 0 {
		return nil, fmt.Errorf("mod_kallsyms at %#x: NULL symtab, strtab or typetab: %w", ks.Addr(), objects.ErrCorrupt)
	}

	// Elf64_Sym's layout from BTF.
	symT, err := p.Type("struct elf64_sym")
	if err != nil {
		return nil, err
	}
	symSize, err := btf.Sizeof(symT)
	if err != nil {
		return nil, fmt.Errorf("sizeof(struct elf64_sym): %v: %w", err, objects.ErrType)
	}
	var off [4]uint32
	for i, name := range []string{"st_name", "st_value", "st_shndx", "st_size"} {
		mi, err := p.FindMember(symT, name)
		if err != nil {
			return nil, err
		}
		off[i] = mi.BitOff / 8
	}
	raw := make([]byte, int(n)*symSize)
	if err := p.Read(raw, symtab); err != nil {
		return nil, fmt.Errorf("read %d symbols at %#x: %w", n, symtab, err)
	}
	types := make([]byte, n)
	if err := p.Read(types, typetab); err != nil {
		return nil, fmt.Errorf("read typetab at %#x: %w", typetab, err)
	}
	// The names: strtab up to the last name's start, then the last name.
	var last uint32
	for i := range int(n) {
		last = max(last, binary.LittleEndian.Uint32(raw[i*symSize+int(off[0]):]))
	}
	if last > objects.MaxObjectSize {
		return nil, fmt.Errorf("strtab offset %d at %#x is implausible: %w", last, strtab, objects.ErrCorrupt)
	}
	strs := make([]byte, last)
	if err := p.Read(strs, strtab); err != nil {
		return nil, fmt.Errorf("read strtab at %#x: %w", strtab, err)
	}
	tail, err := p.ReadCString(strtab+uint64(last), ksymNameLen)
	if err != nil {
		return nil, fmt.Errorf("read strtab at %#x: %w", strtab, err)
	}
	strs = append(append(strs, tail...), 0)

	exported, err := moduleExports(mod)
	if err != nil {
		return nil, err
	}
	out := make([]kallsyms.Symbol, 0, n)
	for i := range int(n) {
		e := raw[i*symSize:]
		no := binary.LittleEndian.Uint32(e[off[0]:])
		name := strs[no:]
		name = name[:bytes.IndexByte(name, 0)]
		if len(name) == 0 {
			continue // s_show skips nameless symbols
		}
		s := kallsyms.Symbol{Name: string(name), Addr: binary.LittleEndian.Uint64(e[off[1]:]), Type: types[i]}
		if v, ok := exported[s.Name]; ok && v == s.Addr {
			s.Type = upper(s.Type)
		} else {
			s.Type = lower(s.Type)
		}
		out = append(out, s)
	}
	sizeModuleSymbols(out, m.Regions)
	return out, nil
}

// ksymNameLen is KSYM_NAME_LEN (512 since 6.1; 128 before).
const ksymNameLen = 512

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c - 'A' + 'a'
	}
	return c
}

// isMappingSymbol is the kernel's is_mapping_symbol: names the address
// lookup ignores.
func isMappingSymbol(s string) bool {
	return strings.HasPrefix(s, "$") || strings.HasPrefix(s, ".L") || strings.HasPrefix(s, "L0")
}

// sizeModuleSymbols sets each symbol's size as find_kallsyms_symbol
// implies it: up to the next higher named symbol, bounded by the end of
// the area holding it.
func sizeModuleSymbols(syms []kallsyms.Symbol, regions []ModuleRegion) {
	var addrs []uint64
	for _, s := range syms {
		if !isMappingSymbol(s.Name) {
			addrs = append(addrs, s.Addr)
		}
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	for i := range syms {
		s := &syms[i]
		end := uint64(0)
		for _, r := range regions {
			if r.Contains(s.Addr) {
				end = r.Base + r.Size
				break
			}
		}
		k := sort.Search(len(addrs), func(k int) bool { return addrs[k] > s.Addr })
		if k < len(addrs) && (end == 0 || addrs[k] < end) {
			end = addrs[k]
		}
		if end > s.Addr {
			s.Size = end - s.Addr
		}
	}
}

// moduleExports reads the module's EXPORT_SYMBOL table, mod->syms
// (num_syms entries of struct kernel_symbol), as name -> value. With
// CONFIG_HAVE_ARCH_PREL32_RELOCATIONS (4.19+, 7290d5809571 "module: use
// relative references for __ksymtab entries") the entry holds offsets
// relative to its fields (value_offset, name_offset); else pointers.
func moduleExports(mod objects.Value) (map[string]uint64, error) {
	p := mod.Program()
	out := map[string]uint64{}
	nv, err := mod.Member("num_syms")
	if err != nil {
		return nil, err
	}
	n, err := nv.Uint()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return out, nil
	}
	if n > maxModuleSymbols {
		return nil, fmt.Errorf("num_syms %d is implausible: %w", n, objects.ErrCorrupt)
	}
	sv, err := mod.Member("syms")
	if err != nil {
		return nil, err
	}
	base, err := sv.Uint()
	if err != nil {
		return nil, err
	}
	kt, err := p.Type("struct kernel_symbol")
	if err != nil {
		return nil, err
	}
	size, err := btf.Sizeof(kt)
	if err != nil {
		return nil, fmt.Errorf("sizeof(struct kernel_symbol): %v: %w", err, objects.ErrType)
	}
	rel := true
	valueM, err := p.FindMember(kt, "value_offset")
	if errors.Is(err, objects.ErrNotFound) {
		rel = false
		valueM, err = p.FindMember(kt, "value")
	}
	if err != nil {
		return nil, err
	}
	nameField := "name_offset"
	if !rel {
		nameField = "name"
	}
	nameM, err := p.FindMember(kt, nameField)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, int(n)*size)
	if err := p.Read(raw, base); err != nil {
		return nil, fmt.Errorf("read %d exported symbols at %#x: %w", n, base, err)
	}
	for i := range int(n) {
		at := base + uint64(i*size)
		e := raw[i*size:]
		vo, no := valueM.BitOff/8, nameM.BitOff/8
		var value, name uint64
		if rel {
			value = at + uint64(vo) + uint64(int64(int32(binary.LittleEndian.Uint32(e[vo:]))))
			name = at + uint64(no) + uint64(int64(int32(binary.LittleEndian.Uint32(e[no:]))))
		} else {
			value = binary.LittleEndian.Uint64(e[vo:])
			name = binary.LittleEndian.Uint64(e[no:])
		}
		s, err := p.ReadCString(name, ksymNameLen)
		if err != nil {
			return nil, fmt.Errorf("name of exported symbol %d at %#x: %w", i, at, err)
		}
		out[s] = value
	}
	return out, nil
}

// AddModuleSymbols adds the symbols of every formed module (state not
// MODULE_STATE_UNFORMED, as module_get_kallsym) to t, as /proc/kallsyms
// lists them. A module whose symbols cannot be read is skipped; the
// errors are joined. The walk's own error ends it.
func AddModuleSymbols(p *objects.Program, t *kallsyms.Table) error {
	var errs []error
	for mod, err := range ForEachModule(p) {
		if err != nil {
			if objects.IsDamage(err) {
				continue // noted in the Program's damage log
			}
			errs = append(errs, err)
			break
		}
		m, err := NewModule(mod)
		if err != nil {
			p.NoteDamage(moduleDamage(mod, err))
			continue
		}
		if m.State == "MODULE_STATE_UNFORMED" {
			continue
		}
		syms, err := moduleKallsyms(mod, m)
		if err != nil {
			errs = append(errs, fmt.Errorf("symbols of module %s at %#x: %w", m.Name, m.Addr, err))
			continue
		}
		t.AddModule(m.Name, syms)
	}
	return errors.Join(errs...)
}

// ModuleInfo is a module as /proc/modules shows it (m_show).
type ModuleInfo struct {
	Name string `json:"name"`
	// Size is the bytes of all its areas; Refcount module_refcount (-1
	// without CONFIG_MODULE_UNLOAD).
	Size     uint64 `json:"size"`
	Refcount int    `json:"refcount"`
	// UsedBy are the modules using it (mod->source_list), and
	// "[permanent]" for a module with init and no exit.
	UsedBy []string `json:"used_by"`
	// State is enum module_state's name; Status /proc/modules's word:
	// Live, Loading or Unloading.
	State  string `json:"state"`
	Status string `json:"status"`
	// Base is the address of its core text.
	Base objects.Hex `json:"base"`
	// Taints are its taint letters as /proc/modules shows them:
	// "(OE)", with "+" loading and "-" unloading; "" for none.
	Taints string      `json:"taints,omitempty"`
	Module objects.Hex `json:"module"` // the struct module
	// Err says why UsedBy may lack modules: its list of users could not
	// be walked to its end (a page the dump lacks).
	Err string `json:"error,omitempty"`
}

// Line is the module's line of /proc/modules.
func (m ModuleInfo) Line() string {
	used := strings.Join(m.UsedBy, ",") + ","
	if len(m.UsedBy) == 0 {
		used = "-"
	}
	s := fmt.Sprintf("%s %d %d %s %s %#x", m.Name, m.Size, m.Refcount, used, m.Status, uint64(m.Base))
	if m.Taints != "" {
		s += " " + m.Taints
	}
	return s
}

// NewModuleInfo reads a module as /proc/modules shows it.
func NewModuleInfo(mod objects.Value) (*ModuleInfo, error) {
	m, err := NewModule(mod)
	if err != nil {
		return nil, err
	}
	p := mod.Program()
	out := &ModuleInfo{Name: m.Name, Size: m.Size, Refcount: m.Refcount, State: m.State, Base: objects.Hex(m.Base), Module: objects.Hex(m.Addr), UsedBy: []string{}}
	fail := func(err error) (*ModuleInfo, error) {
		return nil, fmt.Errorf("module %s at %#x: %w", m.Name, m.Addr, err)
	}
	mv, _ := p.ObjectOf("struct module", m.Addr)
	if head, err := mv.Member("source_list"); err == nil {
		for use, err := range objects.ListForEachEntry(head, "struct module_use", "source_list") {
			var name string
			if err == nil {
				var n objects.Value
				if n, err = use.Path("source->name"); err == nil {
					name, err = n.CString()
				}
			}
			if err != nil {
				// The users read so far, and why the rest are not.
				out.Err = fmt.Sprintf("modules using %s: %v", m.Name, err)
				break
			}
			out.UsedBy = append(out.UsedBy, name)
		}
	} else if !errors.Is(err, objects.ErrNotFound) {
		return fail(err)
	}
	initFn, err1 := mv.MemberUint("init")
	exitFn, err2 := mv.MemberUint("exit")
	if err1 == nil && err2 == nil && initFn != 0 && exitFn == 0 {
		out.UsedBy = append(out.UsedBy, "[permanent]")
	}
	switch m.State {
	case "MODULE_STATE_GOING":
		out.Status = "Unloading"
	case "MODULE_STATE_COMING":
		out.Status = "Loading"
	default:
		out.Status = "Live"
	}
	if m.Taints != 0 || out.Status != "Live" {
		letters := ""
		if flags, err := taintFlags(p); err == nil {
			for i, f := range flags {
				if f.module && m.Taints&(1<<i) != 0 {
					letters += string(f.cTrue)
				}
			}
		}
		switch out.Status {
		case "Unloading":
			letters += "-"
		case "Loading":
			letters += "+"
		}
		out.Taints = "(" + letters + ")"
	}
	return out, nil
}

// ProcModules reads every module as /proc/modules lists them. A walk
// that fails returns what it read before.
func ProcModules(p *objects.Program) ([]ModuleInfo, error) {
	var out []ModuleInfo
	for mod, err := range ForEachModule(p) {
		if err != nil {
			return out, err
		}
		mi, err := NewModuleInfo(mod)
		if err != nil {
			return out, err
		}
		out = append(out, *mi)
	}
	return out, nil
}

// moduleDamage is the damage of a module on the list that cannot be
// read.
func moduleDamage(mod objects.Value, err error) *objects.Damage {
	return &objects.Damage{Walk: "modules", Addr: objects.Hex(mod.Addr()), Object: "struct module",
		Expected: "a readable module", Err: err}
}
