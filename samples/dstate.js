// dstate.js: tasks in uninterruptible sleep (D state) with their stacks.
//
// What it shows: every task whose state is D (TASK_UNINTERRUPTIBLE, not
// the idle I state), the usual suspects of a hung system, with its
// kernel stack unwound by ORC.
//
// Run: kinspect -c DUMP script samples/dstate.js [--json]
//      (--json: an array of {pid, tid, comm, stack: ["func+0xoff/0xsize", ...]})

const json = kinspect.args.includes("--json");
const out = [];
const errors = [];
for (const t of kernel.tasks()) {
	// A task on a page the dump lacks is one error, not the end.
	try {
		if (kernel.taskState(t) !== "D") continue;
		let stack = [];
		try {
			stack = kernel.stack(t).map((f) => f.symbol);
		} catch (e) {
			stack = [`(no stack: ${e.message})`];
		}
		out.push({ pid: t.tgid, tid: t.pid, comm: t.comm, stack });
	} catch (e) {
		errors.push(e.message);
	}
}
for (const e of errors) console.warn(`dstate: ${e}`);
if (json) {
	print(kinspect.json(out));
} else {
	print(`${out.length} task(s) in D state`);
	for (const t of out) {
		print(`PID ${t.tid} (${t.comm}, process ${t.pid})`);
		for (const s of t.stack) print(`\t${s}`);
	}
}
