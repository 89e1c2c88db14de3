// mounts.js: the mounted filesystems, as /proc/mounts lists them.
//
// What it shows: the mounts of init's mount namespace in mount order:
// device, mount point and filesystem type, from kernel.mounts() (the
// `mount` command's walker: the namespace's rbtree on 6.8+, its list
// before, each mount point rebuilt as d_path does).
//
// Run: kinspect -c DUMP script samples/mounts.js [--json]
//      (--json: an array of {devname, mountpoint, fstype}, or {mount,
//      error} for a mount that could not be read, or for the namespace
//      when its mounts cannot be walked)

const json = kinspect.args.includes("--json");
const out = [];
try {
	for (const m of kernel.mounts()) {
		// A crash dump may lack a mount's pages: that mount has an
		// error, the others are still listed.
		if (m.error) out.push({ mount: m.mount, error: m.error });
		else out.push({ devname: m.device, mountpoint: m.path, fstype: m.type });
	}
} catch (e) {
	// The namespace itself is unreadable.
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
