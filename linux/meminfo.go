package linux

import (
	"errors"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// /proc/meminfo as fs/proc/meminfo.c computes it, from the kernel's
// global counters (vm_zone_stat, vm_node_stat: the per-CPU deltas not
// yet folded in are left out, as meminfo leaves them out), totalram,
// the swap, commit, vmalloc, per-CPU, hugetlb and direct-map counters.

// MeminfoLine is a line of /proc/meminfo.
type MeminfoLine struct {
	Name string `json:"name"`
	// Value is in kB, or a count of huge pages (HugePages_*: Unit "").
	Value uint64 `json:"value"`
	Unit  string `json:"unit"`
}

// String is the line as /proc/meminfo prints it: the value ends in
// column 24 ("%-16s%8lu", or "HardwareCorrupted: %5lu").
func (l MeminfoLine) String() string {
	s := fmt.Sprintf("%-16s%*d", l.Name+":", max(1, 24-max(16, len(l.Name)+1)), l.Value)
	if l.Unit != "" {
		s += " " + l.Unit
	}
	return s
}

// Meminfo is what /proc/meminfo shows, in its order; the lines that
// could not be computed are left out and named in Missing, with why.
type Meminfo struct {
	Lines   []MeminfoLine `json:"lines"`
	Missing []string      `json:"missing,omitempty"`
}

// Get returns the value of the line called name.
func (m *Meminfo) Get(name string) (uint64, bool) {
	for _, l := range m.Lines {
		if l.Name == name {
			return l.Value, true
		}
	}
	return 0, false
}

// memStats reads the kernel's counters by enumerator name.
type memStats struct {
	p          *objects.Program
	zone, node objects.Value
}

// stat reads the counter named item (an enum zone_stat_item or
// node_stat_item enumerator) of vm_zone_stat or vm_node_stat, clamped
// at 0 as global_zone_page_state does.
func (s *memStats) stat(arr objects.Value, item string) (uint64, error) {
	i, err := s.p.Enumerator(item)
	if err != nil {
		return 0, err
	}
	e, err := arr.Index(int64(i))
	if err != nil {
		return 0, err
	}
	v, err := e.MemberInt("counter")
	if err != nil {
		return 0, err
	}
	return uint64(max(v, 0)), nil
}

func (s *memStats) zoneStat(item string) (uint64, error) { return s.stat(s.zone, item) }
func (s *memStats) nodeStat(item string) (uint64, error) { return s.stat(s.node, item) }

// ReadMeminfo computes /proc/meminfo (meminfo_proc_show) from the
// kernel's counters. A line whose counter this kernel lacks (its
// CONFIG off, or a kernel before the line) is left out, named in
// Missing; the error is for what no line can do without (totalram,
// vm_zone_stat, vm_node_stat).
func ReadMeminfo(p *objects.Program) (*Meminfo, error) {
	var m Meminfo
	s := &memStats{p: p}
	var err error
	if s.zone, err = p.Variable("vm_zone_stat"); err != nil {
		return nil, fmt.Errorf("meminfo: %w", err)
	}
	if s.node, err = p.Variable("vm_node_stat"); err != nil {
		return nil, fmt.Errorf("meminfo: %w", err)
	}
	tr, err := p.Variable("_totalram_pages")
	if err != nil {
		return nil, fmt.Errorf("meminfo: %w", err)
	}
	totalram, err := tr.MemberUint("counter")
	if err != nil {
		return nil, fmt.Errorf("meminfo: %w", err)
	}
	if _, err := s.zoneStat("NR_FREE_PAGES"); err != nil {
		return nil, fmt.Errorf("meminfo: %w", err)
	}
	add := func(name string, pages uint64, err error) {
		if err != nil {
			m.Missing = append(m.Missing, name+": "+err.Error())
			return
		}
		m.Lines = append(m.Lines, MeminfoLine{Name: name, Value: pages << (PageShift - 10), Unit: "kB"})
	}
	addKB := func(name string, kb uint64, err error) {
		if err != nil {
			m.Missing = append(m.Missing, name+": "+err.Error())
			return
		}
		m.Lines = append(m.Lines, MeminfoLine{Name: name, Value: kb, Unit: "kB"})
	}
	varUint := func(name, path string) (uint64, error) {
		v, err := p.Variable(name)
		if err != nil {
			return 0, err
		}
		if path == "" {
			return v.Uint()
		}
		return v.MemberUint(path)
	}

	add("MemTotal", totalram, nil)
	free, _ := s.zoneStat("NR_FREE_PAGES")
	add("MemFree", free, nil)
	avail, err := memAvailable(s, free)
	add("MemAvailable", avail, err)
	buffers, berr := nrBlockdevPages(p)
	add("Buffers", buffers, berr)
	swapCache, scErr := s.nodeStat("NR_SWAPCACHE")
	filePages, err := s.nodeStat("NR_FILE_PAGES")
	cached := int64(filePages) - int64(swapCache) - int64(buffers)
	add("Cached", uint64(max(cached, 0)), errors.Join(err, scErr, berr))
	add("SwapCached", swapCache, scErr)
	lru := map[string]uint64{}
	var lruErr error
	for _, n := range []string{"NR_INACTIVE_ANON", "NR_ACTIVE_ANON", "NR_INACTIVE_FILE", "NR_ACTIVE_FILE", "NR_UNEVICTABLE"} {
		v, err := s.nodeStat(n)
		lru[n], lruErr = v, errors.Join(lruErr, err)
	}
	add("Active", lru["NR_ACTIVE_ANON"]+lru["NR_ACTIVE_FILE"], lruErr)
	add("Inactive", lru["NR_INACTIVE_ANON"]+lru["NR_INACTIVE_FILE"], lruErr)
	add("Active(anon)", lru["NR_ACTIVE_ANON"], lruErr)
	add("Inactive(anon)", lru["NR_INACTIVE_ANON"], lruErr)
	add("Active(file)", lru["NR_ACTIVE_FILE"], lruErr)
	add("Inactive(file)", lru["NR_INACTIVE_FILE"], lruErr)
	add("Unevictable", lru["NR_UNEVICTABLE"], lruErr)
	v, err := s.zoneStat("NR_MLOCK")
	add("Mlocked", v, err)
	totalSwap, err := varUint("total_swap_pages", "")
	add("SwapTotal", totalSwap, err)
	// si_swapinfo adds the pages of swap areas being swapped off
	// (nr_to_be_unused); with no swap area there are none.
	v, err = varUint("nr_swap_pages", "counter")
	if n, e := varUint("nr_swapfiles", ""); e == nil && n > 0 && err == nil && totalSwap > 0 {
		err = fmt.Errorf("swap areas being swapped off are not counted: %w", objects.ErrNotSupported)
	}
	add("SwapFree", v, err)
	// Zswap: zswap_pool_total_size (bytes) before 6.10; the pools' pages
	// after, known here only when there is no pool.
	if b, err := varUint("zswap_pool_total_size", ""); err == nil {
		addKB("Zswap", b>>10, nil)
	} else if pools, perr := p.Variable("zswap_pools"); perr == nil {
		empty, err := objects.ListEmpty(pools)
		if err == nil && !empty {
			err = fmt.Errorf("the zswap pools' pages: %w", objects.ErrNotSupported)
		}
		add("Zswap", 0, err)
	} else {
		add("Zswap", 0, err)
	}
	v, err = varUint("zswap_stored_pages", "counter")
	add("Zswapped", v&0xffffffff, err)
	for _, l := range []struct{ name, item string }{
		{"Dirty", "NR_FILE_DIRTY"}, {"Writeback", "NR_WRITEBACK"}, {"AnonPages", "NR_ANON_MAPPED"},
		{"Mapped", "NR_FILE_MAPPED"}, {"Shmem", "NR_SHMEM"},
	} {
		v, err := s.nodeStat(l.item)
		add(l.name, v, err)
	}
	srec, err1 := s.nodeStat("NR_SLAB_RECLAIMABLE_B")
	sunrec, err2 := s.nodeStat("NR_SLAB_UNRECLAIMABLE_B")
	misc, err3 := s.nodeStat("NR_KERNEL_MISC_RECLAIMABLE")
	add("KReclaimable", srec+misc, errors.Join(err1, err3))
	add("Slab", srec+sunrec, errors.Join(err1, err2))
	add("SReclaimable", srec, err1)
	add("SUnreclaim", sunrec, err2)
	v, err = s.nodeStat("NR_KERNEL_STACK_KB")
	addKB("KernelStack", v, err)
	v, err = s.nodeStat("NR_PAGETABLE")
	add("PageTables", v, err)
	v, err = s.nodeStat("NR_SECONDARY_PAGETABLE")
	add("SecPageTables", v, err)
	add("NFS_Unstable", 0, nil)
	if _, e := p.Enumerator("NR_BOUNCE"); e == nil {
		v, err = s.zoneStat("NR_BOUNCE")
		add("Bounce", v, err)
	}
	v, err = s.nodeStat("NR_WRITEBACK_TEMP")
	add("WritebackTmp", v, err)
	hugeTotal, hugeErr := hugetlbTotalPages(p)
	limit, err := commitLimit(p, totalram, hugeTotal, totalSwap)
	add("CommitLimit", limit, errors.Join(err, hugeErr))
	committed, err := percpuCounterSum(p, "vm_committed_as")
	add("Committed_AS", uint64(max(committed, 0)), err)
	vt, err := vmallocTotal(p)
	addKB("VmallocTotal", vt>>10, err)
	v, err = varUint("nr_vmalloc_pages", "counter")
	add("VmallocUsed", v, err)
	add("VmallocChunk", 0, nil)
	pop, err1 := varUint("pcpu_nr_populated", "")
	units, err2 := varUint("pcpu_nr_units", "")
	add("Percpu", pop*units, errors.Join(err1, err2))
	v, err = varUint("num_poisoned_pages", "counter")
	add("HardwareCorrupted", v, err)
	for _, l := range []struct{ name, item string }{
		{"AnonHugePages", "NR_ANON_THPS"}, {"ShmemHugePages", "NR_SHMEM_THPS"}, {"ShmemPmdMapped", "NR_SHMEM_PMDMAPPED"},
		{"FileHugePages", "NR_FILE_THPS"}, {"FilePmdMapped", "NR_FILE_PMDMAPPED"},
	} {
		v, err := s.nodeStat(l.item)
		add(l.name, v, err)
	}
	if _, e := p.Enumerator("NR_UNACCEPTED"); e == nil {
		v, err = s.zoneStat("NR_UNACCEPTED")
		add("Unaccepted", v, err)
	}
	hugetlbLines(p, &m)
	dpc, err := p.Variable("direct_pages_count")
	for i, l := range []struct {
		name  string
		shift uint
	}{{"DirectMap4k", 2}, {"DirectMap2M", 11}, {"DirectMap1G", 20}} {
		var n uint64
		if err == nil {
			var e objects.Value
			if e, err = dpc.Index(int64(i + 1)); err == nil { // PG_LEVEL_4K is 1
				n, err = e.Uint()
			}
		}
		addKB(l.name, n<<l.shift, err)
	}
	return &m, nil
}

// memAvailable is si_mem_available: free pages less totalreserve_pages,
// plus the page cache and reclaimable slab each less min(half, the
// zones' low watermarks).
func memAvailable(s *memStats, free uint64) (uint64, error) {
	p := s.p
	v, err := p.Variable("totalreserve_pages")
	if err != nil {
		return 0, err
	}
	reserve, err := v.Uint()
	if err != nil {
		return 0, err
	}
	low, err := lowWatermarks(p)
	if err != nil {
		return 0, err
	}
	af, err1 := s.nodeStat("NR_ACTIVE_FILE")
	inf, err2 := s.nodeStat("NR_INACTIVE_FILE")
	srec, err3 := s.nodeStat("NR_SLAB_RECLAIMABLE_B")
	misc, err4 := s.nodeStat("NR_KERNEL_MISC_RECLAIMABLE")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return 0, err
	}
	avail := int64(free) - int64(reserve)
	pagecache := af + inf
	pagecache -= min(pagecache/2, low)
	reclaimable := srec + misc
	reclaimable -= min(reclaimable/2, low)
	avail += int64(pagecache) + int64(reclaimable)
	return uint64(max(avail, 0)), nil
}

