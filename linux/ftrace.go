package linux

import (
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// Walkers of kernel/trace/ftrace.c's records: the functions ftrace (and
// so fentry and kprobes at a function's start) can attach to.

// FtraceRecord is one struct dyn_ftrace: a function's fentry call site.
type FtraceRecord struct {
	// IP is rec->ip, the address of the call to __fentry__ (the
	// function's address, or 4 bytes further after an endbr64).
	IP objects.Hex `json:"ip"`
	// Flags is rec->flags (FTRACE_FL_*; the low bits count the ftrace_ops
	// tracing it).
	Flags uint64 `json:"flags"`
	// Disabled: FTRACE_FL_DISABLED, a record ftrace will not trace: a
	// weak function's call site that kallsyms cannot name
	// (test_for_valid_rec, 6.0+), or a module's records before the module
	// is live (ftrace_module_init until ftrace_module_enable).
	Disabled bool `json:"disabled"`
}

// ftraceFlDisabled is FTRACE_FL_DISABLED (include/linux/ftrace.h, an
// enumerator of an anonymous enum: 1UL << 25 since 4.9's commit
// b7ffffbb46f2, still in 6.12) where the BTF lacks the enumerator.
const ftraceFlDisabled = 1 << 25

// ForEachFtraceRecord reads every struct dyn_ftrace record, in the order
// of do_for_each_ftrace_rec (and of available_filter_functions): the
// struct ftrace_page list from ftrace_pages_start, each page's
// records[0..index). vmlinux's records come first (sorted by address),
// then each module's as it was loaded.
//
// Errors wrap objects.ErrNotFound (a kernel without
// CONFIG_DYNAMIC_FTRACE: no ftrace_pages_start), objects.ErrCorrupt (a
// cycle, a page claiming more records than its pages hold) or
// objects.ErrLimit, or the memory's errors; the records read before are
// returned with the error.
func ForEachFtraceRecord(p *objects.Program) ([]FtraceRecord, error) {
	sym, err := p.Symbol("ftrace_pages_start")
	if err != nil {
		return nil, fmt.Errorf("ftrace records: %w", err)
	}
	pg, err := p.ReadU64(sym)
	if err != nil {
		return nil, fmt.Errorf("ftrace records: ftrace_pages_start at %#x: %w", sym, err)
	}
	size, err := p.SizeofType("struct dyn_ftrace")
	if err != nil {
		return nil, fmt.Errorf("ftrace records: %w", err)
	}
	ipOff, _, err := p.MemberOffset("struct dyn_ftrace", "ip")
	if err != nil {
		return nil, fmt.Errorf("ftrace records: %w", err)
	}
	flOff, _, err := p.MemberOffset("struct dyn_ftrace", "flags")
	if err != nil {
		return nil, fmt.Errorf("ftrace records: %w", err)
	}
	disabled := uint64(ftraceFlDisabled)
	if v, err := p.Enumerator("FTRACE_FL_DISABLED"); err == nil {
		disabled = v
	}
	g := p.NewGuard("ftrace_pages_start list")
	var out []FtraceRecord
	for pg != 0 {
		if err := g.Visit(pg); err != nil {
			return out, fmt.Errorf("ftrace records: %w", err)
		}
		_, s, err := p.ReadStruct("struct ftrace_page", pg)
		if err != nil {
			return out, fmt.Errorf("ftrace records: %w", err)
		}
		next, recs, index := s.Uint("next"), s.Uint("records"), int64(int32(s.Uint("index")))
		// 6.1 and 6.12 keep the page order (the records' pages are
		// 2^order pages): index cannot pass what they hold.
		order := s.OptUint("order")
		if s.Err() != nil {
			return out, fmt.Errorf("ftrace records: struct ftrace_page at %#x: %w", pg, s.Err())
		}
		if index < 0 || uint64(index)*size > 4096<<min(order, 10) || len(out)+int(index) > p.Limit() {
			return out, fmt.Errorf("ftrace records: struct ftrace_page at %#x: %d records in %d pages: %w", pg, index, 1<<order, objects.ErrCorrupt)
		}
		b := make([]byte, uint64(index)*size)
		if err := p.Read(b, recs); err != nil {
			return out, fmt.Errorf("ftrace records: %d records of struct ftrace_page at %#x: %w", index, pg, err)
		}
		for i := range index {
			r := b[uint64(i)*size:]
			fl := binary.LittleEndian.Uint64(r[flOff:])
			out = append(out, FtraceRecord{IP: objects.Hex(binary.LittleEndian.Uint64(r[ipOff:])), Flags: fl, Disabled: fl&disabled != 0})
		}
		pg = next
	}
	return out, nil
}
