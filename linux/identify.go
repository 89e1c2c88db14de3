package linux

import (
	"errors"
	"fmt"

	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/objects"
)

// What an address is, as drgn's identify_address (and crash's kmem
// ADDR): a task's stack, a slab object, a page of the direct map, a
// struct page, a module's memory, a BPF program's image, a vmalloc area,
// or a symbol of the kernel image.

// Identity says what an address is. Kind is one of "stack", "slab",
// "page", "struct page", "module", "bpf", "vmalloc", "symbol", or
// "unknown"; the fields of its kind are set.
type Identity struct {
	Address objects.Hex `json:"address"`
	Kind    string      `json:"kind"`
	// Description says it in a line: "slab object: task_struct+0x100
	// (allocated)", "stack of 1 (init)+0x3f80", ...
	Description string `json:"description"`
	// Task holds the stack (kind "stack").
	Task *StackOwner `json:"task,omitempty"`
	// Slab is the slab object (kind "slab").
	Slab *SlabObject `json:"slab,omitempty"`
	// Page is the page of the address (kinds "slab", "page", "struct
	// page").
	Page *PageInfo `json:"page,omitempty"`
	// Vmalloc is the vmalloc area (kinds "stack", "module", "bpf",
	// "vmalloc"), CallerSymbol its caller symbolized.
	Vmalloc      *VmapArea `json:"vmalloc,omitempty"`
	CallerSymbol string    `json:"caller_symbol,omitempty"`
	// Module and Region name the module's memory (kind "module").
	Module string `json:"module,omitempty"`
	Region string `json:"region,omitempty"`
	// Symbol is the symbol holding the address ("name+0xoff/0xsize"),
	// of the kernel, a module or a BPF program; SymbolKind says
	// "function" or "object".
	Symbol     string `json:"symbol,omitempty"`
	SymbolKind string `json:"symbol_kind,omitempty"`
}

// StackOwner is the task whose kernel stack holds an address.
type StackOwner struct {
	Task   objects.Hex `json:"task"`
	PID    int         `json:"pid"`
	Comm   string      `json:"comm"`
	Stack  objects.Hex `json:"stack"` // task->stack, the stack's lowest address
	Offset uint64      `json:"offset"`
}

// defaultThreadSize is x86-64's THREAD_SIZE without KASAN (16 KiB).
const defaultThreadSize = 4 * PageSize

// stackRange is a task's kernel stack.
type stackRange struct {
	base, size uint64
	task       uint64
	pid        int
	comm       string
}

