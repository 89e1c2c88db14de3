// Package kinspect opens a Linux kernel to inspect, from a crash dump or
// live, without DWARF: its memory (package vmcore), its symbols (kallsyms:
// vmlinux's, the modules' and the BPF programs'), its types (btfload:
// vmlinux BTF and, on first use, the modules' split BTF) and the typed
// object engine over them (objects), which the kernel walkers (linux),
// the BPF model (bpf), the unwinder (orc) and the scripting engine
// (script) take.
//
//	k, err := kinspect.Open(ctx, kinspect.Options{Dump: "/var/crash/vmcore"})
//	if err != nil { ... }
//	defer k.Close()
//	for prog, err := range bpf.ProgForEach(k.Program()) { ... }
//
// Open is the one way to open a kernel: the command line, the scripting
// engine and the tests all go through it.
package kinspect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// Options say which kernel to open and how.
type Options struct {
	// Dump is the path of a dump: an ELF core (QEMU, /proc/vmcore,
	// makedumpfile -E), a kdump-compressed file (normal or flattened), or
	// a LiME or AVML capture.
	Dump string
	// Live opens the running kernel: /proc/kcore for memory,
	// /proc/kallsyms for symbols, /sys/kernel/btf for types. Without a
	// readable /proc/kcore the kernel still opens, with types and symbols
	// only (MemoryErr says why); Live and Dump exclude each other.
	Live bool
	// Kallsyms is a copy of the kernel's /proc/kallsyms to take symbols
	// from instead of the dump's memory. It is not needed for kernels
	// before 6.0, whose VMCOREINFO does not locate the kallsyms tables:
	// those are found by their shape (kallsyms.FindLocations).
	Kallsyms string
	// Declarations type global variables (nil: btfload.NewDecls(), the
	// built-in table).
	Declarations *btfload.Decls
	// Partial opens what can be opened: a kernel whose symbols or BTF
	// cannot be loaded (a kernel before 6.0 without Kallsyms, one built
	// without CONFIG_DEBUG_INFO_BTF) still opens, for its memory alone or
	// with its symbols. Symbols, Types and Program may then be nil;
	// SymbolsErr and TypesErr say why. The modules' and BPF programs'
	// symbols, which need types, are added only with types.
	Partial bool
	// PageCache is how many MiB of decompressed pages of a compressed
	// dump to keep: 0 the default (vmcore.DefaultCachePages), negative
	// none.
	PageCache int
}

// ErrUsage marks a mistake in Options (both Dump and Live, neither).
var ErrUsage = errors.New("invalid options")

// Kernel is an opened kernel. Its methods are safe for concurrent use.
type Kernel struct {
	dump     *vmcore.Dump // nil without memory
	noMemory error
	syms     *kallsyms.Table
	symsErr  error
	symSrc   string
	symErr   error
	types    *btfload.Spec
	typesErr error
	prog     *objects.Program
	live     bool

	modOnce  sync.Once
	modTypes []*btfload.Spec
	modErr   error

	cpuOnce sync.Once
	cpus    []vmcore.CPU
}

