// slab.js: a memory summary and the slab caches, as /proc/meminfo and
// /proc/slabinfo show them (SLUB).
//
// What it shows: total RAM (MemTotal, kernel.mm.meminfo(): /proc/meminfo
// as the kernel computes it) and each slab cache (kernel.slab.caches(),
// the result of kmem -s): objects allocated (num_objs), object size
// (s->size), objects per slab, pages per slab, and the memory its slabs
// take, largest first.
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

const memTotal = kernel.mm.meminfo().lines.find((l) => l.name === "MemTotal");
const memTotalKB = memTotal ? memTotal.value : null;
const caches = [];
const errors = [];
for (const c of kernel.slab.caches()) {
	// A cache whose memory the dump lacks comes with its error; the
	// others are still counted.
	if (c.error) {
		errors.push({ cache: "0x" + c.cache.toString(16), error: c.error });
		continue;
	}
	caches.push({
		name: c.name, num_objs: c.num_objs, objsize: c.objsize,
		objperslab: c.objperslab, pagesperslab: c.pagesperslab,
		bytes: c.num_slabs * c.pagesperslab * PAGE,
	});
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
