// netdev_xdp.js: network devices with their XDP programs.
//
// What it shows: each device of the initial network namespace (ifindex,
// name, MTU, flags) and the XDP program attached in each mode, as
// bpftool net lists XDP: mode "generic" (skb), "driver" or "offload"
// (kernel.net().devices, the devices net lists: dev->xdp_state[] since
// 5.13, the program set directly or held by a BPF link).
//
// Run: kinspect -c DUMP script samples/netdev_xdp.js [--json]
//      (--json: {"devices": [{ifindex, devname, mtu} or {device, error}],
//      "xdp": [{devname, ifindex, mode, id}]})

const json = kinspect.args.includes("--json");
const net = kernel.net();
const init = net.namespaces.find((ns) => ns.init);
const devices = [], xdp = [];
for (const d of net.devices) {
	if (init && d.net_inode !== init.inode) continue;
	// A device whose memory the dump lacks comes with its error; the
	// others are still listed.
	if (d.error && !d.name) {
		devices.push({ device: "0x" + d.dev.toString(16), error: d.error });
		continue;
	}
	devices.push({ ifindex: d.ifindex, devname: d.name, mtu: d.mtu, flags: d.flag_names });
	for (const x of d.xdp ?? []) xdp.push({ devname: d.name, ifindex: d.ifindex, mode: x.mode, id: x.id });
}
if (json) {
	print(kinspect.json({ devices, xdp }));
} else {
	for (const d of devices) {
		if (d.error) {
			console.error(`netdev_xdp.js: net_device ${d.device}: ${d.error}`);
			continue;
		}
		const progs = xdp.filter((x) => x.ifindex === d.ifindex).map((x) => `xdp/${x.mode} id ${x.id}`);
		print(`${d.ifindex}: ${d.devname} <${d.flags.join(",")}> mtu ${d.mtu}${progs.length ? "  " + progs.join(" ") : ""}`);
	}
}
