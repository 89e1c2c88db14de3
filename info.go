package kinspect

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// Info describes a kernel and its dump, as crash's "sys" does.
type Info struct {
	Dump    DumpInfo `json:"dump"`
	Release string   `json:"release"`
	// VMCOREINFO says where the kernel's VMCOREINFO came from: "ELF
	// note", "kdump sub-header", "found in memory at phys 0x..." (a dump
	// without one of its own); empty when there is none.
	VMCOREINFO string `json:"vmcoreinfo,omitempty"`
	// Symbols says where vmlinux's symbols came from: the kallsyms tables
	// in memory as VMCOREINFO locates them or found by their shape, or a
	// file.
	Symbols     string       `json:"symbols,omitempty"`
	BuildID     string       `json:"build_id,omitempty"`
	PageSize    int          `json:"page_size,omitempty"`
	Paging      int          `json:"page_table_levels,omitempty"`
	KASLROffset *objects.Hex `json:"kaslr_offset,omitempty"`
	PhysBase    *objects.Hex `json:"phys_base,omitempty"`
	PageOffset  *objects.Hex `json:"page_offset,omitempty"`
	MemoryBytes uint64       `json:"memory_bytes,omitempty"`
	NumCPUs     int          `json:"nr_cpus"`
	CPUs        []CPUInfo    `json:"cpus,omitempty"`
	CrashTime   string       `json:"crash_time,omitempty"`
	// EraseInfo is what makedumpfile erased from the dump (--config).
	EraseInfo string `json:"erase_info,omitempty"`
	// BootTime is when the kernel booted, by its timekeeper's wall clock.
	BootTime string `json:"boot_time,omitempty"`
	// PanicCPU is the CPU that panicked (the kernel's panic_cpu); nil
	// without a panic, or when unknown (PanicErr).
	PanicCPU *int   `json:"panic_cpu,omitempty"`
	PanicErr string `json:"panic_error,omitempty"`
	// Unavailable says why memory-derived facts are missing (a live
	// kernel without /proc/kcore).
	Unavailable string   `json:"unavailable,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

// DumpInfo is the dump file and its format.
type DumpInfo struct {
	File        string `json:"file"`
	Format      string `json:"format"`
	Compression string `json:"compression"`
	DumpLevel   *int   `json:"dump_level,omitempty"`
}

// CPUInfo is one CPU's saved registers and the task it was running
// (per-CPU runqueues' curr; PID -1 and Comm "" when unknown).
type CPUInfo struct {
	CPU  int    `json:"cpu"`
	PID  int    `json:"pid"`
	Comm string `json:"comm,omitempty"`
	// Task is the CPU's current task; TaskError says why its pid and
	// comm are unknown (a task_struct page the dump lacks).
	Task      objects.Hex `json:"task,omitempty"`
	TaskError string      `json:"task_error,omitempty"`
	RIP       objects.Hex `json:"rip"`
	RSP       objects.Hex `json:"rsp"`
	RBP       objects.Hex `json:"rbp"`
}

// Info gathers the description. What cannot be known is left out and,
// when it should have been there, said in Problems.
func (k *Kernel) Info() *Info {
	if k.dump == nil {
		return liveInfoWithoutMemory(k.noMemory)
	}
	r := dumpInfo(k.dump, k.CPUs())
	r.Release = k.Release()
	r.Symbols = k.symbolsDesc()
	if k.prog == nil {
		return r
	}
	if off, err := linux.RealMinusBoot(k.prog); err == nil {
		r.BootTime = time.Unix(0, off).UTC().Format(time.RFC3339)
	}
	switch cpu, ok, err := linux.PanicCPU(k.prog); {
	case err != nil:
		r.PanicErr = err.Error()
	case ok:
		r.PanicCPU = &cpu
	}
	for i := range r.CPUs {
		c := &r.CPUs[i]
		c.PID = -1
		t, err := linux.CurrentTask(k.prog, c.CPU)
		if err != nil {
			c.TaskError = err.Error()
			continue
		}
		c.Task = objects.Hex(t.Addr())
		ti, err := linux.NewTask(t)
		if err != nil {
			c.TaskError = err.Error()
			continue
		}
		c.PID, c.Comm = ti.TID, ti.Comm
	}
	return r
}

// symbolsDesc says where the vmlinux symbols came from.
func (k *Kernel) symbolsDesc() string {
	if k.syms == nil {
		return ""
	}
	info, err := k.syms.Info()
	switch {
	case err != nil:
		return ""
	case info.Source == "kernel memory" && info.Located == "VMCOREINFO":
		return "kallsyms tables in memory, located by VMCOREINFO"
	case info.Source == "kernel memory" && info.Located != "":
		return "kallsyms tables in memory, located " + info.Located
	case info.Source == "kernel memory":
		return "kallsyms tables in memory"
	}
	return k.symSrc
}

// dumpInfo gathers what the dump itself says.
func dumpInfo(d *vmcore.Dump, cpus []vmcore.CPU) *Info {
	r := &Info{
		Dump: DumpInfo{
			File:        d.Path(),
			Format:      d.Format().String(),
			Compression: d.Compression().String(),
		},
		Release:  d.Release(),
		PageSize: d.PageSize(),
	}
	if lvl := d.DumpLevel(); lvl >= 0 {
		r.Dump.DumpLevel = &lvl
	}
	problem := func(err error) { r.Problems = append(r.Problems, err.Error()) }
	for _, err := range d.Problems() {
		problem(err)
	}
	if vi := d.VMCOREINFO(); vi != nil {
		r.BuildID = vi.BuildID
		r.VMCOREINFO = d.VMCOREINFOSource()
	} else if len(d.Problems()) == 0 {
		// (Problems says why, when it was looked for in memory.)
		r.Problems = append(r.Problems, "the dump has no VMCOREINFO")
	}
	as, err := d.Kernel()
	if err != nil {
		problem(err)
	} else {
		r.Paging = as.Levels()
		if off, ok := as.KASLROffset(); ok {
			r.KASLROffset = objects.HexPtr(off)
		}
		if pb, ok := as.PhysBase(); ok {
			r.PhysBase = objects.HexPtr(pb)
		}
		if po, err := as.PageOffset(); err == nil {
			r.PageOffset = objects.HexPtr(po)
		} else {
			problem(err)
		}
		// Memory the kernel has struct pages for: equal across formats
		// (QEMU's ELF also holds VGA memory and firmware).
		if n, err := as.MemorySize(); err == nil {
			r.MemoryBytes = n
		}
	}
	if r.MemoryBytes == 0 {
		if n, err := d.MemorySize(); err == nil {
			r.MemoryBytes = n
		} else {
			problem(err)
		}
	}
	for _, c := range cpus {
		r.CPUs = append(r.CPUs, CPUInfo{CPU: c.Index, PID: c.PID, RIP: objects.Hex(c.Regs.RIP), RSP: objects.Hex(c.Regs.RSP), RBP: objects.Hex(c.Regs.RBP)})
	}
	r.NumCPUs = len(r.CPUs)
	if t, ok := d.CrashTime(); ok {
		r.CrashTime = t.Format(time.RFC3339)
	}
	r.EraseInfo = d.EraseInfo()
	return r
}

// liveInfoWithoutMemory reports what /proc and /sys say of the running
// kernel when /proc/kcore cannot be read.
func liveInfoWithoutMemory(why error) *Info {
	r := &Info{
		Dump:     DumpInfo{File: vmcore.KcorePath, Format: "live", Compression: "none"},
		PageSize: os.Getpagesize(),
	}
	if why != nil {
		r.Unavailable = why.Error()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Release = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/sys/kernel/notes"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		r.BuildID, _ = vmcore.GNUBuildID(b)
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		r.NumCPUs = countCPUList(strings.TrimSpace(string(b)))
	}
	return r
}

// countCPUList counts the CPUs of a list like "0-3,5".
func countCPUList(s string) int {
	n := 0
	for _, part := range strings.Split(s, ",") {
		var a, b int
		if k, _ := fmt.Sscanf(part, "%d-%d", &a, &b); k == 2 && b >= a {
			n += b - a + 1
		} else if k >= 1 {
			n++
		}
	}
	return n
}
