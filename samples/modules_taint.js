// modules_taint.js: loaded modules with their taint flags, and the
// kernel's taint.
//
// What it shows: the kernel's tainted mask (as /proc/sys/kernel/tainted)
// with its letters (kernel.taint(), the result of mod -t: read through
// the kernel's own taint_flags[] table, so new flags come along), and
// each module as /proc/modules shows it (kernel.modules(), mod): name,
// size, reference count, state, and its taint letters.
//
// Run: kinspect -c DUMP script samples/modules_taint.js [--json]
//      (--json: {"tainted": N, "taint_letters", "modules": [{name, size,
//      refcount, state, taints}]})

const json = kinspect.args.includes("--json");
const taint = kernel.taint();
const tainted = taint.mask;
const letters = taint.flags.map((f) => f.char).join("");
const modules = [];
for (const m of kernel.modules()) {
	modules.push({
		name: m.name, size: m.size, refcount: m.refcount,
		state: m.state.replace("MODULE_STATE_", "").toLowerCase(),
		taints: (m.taints ?? "").replace(/[^A-Z]/g, ""), // the letters, without "(", ")" and the state's "+" or "-"
	});
}
if (json) {
	print(kinspect.json({ tainted, taint_letters: letters, modules }));
} else {
	print(`kernel tainted: ${tainted}${tainted ? " (" + letters + ")" : ""}`);
	for (const f of taint.flags) print(`  ${f.char}: ${f.desc}${f.modules ? " (" + f.modules.join(", ") + ")" : ""}`);
	for (const m of modules) {
		print(`${m.name.padEnd(24)} ${String(m.size).padStart(8)} ${String(m.refcount).padStart(3)} ${m.state}${m.taints ? " (" + m.taints + ")" : ""}`);
	}
}