// Open opens the kernel o names. From a dump, symbols are decoded from
// the kallsyms tables in its memory (located by VMCOREINFO, or by their
// shape where VMCOREINFO does not say; or read from o.Kallsyms), then the modules' and BPF programs' are added by walking
// the module list and bpf_kallsyms; types are read from memory between
// __start_BTF and __stop_BTF. Errors wrap ErrUsage, vmcore's and
// kallsyms' errors (naming the file and offset), or btfload's.
func Open(ctx context.Context, o Options) (*Kernel, error) {
	if o.Dump != "" && o.Live {
		return nil, fmt.Errorf("a dump and the live kernel exclude each other: %w", ErrUsage)
	}
	if o.Dump == "" && !o.Live {
		return nil, fmt.Errorf("no kernel to inspect: give a dump or the live kernel: %w", ErrUsage)
	}
	k := &Kernel{live: o.Live}
	if err := k.openMemory(o); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		k.Close()
		return nil, err
	}
	if err := k.openSymbols(o); err != nil {
		if !o.Partial {
			k.Close()
			return nil, err
		}
		k.symsErr = err
		return k, nil
	}
	var err error
	if o.Live {
		k.types, err = btfload.LoadLive()
	} else {
		k.types, err = btfload.FromMemory(k.memory(), k.syms)
	}
	if err != nil {
		err = fmt.Errorf("load BTF: %w", err)
		if !o.Partial {
			k.Close()
			return nil, err
		}
		k.typesErr = err
		if k.dump != nil && o.Kallsyms == "" && !o.Live {
			k.symErr = fmt.Errorf("module and BPF symbols: %w", err)
		}
		return k, nil
	}
	decls := o.Declarations
	if decls == nil {
		decls = btfload.NewDecls()
	}
	k.prog = objects.NewProgram(k.memory(), k.types, k.syms, objects.WithDecls(decls), objects.WithExplain(k.explainFault),
		objects.WithTypeFallback(k.moduleType))
	if k.dump != nil && o.Kallsyms == "" && !o.Live {
		k.symErr = AddKernelSymbols(k.prog, k.syms)
	}
	return k, nil
}

// openMemory opens the dump, or /proc/kcore under Live (whose absence is
// kept as noMemory, not returned).
func (k *Kernel) openMemory(o Options) error {
	var opts []vmcore.Option
	switch {
	case o.PageCache < 0:
		opts = append(opts, vmcore.WithCachePages(0))
	case o.PageCache > 0:
		opts = append(opts, vmcore.WithCachePages(o.PageCache<<20/4096))
	}
	if !o.Live {
		d, err := vmcore.Open(o.Dump, opts...)
		if err != nil {
			return err
		}
		k.dump = d
		return nil
	}
	d, err := vmcore.OpenLive(opts...)
	if err != nil {
		why := "it cannot be read"
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = "this kernel has no /proc/kcore (CONFIG_PROC_KCORE off, or /proc not mounted as usual)"
		case errors.Is(err, fs.ErrPermission):
			why = "reading /proc/kcore needs root (CAP_SYS_RAWIO)"
		}
		k.noMemory = fmt.Errorf("live kernel memory is unavailable: %s; commands that need only symbols and types still work from /proc/kallsyms and /sys/kernel/btf: %w", why, err)
		return nil
	}
	k.dump = d
	return nil
}

// openSymbols loads the vmlinux symbol table, so that its errors show
// now.
func (k *Kernel) openSymbols(o Options) error {
	switch {
	case o.Kallsyms != "":
		f, err := os.Open(o.Kallsyms)
		if err != nil {
			return err
		}
		defer f.Close()
		t, err := kallsyms.ParseProcKallsyms(f)
		if err != nil {
			return fmt.Errorf("%s: %w", o.Kallsyms, err)
		}
		k.syms, k.symSrc = t, o.Kallsyms
	case o.Live:
		t, err := kallsyms.OpenLive()
		if err != nil {
			return err
		}
		k.syms, k.symSrc = t, kallsyms.ProcPath
	default:
		t, err := kallsyms.FromDump(k.dump)
		if err == nil {
			err = t.Load()
		}
		if err != nil {
			return fmt.Errorf("%s: %w (give a copy of the kernel's /proc/kallsyms: kinspect -k FILE)", k.dump.Path(), err)
		}
		k.syms, k.symSrc = t, k.dump.Path()
	}
	return nil
}

func (k *Kernel) memory() objects.Memory {
	if k.dump == nil {
		return objects.NoMemory(k.noMemory)
	}
	as, err := k.dump.Kernel()
	if err != nil {
		return objects.NoMemory(err)
	}
	return as
}

