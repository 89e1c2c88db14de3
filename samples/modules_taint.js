// modules_taint.js: loaded modules with their taint flags, and the
// kernel's taint.
//
// What it shows: the kernel's tainted mask (as /proc/sys/kernel/tainted)
// with its letters, and each module as /proc/modules shows it: name,
// size, reference count, state, and its taint letters, decoded with the
// kernel's own taint_flags table (its size read from the symbol, so new
// flags come along).
//
// Run: kinspect -c DUMP script samples/modules_taint.js [--json]
//      (--json: {"tainted": N, "taint_letters", "modules": [{name, size,
//      refcount, state, taints}]})

const json = kinspect.args.includes("--json");
kernel.declare("unsigned long tainted_mask");

// The kernel's struct taint_flag taint_flags[TAINT_FLAGS_COUNT].
const tf = kernel.sym("taint_flags");
const flagCount = tf.size ? Number(tf.size) / kernel.sizeof("struct taint_flag") : 0;
const flags = [];
for (let i = 0; i < flagCount; i++) {
	const f = kernel.object("struct taint_flag", tf.addr + BigInt(i * kernel.sizeof("struct taint_flag")));
	flags.push({ c: String.fromCharCode(f.c_true), module: f.module });
}
function letters(mask, moduleOnly) {
	let s = "";
	flags.forEach((f, i) => {
		if ((mask >> BigInt(i)) & 1n && (!moduleOnly || f.module)) s += f.c;
	});
	return s;
}

const tainted = kernel.var("tainted_mask").value_();
const modules = [];
for (const m of kernel.modules()) {
	const taints = m.obj.taints;
	modules.push({
		name: m.name, size: m.size, refcount: m.refcount,
		state: m.state.replace("MODULE_STATE_", "").toLowerCase(),
		taints: letters(taints, true),
	});
}
if (json) {
	print(kinspect.json({ tainted, taint_letters: letters(tainted, false), modules }));
} else {
	print(`kernel tainted: ${tainted}${tainted ? " (" + letters(tainted, false) + ")" : ""}`);
	for (const m of modules) {
		print(`${m.name.padEnd(24)} ${String(m.size).padStart(8)} ${String(m.refcount).padStart(3)} ${m.state}${m.taints ? " (" + m.taints + ")" : ""}`);
	}
}
