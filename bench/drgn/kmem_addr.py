# what an address is (like kmem ADDR): identify_address + slab_object_info + its page
import sys
from drgn.helpers.common.memory import identify_address
from drgn.helpers.linux.slab import slab_object_info
from drgn.helpers.linux.mm import virt_to_page, page_to_pfn, decode_page_flags, compound_head
addr = int(sys.argv[1], 16)
print(f"{addr:x}: {identify_address(prog, addr)}")
info = slab_object_info(prog, addr)
if info:
    print(f"  CACHE {info.slab_cache.value_():x} {info.slab_cache.name.string_().decode()} SLAB {info.slab.value_():x} OBJECT {info.address:x} {'ALLOCATED' if info.allocated else 'FREE'}")
page = virt_to_page(prog, addr)
print(f"PAGE {page.value_():x} PFN 0x{page_to_pfn(page).value_():x} head {compound_head(page).value_():x}")
print(f"  flags {decode_page_flags(page)} refcount {page._refcount.counter.value_()} mapping {page.mapping.value_():x} index {page.index.value_():x}")
