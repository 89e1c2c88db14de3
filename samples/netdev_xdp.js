// netdev_xdp.js: network devices with their XDP programs.
//
// What it shows: each device of the initial network namespace (ifindex,
// name, MTU, flags) and the XDP program attached in each mode, as
// bpftool net lists XDP: mode "generic" (skb), "driver" or "offload",
// from dev->xdp_state[] (5.13+: 7f0a838254bd "bpf, xdp: Maintain info on
// attached XDP BPF programs in net_device"), the program either set
// directly or held by a BPF link.
//
// Run: kinspect -c DUMP script samples/netdev_xdp.js [--json]
//      (--json: {"devices": [{ifindex, devname, mtu} or {device, error}],
//      "xdp": [{devname, ifindex, mode, id}]})

const json = kinspect.args.includes("--json");
const modeName = { XDP_MODE_SKB: "generic", XDP_MODE_DRV: "driver", XDP_MODE_HW: "offload" };

function xdpProgs(dev) {
	const out = [];
	if (kernel.hasMember("struct net_device", "xdp_state")) {
		for (let mode = 0; mode < dev.xdp_state.length; mode++) {
			const st = dev.xdp_state[mode];
			let prog = st.prog;
			if (!st.link.is_null_()) prog = st.link.link.prog;
			if (prog.is_null_()) continue;
			const name = kernel.enumName("enum bpf_xdp_mode", mode);
			out.push({ mode: modeName[name] ?? name, id: prog.aux.id });
		}
	} else if (!dev.xdp_prog.is_null_()) {
		out.push({ mode: "generic", id: dev.xdp_prog.aux.id });
	}
	return out;
}

const devices = [], xdp = [];
for (const dev of kernel.listForEach(kernel.var("init_net").dev_base_head, "struct net_device", "dev_list")) {
	// A device whose memory the dump lacks gets an error; the others are
	// still listed.
	try {
		devices.push({ ifindex: dev.ifindex, devname: dev.name, mtu: dev.mtu });
		for (const x of xdpProgs(dev)) xdp.push({ devname: dev.name, ifindex: dev.ifindex, mode: x.mode, id: x.id });
	} catch (e) {
		devices.push({ device: "0x" + dev.addr_.toString(16), error: e.message });
	}
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
		print(`${d.ifindex}: ${d.devname} mtu ${d.mtu}${progs.length ? "  " + progs.join(" ") : ""}`);
	}
}
