// bpf_on_cpu.js: the BPF program each CPU was running at the dump.
//
// What it shows: for every CPU, its current task and the BPF program
// frames on its kernel stack (unwound with ORC from the CPU's saved
// registers, through NMI and IRQ stacks): program id, name and source
// line. A CPU spinning in a BPF program, or panicking from one, shows
// here first.
//
// Run: kinspect -c DUMP script samples/bpf_on_cpu.js [--json]
//      (--json: an array of {cpu, pid, comm, progs: [{id, name, symbol, line}]})

const json = kinspect.args.includes("--json");
const out = [];
for (const c of kernel.cpus) {
	const r = { cpu: c.cpu, pid: null, comm: null, progs: [] };
	if (c.task) {
		// A crashed kernel's dump may lack the task_struct's page: the
		// stack is still unwound from the CPU's registers.
		try {
			r.pid = c.task.pid;
			r.comm = c.task.comm;
		} catch (e) {
			r.error = e.message;
		}
		let frames = [];
		try {
			frames = kernel.stack(c.task);
		} catch (e) {
			r.error = e.message;
		}
		for (const f of frames) {
			if (!f.bpf) continue;
			r.progs.push({
				id: f.bpf.id, name: f.function, symbol: f.symbol,
				line: f.bpf.file ? `${f.bpf.file}:${f.bpf.line_num}:${f.bpf.line_col}` : null,
			});
		}
	}
	out.push(r);
}
if (json) {
	print(kinspect.json(out));
} else {
	for (const r of out) {
		const progs = r.progs.map((p) => `prog ${p.id} ${p.symbol}${p.line ? " at " + p.line : ""}`);
		print(`CPU ${r.cpu}: pid ${r.pid} ${r.comm}: ${progs.length ? progs.join("; ") : "no BPF program"}`);
	}
}
