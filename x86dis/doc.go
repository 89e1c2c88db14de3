// Package x86dis disassembles x86-64 machine code, such as a BPF
// program's JIT image, into the text GNU objdump prints in AT&T syntax
// ("mov    %rsp,%rbp", "movabs $0xffff8e9099012400,%rdi",
// "call   0xffffffffaf032840"), one Inst per instruction.
//
// Decoding is golang.org/x/arch/x86/x86asm's; the rendering is this
// package's, after binutils 2.40's objdump: operands in AT&T order,
// immediates unsigned in the operand's width, explicit zero
// displacements kept ("0x0(%rax)"), size suffixes only where no register
// gives the size, "ret", "call" and "leave" without suffixes. Byte
// patterns x86asm does not know (endbr64, clac, stac, serialize, ...)
// are decoded here; a byte that decodes to nothing is objdump's "(bad)".
package x86dis
