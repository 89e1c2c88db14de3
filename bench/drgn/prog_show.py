# loaded BPF programs, bpftool prog show-like (like prog show)
import datetime
from drgn.helpers.linux.bpf import bpf_prog_for_each, bpf_prog_used_maps
for p in bpf_prog_for_each(prog):
    a = p.aux
    name = a.name.string_().decode()
    tag = bytes(p.tag.read_()).hex()
    maps = ",".join(str(m.id.value_()) for m in bpf_prog_used_maps(p))
    print(f"{a.id.value_()}: {p.type.format_(type_name=False).removeprefix('BPF_PROG_TYPE_').lower()}  name {name}  tag {tag}{'  gpl' if p.gpl_compatible else ''}")
    print(f"\tloaded_at {a.load_time.value_()}  uid {a.user.uid.val.value_() if a.user else 0}")
    print(f"\txlated {p.len.value_() * 8}B  jited {p.jited_len.value_()}B  memlock {p.pages.value_() * 4096}B" + (f"  map_ids {maps}" if maps else "") + (f"  btf_id {a.btf.id.value_()}" if a.btf else ""))