// AddKernelSymbols adds to t what /proc/kallsyms lists beyond vmlinux's
// own tables: the symbols of the loaded modules (their kallsyms, from the
// module list) and of the BPF programs, trampolines and dispatchers
// (bpf_kallsyms). What fails is returned, the rest is added.
func AddKernelSymbols(p *objects.Program, t *kallsyms.Table) error {
	var errs []error
	if err := linux.AddModuleSymbols(p, t); err != nil {
		errs = append(errs, fmt.Errorf("module symbols: %w", err))
	}
	if err := bpf.AddSymbols(p, t); err != nil {
		errs = append(errs, fmt.Errorf("BPF symbols: %w", err))
	}
	return errors.Join(errs...)
}

// Close closes the dump.
func (k *Kernel) Close() error {
	if k.dump != nil {
		return k.dump.Close()
	}
	return nil
}

// Dump is the dump, or /proc/kcore under Live; nil when the kernel's
// memory is unavailable (MemoryErr says why).
func (k *Kernel) Dump() *vmcore.Dump { return k.dump }

// ReadPhys reads len(b) bytes of physical memory at paddr: the dump's
// (under Live, what /proc/kcore maps of it). Errors are the dump's
// (vmcore.ReadPhys's), or MemoryErr when there is no memory.
func (k *Kernel) ReadPhys(b []byte, paddr uint64) error {
	if k.dump == nil {
		return k.noMemory
	}
	_, err := k.dump.ReadPhys(b, paddr)
	return err
}

// MemoryErr says why the memory is unavailable (nil when it is not).
func (k *Kernel) MemoryErr() error { return k.noMemory }

// Live says whether this is the running kernel.
func (k *Kernel) Live() bool { return k.live }

// Symbols is the symbol table: vmlinux's, the modules' and the BPF
// programs'; nil only under Options.Partial, when SymbolsErr says why.
func (k *Kernel) Symbols() *kallsyms.Table { return k.syms }

// SymbolsErr says why the kernel has no symbols (Options.Partial).
func (k *Kernel) SymbolsErr() error { return k.symsErr }

// SymbolSource says where the symbols came from: a file, /proc/kallsyms
// or the dump's path.
func (k *Kernel) SymbolSource() string { return k.symSrc }

// SymbolErr says which module or BPF symbols could not be added to a
// dump's table (nil when all were).
func (k *Kernel) SymbolErr() error { return k.symErr }

// Types is vmlinux's BTF; nil only under Options.TypesOptional, when
// TypesErr says why.
func (k *Kernel) Types() *btfload.Spec { return k.types }

// TypesErr says why the kernel has no types (Options.Partial).
func (k *Kernel) TypesErr() error { return k.typesErr }

// Program is the typed object engine over the kernel (nil when Types
// is).
func (k *Kernel) Program() *objects.Program { return k.prog }

// Release is the kernel release as the dump's VMCOREINFO (or the live
// kernel) gives it, else as init_uts_ns in its memory says (a dump with
// no VMCOREINFO anywhere); "" when unknown.
func (k *Kernel) Release() string {
	if k.dump != nil {
		if r := k.dump.Release(); r != "" {
			return r
		}
	}
	if k.prog != nil && k.dump != nil {
		if v, err := k.prog.Eval("init_uts_ns.name.release"); err == nil {
			if r, err := v.CString(); err == nil {
				return r
			}
		}
	}
	return ""
}

// CPUs are the CPUs whose registers the dump saved, each under its CPU
// number. The dump's notes are numbered in order, which is right for a
// QEMU dump but not for a kdump whose capture kernel skipped a CPU that
// did not stop: there each note is matched to the CPU whose crash_notes
// buffer in memory holds the same registers (linux.CrashNoteCPUs).
func (k *Kernel) CPUs() []vmcore.CPU {
	k.cpuOnce.Do(func() {
		if k.dump == nil {
			return
		}
		k.cpus = k.dump.CPUs()
		if k.prog == nil {
			return
		}
		if saved, err := linux.CrashNoteCPUs(k.prog); err == nil {
			k.cpus = numberCPUs(k.cpus, saved)
		}
	})
	return k.cpus
}

