// Package kallsyms knows the kernel's symbols: /proc/kallsyms text, the
// table rebuilt from kernel memory, module symbols and BPF program symbols.
package kallsyms
