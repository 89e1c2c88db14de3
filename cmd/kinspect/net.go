package main

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "net", summary: "network namespaces, devices (as ip link) and sockets (as /proc/net/{tcp,udp,raw,unix}; like crash's net)", run: runNet,
		help: netHelp, opts: []*option{{long: "--proc", value: "FILE", choices: netProcFiles, help: "print /proc/net/FILE's lines"},
			{long: "--link", help: "print the devices as ip link show does"},
			{short: "-d", long: "--details", help: "the devices as ip -d link show prints them (says --link)"},
			{long: "--netns", value: "NS_INODE", help: "the devices of this network namespace (says --link; default: init_net's)"},
			{long: "--bpf", help: "the programs on devices and the flow dissector, as bpftool net show lists them"}, optKallsyms}})
}

var netProcFiles = []string{"tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix"}

const netHelp = `Usage: kinspect [-c DUMP | --live] [--json] net [--proc FILE | --link [-d] [--netns NS_INODE] | --bpf] [-k FILE]

Lists the network namespaces (net_namespace_list: the struct net, its
inode as /proc/PID/ns/net shows it), the network devices of each
(for_each_netdev: the struct net_device, ifindex, name, flags as ip link
shows them, MTU, root qdisc, operational state, hardware address, what
ip -d link adds, and the XDP program of each mode and the tc programs, as
bpftool net lists them), their IPv4 and IPv6 addresses (as ip addr), and
the sockets of the tables
/proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix} read, of every namespace: TCP's
listening and established hashes (tcp_hashinfo; time-wait and request
sockets too), udp_table, raw_v4_hashinfo and raw_v6_hashinfo, each
namespace's unix table. Each socket: its table, struct sock, state,
local and remote address and port, the queues, uid and inode
(socket:[INODE] in ls -l /proc/PID/fd), for unix sockets the type and
path. Sockets no table holds (a UDP socket never bound, a TCP socket
never connected nor listening) are in no /proc/net file either.

Options:
  --link               print the devices as ip link show prints them (the
                       XDP programs' lines too)
  -d, --details        --link as ip -d link show prints them: the
                       promiscuity and allmulti counts, MTU bounds, the
                       link's kind (and a VLAN's protocol, id and flags;
                       other kinds' data is not decoded), its master's,
                       IPv6 address generation, queues and offload limits,
                       parent device, alias, alternative names
  --netns NS_INODE     --link for the devices of the network namespace
                       of this inode (as /proc/PID/ns/net shows it), as
                       ip -n NAME link in it; default: init_net's
  --bpf                the BPF programs of init_net's devices and its flow
                       dissector, as bpftool net show lists them: XDP (each
                       mode), tcx (6.6+) and cls_bpf filters on the
                       clsact/ingress qdisc's hooks; --json: bpftool's JSON
  --proc FILE          print FILE's lines as /proc/net/FILE prints them, up
                       to the inode (tcp, tcp6, udp, udp6, raw, raw6, unix;
                       init_net's sockets, as a process of it reads them)
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"namespaces": [{"net", "inode", "init"}], "devices": [{"dev",
"net_inode", "ifindex", "name", "flags", "flag_names", "mtu", "qdisc",
"operstate", "link_mode", "group", "txqlen", "link_type", "address",
"broadcast", "min_mtu", "max_mtu", "num_tx_queues", "num_rx_queues",
"gso_max_size", "gso_max_segs", "promiscuity", "allmulti", "kind",
"slave_kind", "master", "master_ifindex", "link", "link_name",
"link_down", "link_netnsid", "proto_down", "alias", "altnames",
"perm_address", "addr_gen_mode", "tso_max_size", "tso_max_segs",
"gro_max_size", "gso_ipv4_max_size", "gro_ipv4_max_size", "parent_bus",
"parent_dev", "kind_data", "slave_kind_data", "addrs": [{"family",
"local", "prefixlen", "scope", "label", "broadcast", "flags"}], "xdp":
[{"mode", "id", "prog", "link_id"}],
"tc": [{"kind", "name", "id", "prog", "link_id", "filter", "prio",
"handle", "direct_action"}], "incomplete" (what kinspect does not
decode of the device), "error"}], "sockets": [{"proto",
"sock", "net_inode", "state", "state_name", "local", "local_port",
"remote", "remote_port", "tx_queue", "rx_queue", "uid", "inode", "type",
"path", "proc_line", "error"}], "errors" (the tables, or parts,
that could not be read)}. With --bpf: bpftool net show's JSON, [{"xdp":
[{"devname", "ifindex", "mode", "id"} or {"devname", "ifindex",
"multi_attachments": [{"mode", "id"}]}], "tc": [{"devname", "ifindex",
"kind", "name", "id"} (cls_bpf) or {"devname", "ifindex", "kind",
"name", "prog_id", "prog_flags", "link_id", "link_flags"} (tcx)],
"flow_dissector": [{"id"}]}].
`

