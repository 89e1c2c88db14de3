# memory summary, /proc/meminfo-like, from the kernel's counters (like kmem -i)
from drgn.helpers.linux.mm import totalram_pages, vm_commit_limit, vm_memory_committed
from drgn.helpers.linux.vmstat import global_node_page_state, nr_free_pages
from drgn.helpers.linux.slab import slab_total_usage
kb = prog["PAGE_SIZE"].value_() // 1024
def st(name):
    return global_node_page_state(prog[name])
lines = [
    ("MemTotal", totalram_pages(prog)),
    ("MemFree", nr_free_pages(prog)),
    ("Buffers", 0),
    ("Cached", st("NR_FILE_PAGES") - st("NR_SHMEM")),
    ("Active(anon)", st("NR_ACTIVE_ANON")), ("Inactive(anon)", st("NR_INACTIVE_ANON")),
    ("Active(file)", st("NR_ACTIVE_FILE")), ("Inactive(file)", st("NR_INACTIVE_FILE")),
    ("Unevictable", st("NR_UNEVICTABLE")),
    ("Dirty", st("NR_FILE_DIRTY")), ("Writeback", st("NR_WRITEBACK")),
    ("AnonPages", st("NR_ANON_MAPPED")), ("Mapped", st("NR_FILE_MAPPED")),
    ("Shmem", st("NR_SHMEM")),
    ("KReclaimable", st("NR_SLAB_RECLAIMABLE_B") + st("NR_KERNEL_MISC_RECLAIMABLE")),
    ("SReclaimable", st("NR_SLAB_RECLAIMABLE_B")), ("SUnreclaim", st("NR_SLAB_UNRECLAIMABLE_B")),
    ("KernelStack(kB)", st("NR_KERNEL_STACK_KB") // kb),
    ("PageTables", st("NR_PAGETABLE")),
    ("CommitLimit", vm_commit_limit(prog)), ("Committed_AS", vm_memory_committed(prog)),
]
for name, pages in lines:
    print(f"{name + ':':16}{pages * kb:10} kB")
print(f"{'Slab(total):':16}{slab_total_usage(prog).total_pages * kb:10} kB")
