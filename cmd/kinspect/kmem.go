package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

func init() {
	register(&command{name: "kmem", summary: "kernel memory: slab caches, meminfo, vmalloc areas, what an address is (like crash's kmem)", run: runKmem,
		help: kmemHelp, syntax: "[ADDR...]", opts: []*option{
			{short: "-s", help: "the slab caches (with CACHE names: those)"},
			{long: "--slabinfo", help: "with -s: as /proc/slabinfo prints them"},
			{short: "-S", value: "CACHE", help: "every allocated object of a slab cache (a walk of all memory)"},
			{short: "-i", help: "the memory summary, as /proc/meminfo"},
			{short: "-v", help: "the vmalloc areas, as /proc/vmallocinfo"},
			{long: "--page", help: "the struct page of each PFN given"},
			optKallsyms}})
}

const kmemHelp = `Usage: kinspect [-c DUMP | --live] [--json] kmem [-k FILE] ADDR...
       kinspect [-c DUMP | --live] [--json] kmem -s [--slabinfo] [CACHE...]
       kinspect [-c DUMP | --live] [--json] kmem -S CACHE
       kinspect [-c DUMP | --live] [--json] kmem [-i] | -v
       kinspect [-c DUMP | --live] [--json] kmem --page PFN...

Kernel memory, as crash's kmem:

  kmem ADDR...   what each address is (drgn's identify_address): a task's
                 kernel stack (which task), a slab object (cache, object,
                 allocated or free, as slab_object_info), a page of the
                 direct map or a struct page (its flags decoded), a
                 module's text or data (which module), a BPF program's
                 image, a vmalloc area (its caller), a symbol of the
                 kernel. ADDR is hex (0x-prefixed, or 8 or more digits),
                 a symbol, or SYMBOL+OFF.
  kmem -s        the slab caches (SLUB): address, object size, objects
                 allocated and in all, slabs, slab size, name; the counts
                 are /proc/slabinfo's (get_slabinfo: the free objects of
                 the nodes' partial lists are free, those of the per-CPU
                 slabs counted in use). With CACHE names, only those.
                 --slabinfo (-s implied) prints /proc/slabinfo's own
                 lines.
  kmem -S CACHE  every allocated object of a cache: each slab page of
                 memory (a walk of every struct page, as drgn's
                 slab_cache_for_each_allocated_object) less the objects
                 on its freelist and the CPUs' freelists.
  kmem -i        the memory summary as /proc/meminfo computes it, line
                 for line, from the kernel's counters (kmem alone too).
  kmem -v        the busy vmalloc areas, as /proc/vmallocinfo: range,
                 size, caller, pages, physical address, kind.
  kmem --page PFN...
                 the struct page of each page frame (crash's kmem -p):
                 flags decoded, type (slab, buddy, ...), mapping, index,
                 counts.

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: ADDR: an array of {"address", "kind" ("stack", "slab", "page",
"struct page", "module", "bpf", "vmalloc", "symbol" or "unknown"),
"description", "task": {"task", "pid", "comm", "stack", "offset"},
"slab": {"cache", "cache_name", "slab", "object", "offset", "state"},
"page": {"page", "pfn", "phys", "virt", "flags", "flag_names", "type",
"head", "mapping", "index", "refcount", "mapcount"}, "vmalloc",
"caller_symbol", "module", "region", "symbol", "symbol_kind"}. -s: an
array of {"cache", "name", "active_objs", "num_objs", "objsize",
"object_size", "objperslab", "pagesperslab", "active_slabs",
"num_slabs", "refcount", "error" (a cache that could not be read: its
counts are zero, the damage report says more)}. -S: {"cache", "name", "objects": ["0x..."]}.
-i: {"lines": [{"name", "value", "unit"}], "missing"}. -v: an array of
{"vmap_area", "start", "end", "vm", "size", "pages", "caller",
"caller_symbol", "phys", "kinds"}. --page: an array of pages.
`

type kmemOptions struct {
	mode     byte // 0: addresses; 's', 'S', 'i', 'v', 'p'
	slabinfo bool
	cache    string
	file     string
	words    []string
}

