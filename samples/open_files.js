// open_files.js: the open files of a process, as ls -l /proc/PID/fd shows.
//
// What it shows: each file descriptor and what it refers to: a path
// (rebuilt from the dentry and mount chain, as d_path does), or for
// pseudo files "socket:[INODE]", "pipe:[INODE]", "anon_inode:NAME" (BPF
// objects are anon_inode:bpf-prog, bpf-map, bpf_link).
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
const pid = task.pid;

// dPath walks a dentry up to its mount's root, then across mount points.
function dPath(dentry, mnt) {
	const parts = [];
	for (let n = 0; n < 4096; n++) {
		if (dentry.addr_ === mnt.mnt.mnt_root.addr_) {
			if (mnt.mnt_parent.addr_ === mnt.addr_) break;
			dentry = mnt.mnt_mountpoint;
			mnt = mnt.mnt_parent.deref_();
			continue;
		}
		if (dentry.d_parent.addr_ === dentry.addr_) break;
		parts.push(dentry.d_name.name.string_());
		dentry = dentry.d_parent;
	}
	return "/" + parts.reverse().join("/");
}

function describe(file) {
	const dentry = file.f_path.dentry;
	const fs = dentry.d_sb.s_type.name.string_();
	const ino = dentry.d_inode.is_null_() ? 0n : dentry.d_inode.i_ino;
	switch (fs) {
	case "sockfs": return `socket:[${ino}]`;
	case "pipefs": return `pipe:[${ino}]`;
	case "anon_inodefs": return `anon_inode:${dentry.d_name.name.string_()}`;
	// pidfds live in pidfs since 6.9; its d_dname (pidfs_dname) names
	// every one so.
	case "pidfs": return "anon_inode:[pidfd]";
	}
	return dPath(dentry, kernel.containerOf(file.f_path.mnt, "struct mount", "mnt"));
}

const out = [];
const files = task.files;
if (!files.is_null_()) {
	const fdt = files.fdt;
	const max = fdt.max_fds;
	for (let fd = 0; fd < max; fd++) {
		const f = fdt.fd[fd];
		if (f.is_null_()) continue;
		// A file whose memory the dump lacks gets an error; the others
		// are still listed.
		try {
			out.push({ fd, path: describe(f) });
		} catch (e) {
			out.push({ fd, error: e.message });
		}
	}
}
if (json) {
	print(kinspect.json(out));
} else {
	print(`pid ${pid} (${task.comm}): ${out.length} open files`);
	for (const f of out) print(`${String(f.fd).padStart(4)} -> ${f.path ?? "? (" + f.error + ")"}`);
}
