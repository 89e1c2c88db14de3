# slab caches: address, objsize, allocated, total, slabs, slab size, name (like kmem -s)
from drgn.helpers.linux.slab import for_each_slab_cache, slab_cache_usage

print("CACHE             OBJSIZE  ALLOCATED     TOTAL  SLABS  SSIZE  NAME")
for s in for_each_slab_cache(prog):
    u = slab_cache_usage(s)
    order = s.oo.x.value_() >> 16
    print(f"{s.value_():x} {s.object_size.value_():8} {u.num_objs - u.free_objs:10} {u.num_objs:9} {u.num_slabs:6} {(prog['PAGE_SIZE'].value_() << order) // 1024:5}k  {s.name.string_().decode()}")
