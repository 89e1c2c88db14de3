// bpf_maps_memory.js: the BPF maps that use the most memory.
//
// What it shows: maps sorted by their memory (bytes_memlock, as bpftool
// "map show" reports it), largest first, with type, entries and sizes.
//
// Run: kinspect -c DUMP script samples/bpf_maps_memory.js [--json] [N]
//      (N: show only the N largest; --json: an array of
//      {id, type, name, max_entries, bytes_key, bytes_value, bytes_memlock})

const args = kinspect.args.filter((a) => a !== "--json");
const json = kinspect.args.includes("--json");
const limit = args.length ? Number(args[0]) : Infinity;

const maps = [];
for (const m of kernel.bpf.maps()) {
	maps.push({
		id: m.id, type: m.type, name: m.name, max_entries: m.max_entries,
		bytes_key: m.bytes_key, bytes_value: m.bytes_value, bytes_memlock: m.bytes_memlock,
	});
}
maps.sort((a, b) => (b.bytes_memlock - a.bytes_memlock) || (a.id - b.id));
const shown = maps.slice(0, limit);
if (json) {
	print(kinspect.json(shown));
} else {
	const total = maps.reduce((s, m) => s + m.bytes_memlock, 0);
	print(`${maps.length} maps, ${total} bytes in all`);
	for (const m of shown) {
		print(`${String(m.bytes_memlock).padStart(12)}  ${String(m.id).padStart(5)} ${m.type.padEnd(16)} ${m.name.padEnd(16)} entries ${m.max_entries} key ${m.bytes_key} value ${m.bytes_value}`);
	}
}
