// ps_rss.js: processes sorted by resident memory (RSS).
//
// What it shows: each user process (kernel threads have no mm) with its
// RSS in kB as /proc/PID/status prints VmRSS: file + anon + shmem pages
// of mm->rss_stat. Kernels 6.2+ keep those counters as per-CPU counters
// (struct percpu_counter rss_stat[]): their central count is read, as
// get_mm_counter does; older ones an atomic array (struct mm_rss_stat).
//
// Run: kinspect -c DUMP script samples/ps_rss.js [--json] [N]
//      (N: only the N largest; --json: an array of {pid, comm, rss_kb})

const args = kinspect.args.filter((a) => a !== "--json");
const json = kinspect.args.includes("--json");
const limit = args.length ? Number(args[0]) : Infinity;
const PAGE_KB = 4; // x86-64 pages

// enum: MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES.
const counters = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"].map((n) => kernel.constant(n));

function counter(mm, i) {
	if (!mm.rss_stat.type_.startsWith("struct percpu_counter")) {
		return BigInt(mm.rss_stat.count[i].counter);
	}
	// 6.2+: f1a7941243c1 "mm: convert mm's rss stats into percpu_counter".
	// The exact value: the central count plus every CPU's pending delta,
	// as /proc/PID/status sums them (get_mm_counter_sum).
	const pc = mm.rss_stat[i];
	let c = BigInt(pc.count);
	for (const cpu of kernel.cpus) c += BigInt(kernel.percpu(pc.counters, cpu.cpu));
	const n = BigInt(c);
	return n < 0n ? 0n : n;
}

const out = [];
for (const t of kernel.processes()) {
	const mm = t.mm;
	if (mm.is_null_()) continue;
	let pages = 0n;
	for (const i of counters) pages += counter(mm, i);
	out.push({ pid: t.tgid, comm: t.comm, rss_kb: Number(pages) * PAGE_KB });
}
out.sort((a, b) => b.rss_kb - a.rss_kb || a.pid - b.pid);
const shown = out.slice(0, limit);
if (json) {
	print(kinspect.json(shown));
} else {
	print("    PID      RSS(kB)  COMM");
	for (const p of shown) print(`${String(p.pid).padStart(7)} ${String(p.rss_kb).padStart(12)}  ${p.comm}`);
}
