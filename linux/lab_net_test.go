package linux_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
)

// procNetKey is the identity of a /proc/net line the test compares:
// local address:port, remote address:port, state and inode (for unix:
// type, state, inode and path). The other columns (tx/rx queues,
// timers, retransmits, refcounts) move between the truth and the dump
// and are not compared.
func procNetKey(file string, fields []string) (string, bool) {
	if file == "unix" {
		// Num RefCount Protocol Flags Type St Inode [Path]
		if len(fields) < 7 || fields[0] == "Num" {
			return "", false
		}
		k := strings.Join([]string{fields[4], fields[5], fields[6]}, " ")
		if len(fields) > 7 {
			k += " " + fields[7]
		}
		return k, true
	}
	// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
	if len(fields) < 10 || fields[0] == "sl" {
		return "", false
	}
	return strings.Join([]string{fields[1], fields[2], fields[3], fields[9]}, " "), true
}

// TestLabNetSockets: net's sockets of init_net are /proc/net/{tcp,tcp6,
// udp,udp6,raw,unix} (the truth's net_*.txt), compared as sets of
// (local, remote, state, inode) lines. A socket opened or closed between
// the truth and the dump would be missing or extra: the lab's guest runs
// no network daemon, and the workload's sockets are a UDP socket it never
// binds (for SO_ATTACH_BPF: in no table, so in no file) and a TCP socket
// it closes before the truth (checkCongestionControl), so on the lab's
// 6.1 dumps every table is empty in the truth and in the dump, and no
// tolerance is needed. Where the truth lacks the files (k612, kdump
// scenarios of an older lab) TestLabNetFDs' consistency check is what
// runs.
func TestLabNetSockets(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			n, err := linux.ReadNet(p)
			if err != nil {
				labErr(t, name, "net", err)
			}
			var init uint64
			for _, ns := range n.Namespaces {
				if ns.Init {
					init = ns.Inode
				}
			}
			if init == 0 {
				t.Fatalf("no init_net among %d namespaces", len(n.Namespaces))
			}
			for _, file := range []string{"tcp", "tcp6", "udp", "udp6", "raw", "unix"} {
				truth := map[string]bool{}
				lines := 0
				for _, l := range strings.Split(string(labdata.TruthFile(t, sc, "proc/net_"+file+".txt")), "\n") {
					if k, ok := procNetKey(file, strings.Fields(l)); ok {
						truth[k] = true
					}
					lines++
				}
				if lines == 0 {
					t.Errorf("net_%s.txt: no header", file)
				}
				got := map[string]bool{}
				for _, s := range n.Sockets {
					if s.Proto != file || s.NetInode != init {
						continue
					}
					if s.Error != "" {
						t.Errorf("%s socket %#x: %s", file, uint64(s.Sock), s.Error)
					}
					f := strings.Fields(s.ProcLine)
					if file == "unix" {
						f = append([]string{"x:"}, f...)
					} else {
						f = append([]string{"0:"}, f[:4]...)
						f = append(f, "tr", "ret", "uid", "timeout", strings.Fields(s.ProcLine)[5])
					}
					if k, ok := procNetKey(file, f); ok {
						got[k] = true
					}
				}
				missing, extra := 0, 0
				for k := range truth {
					if !got[k] {
						missing++
						t.Errorf("%s: in the truth, not in the dump: %s", file, k)
					}
				}
				for k := range got {
					if !truth[k] {
						extra++
						t.Errorf("%s: in the dump, not in the truth: %s", file, k)
					}
				}
				t.Logf("%s: %d sockets in the truth, %d read, %d missing, %d extra", file, len(truth), len(got), missing, extra)
			}
		})
	}
}

