package linux

import (
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// Walkers of a process's address space (include/linux/mm.h,
// mm_types.h) and its VMAs as /proc/PID/maps shows them
// (fs/proc/task_mmu.c).

// TaskMM returns a task's mm_struct (task->mm); false for a kernel
// thread, or a task that has exited its address space.
func TaskMM(task objects.Value) (objects.Value, bool, error) {
	mm, err := task.Member("mm")
	if err != nil {
		return objects.Value{}, false, err
	}
	a, err := mm.Uint()
	if err != nil || a == 0 {
		return objects.Value{}, false, err
	}
	v, err := mm.Deref()
	return v, err == nil, err
}

// ForEachVMA yields the VMAs (struct vm_area_struct) of an address
// space (a struct mm_struct, or a pointer to one) in address order, as
// for_each_vma: the entries of the maple tree mm->mm_mt (6.1+,
// d4af56c5c7c6 "mm: start tracking VMAs with maple tree"), else the
// list mm->mmap linked by vm_next.
func ForEachVMA(mm objects.Value) iter.Seq2[objects.Value, error] {
	return func(yield func(objects.Value, error) bool) {
		p := mm.Program()
		ma, err := objects.ObjectAddr(mm, "for_each_vma")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		m, err := p.ObjectOf("struct mm_struct", ma)
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		vt, err := p.Type("struct vm_area_struct")
		if err != nil {
			yield(objects.Value{}, err)
			return
		}
		if mt, err := m.Member("mm_mt"); err == nil {
			for e, err := range objects.MtForEach(mt) {
				if err != nil {
					yield(objects.Value{}, fmt.Errorf("VMAs of mm %#x: %w", ma, err))
					return
				}
				a, _ := e.Entry.Uint()
				if !yield(p.Object(vt, a), nil) {
					return
				}
			}
			return
		} else if !errors.Is(err, objects.ErrNotFound) {
			yield(objects.Value{}, err)
			return
		}
		// Before 6.1: the list mm->mmap, linked by vm_next.
		next, err := m.MemberUint("mmap")
		if err != nil {
			yield(objects.Value{}, fmt.Errorf("VMAs of mm %#x: %w", ma, err))
			return
		}
		g := p.NewGuard(fmt.Sprintf("VMAs of mm %#x", ma))
		for next != 0 {
			if err := g.Visit(next); err != nil {
				yield(objects.Value{}, err)
				return
			}
			v := p.Object(vt, next)
			if !yield(v, nil) {
				return
			}
			if next, err = v.MemberUint("vm_next"); err != nil {
				yield(objects.Value{}, fmt.Errorf("VMAs of mm %#x: %w", ma, err))
				return
			}
		}
	}
}

// The vm_flags bits of include/linux/mm.h that /proc/PID/maps shows.
const (
	VMRead     = 0x01
	VMWrite    = 0x02
	VMExec     = 0x04
	VMShared   = 0x08
	VMMayShare = 0x80
)

// VMA is a VMA as /proc/PID/maps shows it (show_map_vma).
type VMA struct {
	VMA   objects.Hex `json:"vma"` // the struct vm_area_struct
	Start objects.Hex `json:"start"`
	End   objects.Hex `json:"end"`
	// Flags are vm_flags; Perms the rwxp (or s, shared) of maps.
	Flags objects.Hex `json:"flags"`
	Perms string      `json:"perms"`
	// Offset is the file offset of Start (vm_pgoff << PAGE_SHIFT), 0
	// for an anonymous mapping.
	Offset uint64 `json:"offset"`
	// Dev is the file's device, "MAJOR:MINOR" in hex as maps prints it,
	// Inode its inode number (0 and "00:00" for an anonymous mapping).
	Dev   string      `json:"dev"`
	Inode uint64      `json:"inode"`
	File  objects.Hex `json:"file,omitempty"` // vm_file
	// Name is what maps prints last: the file's path, [heap], [stack],
	// [vdso], [vvar], [anon:NAME]..., or "" for an anonymous mapping.
	Name string `json:"name"`
	// Err says what could not be read (the name, most often).
	Err string `json:"error,omitempty"`
}

// MapsLine is the VMA as a line of /proc/PID/maps (without its
// newline): the name padded to column 74, as seq_pad does.
func (v VMA) MapsLine() string {
	s := fmt.Sprintf("%08x-%08x %s %08x %s %d ", uint64(v.Start), uint64(v.End), v.Perms, v.Offset, v.Dev, v.Inode)
	if v.Name == "" {
		return s
	}
	if n := 25 + 8*6 - 1; len(s) < n {
		s += strings.Repeat(" ", n-len(s))
	}
	return s + " " + v.Name
}

// vmaNames are the vm_ops->name functions NewVMA knows.
var vmaNames = []string{"special_mapping_name"}

// NewVMA reads a VMA of mm as show_map_vma shows it. A name that
// cannot be read is kept in Err.
func NewVMA(vma objects.Value, mm objects.Value) (VMA, error) {
	p := vma.Program()
	va, err := objects.ObjectAddr(vma, "show_map_vma")
	if err != nil {
		return VMA{}, err
	}
	v, s, err := p.ReadStruct("struct vm_area_struct", va)
	if err != nil {
		return VMA{}, err
	}
	out := VMA{VMA: objects.Hex(va), Start: objects.Hex(s.Uint("vm_start")), End: objects.Hex(s.Uint("vm_end")), Dev: "00:00"}
	flags := s.Uint("vm_flags")
	out.Flags = objects.Hex(flags)
	file := s.Uint("vm_file")
	pgoff := s.Uint("vm_pgoff")
	ops := s.Uint("vm_ops")
	priv := s.Uint("vm_private_data")
	if err := s.Err(); err != nil {
		return out, fmt.Errorf("vma %#x: %w", va, err)
	}
	perm := []byte("---p")
	for i, bit := range []uint64{VMRead, VMWrite, VMExec} {
		if flags&bit != 0 {
			perm[i] = "rwx"[i]
		}
	}
	if flags&VMMayShare != 0 {
		perm[3] = 's'
	}
	out.Perms = string(perm)
	fail := func(err error) (VMA, error) {
		out.Err = err.Error()
		return out, nil
	}
	if file != 0 {
		out.File = objects.Hex(file)
		out.Offset = pgoff << 12
		f, err := p.ObjectOf("struct file", file)
		if err != nil {
			return out, err
		}
		ino, err := f.Path("f_inode")
		if err != nil {
			return fail(err)
		}
		n, err := ino.MemberUint("i_ino")
		if err != nil {
			return fail(err)
		}
		out.Inode = n
		dev, err := ino.MemberUint("i_sb->s_dev")
		if err != nil {
			return fail(err)
		}
		out.Dev = fmt.Sprintf("%02x:%02x", dev>>20, dev&(1<<20-1))
		// A shared anonymous mapping named by prctl(PR_SET_VMA) shows
		// [anon_shmem:NAME]: left out, its name is in the file's.
		if out.Name, err = FilePath(f); err != nil {
			return fail(err)
		}
		return out, nil
	}
	if ops != 0 {
		fn, err := p.UintAt("struct vm_operations_struct", ops, "name")
		if err != nil {
			return fail(err)
		}
		switch knownFunc(p, vmaNames, fn) {
		case "special_mapping_name":
			// The name of the struct vm_special_mapping in
			// vm_private_data: [vdso], [vvar], [uprobes].
			n, err := p.ObjectOf("struct vm_special_mapping", priv)
			if err == nil {
				n, err = n.Member("name")
			}
			if err == nil {
				out.Name, err = n.CString()
			}
			if err != nil {
				return fail(err)
			}
			return out, nil
		case "":
			if fn != 0 {
				return fail(fmt.Errorf("vma %#x: vm_ops->name %#x: %w", va, fn, objects.ErrNotSupported))
			}
		}
	}
	if mm.Addr() == 0 {
		out.Name = "[vdso]"
		return out, nil
	}
	_, s2, err := p.ReadStruct("struct mm_struct", mm.Addr())
	if err != nil {
		return fail(err)
	}
	brk, startBrk, startStack := s2.Uint("brk"), s2.Uint("start_brk"), s2.Uint("start_stack")
	if err := s2.Err(); err != nil {
		return fail(err)
	}
	switch {
	case uint64(out.Start) <= brk && uint64(out.End) >= startBrk:
		out.Name = "[heap]"
	case uint64(out.Start) <= startStack && uint64(out.End) >= startStack:
		out.Name = "[stack]"
	default:
		// anon_vma_name: a name set by prctl(PR_SET_VMA_ANON_NAME)
		// (5.17+, CONFIG_ANON_VMA_NAME), in a union with shared.
		if an, err := v.MemberUint("anon_name"); err == nil && an != 0 {
			n, err := p.ObjectOf("struct anon_vma_name", an)
			if err == nil {
				n, err = n.Member("name")
			}
			var s string
			if err == nil {
				s, err = n.CString()
			}
			if err != nil {
				return fail(err)
			}
			out.Name = "[anon:" + s + "]"
		}
	}
	return out, nil
}

// TaskVMAs reads the VMAs of a task's address space as /proc/PID/maps
// lists them (none for a kernel thread). A walk that fails returns what
// it read before.
func TaskVMAs(task objects.Value) ([]VMA, error) {
	mm, ok, err := TaskMM(task)
	if err != nil || !ok {
		return nil, err
	}
	var out []VMA
	for v, err := range ForEachVMA(mm) {
		if err != nil {
			return out, err
		}
		vi, err := NewVMA(v, mm)
		if err != nil {
			return out, err
		}
		out = append(out, vi)
	}
	return out, nil
}

// TaskVM is what crash's vm shows of a task's address space: the
// mm_struct, its page tables, its size and resident pages as
// /proc/PID/status counts them, and its VMAs.
type TaskVM struct {
	Task objects.Hex `json:"task"`
	PID  int         `json:"pid"`
	TID  int         `json:"tid"`
	Comm string      `json:"comm"`
	// MM is task->mm (0 for a kernel thread: no VMAs), PGD mm->pgd.
	MM  objects.Hex `json:"mm"`
	PGD objects.Hex `json:"pgd"`
	// TotalVM is mm->total_vm in kB (status's VmSize); RSS the resident
	// pages in kB (VmRSS): RSSFile, RSSAnon and RSSShmem summed.
	TotalVM  uint64 `json:"total_vm"`
	RSS      uint64 `json:"rss"`
	RSSFile  uint64 `json:"rss_file"`
	RSSAnon  uint64 `json:"rss_anon"`
	RSSShmem uint64 `json:"rss_shmem"`
	VMAs     []VMA  `json:"vmas"`
}

// The rss_stat counters of include/linux/mm_types_task.h.
var rssCounters = []string{"MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"}

// mmCounter reads an mm's rss counter as /proc/PID/status does: the
// atomic count of mm->rss_stat.count[] (before 6.2), or the sum of the
// percpu_counter mm->rss_stat[] (6.2+, f1a7941243c1 "mm: convert mm's
// rss stats into percpu_counter"), clamped at 0.
func mmCounter(mm objects.Value, item string) (uint64, error) {
	i, err := mm.Program().Enumerator(item)
	if err != nil {
		return 0, err
	}
	v, err := mm.MemberInt(fmt.Sprintf("rss_stat.count[%d].counter", i))
	if errors.Is(err, objects.ErrNotFound) || errors.Is(err, objects.ErrType) {
		pc, perr := mm.Path(fmt.Sprintf("rss_stat[%d]", i))
		if perr != nil {
			return 0, perr
		}
		v, err = percpuCounterSumOf(pc)
	}
	return uint64(max(v, 0)), err
}

// ReadTaskVM reads a task's address space and VMAs.
func ReadTaskVM(task objects.Value) (*TaskVM, error) {
	t, err := NewTask(task)
	if err != nil {
		return nil, err
	}
	out := &TaskVM{Task: objects.Hex(t.Addr), PID: t.PID, TID: t.TID, Comm: t.Comm, VMAs: []VMA{}}
	tv, _ := task.Program().ObjectOf("struct task_struct", t.Addr)
	mm, ok, err := TaskMM(tv)
	if err != nil || !ok {
		return out, err
	}
	out.MM = objects.Hex(mm.Addr())
	pgd, err := mm.MemberUint("pgd")
	if err != nil {
		return nil, err
	}
	out.PGD = objects.Hex(pgd)
	tvm, err := mm.MemberUint("total_vm")
	if err != nil {
		return nil, err
	}
	out.TotalVM = tvm << (PageShift - 10)
	var counts [3]uint64
	for i, c := range rssCounters {
		if counts[i], err = mmCounter(mm, c); err != nil {
			return nil, fmt.Errorf("task %#x: rss %s: %w", t.Addr, c, err)
		}
	}
	out.RSSFile, out.RSSAnon, out.RSSShmem = counts[0]<<(PageShift-10), counts[1]<<(PageShift-10), counts[2]<<(PageShift-10)
	out.RSS = out.RSSFile + out.RSSAnon + out.RSSShmem
	vmas, err := TaskVMAs(tv)
	if vmas != nil {
		out.VMAs = vmas
	}
	return out, err
}