// numberCPUs gives each of the dump's CPUs the number of the CPU whose
// crash_notes buffer (saved) holds the same task and registers; the
// others keep their number.
func numberCPUs(notes, saved []vmcore.CPU) []vmcore.CPU {
	out := make([]vmcore.CPU, 0, len(notes))
	used := map[int]bool{}
	for _, c := range notes {
		for _, s := range saved {
			if !used[s.Index] && c.HasRegs && s.PID == c.PID && s.Regs == c.Regs {
				c.Index = s.Index
				used[s.Index] = true
				break
			}
		}
		out = append(out, c)
	}
	return out
}

// ModuleTypes returns the split BTF of every loaded module, read on first
// use: from the btf_modules list in memory, or /sys/kernel/btf/MODULE
// live. A module whose BTF does not parse is left out.
func (k *Kernel) ModuleTypes() ([]*btfload.Spec, error) {
	k.modOnce.Do(func() {
		if k.types == nil {
			k.modErr = errors.Join(k.symsErr, k.typesErr)
			return
		}
		if k.live {
			k.modTypes = liveModuleTypes(k.types)
			return
		}
		if k.dump == nil {
			k.modErr = k.noMemory
			return
		}
		as, err := k.dump.Kernel()
		if err != nil {
			k.modErr = err
			return
		}
		k.modTypes, _, k.modErr = btfload.LoadModules(as, k.syms, k.types)
	})
	return k.modTypes, k.modErr
}

func liveModuleTypes(vmlinux *btfload.Spec) []*btfload.Spec {
	paths, _ := filepath.Glob("/sys/kernel/btf/*")
	var out []*btfload.Spec
	for _, p := range paths {
		name := filepath.Base(p)
		if name == "vmlinux" {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if s, err := btfload.ParseSplit(raw, vmlinux, name, p); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// LookupType finds a type by its C name in vmlinux's BTF, then in the
// modules' (read only on a miss). vmlinux's error, with its close names,
// is kept when no module has the type either. Errors wrap
// btfload.ErrNotFound.
func (k *Kernel) LookupType(name string) (btf.Type, error) {
	t, err := k.types.Type(name)
	if err == nil || !errors.Is(err, btfload.ErrNotFound) {
		return t, err
	}
	mods, merr := k.ModuleTypes()
	for _, m := range mods {
		if mt, err := m.Type(name); err == nil {
			return mt, nil
		}
	}
	if merr != nil {
		return nil, fmt.Errorf("%w (modules' BTF not searched: %v)", err, merr)
	}
	return nil, fmt.Errorf("%w (nor in the BTF of %d modules)", err, len(mods))
}

// moduleType finds a type in the modules' BTF alone (the Program's
// fallback after vmlinux's).
func (k *Kernel) moduleType(name string) (btf.Type, error) {
	mods, err := k.ModuleTypes()
	for _, m := range mods {
		if mt, err := m.Lookup(name); err == nil {
			return mt, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no module's BTF has %s: %w", name, btfload.ErrNotFound)
}

// FromProgram returns a kernel made of a typed object engine alone: no
// dump, registers or symbol table (Dump and Symbols are nil). For
// synthetic kernels in tests and for programs that build their Program
// themselves.
func FromProgram(p *objects.Program) *Kernel {
	return &Kernel{prog: p, types: p.Types()}
}

// explainFault says why the page a read error names is missing from the
// dump: the makedumpfile filter its struct page falls under
// (linux.ExplainExcluded), or "" for other errors.
func (k *Kernel) explainFault(err error) string {
	var ae *vmcore.AddrError
	if k.dump == nil || !errors.Is(err, vmcore.ErrPageExcluded) || !errors.As(err, &ae) {
		return ""
	}
	pfn, ok := ae.PFN()
	if !ok {
		return ""
	}
	return linux.ExplainExcluded(k.prog, pfn, k.dump.DumpLevel())
}