func runKmem(e *env, args []string) error {
	var o kmemOptions
	setMode := func(m byte) error {
		if o.mode != 0 && o.mode != m {
			return fmt.Errorf("kmem: %s and %s exclude each other: %w", kmemModeFlag(o.mode), kmemModeFlag(m), errUsage)
		}
		o.mode = m
		return nil
	}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, kmemHelp)
			return nil
		case a == "-s" || a == "-i" || a == "-v":
			if err := setMode(a[1]); err != nil {
				return err
			}
		case a == "--page":
			if err := setMode('p'); err != nil {
				return err
			}
		case a == "--slabinfo":
			o.slabinfo = true
		case a == "-S":
			if i+1 == len(args) {
				return fmt.Errorf("kmem -S: want a cache's name: %w", errUsage)
			}
			if err := setMode('S'); err != nil {
				return err
			}
			i++
			o.cache = args[i]
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("kmem %s: want a file: %w", a, errUsage)
			}
			i++
			o.file = args[i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("kmem: unknown option %q (see kinspect kmem help): %w", a, errUsage)
		default:
			o.words = append(o.words, a)
		}
	}
	if o.slabinfo && o.mode == 0 {
		o.mode = 's'
	}
	if o.mode == 0 && len(o.words) == 0 {
		o.mode = 'i'
	}
	switch {
	case o.slabinfo && o.mode != 's':
		return fmt.Errorf("kmem: --slabinfo goes with -s: %w", errUsage)
	case (o.mode == 'i' || o.mode == 'v' || o.mode == 'S') && len(o.words) > 0:
		return fmt.Errorf("kmem %s takes no arguments (%q): %w", kmemModeFlag(o.mode), o.words[0], errUsage)
	case o.mode == 'p' && len(o.words) == 0:
		return fmt.Errorf("kmem --page: give a PFN: %w", errUsage)
	}
	var pfns []uint64
	if o.mode == 'p' {
		for _, w := range o.words {
			n, err := strconv.ParseUint(w, 0, 64)
			if err != nil {
				return fmt.Errorf("kmem --page: %q is not a page frame number: %w", w, errUsage)
			}
			pfns = append(pfns, n)
		}
	}
	k, err := openKernel(e, o.file)
	if err != nil {
		return err
	}
	defer k.Close()
	p := k.Program()
	switch o.mode {
	case 's':
		infos, err := linux.SlabInfos(p)
		if err != nil && len(infos) == 0 {
			return fmt.Errorf("kmem -s: %w", err)
		}
		if len(o.words) > 0 {
			var sel []linux.SlabInfo
			for _, w := range o.words {
				found := false
				for _, si := range infos {
					if si.Name == w {
						sel, found = append(sel, si), true
					}
				}
				if !found {
					return fmt.Errorf("kmem -s: no slab cache named %s (a merged cache goes by the name of the cache it merged into): %w", w, objects.ErrNotFound)
				}
			}
			infos = sel
		}
		switch {
		case e.json:
			writeJSON(e, infos)
		case o.slabinfo:
			printSlabinfo(e.stdout, infos)
		default:
			printKmemS(e.stdout, infos)
		}
		return err
	case 'S':
		c, err := linux.FindSlabCache(p, o.cache)
		if err != nil {
			return fmt.Errorf("kmem -S: %w", err)
		}
		res := slabObjects{Cache: objects.Hex(c.Addr()), Name: o.cache, Objects: []objects.Hex{}}
		var werr error
		for obj, err := range linux.SlabCacheForEachAllocatedObject(c, "void") {
			if err != nil {
				werr = fmt.Errorf("kmem -S %s: %w", o.cache, err)
				break
			}
			res.Objects = append(res.Objects, objects.Hex(obj.Addr()))
		}
		if e.json {
			writeJSON(e, res)
		} else {
			w := bufio.NewWriter(e.stdout)
			fmt.Fprintf(w, "CACHE %016x %s: %d allocated objects\n", uint64(res.Cache), res.Name, len(res.Objects))
			for _, a := range res.Objects {
				fmt.Fprintf(w, "  %016x\n", uint64(a))
			}
			w.Flush()
		}
		return werr
	case 'i':
		m, err := linux.ReadMeminfo(p)
		if err != nil {
			return fmt.Errorf("kmem -i: %w", err)
		}
		if e.json {
			return writeJSON(e, m)
		}
		for _, l := range m.Lines {
			fmt.Fprintln(e.stdout, l)
		}
		for _, n := range m.Missing {
			fmt.Fprintf(e.stderr, "note: left out: %s\n", n)
		}
		return nil
	case 'v':
		areas, err := linux.VmallocInfo(p, k.Symbols())
		if err != nil {
			return fmt.Errorf("kmem -v: %w", err)
		}
		if e.json {
			if areas == nil {
				areas = []linux.VmapArea{}
			}
			return writeJSON(e, areas)
		}
		printVmallocinfo(e.stdout, areas)
		return nil
	case 'p':
		var pages []*linux.PageInfo
		for _, n := range pfns {
			pi, err := linux.NewPageInfo(p, n)
			if err != nil {
				return fmt.Errorf("kmem --page: %w", err)
			}
			pages = append(pages, pi)
		}
		if e.json {
			return writeJSON(e, pages)
		}
		for _, pi := range pages {
			printPage(e.stdout, pi)
		}
		return nil
	}
	var ids []*linux.Identity
	for _, w := range o.words {
		a, err := parseAddr(k, w)
		if err != nil {
			return fmt.Errorf("kmem: %w", err)
		}
		id, err := linux.IdentifyAddress(p, k.Symbols(), a)
		if err != nil {
			return fmt.Errorf("kmem %s: %w", w, err)
		}
		ids = append(ids, id)
	}
	if e.json {
		return writeJSON(e, ids)
	}
	for _, id := range ids {
		printIdentity(e.stdout, id)
	}
	return nil
}