func runNet(e *env, args []string) error {
	var file, proc string
	link, details, bpfShow := false, false, false
	var netns uint64
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, netHelp)
			return nil
		case a == "--link":
			link = true
		case a == "-d" || a == "--details":
			details = true
		case a == "--bpf":
			bpfShow = true
		case a == "--netns":
			if i+1 == len(args) {
				return fmt.Errorf("net --netns: want an inode: %w", errUsage)
			}
			i++
			v, err := strconv.ParseUint(args[i], 0, 64)
			if err != nil {
				return fmt.Errorf("net --netns %q: want a namespace's inode: %w", args[i], errUsage)
			}
			netns = v
		case a == "--proc" || a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("net %s: want a value: %w", a, errUsage)
			}
			i++
			if a == "--proc" {
				proc = args[i]
				if !slices.Contains(netProcFiles, proc) {
					return fmt.Errorf("net --proc %q: want one of %s: %w", proc, strings.Join(netProcFiles, ", "), errUsage)
				}
			} else {
				file = args[i]
			}
		default:
			return fmt.Errorf("net: unexpected %q (see kinspect net help): %w", a, errUsage)
		}
	}
	// -d and --netns say --link.
	link = link || details || netns != 0
	if n := btoi(link) + btoi(bpfShow) + btoi(proc != ""); n > 1 {
		return fmt.Errorf("net: --link, --bpf and --proc are one each: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	if bpfShow {
		r, err := bpf.ReadNetShow(k.Program())
		if err != nil {
			return fmt.Errorf("net --bpf: %w", err)
		}
		var nerr error
		if len(r.Errors) > 0 {
			nerr = fmt.Errorf("net --bpf: %d devices or hooks not read: %s", len(r.Errors), strings.Join(r.Errors, "; "))
		}
		if e.json {
			writeJSON(e, []*bpf.NetShow{r})
		} else {
			r.WriteText(e.stdout)
		}
		return noteNet(e, nerr)
	}
	n, nerr := linux.ReadNet(k.Program())
	if n == nil {
		return fmt.Errorf("net: %w", nerr)
	}
	nerr = nil
	if len(n.Errors) > 0 {
		nerr = fmt.Errorf("net: %d tables (or parts) not read: %s", len(n.Errors), strings.Join(n.Errors, "; "))
	}
	if e.json {
		writeJSON(e, n)
		return noteNet(e, nerr)
	}
	w := bufio.NewWriter(e.stdout)
	if link {
		if netns == 0 {
			for _, ns := range n.Namespaces {
				if ns.Init {
					netns = ns.Inode
				}
			}
		}
		found := false
		for _, ns := range n.Namespaces {
			found = found || ns.Inode == netns
		}
		if !found {
			return fmt.Errorf("net --link: no network namespace of inode %d (net lists them)", netns)
		}
		for _, d := range n.Devices {
			if d.Name != "" && d.NetInode == netns {
				// A device with an error is in the damage report too.
				fmt.Fprintln(w, d.IPLink(details, bpf.XDPProgInfo(k.Program())))
			}
		}
		w.Flush()
		return noteNet(e, nerr)
	}
	if proc != "" {
		var init uint64
		for _, ns := range n.Namespaces {
			if ns.Init {
				init = ns.Inode
			}
		}
		i := 0
		for _, s := range n.Sockets {
			if s.Proto != proc || s.NetInode != init {
				continue
			}
			if proc == "unix" {
				fmt.Fprintf(w, "%016x: %s\n", uint64(s.Sock), s.ProcLine)
			} else {
				fmt.Fprintf(w, "%4d: %s\n", i, s.ProcLine)
			}
			i++
		}
		w.Flush()
		return noteNet(e, nerr)
	}
	fmt.Fprintf(w, "%-16s  %-10s %s\n", "NET", "INODE", "")
	for _, ns := range n.Namespaces {
		init := ""
		if ns.Init {
			init = "init_net"
		}
		fmt.Fprintf(w, "%016x  %-10d %s\n", uint64(ns.Net), ns.Inode, init)
	}
	fmt.Fprintf(w, "\n%-16s %7s %-16s %-24s %6s %-10s %10s  %s\n", "NET_DEVICE", "IFINDEX", "NAME", "FLAGS", "MTU", "STATE", "NET", "BPF")
	for _, d := range n.Devices {
		if d.Name == "" {
			fmt.Fprintf(w, "%016x  error: %s\n", uint64(d.Dev), d.Error)
			continue
		}
		var progs []string
		for _, x := range d.XDP {
			progs = append(progs, fmt.Sprintf("xdp %s id %d", x.Mode, x.ProgID))
		}
		for _, c := range d.TC {
			progs = append(progs, fmt.Sprintf("%s id %d", c.Kind, c.ProgID))
		}
		fmt.Fprintf(w, "%016x %7d %-16s %-24s %6d %-10s %10d  %s\n", uint64(d.Dev), d.Ifindex, d.Name, strings.Join(d.FlagNames, ","), d.MTU, d.OperState, d.NetInode, strings.Join(progs, ", "))
	}
	fmt.Fprintf(w, "\n%7s %-16s %-6s %-43s %-8s %10s\n", "IFINDEX", "NAME", "FAMILY", "ADDRESS", "SCOPE", "NET")
	for _, d := range n.Devices {
		for _, a := range d.Addrs {
			fmt.Fprintf(w, "%7d %-16s %-6s %-43s %-8s %10d\n", d.Ifindex, d.Name, a.Family, fmt.Sprintf("%s/%d", a.Local, a.Prefixlen), a.Scope, d.NetInode)
		}
	}
	fmt.Fprintf(w, "\n%-5s %-16s %-12s %-40s %-40s %5s %8s %10s\n", "PROTO", "SOCK", "STATE", "LOCAL", "REMOTE", "UID", "INODE", "NET")
	for _, s := range n.Sockets {
		local, remote := fmt.Sprintf("%s:%d", s.Local, s.LocalPort), fmt.Sprintf("%s:%d", s.Remote, s.RemotePort)
		if s.Proto == "unix" {
			local, remote = s.Path, fmt.Sprintf("type %d", s.Type)
		}
		fmt.Fprintf(w, "%-5s %016x %-12s %-40s %-40s %5d %8d %10d", s.Proto, uint64(s.Sock), s.StateName, local, remote, s.UID, s.Inode, s.NetInode)
		if s.Error != "" {
			fmt.Fprintf(w, "  error: %s", s.Error)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
	return noteNet(e, nerr)
}

// noteNet reports the tables that could not be read, on stderr.
func noteNet(e *env, err error) error {
	if err != nil {
		fmt.Fprintf(e.stderr, "note: %v\n", err)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
