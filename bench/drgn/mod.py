# loaded modules, /proc/modules-like (like mod)
from drgn.helpers.linux.module import for_each_module, module_taints
from drgn.helpers.linux.list import list_for_each_entry
for m in for_each_module(prog):
    users = [u.source.name.string_().decode() for u in list_for_each_entry("struct module_use", m.source_list.address_of_(), "source_list")]
    core = m.core_layout
    size = core.size.value_() + m.init_layout.size.value_()
    print(f"{m.value_():x} {m.name.string_().decode():24} {core.base.value_():x} {size:8} {m.refcnt.counter.value_()} {','.join(users) or '-'} {m.state.format_(type_name=False)}")