// ForEachOnlinePgdat yields each node's struct pglist_data: node_data[]
// of the NUMA kernel (the entries set, below nr_node_ids), else
// contig_page_data.
func ForEachOnlinePgdat(p *objects.Program) ([]objects.Value, error) {
	nd, err := p.Variable("node_data")
	if err != nil {
		if cp, cerr := p.ObjectOf("struct pglist_data", 0); cerr == nil {
			if a, serr := p.Symbol("contig_page_data"); serr == nil {
				return []objects.Value{p.Object(cp.Type(), a)}, nil
			}
		}
		return nil, err
	}
	var out []objects.Value
	for i := range nrNodeIDs(p) {
		e, err := nd.Index(int64(i))
		if err != nil {
			return nil, err
		}
		a, err := e.Uint()
		if err != nil {
			return nil, err
		}
		if a == 0 {
			continue
		}
		d, err := e.Deref()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// lowWatermarks sums low_wmark_pages of every zone of every node
// (for_each_zone): _watermark[WMARK_LOW] + watermark_boost.
func lowWatermarks(p *objects.Program) (uint64, error) {
	nodes, err := ForEachOnlinePgdat(p)
	if err != nil {
		return 0, err
	}
	wl, err := p.Enumerator("WMARK_LOW")
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, n := range nodes {
		zones, err := n.Member("node_zones")
		if err != nil {
			return 0, err
		}
		nz, err := zones.Len()
		if err != nil {
			return 0, err
		}
		for i := range nz {
			z, err := zones.Index(int64(i))
			if err != nil {
				return 0, err
			}
			w, err := z.MemberUint(fmt.Sprintf("_watermark[%d]", wl))
			if err != nil {
				return 0, err
			}
			boost, _ := z.MemberUint("watermark_boost")
			total += w + boost
		}
	}
	return total, nil
}

// nrBlockdevPages is nr_blockdev_pages: the page cache of the block
// devices' inodes (blockdev_superblock->s_inodes).
func nrBlockdevPages(p *objects.Program) (uint64, error) {
	v, err := p.Variable("blockdev_superblock")
	if err != nil {
		return 0, err
	}
	sb, err := v.Deref()
	if err != nil {
		return 0, err
	}
	head, err := sb.Member("s_inodes")
	if err != nil {
		return 0, err
	}
	var total uint64
	for ino, err := range objects.ListForEachEntry(head, "struct inode", "i_sb_list") {
		if err != nil {
			return 0, err
		}
		n, err := ino.MemberUint("i_mapping->nrpages")
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// percpuCounterSum is percpu_counter_sum: count plus every possible
// CPU's s32 delta.
func percpuCounterSum(p *objects.Program, name string) (int64, error) {
	v, err := p.Variable(name)
	if err != nil {
		return 0, err
	}
	return percpuCounterSumOf(v)
}

// percpuCounterSumOf is percpu_counter_sum of a struct percpu_counter.
func percpuCounterSumOf(v objects.Value) (int64, error) {
	p := v.Program()
	total, err := v.MemberInt("count")
	if err != nil {
		return 0, err
	}
	counters, err := v.Member("counters")
	if err != nil {
		return 0, err
	}
	cpus, err := p.PossibleCPUs()
	if err != nil {
		return 0, err
	}
	for _, cpu := range cpus {
		c, err := p.PerCPU(counters, cpu)
		if err != nil {
			return 0, err
		}
		d, err := c.Int()
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// commitLimit is vm_commit_limit: overcommit_kbytes, or
// overcommit_ratio percent of the RAM outside huge pages, plus swap.
func commitLimit(p *objects.Program, totalram, huge, swap uint64) (uint64, error) {
	kb, err := p.Variable("sysctl_overcommit_kbytes")
	if err != nil {
		return 0, err
	}
	k, err := kb.Uint()
	if err != nil {
		return 0, err
	}
	if k != 0 {
		return k>>(PageShift-10) + swap, nil
	}
	rv, err := p.Variable("sysctl_overcommit_ratio")
	if err != nil {
		return 0, err
	}
	ratio, err := rv.Int()
	if err != nil {
		return 0, err
	}
	return (totalram-huge)*uint64(ratio)/100 + swap, nil
}

// vmallocTotal is VMALLOC_TOTAL, VMALLOC_SIZE_TB's bytes less one of x86-64: 32 TiB with
// 4-level page tables, 12800 TiB with 5 (pgtable_types.h).
func vmallocTotal(p *objects.Program) (uint64, error) {
	tb := uint64(32)
	if v, err := p.Variable("__pgtable_l5_enabled"); err == nil {
		if l5, err := v.Uint(); err == nil && l5 != 0 {
			tb = 12800
		}
	}
	return tb<<40 - 1, nil
}

// hugetlbTotalPages is hugetlb_total_pages: every hstate's huge pages,
// in base pages.
func hugetlbTotalPages(p *objects.Program) (uint64, error) {
	hs, n, err := hstates(p)
	if err != nil {
		return 0, err
	}
	var total uint64
	for i := range n {
		h, err := hs.Index(int64(i))
		if err != nil {
			return 0, err
		}
		nr, err := h.MemberUint("nr_huge_pages")
		if err != nil {
			return 0, err
		}
		order, err := h.MemberUint("order")
		if err != nil {
			return 0, err
		}
		total += nr << order
	}
	return total, nil
}

func hstates(p *objects.Program) (objects.Value, int, error) {
	hs, err := p.Variable("hstates")
	if err != nil {
		return objects.Value{}, 0, err
	}
	mv, err := p.Variable("hugetlb_max_hstate")
	if err != nil {
		return objects.Value{}, 0, err
	}
	n, err := mv.Int()
	if err != nil {
		return objects.Value{}, 0, err
	}
	if n < 0 || n > 4 {
		return objects.Value{}, 0, fmt.Errorf("hugetlb_max_hstate %d: %w", n, objects.ErrCorrupt)
	}
	return hs, int(n), nil
}

// hugetlbLines adds hugetlb_report_meminfo's lines: the default
// hstate's counts and size, and the memory of all huge pages.
func hugetlbLines(p *objects.Program, m *Meminfo) {
	hs, n, err := hstates(p)
	miss := func(err error) {
		for _, name := range []string{"HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "Hugepagesize", "Hugetlb"} {
			m.Missing = append(m.Missing, name+": "+err.Error())
		}
	}
	if err != nil {
		miss(err)
		return
	}
	dv, err := p.Variable("default_hstate_idx")
	if err != nil {
		miss(err)
		return
	}
	def, err := dv.Uint()
	if err != nil {
		miss(err)
		return
	}
	var totalKB uint64
	var lines []MeminfoLine
	for i := range n {
		h, err := hs.Index(int64(i))
		var s *objects.Struct
		if err == nil {
			_, s, err = p.ReadStruct("struct hstate", h.Addr())
		}
		if err != nil {
			miss(err)
			return
		}
		count, order := s.Uint("nr_huge_pages"), s.Uint("order")
		sizeKB := uint64(PageSize) << order >> 10
		totalKB += sizeKB * count
		if uint64(i) == def {
			lines = []MeminfoLine{
				{Name: "HugePages_Total", Value: count}, {Name: "HugePages_Free", Value: s.Uint("free_huge_pages")},
				{Name: "HugePages_Rsvd", Value: s.Uint("resv_huge_pages")}, {Name: "HugePages_Surp", Value: s.Uint("surplus_huge_pages")},
				{Name: "Hugepagesize", Value: sizeKB, Unit: "kB"},
			}
		}
		if err := s.Err(); err != nil {
			miss(err)
			return
		}
	}
	m.Lines = append(append(m.Lines, lines...), MeminfoLine{Name: "Hugetlb", Value: totalKB, Unit: "kB"})
}
