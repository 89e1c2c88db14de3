// slab.js: a memory summary and the slab caches, as /proc/meminfo and
// /proc/slabinfo show them (SLUB).
//
// What it shows: total RAM (MemTotal, from _totalram_pages) and each
// slab cache: objects allocated (num_objs, summed over the NUMA nodes'
// total_objects), object size (s->size), objects per slab and pages per
// slab (from s->oo), and the memory its slabs take, largest first.
//
// Run: kinspect -c DUMP script samples/slab.js [--json] [N]
//      (N: only the N largest; --json: {"mem_total_kb", "caches": [{name,
//      num_objs, objsize, objperslab, pagesperslab, bytes}], "errors":
//      [{cache, error}] for caches that could not be read})
// Filtered kdumps (makedumpfile -d 31) may lack the slab pages.

const args = kinspect.args.filter((a) => a !== "--json");
const json = kinspect.args.includes("--json");
const limit = args.length ? Number(args[0]) : Infinity;
const PAGE = 4096; // x86-64
const OO_SHIFT = 16; // mm/slub.c: struct kmem_cache_order_objects packs order << 16 | objects

// kmem_cache is allocated with node[nr_node_ids] only (kmem_cache_init).
let nrNodes = 1;
try {
	kernel.declare("unsigned int nr_node_ids");
	nrNodes = kernel.var("nr_node_ids").value_();
} catch (e) {
	// !CONFIG_NUMA: one node
}
const memTotalKB = Number(kernel.var("_totalram_pages").counter) * PAGE / 1024;
const caches = [];
const errors = [];
for (const s of kernel.listForEach(kernel.var("slab_caches"), "struct kmem_cache", "list")) {
	// A cache whose memory the dump lacks gets an error; the others are
	// still counted.
	try {
		let objs = 0n, slabs = 0n;
		for (let nid = 0; nid < Math.min(nrNodes, s.node.length); nid++) {
			const n = s.node[nid];
			if (n.is_null_()) continue;
			objs += BigInt(n.total_objects.counter);
			slabs += BigInt(n.nr_slabs.counter);
		}
		const oo = s.oo.x;
		const order = oo >>> OO_SHIFT;
		caches.push({
			name: s.name.string_(), num_objs: Number(objs), objsize: s.size,
			objperslab: oo & ((1 << OO_SHIFT) - 1), pagesperslab: 1 << order,
			bytes: Number(slabs) * (1 << order) * PAGE,
		});
	} catch (e) {
		errors.push({ cache: "0x" + s.addr_.toString(16), error: e.message });
	}
}
caches.sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1));
const shown = caches.slice(0, limit);
if (json) {
	print(kinspect.json({ mem_total_kb: memTotalKB, caches: shown, errors }));
} else {
	print(`MemTotal: ${memTotalKB} kB; ${caches.length} slab caches, ${caches.reduce((a, c) => a + c.bytes, 0) >> 10} kB in slabs`);
	for (const e of errors) print(`slab.js: kmem_cache ${e.cache}: ${e.error}`);
	print("name                          objs  objsize  per-slab  pages        kB");
	for (const c of shown) {
		print(`${c.name.padEnd(26)} ${String(c.num_objs).padStart(7)} ${String(c.objsize).padStart(8)} ${String(c.objperslab).padStart(9)} ${String(c.pagesperslab).padStart(6)} ${String(c.bytes >> 10).padStart(9)}`);
	}
}