// TestLabNetFDs: on every lab dump, each socket a task holds open
// (a SOCK fd: socket:[INODE]) of the families the tables list is in
// them exactly when it is hashed (sock_common's node linked: pprev set),
// and every socket of the tables with an inode is some task's or not
// yet accepted; the workload's unbound UDP socket (SO_ATTACH_BPF) is
// found through its fd and is in no table, as /proc/net/udp shows.
func TestLabNetFDs(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			n, err := linux.ReadNet(p)
			if err != nil {
				labErr(t, name, "net", err)
			}
			inTables := map[uint64]linux.Socket{}
			for _, s := range n.Sockets {
				if s.Inode != 0 {
					inTables[s.Inode] = s
				}
			}
			pprevOff, _, err := p.MemberOffset("struct sock_common", "skc_node.pprev")
			if err != nil {
				t.Fatal(err)
			}
			socks, unhashed := 0, 0
			seen := map[uint64]bool{} // threads share their fd table
			for task, err := range linux.ForEachTask(p) {
				if err != nil {
					labErr(t, name, "tasks", err)
					return
				}
				for f, err := range linux.ForEachFile(task) {
					if err != nil {
						continue // TestLabFiles checks the fd tables
					}
					of, err := linux.NewOpenFile(f.FD, f.File)
					if err != nil || of.Type != "SOCK" {
						continue
					}
					ino, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(of.Path, "socket:["), "]"), 10, 64)
					so, err := f.File.MemberUint("private_data")
					if err != nil {
						t.Error(err)
						continue
					}
					sk, err := p.UintAt("struct socket", so, "sk")
					if err != nil || sk == 0 || seen[sk] {
						continue
					}
					seen[sk] = true
					fam, _ := p.UintAt("struct sock_common", sk, "skc_family")
					if fam != 1 && fam != 2 && fam != 10 {
						continue // netlink, packet, ...: no table of these
					}
					socks++
					pprev, err := p.ReadU64(sk + pprevOff)
					if err != nil {
						t.Error(err)
						continue
					}
					s, listed := inTables[ino]
					switch {
					case pprev != 0 && !listed:
						t.Errorf("socket:[%d] (family %d, sock %#x) is hashed but in no table read", ino, fam, sk)
					case pprev == 0 && listed:
						t.Errorf("socket:[%d] is unhashed but listed: %+v", ino, s)
					case pprev == 0:
						unhashed++
						st, _ := p.UintAt("struct sock_common", sk, "skc_state")
						t.Logf("socket:[%d] (family %d, state %d, sock %#x): unhashed, in no /proc/net file", ino, fam, st, sk)
					}
					delete(inTables, ino)
				}
			}
			for ino, s := range inTables {
				if s.Proto != "tcp" && s.Proto != "tcp6" || s.State != 1 {
					t.Errorf("socket:[%d] of the tables is no task's: %+v", ino, s)
				}
			}
			t.Logf("%d sockets held by tasks (%d unhashed), %d in the tables", socks, unhashed, len(n.Sockets))
			if labkernel.Scenario(name).Scenario == "basic" && unhashed == 0 {
				t.Error("the workload's unbound UDP socket was not found")
			}
		})
	}
}

