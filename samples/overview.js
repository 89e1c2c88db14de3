// overview.js: what a drgn user does first: every task with its stack,
// every BPF program and map.
//
// What it shows: a count line, then (with --verbose) each task's pid,
// comm, state and stack, each program and each map. It reads every task's
// kernel stack with ORC, so it doubles as a check that a dump unwinds.
//
// Run: kinspect -c DUMP script samples/overview.js [--json] [--verbose]
//      (--json: {"tasks", "frames", "unwind_errors", "progs", "maps",
//      "states": {LETTER: count}})

const json = kinspect.args.includes("--json");
const verbose = kinspect.args.includes("--verbose");
const r = { tasks: 0, unreadable_tasks: 0, frames: 0, unwind_errors: 0, progs: 0, maps: 0, states: {} };
for (const t of kernel.tasks()) {
	let state;
	try {
		state = kernel.taskState(t);
	} catch (e) {
		// A task_struct on a page the dump lacks: counted, named on
		// stderr, and the walk goes on.
		r.unreadable_tasks++;
		console.warn(`overview.js: ${e.message}`);
		continue;
	}
	r.tasks++;
	r.states[state] = (r.states[state] ?? 0) + 1;
	let stack = [];
	try {
		stack = kernel.stack(t);
		if (stack.error) r.unwind_errors++;
	} catch (e) {
		r.unwind_errors++;
	}
	r.frames += stack.length;
	if (verbose) {
		print(`${t.pid} ${t.comm} ${state}`);
		for (const f of stack) print(`\t${f.symbol}`);
	}
}
for (const p of kernel.bpf.progs()) {
	r.progs++;
	if (verbose) print(`prog ${p.id} ${p.type} ${p.name} maps ${p.map_ids.join(",")}`);
}
for (const m of kernel.bpf.maps()) {
	r.maps++;
	if (verbose) print(`map ${m.id} ${m.type} ${m.name} entries ${m.max_entries}`);
}
if (json) print(kinspect.json(r));
else print(`${r.tasks} tasks${r.unreadable_tasks ? ` (+${r.unreadable_tasks} unreadable)` : ""} (${Object.entries(r.states).map(([s, n]) => `${n} ${s}`).join(", ")}), ${r.frames} frames, ${r.unwind_errors} unwind errors; ${r.progs} BPF programs, ${r.maps} maps`);
