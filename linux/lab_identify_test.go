package linux_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// TestLabIdentify: addresses of known kinds are identified as what
// they are: every task_struct (a task_struct slab object, allocated),
// every task's saved stack pointer (its own stack), the struct page of
// each task_struct, every module's text and data, every BPF program's
// JIT image (its kallsyms name), the values of the array and hash maps
// (a slab object or a vmalloc area holding the whole value), kernel
// functions and variables.
func TestLabIdentify(t *testing.T) {
	for name, k := range labkernel.All(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			p := k.Program()
			syms := k.Symbols()
			counts := map[string]int{}
			total := 0
			check := func(kind string, addr uint64, ok func(*linux.Identity) bool) {
				t.Helper()
				total++
				id, err := linux.IdentifyAddress(p, syms, addr)
				if err != nil {
					labErr(t, name, fmt.Sprintf("%s %#x", kind, addr), err)
					return
				}
				if !ok(id) {
					t.Errorf("%s %#x: %s (kind %s)", kind, addr, id.Description, id.Kind)
					return
				}
				counts[kind]++
			}
			l, err := linux.ReadMemLayout(p)
			if err != nil {
				t.Fatal(err)
			}
			for task, err := range linux.ForEachTask(p) {
				if err != nil {
					labErr(t, name, "tasks", err)
					return
				}
				ta := task.Addr()
				pid, _ := task.MemberInt("pid")
				check("task_struct", ta+8, func(id *linux.Identity) bool {
					return id.Kind == "slab" && id.Slab.CacheName == "task_struct" && uint64(id.Slab.Object) == ta && id.Slab.State == "allocated"
				})
				sp, err := task.MemberUint("thread.sp")
				if err != nil {
					t.Fatal(err)
				}
				check("stack", sp, func(id *linux.Identity) bool {
					return id.Kind == "stack" && uint64(id.Task.Task) == ta && id.Task.PID == int(pid)
				})
				pa, _ := l.VirtToPhys(ta)
				pg := l.PFNToPage(pa >> linux.PageShift)
				check("struct page", pg+16, func(id *linux.Identity) bool {
					return id.Kind == "struct page" && id.Page != nil && uint64(id.Page.Page) == pg
				})
			}
			for mod, err := range linux.ForEachModule(p) {
				if err != nil {
					t.Fatal(err)
				}
				m, err := linux.NewModule(mod)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range m.Regions {
					if r.Size == 0 || (r.Name != "text" && r.Name != "data" && r.Name != "rodata") {
						continue
					}
					check("module "+r.Name, r.Base+r.Size/2, func(id *linux.Identity) bool {
						return id.Kind == "module" && id.Module == m.Name && id.Region == r.Name
					})
				}
			}
			for prog, err := range bpf.ProgForEach(p) {
				if err != nil {
					t.Fatal(err)
				}
				fs, err := prog.Funcs()
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range fs {
					check("BPF JIT image", f.Addr+uint64(f.Len)/2, func(id *linux.Identity) bool {
						return id.Kind == "bpf" && strings.HasPrefix(id.Symbol, f.Name+"+")
					})
				}
			}
			for m, err := range bpf.MapForEach(p) {
				if err != nil {
					t.Fatal(err)
				}
				if m.IsPerCPU() || (m.Type != bpf.MapTypeArray && m.Type != bpf.MapTypeHash && m.Type != bpf.MapTypeLRUHash) {
					continue
				}
				n := 0
				for e, err := range m.Entries() {
					if err != nil || e.Addr == 0 || n == 8 {
						break
					}
					n++
					a, size := e.Addr, uint64(m.ValueSize)
					check("BPF map value", a, func(id *linux.Identity) bool {
						switch id.Kind {
						case "slab":
							return id.Slab.State == "allocated" && id.Slab.Offset+size <= sizeOfCache(t, p, uint64(id.Slab.Cache))
						case "vmalloc":
							// bpf_map_area_alloc, or the map type's
							// alloc it was inlined into.
							return id.Vmalloc.Contains(a+size-1) && (strings.Contains(id.CallerSymbol, "bpf_map_area_alloc") || strings.Contains(id.CallerSymbol, "_map_alloc+"))
						}
						return false
					})
				}
			}
			for _, s := range []struct{ sym, kind string }{{"schedule", "function"}, {"init_task", "object"}, {"jiffies", "object"}, {"panic", "function"}} {
				a, err := p.Symbol(s.sym)
				if err != nil {
					t.Fatal(err)
				}
				check("kernel symbol", a+1, func(id *linux.Identity) bool {
					return id.Kind == "symbol" && id.SymbolKind == s.kind && strings.HasPrefix(id.Symbol, s.sym+"+0x1/")
				})
			}
			t.Logf("%d addresses identified right: %v", total, counts)
			if total < 100 {
				t.Errorf("only %d addresses", total)
			}
		})
	}
}

