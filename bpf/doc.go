// Package bpf reads the BPF objects a kernel holds — programs, maps and
// their elements, links, BTF objects, struct_ops, pins in bpffs, the file
// descriptors processes hold — from its memory, and reports them as
// bpftool does: the fields of bpf_prog_info, bpf_map_info and
// bpf_link_info as the kernel's *_get_info_by_fd functions fill them,
// map elements in get_next_key order, BTF-typed values as bpftool's
// btf_dumper prints them.
//
//	for p, err := range bpf.ProgForEach(prog) { ... }      // prog_idr
//	m, err := bpf.MapByID(prog, 12)
//	for e, err := range m.Entries() { ... }               // one file per map kind, as kernel/bpf/
//
// Walkers are XForEach (as drgn's bpf_prog_for_each), lookups XByID, and
// NewX decodes a kernel object into its model. A walker that meets a
// damaged object yields an error naming its address and goes on where it
// can.
//
// Errors wrap objects.ErrNotFound (no such id or name), ErrCorrupt,
// ErrNotSupported (a map type or kernel layout not modelled), or the
// memory's error (vmcore.ErrPageExcluded for a page a filtered dump left
// out).
package bpf
