// Package bpfinsn decodes eBPF instructions and renders them as the
// kernel and bpftool do: the kernel's disassembler format
// (kernel/bpf/disasm.c, "   0: (b7) r0 = 0"), bpftool's xlated dumps
// (text, opcodes, linum, JSON) and its Graphviz control-flow graph
// (bpftool cfg.c), with the kernel's program tag (bpf_prog_calc_tag), the
// rewrites the kernel applies before handing xlated instructions to user
// space (bpf_insn_prepare_dump), and the reconstruction of the
// instructions as loaded (AsLoaded), which undoes the verifier's
// invertible rewrites so that the tag can be recomputed.
//
// Everything here is a pure function of decoded data and a Resolver for
// kernel symbols: the instructions, the program's func_info and
// line_info records, and its BTF, however they were obtained (kernel
// memory, a bpf_prog_info, an ELF file).
//
//	insns, err := bpfinsn.Decode(raw)
//	p := &bpfinsn.Program{Insns: insns, Funcs: funcs, Lines: lines, Syms: resolver, CallBase: base}
//	p.WriteText(w, bpfinsn.TextOptions{Opcodes: true})
//
// Errors wrap ErrFormat (bytes that do not decode: a truncated
// instruction, a wide load without its second half, BTF that does not
// parse, a record out of range).
package bpfinsn