// kmemModeFlag spells the option of a mode of kmem.
func kmemModeFlag(m byte) string {
	if m == 'p' {
		return "--page"
	}
	return "-" + string(m)
}

// slabObjects is kmem -S's result.
type slabObjects struct {
	Cache   objects.Hex   `json:"cache"`
	Name    string        `json:"name"`
	Objects []objects.Hex `json:"objects"`
}

// parseAddr reads an address: 0xHEX, 8 or more hex digits, a symbol,
// or SYMBOL+OFF.
func parseAddr(k *kinspect.Kernel, s string) (uint64, error) {
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, err := strconv.ParseUint(rest, 16, 64)
		if err != nil {
			return 0, fmt.Errorf("bad address %q: %w", s, errUsage)
		}
		return v, nil
	}
	if len(s) >= 8 && len(s) <= 16 && isHex(s) {
		v, _ := strconv.ParseUint(s, 16, 64)
		return v, nil
	}
	name, off, hasOff := strings.Cut(s, "+")
	var o uint64
	if hasOff {
		var err error
		if o, err = strconv.ParseUint(off, 0, 64); err != nil {
			return 0, fmt.Errorf("bad offset in %q: %w", s, errUsage)
		}
	}
	if k.Symbols() == nil {
		return 0, fmt.Errorf("%q: no symbol table: %w", s, kallsyms.ErrNotFound)
	}
	base, err := k.Symbols().Addr(name)
	if err != nil {
		return 0, fmt.Errorf("%q is neither an address nor a symbol: %w", s, err)
	}
	return base + o, nil
}

func printKmemS(out io.Writer, infos []linux.SlabInfo) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintf(w, "%-16s %7s %10s %10s %6s %5s  %s\n", "CACHE", "OBJSIZE", "ALLOCATED", "TOTAL", "SLABS", "SSIZE", "NAME")
	for _, s := range infos {
		if s.Error != "" {
			// In the damage report, on stderr.
			continue
		}
		fmt.Fprintf(w, "%016x %7d %10d %10d %6d %4dk  %s\n", uint64(s.Cache), s.ObjectSize, s.ActiveObjs, s.NumObjs, s.NumSlabs, s.PagesPerSlab*linux.PageSize>>10, s.Name)
	}
}

