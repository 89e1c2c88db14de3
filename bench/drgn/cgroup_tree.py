# cgroups with BPF programs attached, bpftool cgroup tree-like (like cgroup tree)
from drgn.helpers.linux.cgroup import css_for_each_descendant_pre, cgroup_path
from drgn.helpers.linux.list import hlist_for_each_entry
root = prog["cgrp_dfl_root"].cgrp
print("CgroupPath\nID       AttachType      AttachFlags     Name")
ntypes = len(root.bpf.progs)
for css in css_for_each_descendant_pre(root.self.address_of_()):
    cg = css.cgroup
    lines = []
    for at in range(ntypes):
        # cgroup_bpf_prog_for_each yields pl->prog, NULL for a program attached by a link
        for pl in hlist_for_each_entry("struct bpf_prog_list", cg.bpf.progs[at].address_of_(), "node"):
            p = pl.prog if pl.prog else pl.link.link.prog
            lines.append(f"{p.aux.id.value_():<8} {at:<15} {'':15} {p.aux.name.string_().decode()}")
    if lines:
        print("/sys/fs/cgroup" + cgroup_path(cg).decode().rstrip("/"))
        print("\n".join(lines))
