// mounts.js: the mounted filesystems, as /proc/mounts lists them.
//
// What it shows: the mounts of init's mount namespace in mount order:
// device, mount point (rebuilt as d_path does) and filesystem type.
// Kernels 6.8+ keep a namespace's mounts in an rbtree (struct mount has
// mnt_node: 2eea9ce4310d "mounts: keep list of mounts in an rbtree"),
// older ones in the list mnt_ns->list.
//
// Run: kinspect -c DUMP script samples/mounts.js [--json]
//      (--json: an array of {devname, mountpoint, fstype}, or {mount,
//      error} for a mount that could not be read, or for the namespace
//      when its mounts cannot be walked)

const json = kinspect.args.includes("--json");
const ns = kernel.var("init_task").nsproxy.mnt_ns;

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

const mounts = kernel.hasMember("struct mount", "mnt_node")
	? kernel.rbtree(ns.mounts, "struct mount", "mnt_node")
	: kernel.listForEach(ns.list, "struct mount", "mnt_list");
const out = [];
try {
	for (const m of mounts) {
		// A crash dump may lack a mount's pages (or hold garbage): that
		// mount gets an error, the others are still listed.
		try {
			const mountpoint = m.mnt_parent.addr_ === m.addr_ ? "/" : dPath(m.mnt_mountpoint, m.mnt_parent.deref_());
			out.push({
				devname: m.mnt_devname.is_null_() ? "none" : m.mnt_devname.string_(),
				mountpoint,
				fstype: m.mnt.mnt_sb.s_type.name.string_(),
			});
		} catch (e) {
			out.push({ mount: "0x" + m.addr_.toString(16), error: e.message });
		}
	}
} catch (e) {
	// The walk itself failed: the namespace (its tree or list head) is
	// unreadable; the mounts listed so far stand.
	out.push({ mount: "init's mount namespace", error: e.message });
}
if (json) {
	print(kinspect.json(out));
} else {
	for (const m of out) {
		if (m.error) console.error(`mounts.js: mount ${m.mount}: ${m.error}`);
		else print(`${m.devname} ${m.mountpoint} ${m.fstype}`);
	}
}
