package orc

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// module is a loaded module's text and ORC tables.
type module struct {
	Name  string
	obj   objects.Value
	text  []linux.ModuleRegion // the text areas (core, init)
	once  sync.Once
	table *Table // nil when the module has no ORC
	err   error
}

func (m *module) contains(ip uint64) bool {
	for _, r := range m.text {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

type moduleCache struct {
	once sync.Once
	mods []*module
	err  error
}

// modules walks the module list once (linux.ForEachModule).
func (k *Kernel) modules() ([]*module, error) {
	c := &k.mods
	c.once.Do(func() {
		for mv, err := range linux.ForEachModule(k.prog) {
			if err != nil {
				if objects.IsDamage(err) {
					continue // noted in the Program's damage log
				}
				c.err = fmt.Errorf("ORC of modules: %w", err)
				return
			}
			m, err := linux.NewModule(mv)
			if err != nil {
				continue // an unreadable module: its frames show as "?"
			}
			mod := &module{Name: m.Name, obj: mv}
			for _, r := range m.Regions {
				if strings.HasSuffix(r.Name, "text") {
					mod.text = append(mod.text, r)
				}
			}
			c.mods = append(c.mods, mod)
		}
		sort.SliceStable(c.mods, func(i, j int) bool { return firstBase(c.mods[i]) < firstBase(c.mods[j]) })
	})
	return c.mods, c.err
}

func firstBase(m *module) uint64 {
	if len(m.text) == 0 {
		return 0
	}
	return m.text[0].Base
}

// moduleAt returns the module whose text holds ip, nil if none.
func (k *Kernel) moduleAt(ip uint64) (*module, error) {
	mods, err := k.modules()
	for _, m := range mods {
		if m.contains(ip) {
			return m, nil
		}
	}
	return nil, err
}

// ModuleAt names the module whose text holds ip ("" if none).
func (k *Kernel) ModuleAt(ip uint64) string {
	m, _ := k.moduleAt(ip)
	if m == nil {
		return ""
	}
	return m.Name
}

// moduleTable reads a module's ORC tables: mod->arch.orc_unwind_ip,
// orc_unwind and num_orcs (set by unwind_module_init; NULL for a module
// without ORC sections). nil, nil when it has none.
func (k *Kernel) moduleTable(m *module) (*Table, error) {
	m.once.Do(func() {
		get := func(path string) uint64 {
			if m.err != nil {
				return 0
			}
			v, err := m.obj.Path(path)
			var x uint64
			if err == nil {
				x, err = v.Uint()
			}
			if err != nil {
				m.err = fmt.Errorf("ORC of module %s: %w", m.Name, err)
			}
			return x
		}
		n := get("arch.num_orcs")
		ip := get("arch.orc_unwind_ip")
		orc := get("arch.orc_unwind")
		if m.err != nil || n == 0 || ip == 0 || orc == 0 {
			return
		}
		if n > maxEntries {
			m.err = formatErr("module "+m.Name, -1, ip, "num_orcs %d is more than %d", n, maxEntries)
			return
		}
		m.table, m.err = k.readTable("module "+m.Name, ip, orc, 0, int(n))
	})
	return m.table, m.err
}
