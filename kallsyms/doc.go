// Package kallsyms knows the kernel's symbols: /proc/kallsyms text, the
// table rebuilt from the kallsyms tables in kernel memory, module symbols
// and BPF program symbols, merged in one Table with lookups both ways.
//
//	t, err := kallsyms.FromDump(d)       // vmlinux, from a dump's memory (decoded on first use)
//	t, err := kallsyms.OpenLive()        // or the running kernel's /proc/kallsyms
//	syms, err := t.Lookup("schedule")    // every symbol of that name
//	loc, err := t.LookupAddr(rip)        // loc.String() == "schedule+0x10/0xa0"
//	t.AddModule("ext4", syms)            // from the module list (objects/)
//	t.AddBPF(kallsyms.BPFProgName(tag, name), start, size)
//
// From memory. VMCOREINFO (6.0+) gives the run-time addresses of
// kallsyms_names, _num_syms, _token_table, _token_index and either
// _offsets with _relative_base or _addresses (LocationsFromVMCOREINFO).
// Where it does not (before 6.0, or no VMCOREINFO at all), FindLocations
// finds the tables in the kernel image by their shape (shape.go): the run
// of digit tokens in the token table, the token index after it, the
// markers, names and symbol count before it, the addresses in order; in
// every order scripts/kallsyms has written them since 4.6. FromDump does
// either, and Info.Located says which.
// Decode expands every name through the token table — the first char of
// the expansion is the symbol's type — with 2-byte name lengths (6.1+),
// and decodes addresses in every encoding kernels since 4.6 use:
// absolute kallsyms_addresses; relative offsets with absolute per-CPU
// symbols (CONFIG_KALLSYMS_ABSOLUTE_PERCPU: non-negative offsets are
// per-CPU offsets, negative ones relative_base - 1 - off); plain
// relative_base + (u32)off; and place-relative offsets. The encoding is
// chosen by the offsets' signs and confirmed by VMCOREINFO's other
// SYMBOL() addresses. kallsyms_seqs_of_names (6.2+, also in some 6.1
// stable kernels) becomes the name index when it is found and valid;
// otherwise the names are sorted. See raw.go for the layouts.
//
// Lookups. Vmlinux symbols are kept in parallel arrays in address order
// with one string for all names, and a sorted name index: lookups are
// binary searches. An address in vmlinux (_text to the last symbol)
// resolves to the nearest symbol at or below it, the first of aliases,
// with the distance to the next symbol as its size, as the kernel's
// kallsyms_lookup does; per-CPU symbols below _text are found by name
// only. Module and BPF symbols carry their sizes and hold only the
// addresses those cover.
//
// Errors. Every error wraps at most one sentinel:
//
//   - ErrNotFound: no such name (*NotFoundError, with up to five close
//     names), or no symbol at the address.
//   - ErrFormat: a table that does not decode or text that does not parse;
//     a *FormatError names the table, the symbol index or line, and the
//     address.
//   - ErrNotSupported: the tables cannot be found: neither VMCOREINFO nor
//     their shape locates them.
//   - ErrHidden: /proc/kallsyms printed zero addresses (kptr_restrict).
//
// Errors of reading memory are the Memory's, wrapped with the table, the
// index and the address. Limits are checked before allocating: at most
// 4Mi symbols, 128 MiB of compressed names, names of 1 KiB.
package kallsyms
