// ps_rss.js: processes sorted by resident memory (RSS).
//
// What it shows: each user process (kernel threads have no mm) with its
// RSS in kB as /proc/PID/status prints VmRSS (kernel.vmas(task), the
// result of vm PID: file + anon + shmem pages of mm->rss_stat, per-CPU
// counters summed on 6.2+ as /proc/PID/status does).
//
// Run: kinspect -c DUMP script samples/ps_rss.js [--json] [N]
//      (N: only the N largest; --json: an array of {pid, comm, rss_kb})

const args = kinspect.args.filter((a) => a !== "--json");
const json = kinspect.args.includes("--json");
const limit = args.length ? Number(args[0]) : Infinity;

const out = [];
for (const t of kernel.processes()) {
	if (t.mm.is_null_()) continue;
	const vm = kernel.vmas(t);
	out.push({ pid: vm.pid, comm: vm.comm, rss_kb: vm.rss });
}
out.sort((a, b) => b.rss_kb - a.rss_kb || a.pid - b.pid);
const shown = out.slice(0, limit);
if (json) {
	print(kinspect.json(shown));
} else {
	print("    PID      RSS(kB)  COMM");
	for (const p of shown) print(`${String(p.pid).padStart(7)} ${String(p.rss_kb).padStart(12)}  ${p.comm}`);
}
