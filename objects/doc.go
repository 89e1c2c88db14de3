// Package objects is the typed kernel object engine: values with BTF
// types read lazily from kernel memory, member paths, casts, per-CPU
// access, a small C expression language, and walkers of the kernel's
// lists, trees (rbtrees, maple trees: MtForEach) and arrays (xarrays:
// XArrayForEach, XALoad) named after the kernel's own macros. The
// walkers of particular kernel structures build on it: package linux
// (tasks, modules, printk, mounts, files) and package bpf.
//
// A Program ties together memory (any Memory, e.g. *vmcore.KernelAS),
// types (a *btfload.Spec), symbols (a Symbolizer) and declarations of
// global variables (btfload.Decls):
//
//	p := objects.NewProgram(kernel, spec, syms)
//	task, _ := p.Variable("init_task")
//	comm, _ := task.Path("comm")
//	s, _ := comm.CString()                        // "swapper/0"
//	for t, err := range objects.ListForEachEntry(tasks, "struct task_struct", "tasks") { ... }
//
// A Value is an object at an address (nothing is read until asked) or a
// constant. Walkers are bounded (Program's limit, WithLimit) and detect
// cycles; they yield an error naming the address instead of looping or
// panicking.
//
// Errors wrap ErrNotFound (no such symbol, variable, member or type — with
// close names), ErrType (an operation the value's type does not allow),
// ErrCorrupt (a cycle, a NULL or inconsistent pointer in a kernel
// structure), ErrLimit (a walk longer than the limit), ErrNoMemory (no
// kernel memory to read), or the memory's own error, which names the
// virtual address (vmcore.AddrError).
package objects
