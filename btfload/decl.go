package btfload

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
)

// Decl declares a global variable the BTF does not type: global
// variables have no BTF (only per-CPU ones do, in the .data..percpu
// DATASEC), so "struct task_struct init_task" says what init_task is.
type Decl struct {
	Name string
	Type TypeSyntax
}

// String spells the declaration in C.
func (d Decl) String() string {
	t := d.Type
	var b strings.Builder
	if t.Tag != "" {
		b.WriteString(t.Tag + " ")
	}
	b.WriteString(t.Name + " " + strings.Repeat("*", t.Pointers) + d.Name)
	for _, n := range t.Dims {
		fmt.Fprintf(&b, "[%d]", n)
	}
	return b.String()
}

// ParseDecl parses one declaration: a C type, a name, and array
// dimensions after the name, with an optional ';':
// "struct idr prog_idr", "struct printk_ringbuffer *prb",
// "unsigned long __per_cpu_offset[8192]". Errors wrap ErrFormat.
func ParseDecl(s string) (Decl, error) {
	toks, err := tokenize(strings.TrimSpace(s))
	if err != nil {
		return Decl{}, fmt.Errorf("declaration %q: %w", s, err)
	}
	if n := len(toks); n > 0 && toks[n-1] == ";" {
		toks = toks[:n-1]
	}
	// The name is the last identifier before the dimensions.
	end := len(toks)
	for end >= 3 && toks[end-1] == "]" {
		end -= 3
	}
	if end < 2 || !isIdent(toks[end-1]) {
		return Decl{}, fmt.Errorf("declaration %q: want TYPE NAME, e.g. \"struct task_struct init_task\": %w", s, ErrFormat)
	}
	name := toks[end-1]
	if intWords[name] || qualifierWords[name] || name == "struct" || name == "union" || name == "enum" {
		return Decl{}, fmt.Errorf("declaration %q: missing the variable's name: %w", s, ErrFormat)
	}
	typeToks := append(append([]string{}, toks[:end-1]...), toks[end:]...)
	syn, rest, err := parseTypeSyntax(typeToks)
	if err != nil {
		return Decl{}, fmt.Errorf("declaration %q: %w", s, err)
	}
	if len(rest) > 0 {
		return Decl{}, fmt.Errorf("declaration %q: unexpected %q: %w", s, rest[0], ErrFormat)
	}
	return Decl{Name: name, Type: syn}, nil
}

// Builtin declares the globals kinspect's walkers need. Each is resolved
// only when used, so one a kernel lacks costs nothing until asked for.
var Builtin = []string{
	"struct task_struct init_task",
	"struct mm_struct init_mm",
	"struct pid_namespace init_pid_ns",
	"struct uts_namespace init_uts_ns",
	"struct net init_net",
	"struct list_head net_namespace_list",
	"struct list_head modules",
	"struct mod_tree_root mod_tree",
	"struct idr prog_idr",
	"struct idr map_idr",
	"struct idr link_idr",
	"struct idr btf_idr",
	"struct list_head bpf_kallsyms",
	"struct list_head btf_modules",
	"struct list_head slab_caches",
	"struct list_head super_blocks",
	"struct file_system_type *file_systems",
	"unsigned long __per_cpu_offset[8192]",
	"unsigned int nr_cpu_ids",
	"struct cpumask __cpu_possible_mask",
	"struct cpumask __cpu_online_mask",
	"struct cpumask __cpu_present_mask",
	"struct printk_ringbuffer *prb",
	"struct printk_ringbuffer printk_rb_static",
	"unsigned long jiffies",
	"u64 jiffies_64",
	"atomic_t panic_cpu",
	"unsigned long crash_notes",
	"unsigned long tainted_mask",
	"char *saved_command_line",
	"struct cgroup_root cgrp_dfl_root",
	"atomic_long_t _totalram_pages",
	"unsigned long max_pfn",
	"unsigned long page_offset_base",
	"unsigned long vmemmap_base",
	"unsigned long vmalloc_base",
	"struct kset *module_kset",
	"unsigned int nr_node_ids",
	"atomic_long_t vm_zone_stat[256]",
	"atomic_long_t vm_node_stat[256]",
	"atomic_long_t nr_swap_pages",
	"long total_swap_pages",
	"unsigned int nr_swapfiles",
	"struct percpu_counter vm_committed_as",
	"int sysctl_overcommit_ratio",
	"unsigned long sysctl_overcommit_kbytes",
	"atomic_long_t nr_vmalloc_pages",
	"unsigned long pcpu_nr_populated",
	"int pcpu_nr_units",
	"unsigned long totalreserve_pages",
	"unsigned long direct_pages_count[5]",
	"struct super_block *blockdev_superblock",
	"struct pglist_data *node_data[1024]",
	"struct hstate hstates[4]",
	"int hugetlb_max_hstate",
	"unsigned int default_hstate_idx",
	"u64 zswap_pool_total_size",
	"atomic_t zswap_stored_pages",
	"struct list_head zswap_pools",
	"atomic_long_t num_poisoned_pages",
	"unsigned int __pgtable_l5_enabled",
	"struct rb_root vmap_area_root",
	"struct list_head vmap_area_list",
	"struct vmap_node *vmap_nodes",
	"unsigned int nr_vmap_nodes",
	"int vsyscall_mode",
	"struct vm_area_struct gate_vma",
	"struct char_device_struct *chrdevs[255]",
	"struct blk_major_name *major_names[255]",
	"unsigned long avenrun[3]",
	"int nr_threads",
	"bool tick_nohz_active",
	"struct maple_tree sparse_irqs",
	"struct xarray irq_desc_tree",
	"int nr_irqs",
	"atomic_t irq_err_count",
	"atomic_t irq_mis_count",
	"unsigned int hrtimer_resolution",
}

// Decls is a set of declarations: Builtin, then what users add (a later
// declaration of a name replaces an earlier one). Safe for concurrent use.
type Decls struct {
	mu sync.RWMutex
	m  map[string]Decl
}

// NewDecls returns Builtin's declarations.
func NewDecls() *Decls {
	d := &Decls{m: map[string]Decl{}}
	for _, s := range Builtin {
		if err := d.Add(s); err != nil {
			panic(err) // Builtin is tested
		}
	}
	return d
}

// Add parses and adds one declaration; errors wrap ErrFormat.
func (d *Decls) Add(s string) error {
	dc, err := ParseDecl(s)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.m[dc.Name] = dc
	d.mu.Unlock()
	return nil
}

// AddText adds declarations one a line (or separated by ';'), ignoring
// blank lines and comments starting with '#' or '//'. Errors name the
// line and wrap ErrFormat.
func (d *Decls) AddText(r io.Reader, source string) error {
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.Index(text, "//"); i >= 0 {
			text = text[:i]
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		for _, part := range strings.Split(text, ";") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			if err := d.Add(part); err != nil {
				return fmt.Errorf("%s:%d: %w", source, line, err)
			}
		}
	}
	return sc.Err()
}

// AddFile adds the declarations of a file (see AddText).
func (d *Decls) AddFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("declarations: %w", err)
	}
	defer f.Close()
	return d.AddText(f, path)
}

// Lookup returns the declaration of name.
func (d *Decls) Lookup(name string) (Decl, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	dc, ok := d.m[name]
	return dc, ok
}

// Names lists the declared names, sorted.
func (d *Decls) Names() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(d.m))
	for n := range d.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
