// Package objects is the typed kernel object engine: values with BTF types,
// member paths, and walkers of kernel lists, trees, tasks, modules and BPF
// objects.
package objects
