package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kinspect/kinspect/vmcore"
)

func init() {
	register(&command{name: "info", summary: "describe the kernel and the dump (like crash's sys)", run: runInfo})
}

const infoHelp = `Usage: kinspect [-c DUMP | --live] [--json] info

Describes the kernel and its dump, like crash's "sys": kernel release and
build id, the dump's format and compression, paging mode, KASLR offset,
memory size, each CPU's RIP and RSP, and the crash time and panicking CPU
where the dump records them.
`

// infoResult is what info reports; the text and JSON printers render it.
type infoResult struct {
	Dump        dumpInfo  `json:"dump"`
	Release     string    `json:"release"`
	BuildID     string    `json:"build_id,omitempty"`
	PageSize    int       `json:"page_size,omitempty"`
	Paging      int       `json:"page_table_levels,omitempty"`
	KASLROffset *hexU64   `json:"kaslr_offset,omitempty"`
	PhysBase    *hexU64   `json:"phys_base,omitempty"`
	PageOffset  *hexU64   `json:"page_offset,omitempty"`
	MemoryBytes uint64    `json:"memory_bytes,omitempty"`
	NumCPUs     int       `json:"nr_cpus"`
	CPUs        []cpuInfo `json:"cpus,omitempty"`
	CrashTime   string    `json:"crash_time,omitempty"`
	PanicCPU    *int      `json:"panic_cpu,omitempty"`
	// Unavailable says why memory-derived facts are missing (live
	// kernel without /proc/kcore).
	Unavailable string   `json:"unavailable,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

type dumpInfo struct {
	File        string `json:"file"`
	Format      string `json:"format"`
	Compression string `json:"compression"`
	DumpLevel   *int   `json:"dump_level,omitempty"`
}

type cpuInfo struct {
	CPU int    `json:"cpu"`
	PID int    `json:"pid"`
	RIP hexU64 `json:"rip"`
	RSP hexU64 `json:"rsp"`
	RBP hexU64 `json:"rbp"`
}

// hexU64 prints as a 0x-prefixed hex string in JSON.
type hexU64 uint64

func (h hexU64) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%#x", uint64(h))), nil }

func (h *hexU64) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 0, 64)
	*h = hexU64(v)
	return err
}

func ptrHex(v uint64) *hexU64 { h := hexU64(v); return &h }

func runInfo(e *env, args []string) error {
	if len(args) > 0 {
		if args[0] == "help" {
			fmt.Fprint(e.stdout, infoHelp)
			return nil
		}
		return fmt.Errorf("info takes no arguments: %w", errUsage)
	}
	d, err := openDump(e)
	var r *infoResult
	switch {
	case err == nil:
		defer d.Close()
		r = dumpInfoOf(d)
	case e.live && !errors.Is(err, errUsage):
		r = liveInfoWithoutMemory(err)
	default:
		return err
	}
	if e.json {
		return writeJSON(e, r)
	}
	printInfo(e.stdout, r)
	return nil
}

// dumpInfoOf gathers info from an open dump.
func dumpInfoOf(d *vmcore.Dump) *infoResult {
	r := &infoResult{
		Dump: dumpInfo{
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
	vi := d.VMCOREINFO()
	if vi != nil {
		r.BuildID = vi.BuildID
	} else {
		r.Problems = append(r.Problems, "the dump has no VMCOREINFO")
	}
	if k, err := d.Kernel(); err != nil {
		problem(err)
	} else {
		r.Paging = k.Levels()
		if off, ok := k.KASLROffset(); ok {
			r.KASLROffset = ptrHex(off)
		}
		if pb, ok := k.PhysBase(); ok {
			r.PhysBase = ptrHex(pb)
		}
		if po, err := k.PageOffset(); err == nil {
			r.PageOffset = ptrHex(po)
		} else {
			problem(err)
		}
	}
	// Memory the kernel has struct pages for: equal across formats (QEMU's
	// ELF also holds VGA memory and firmware); else what the dump holds.
	if k, err := d.Kernel(); err == nil {
		if n, err := k.MemorySize(); err == nil {
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
	for _, c := range d.CPUs() {
		r.CPUs = append(r.CPUs, cpuInfo{CPU: c.Index, PID: c.PID, RIP: hexU64(c.Regs.RIP), RSP: hexU64(c.Regs.RSP), RBP: hexU64(c.Regs.RBP)})
	}
	r.NumCPUs = len(r.CPUs)
	if t, ok := d.CrashTime(); ok {
		r.CrashTime = t.Format(time.RFC3339)
	}
	if c, ok := d.PanicCPU(); ok {
		r.PanicCPU = &c
	}
	return r
}

// liveInfoWithoutMemory reports what /proc and /sys say of the running
// kernel when /proc/kcore cannot be read.
func liveInfoWithoutMemory(why error) *infoResult {
	r := &infoResult{
		Dump:        dumpInfo{File: vmcore.KcorePath, Format: "live", Compression: "none"},
		PageSize:    os.Getpagesize(),
		Unavailable: why.Error(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Release = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/sys/kernel/notes"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		r.BuildID = gnuBuildID(b)
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		r.NumCPUs = countCPUList(strings.TrimSpace(string(b)))
	}
	return r
}

// gnuBuildID finds the NT_GNU_BUILD_ID note in an ELF note area.
func gnuBuildID(b []byte) string {
	for len(b) >= 12 {
		namesz := int(binary.LittleEndian.Uint32(b))
		descsz := int(binary.LittleEndian.Uint32(b[4:]))
		typ := binary.LittleEndian.Uint32(b[8:])
		nameEnd := 12 + (namesz+3)&^3
		descEnd := nameEnd + descsz
		if namesz < 0 || descsz < 0 || nameEnd > len(b) || descEnd > len(b) || nameEnd < 12 {
			return ""
		}
		if typ == 3 && strings.TrimRight(string(b[12:12+namesz]), "\x00") == "GNU" {
			return hex.EncodeToString(b[nameEnd:descEnd])
		}
		b = b[min(len(b), nameEnd+(descsz+3)&^3):]
	}
	return ""
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

func printInfo(w io.Writer, r *infoResult) {
	row := func(k, v string) { fmt.Fprintf(w, "%14s: %s\n", k, v) }
	orNone := func(s string) string {
		if s == "" {
			return "(unknown)"
		}
		return s
	}
	hexOr := func(h *hexU64, none string) string {
		if h == nil {
			return none
		}
		return fmt.Sprintf("%#x", uint64(*h))
	}
	desc := r.Dump.Format
	if r.Dump.Compression != "none" {
		desc += ", " + r.Dump.Compression
	}
	if r.Dump.DumpLevel != nil {
		desc += fmt.Sprintf(", dump level %d", *r.Dump.DumpLevel)
	}
	row("DUMPFILE", fmt.Sprintf("%s (%s)", r.Dump.File, desc))
	row("RELEASE", orNone(r.Release))
	row("BUILD ID", orNone(r.BuildID))
	row("PAGE SIZE", fmt.Sprint(r.PageSize))
	if r.Paging != 0 {
		row("PAGE TABLES", fmt.Sprintf("%d levels", r.Paging))
	} else {
		row("PAGE TABLES", "(unknown)")
	}
	row("KASLR OFFSET", hexOr(r.KASLROffset, "(unknown)"))
	row("PHYS BASE", hexOr(r.PhysBase, "(unknown)"))
	row("PAGE OFFSET", hexOr(r.PageOffset, "(unknown)"))
	if r.MemoryBytes != 0 {
		row("MEMORY", fmt.Sprintf("%s (%d bytes)", humanBytes(r.MemoryBytes), r.MemoryBytes))
	} else {
		row("MEMORY", "(unknown)")
	}
	row("CPUS", fmt.Sprint(r.NumCPUs))
	row("CRASH TIME", orNoneMsg(r.CrashTime, "(not recorded in the dump)"))
	if r.PanicCPU != nil {
		row("PANIC CPU", fmt.Sprint(*r.PanicCPU))
	} else {
		row("PANIC CPU", "(not recorded in the dump)")
	}
	if len(r.CPUs) > 0 {
		fmt.Fprintf(w, "\n%4s %7s  %-18s  %-18s  %s\n", "CPU", "PID", "RIP", "RSP", "RBP")
		for _, c := range r.CPUs {
			fmt.Fprintf(w, "%4d %7d  0x%016x  0x%016x  0x%016x\n", c.CPU, c.PID, uint64(c.RIP), uint64(c.RSP), uint64(c.RBP))
		}
	}
	if r.Unavailable != "" {
		fmt.Fprintf(w, "\nnot shown: %s\n", r.Unavailable)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "note: %s\n", p)
	}
}

func orNoneMsg(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func humanBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