// sizeOfCache is a slab cache's object size.
func sizeOfCache(t *testing.T, p *objects.Program, cache uint64) uint64 {
	c, err := p.ObjectOf("struct kmem_cache", cache)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.MemberUint("object_size")
	if err != nil {
		t.Fatal(fmt.Errorf("cache %#x: %w", cache, err))
	}
	return n
}

// TestLabFollowPhys: the page-table walk from init_mm.pgd translates
// kernel addresses of every kind (the direct map, the kernel image,
// vmalloc'd stacks, module text) to the physical addresses the dump's
// own translation (vmcore.KernelAS, from swapper_pg_dir) gives; a
// process's tables map the first page of its executable to an ELF
// header.
func TestLabFollowPhys(t *testing.T) {
	for name, k := range labkernel.All(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			p := k.Program()
			as, err := k.Dump().Kernel()
			if err != nil {
				t.Fatal(err)
			}
			pgd, err := linux.KernelPgd(p)
			if err != nil {
				t.Fatal(err)
			}
			var addrs []uint64
			for _, s := range []string{"init_task", "schedule", "jiffies"} {
				a, _ := p.Symbol(s)
				addrs = append(addrs, a)
			}
			for task, err := range linux.ForEachTask(p) {
				if err != nil {
					labErr(t, name, "tasks", err)
					return
				}
				sp, _ := task.MemberUint("thread.sp")
				addrs = append(addrs, task.Addr(), sp)
				if len(addrs) > 200 {
					break
				}
			}
			for mod, err := range linux.ForEachModule(p) {
				if err != nil {
					t.Fatal(err)
				}
				m, _ := linux.NewModule(mod)
				addrs = append(addrs, m.Base)
			}
			for _, a := range addrs {
				tr, err := linux.FollowPhys(p, pgd, a)
				if err != nil {
					t.Errorf("%#x: %v", a, err)
					continue
				}
				want, err := as.Translate(a)
				if err != nil || uint64(tr.Phys) != want {
					t.Errorf("%#x: walk %#x, dump %#x %v", a, uint64(tr.Phys), want, err)
				}
			}
			if _, err := linux.FollowPhys(p, pgd, 0x1000); err == nil {
				t.Errorf("address 0x1000 is mapped in the kernel's tables")
			}
			// Each process's executable starts with an ELF header (not
			// in a dump without user pages: makedumpfile -d 8 and up).
			elf := 0
			sc := labkernel.Scenario(name)
			if f, _ := sc.Format(strings.SplitN(name, "/", 2)[1]); f.DumpLevel&8 != 0 {
				t.Logf("%d kernel addresses translated as the dump does (%d-level tables); user pages not in this dump", len(addrs), linux.PgtableLevels(p))
				return
			}
			for task, err := range linux.ForEachProcess(p) {
				if err != nil {
					t.Fatal(err)
				}
				mm, ok, err := linux.TaskMM(task)
				if err != nil || !ok {
					continue
				}
				vmas, err := linux.TaskVMAs(task)
				if err != nil || len(vmas) == 0 || vmas[0].Offset != 0 || vmas[0].File == 0 {
					continue
				}
				b := make([]byte, 4)
				if err := linux.ReadUser(mm, b, uint64(vmas[0].Start)); err != nil {
					t.Errorf("task %#x: %v", task.Addr(), err)
					continue
				}
				if string(b) != "\x7fELF" {
					t.Errorf("%s: %q", vmas[0].Name, b)
				}
				elf++
			}
			t.Logf("%d kernel addresses translated as the dump does (%d-level tables); %d executables' headers read through their processes' tables", len(addrs), linux.PgtableLevels(p), elf)
		})
	}
}
