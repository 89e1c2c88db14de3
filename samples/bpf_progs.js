// bpf_progs.js: every BPF program with its maps and where it is attached.
//
// What it shows: one line per program (id, type, name, tag), the maps it
// uses (id:name) and its attach points: the BPF links that hold it
// (kprobe, tracepoint, tracing, cgroup, XDP...) and the network devices
// whose XDP hook runs it.
//
// Run: kinspect -c DUMP script samples/bpf_progs.js [--json]
//      (--json: an array of {id, type, name, tag, map_ids, maps, attach})

const json = kinspect.args.includes("--json");

const mapNames = new Map();
for (const m of kernel.bpf.maps()) mapNames.set(m.id, m.name);

// Attach points from links.
const attach = new Map();
const add = (id, what) => {
	if (!attach.has(id)) attach.set(id, []);
	attach.get(id).push(what);
};
for (const l of kernel.bpf.links()) {
	let what = l.type;
	if (l.perf && l.perf.func) what += `:${l.perf.kind}:${l.perf.func}`;
	else if (l.perf && l.perf.tracepoint) what += `:tracepoint:${l.perf.tracepoint}`;
	else if (l.tp_name) what += `:${l.tp_name}`;
	else if (l.devname) what += `:${l.devname}`;
	else if (l.attach_type) what += `:${l.attach_type}`;
	add(l.prog_id, `link ${l.id} ${what}`);
}
// XDP programs attached without a link (netlink): the devices net lists.
for (const d of kernel.net().devices) {
	for (const x of d.xdp ?? []) {
		if (x.link_id) continue; // reported by its link
		add(x.id, `xdp:${d.name}:${x.mode}`);
	}
}

const out = [];
for (const p of kernel.bpf.progs()) {
	out.push({
		id: p.id, type: p.type, name: p.name, tag: p.tag,
		map_ids: p.map_ids,
		maps: p.map_ids.map((id) => `${id}:${mapNames.get(id) ?? "?"}`),
		attach: attach.get(p.id) ?? [],
	});
}
if (json) {
	print(kinspect.json(out));
} else {
	for (const p of out) {
		print(`${p.id}: ${p.type}  name ${p.name}  tag ${p.tag}`);
		if (p.maps.length) print(`\tmaps ${p.maps.join(" ")}`);
		for (const a of p.attach) print(`\tattached ${a}`);
	}
}
