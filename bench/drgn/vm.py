# a task's address space, /proc/PID/maps-like (like vm PID)
import sys
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.mm import for_each_vma, vma_name, task_rss, task_vsize
t = find_task(prog, int(sys.argv[1]))
mm = t.mm
rss = task_rss(prog, t)
print(f"PID: {t.pid.value_()} TASK: {t.value_():x} COMMAND: {t.comm.string_().decode()}")
print(f"MM {mm.value_():x} PGD {mm.pgd.value_():x} VSZ {task_vsize(t) // 1024}k RSS {rss.total * 4}k (file {rss.file * 4}k anon {rss.anon * 4}k shmem {rss.shmem * 4}k)")
for vma in for_each_vma(mm):
    fl = vma.vm_flags.value_()
    perms = ("r" if fl & 1 else "-") + ("w" if fl & 2 else "-") + ("x" if fl & 4 else "-") + ("s" if fl & 8 else "p")
    f = vma.vm_file
    ino = f.f_inode.i_ino.value_() if f else 0
    print(f"{vma.value_():x} {vma.vm_start.value_():x}-{vma.vm_end.value_():x} {perms} {vma.vm_pgoff.value_() << 12:08x} {ino:8} {vma_name(vma).decode(errors='replace')}")