// taskStacks lists every task's kernel stack (idle tasks included),
// once per Program, each of threadSize bytes.
func taskStacks(p *objects.Program, threadSize uint64) ([]stackRange, error) {
	v, err := p.Memo("linux task stacks", func() (any, error) {
		var tasks []objects.Value
		cpus, err := p.PossibleCPUs()
		if err != nil {
			return nil, err
		}
		for _, cpu := range cpus {
			if t, err := IdleTask(p, cpu); err == nil {
				tasks = append(tasks, t)
			}
		}
		for t, err := range ForEachTask(p) {
			if err != nil {
				return nil, err
			}
			tasks = append(tasks, t)
		}
		var out []stackRange
		for _, t := range tasks {
			st, err := t.MemberUint("stack")
			if err != nil {
				return nil, err
			}
			if st == 0 {
				continue
			}
			pid, _ := t.MemberInt("pid")
			var comm string
			if c, err := t.Member("comm"); err == nil {
				comm, _ = c.CString()
			}
			out = append(out, stackRange{base: st, size: threadSize, task: t.Addr(), pid: int(pid), comm: comm})
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]stackRange), nil
}

// IdentifyAddress says what addr is, as drgn's identify_address and
// crash's kmem ADDR: first a task's kernel stack, then by region: the
// direct map (a slab object, else a page), the struct page array, the
// vmalloc and module space (a module's memory, a BPF program, another
// vmalloc area), the kernel image (a symbol). syms symbolizes (nil: no
// symbols); what cannot be read is an error only when nothing was
// found.
func IdentifyAddress(p *objects.Program, syms *kallsyms.Table, addr uint64) (*Identity, error) {
	id := &Identity{Address: objects.Hex(addr), Kind: "unknown"}
	l, err := ReadMemLayout(p)
	if err != nil {
		return nil, err
	}
	lookup := func() (kallsyms.Location, bool) {
		if syms == nil {
			return kallsyms.Location{}, false
		}
		loc, err := syms.LookupAddr(addr)
		return loc, err == nil
	}
	setSym := func(loc kallsyms.Location) {
		id.Symbol = loc.String()
		switch loc.Type | 0x20 {
		case 't', 'w':
			id.SymbolKind = "function"
		case 'd', 'b', 'r':
			id.SymbolKind = "object"
		}
		if loc.Module == kallsyms.BPFModule {
			id.SymbolKind = "function"
		}
	}
	// THREAD_SIZE is the size of init_stack (init_thread_union), else
	// x86-64's 16 KiB.
	threadSize := uint64(defaultThreadSize)
	if syms != nil {
		if ss, err := syms.Lookup("init_stack"); err == nil && len(ss) > 0 && ss[0].Size >= PageSize && ss[0].Size <= 16*PageSize {
			threadSize = ss[0].Size
		}
	}
	// Stacks are vmalloc'd or in the direct map; in the kernel image
	// only CPU 0's idle task's, init_stack.
	var stacks []stackRange
	var serr error
	if addr >= startKernelMap {
		if it, err := IdleTask(p, 0); err == nil {
			if st, err := it.MemberUint("stack"); err == nil && st != 0 {
				stacks = []stackRange{{base: st, size: threadSize, task: it.Addr(), comm: "swapper/0"}}
			}
		}
	} else {
		stacks, serr = taskStacks(p, threadSize)
	}
	for _, s := range stacks {
		if addr >= s.base && addr-s.base < s.size {
			id.Kind = "stack"
			id.Task = &StackOwner{Task: objects.Hex(s.task), PID: s.pid, Comm: s.comm, Stack: objects.Hex(s.base), Offset: addr - s.base}
			id.Description = fmt.Sprintf("stack of %d (%s)+%#x", s.pid, s.comm, addr-s.base)
			if va, ok, _ := FindVmapArea(p, addr); ok {
				id.Vmalloc = va
			}
			return id, nil
		}
	}
	switch {
	case l.InDirectMap(addr):
		pfn := (addr - l.PageOffset) >> PageShift
		so, ok, err := SlabObjectInfo(p, addr)
		if err != nil {
			return nil, fmt.Errorf("identify %#x: %w", addr, errors.Join(err, serr))
		}
		if pi, err := NewPageInfo(p, pfn); err == nil {
			id.Page = pi
		}
		if ok {
			id.Kind, id.Slab = "slab", so
			switch {
			case so.Padding:
				id.Description = fmt.Sprintf("slab %s: past its objects", so.CacheName)
			default:
				id.Description = fmt.Sprintf("slab object: %s+%#x (%s)", so.CacheName, so.Offset, so.State)
			}
			return id, nil
		}
		id.Kind = "page"
		id.Description = fmt.Sprintf("page: pfn %#x", pfn)
		if id.Page != nil && id.Page.Type != "" {
			id.Description += " (" + id.Page.Type + ")"
		}
		return id, nil
	case l.InVmemmap(addr):
		pfn := (addr - l.Vmemmap) / l.PageSize
		id.Kind = "struct page"
		id.Description = fmt.Sprintf("struct page of pfn %#x +%#x", pfn, (addr-l.Vmemmap)%l.PageSize)
		if pi, err := NewPageInfo(p, pfn); err == nil {
			id.Page = pi
		}
		return id, nil
	}
	va, inVmalloc, verr := FindVmapArea(p, addr)
	if inVmalloc {
		id.Vmalloc = va
		if syms != nil && va.Caller != 0 {
			if loc, err := syms.LookupAddr(uint64(va.Caller)); err == nil {
				id.CallerSymbol = loc.String()
			}
		}
	}
	// A module's memory.
	for mod, err := range ForEachModule(p) {
		if err != nil {
			break
		}
		m, err := NewModule(mod)
		if err != nil {
			continue
		}
		for _, r := range m.Regions {
			if r.Contains(addr) {
				id.Kind, id.Module, id.Region = "module", m.Name, r.Name
				id.Description = fmt.Sprintf("module %s %s+%#x", m.Name, r.Name, addr-r.Base)
				if loc, ok := lookup(); ok && loc.Module == m.Name {
					setSym(loc)
					id.Description += ": " + id.Symbol
				}
				return id, nil
			}
		}
	}
	if loc, ok := lookup(); ok {
		setSym(loc)
		switch {
		case loc.Module == kallsyms.BPFModule:
			id.Kind = "bpf"
			id.Description = "BPF program " + id.Symbol
		case loc.Module == "" && !inVmalloc:
			id.Kind = "symbol"
			id.Description = id.SymbolKind + " symbol: " + id.Symbol
			if id.SymbolKind == "" {
				id.Description = "symbol: " + id.Symbol
			}
		}
		if id.Kind != "unknown" {
			return id, nil
		}
	}
	if inVmalloc {
		id.Kind = "vmalloc"
		id.Description = fmt.Sprintf("vmalloc area %#x-%#x +%#x (%s)", uint64(va.Start), uint64(va.End), addr-uint64(va.Start), va.KindString())
		if id.CallerSymbol != "" {
			id.Description += " caller " + id.CallerSymbol
		}
		return id, nil
	}
	if err := errors.Join(serr, verr); err != nil {
		return id, fmt.Errorf("identify %#x: %w", addr, err)
	}
	return id, nil
}
