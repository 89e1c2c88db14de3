# busy vmalloc areas, as /proc/vmallocinfo (like kmem -v)
from drgn import FaultError
from drgn.helpers.linux.mm import for_each_vmap_area
for va in for_each_vmap_area(prog):
    vm = va.vm
    if not vm:
        continue
    caller = vm.caller.value_()
    try:
        sym = prog.symbol(caller)
        cs = f"{sym.name}+0x{caller - sym.address:x}/0x{sym.size:x}"
    except LookupError:
        cs = f"0x{caller:x}"
    phys = f" phys=0x{vm.phys_addr.value_():x}" if vm.phys_addr else ""
    pages = f" pages={vm.nr_pages.value_()}" if vm.nr_pages else ""
    print(f"0x{va.va_start.value_():016x}-0x{va.va_end.value_():016x} {vm.size.value_():8} {cs}{pages}{phys}")