// TestLabNetDevices: each namespace's devices (for_each_netdev)
// rendered as ip -d link show prints them are the guest's iproute2 ip -d
// link show, of init_net and of the namespace ki_ns
// (truth/proc/ip_d_link*.txt; the data of the link kinds kinspect says it
// does not decode left out: labdata.IPLinkTruth); the programs on them
// their addresses ip addr's (ip -j addr: family, address, prefix, scope,
// label); the programs on them
// are bpftool net show's (truth/bpftool/net.json: XDP by mode, cls_bpf
// filters, flow dissector), and the tcx programs (6.6+: this bpftool
// predates tcx) those the workload attached (truth/workload.json).
func TestLabNetDevices(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf", "kdump-zlib", "kdump-lzo-d31.flat") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			devs, err := linux.NetDevices(p)
			if err != nil {
				labErr(t, name, "net devices", err)
				return
			}
			initNet, err := p.Symbol("init_net")
			if err != nil {
				t.Fatal(err)
			}
			initIno, err := p.UintAt("struct net", initNet, "ns.inum")
			if err != nil {
				t.Fatal(err)
			}
			misfiltered := false
			undecoded := map[string]bool{}
			byNS := map[uint64][]linux.NetDevice{}
			for _, d := range devs {
				if d.Error != "" {
					if f, _ := sc.Format(strings.SplitN(name, "/", 2)[1]); sc.Misfiltered(f) != "" && strings.Contains(d.Error, "excluded") {
						t.Logf("device %#x (%s) on a misfiltered page: %s", uint64(d.Dev), d.Name, d.Error)
						misfiltered = true
					} else {
						t.Errorf("device %#x: %s", uint64(d.Dev), d.Error)
					}
				}
				for _, in := range d.Incomplete {
					switch {
					case strings.HasPrefix(in, "kind data:"):
						undecoded[d.Kind] = true
					case strings.HasPrefix(in, "slave data:"):
						undecoded[d.SlaveKind+"_slave"] = true
					default:
						t.Errorf("device %s: %s", d.Name, in)
					}
				}
				byNS[d.NetInode] = append(byNS[d.NetInode], d)
			}
			info := bpf.XDPProgInfo(p)
			render := func(ds []linux.NetDevice) []string {
				var out []string
				for _, d := range ds {
					for _, l := range strings.Split(d.IPLink(true, info), "\n") {
						out = append(out, strings.TrimRight(l, " "))
					}
				}
				return labdata.MaskIPLinkTimers(out)
			}
			compare := func(what string, got, want []string) {
				if !slices.Equal(got, want) && !misfiltered {
					t.Errorf("%s as ip -d link:\n%s\nthe guest's ip -d link show:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
			compare("init_net's devices", render(byNS[initIno]), labdata.IPLinkTruth(t, sc, "ip_d_link.txt", undecoded))
			// ki_ns: the other namespace with a device named ki_veth3 (a
			// lab since ki_ns was added).
			other := 0
			if _, err := os.Stat(sc.Path("truth/proc/ip_d_link_ki_ns.txt")); err != nil {
				other = -1
			}
			for ino, ds := range byNS {
				if other >= 0 && ino != initIno && slices.ContainsFunc(ds, func(d linux.NetDevice) bool { return d.Name == "ki_veth3" }) {
					other++
					compare("ki_ns's devices", render(ds), labdata.IPLinkTruth(t, sc, "ip_d_link_ki_ns.txt", undecoded))
				}
			}
			if other == 0 && !misfiltered {
				t.Errorf("%d namespaces with ki_veth3, want 1", other)
			}
			if len(undecoded) > 0 {
				t.Logf("kind data not decoded, left out of the comparison: %v", undecoded)
			}

			// The addresses of init_net's devices: ip -j addr's family,
			// address, prefix length, scope and label.
			var ipAddr []struct {
				Ifname   string `json:"ifname"`
				AddrInfo []struct {
					Family    string `json:"family"`
					Local     string `json:"local"`
					Prefixlen int    `json:"prefixlen"`
					Scope     string `json:"scope"`
					Label     string `json:"label"`
				} `json:"addr_info"`
			}
			if err := json.Unmarshal(labdata.TruthFile(t, sc, "proc/ip_d_addr.json"), &ipAddr); err != nil {
				t.Fatal(err)
			}
			var gotAddr, wantAddr []string
			for _, d := range byNS[initIno] {
				for _, a := range d.Addrs {
					gotAddr = append(gotAddr, fmt.Sprintf("%s %s %s/%d scope %s %s", d.Name, a.Family, a.Local, a.Prefixlen, a.Scope, a.Label))
				}
			}
			for _, d := range ipAddr {
				for _, a := range d.AddrInfo {
					wantAddr = append(wantAddr, fmt.Sprintf("%s %s %s/%d scope %s %s", d.Ifname, a.Family, a.Local, a.Prefixlen, a.Scope, a.Label))
				}
			}
			if !slices.Equal(gotAddr, wantAddr) && !misfiltered {
				t.Errorf("addresses:\n%s\nip addr:\n%s", strings.Join(gotAddr, "\n"), strings.Join(wantAddr, "\n"))
			}

			ns, err := bpf.ReadNetShow(p)
			if err != nil {
				t.Fatal(err)
			}
			var tcx []bpf.NetTC
			ns.TC = slices.DeleteFunc(ns.TC, func(c bpf.NetTC) bool {
				if strings.HasPrefix(c.Kind, "tcx/") {
					tcx = append(tcx, c)
					return true
				}
				return false
			})
			got, err := json.Marshal([]*bpf.NetShow{ns})
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			labdata.ReadJSON(t, sc.Path("truth/bpftool/net.json"), &wantV)
			if !reflect.DeepEqual(gotV, wantV) && !misfiltered {
				t.Errorf("net --bpf:\n%s\nbpftool net show:\n%s", got, labdata.TruthFile(t, sc, "bpftool/net.json"))
			}
			// tcx: what the workload attached.
			var w struct {
				Progs []struct {
					Name   string `json:"name"`
					ID     uint32 `json:"id"`
					Attach string `json:"attach"`
				} `json:"progs"`
				Links []struct {
					ID     uint32 `json:"id"`
					ProgID uint32 `json:"prog_id"`
					Target string `json:"target"`
				} `json:"links"`
			}
			labdata.ReadJSON(t, sc.Path("truth/workload.json"), &w)
			var wantTCX []string
			for _, l := range w.Links {
				if dev, ok := strings.CutPrefix(l.Target, "tcx:"); ok {
					dev, dir, _ := strings.Cut(strings.TrimSuffix(dev, ")"), "(")
					for _, pr := range w.Progs {
						if pr.ID == l.ProgID {
							wantTCX = append(wantTCX, fmt.Sprintf("%s tcx/%s %s prog %d link %d", dev, dir, pr.Name, pr.ID, l.ID))
						}
					}
				}
			}
			var gotTCX []string
			for _, c := range tcx {
				gotTCX = append(gotTCX, fmt.Sprintf("%s %s %s prog %d link %d", c.Devname, c.Kind, c.Name, c.ProgID, c.LinkID))
			}
			if !slices.Equal(gotTCX, wantTCX) && !misfiltered {
				t.Errorf("tcx %q, the workload's %q", gotTCX, wantTCX)
			}
			t.Logf("%d devices in %d namespaces, %d addresses; bpftool net: %d XDP, %d tc; %d tcx", len(devs), len(byNS), len(gotAddr), len(ns.XDP), len(ns.TC), len(tcx))
		})
	}
}
