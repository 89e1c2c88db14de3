// open_files.js: the open files of a process, as ls -l /proc/PID/fd shows.
//
// What it shows: each file descriptor and what it refers to
// (kernel.files(task), the result of files PID): a path, rebuilt from
// the dentry and mount chain as d_path does, or for pseudo files
// "socket:[INODE]", "pipe:[INODE]", "anon_inode:NAME" (BPF objects are
// anon_inode:bpf-prog, bpf-map, bpf_link).
//
// Run: kinspect -c DUMP script samples/open_files.js PID|COMM [--json]
//      (COMM: the first process of that name; --json: an array of {fd,
//      path}, or {fd, error} for a file that could not be read)

const json = kinspect.args.includes("--json");
const who = kinspect.args.find((a) => a !== "--json");
if (who === undefined) throw new Error("usage: open_files.js PID|COMM [--json]");
let task = null;
if (/^[0-9]+$/.test(who)) {
	task = kernel.findTask(Number(who));
} else {
	for (const t of kernel.processes()) {
		if (t.comm === who) {
			task = t;
			break;
		}
	}
}
if (task === null) throw new Error(`no task ${who}`);

const res = kernel.files(task);
// A root or working directory the dump lacks is said, and the files
// still listed.
if (res.error) console.error(`open_files.js: pid ${res.pid}: ${res.error}`);
// A file whose memory the dump lacks comes with its error; the others
// are still listed.
const out = res.files.map((f) => (f.error ? { fd: f.fd, error: f.error } : { fd: f.fd, path: f.path }));
if (json) {
	print(kinspect.json(out));
} else {
	print(`pid ${res.pid} (${res.comm}): ${out.length} open files`);
	for (const f of out) print(`${String(f.fd).padStart(4)} -> ${f.path ?? "? (" + f.error + ")"}`);
}