// printSlabinfo prints /proc/slabinfo (slabinfo_show, cache_show).
func printSlabinfo(out io.Writer, infos []linux.SlabInfo) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintln(w, "slabinfo - version: 2.1")
	fmt.Fprintln(w, "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>")
	for _, s := range infos {
		if s.Error != "" {
			continue
		}
		fmt.Fprintf(w, "%-17s %6d %6d %6d %4d %4d : tunables %4d %4d %4d : slabdata %6d %6d %6d\n",
			s.Name, s.ActiveObjs, s.NumObjs, s.ObjSize, s.ObjPerSlab, s.PagesPerSlab, 0, 0, 0, s.ActiveSlabs, s.NumSlabs, 0)
	}
}

func printVmallocinfo(out io.Writer, areas []linux.VmapArea) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	for _, a := range areas {
		fmt.Fprintf(w, "%#016x-%#016x %7d", uint64(a.Start), uint64(a.End), a.Size)
		if a.CallerSymbol != "" {
			fmt.Fprintf(w, " %s", a.CallerSymbol)
		} else if a.Caller != 0 {
			fmt.Fprintf(w, " %#x", uint64(a.Caller))
		}
		if a.Pages != 0 {
			fmt.Fprintf(w, " pages=%d", a.Pages)
		}
		if a.Phys != 0 {
			fmt.Fprintf(w, " phys=%#x", uint64(a.Phys))
		}
		if len(a.Kinds) > 0 {
			fmt.Fprintf(w, " %s", a.KindString())
		}
		fmt.Fprintln(w)
	}
}

func printPage(w io.Writer, pi *linux.PageInfo) {
	fmt.Fprintf(w, "PAGE %016x  PFN %#x  PHYSICAL %#x  VIRTUAL %016x\n", uint64(pi.Page), pi.PFN, uint64(pi.Phys), uint64(pi.Virt))
	fmt.Fprintf(w, "  flags %#x [%s]", uint64(pi.Flags), strings.Join(pi.FlagNames, " "))
	if pi.Type != "" {
		fmt.Fprintf(w, "  type %s", pi.Type)
	}
	fmt.Fprintln(w)
	if pi.Head != 0 {
		fmt.Fprintf(w, "  tail page of %016x\n", uint64(pi.Head))
	}
	fmt.Fprintf(w, "  mapping %016x  index %#x  refcount %d  mapcount %d\n", uint64(pi.Mapping), pi.Index, pi.Refcount, pi.Mapcount)
}

func printIdentity(w io.Writer, id *linux.Identity) {
	fmt.Fprintf(w, "%016x: %s\n", uint64(id.Address), id.Description)
	if s := id.Slab; s != nil && !s.Padding {
		fmt.Fprintf(w, "  CACHE %016x %s  SLAB %016x  OBJECT %016x +%#x  %s\n", uint64(s.Cache), s.CacheName, uint64(s.Slab), uint64(s.Object), s.Offset, strings.ToUpper(s.State))
		if s.FreelistErr != "" {
			fmt.Fprintf(w, "  (freelist: %s)\n", s.FreelistErr)
		}
	}
	if t := id.Task; t != nil {
		fmt.Fprintf(w, "  TASK %016x  PID %d  COMMAND %q  STACK %016x\n", uint64(t.Task), t.PID, t.Comm, uint64(t.Stack))
	}
	if v := id.Vmalloc; v != nil {
		fmt.Fprintf(w, "  VMALLOC %016x-%016x %d bytes", uint64(v.Start), uint64(v.End), v.Size)
		if id.CallerSymbol != "" {
			fmt.Fprintf(w, "  caller %s", id.CallerSymbol)
		}
		fmt.Fprintln(w)
	}
	if pi := id.Page; pi != nil {
		printPage(w, pi)
	}
}
