package linux

import (
	"testing"
)

// TestIPLinkRender: the forms ip -d link prints (iproute2 6.1
// print_linkinfo, print_name_and_link, xdp_dump) that the lab's devices
// do not all show: a link of index 0 (@NONE), a link in another
// namespace (@ifN, link-netnsid), a link that is down (M-DOWN), XDP in
// several modes (xdpmulti and one prog/xdpMODE line each), no hardware
// address, and the details left out without -d.
func TestIPLinkRender(t *testing.T) {
	zero, five, nsid := 0, 5, 3
	am := uint32(0)
	base := NetDevice{Ifindex: 9, Name: "x0", FlagNames: []string{"UP"}, MTU: 1500, Qdisc: "noqueue",
		OperState: "UP", LinkMode: "DEFAULT", TxQueueLen: 1000, LinkType: "ether",
		Address: "aa:bb:cc:dd:ee:ff", Broadcast: "ff:ff:ff:ff:ff:ff", Allmulti: &am,
		NumTxQueues: 1, NumRxQueues: 1, GSOMaxSize: 65536, GSOMaxSegs: 65535}
	tests := []struct {
		name    string
		mod     func(*NetDevice)
		details bool
		want    string
	}{
		{"plain", func(d *NetDevice) {}, false,
			"9: x0: <UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\n    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff"},
		{"link none", func(d *NetDevice) { d.Link = &zero }, false,
			"9: x0@NONE: <UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\n    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff"},
		{"link down", func(d *NetDevice) { d.Link, d.LinkName, d.LinkDown = &five, "y0", true }, false,
			"9: x0@y0: <UP,M-DOWN> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\n    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff"},
		{"other namespace", func(d *NetDevice) { d.Link, d.LinkNetnsID = &five, &nsid }, true,
			"9: x0@if5: <UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\n" +
				"    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff link-netnsid 3 promiscuity 0  allmulti 0 minmtu 0 maxmtu 0 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535 "},
		{"xdp multi", func(d *NetDevice) {
			d.XDP = []NetDevXDP{{Mode: "generic", ProgID: 4}, {Mode: "driver", ProgID: 7}}
		}, false,
			"9: x0: <UP> mtu 1500 xdpmulti qdisc noqueue state UP mode DEFAULT group default qlen 1000\n    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff\n    prog/xdpgeneric id 4 \n    prog/xdpdrv id 7 "},
		{"no address", func(d *NetDevice) { d.Address, d.Broadcast, d.LinkType = "", "", "none" }, false,
			"9: x0: <UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\n    link/none "},
	}
	for _, tt := range tests {
		d := base
		tt.mod(&d)
		if got := d.IPLink(tt.details, nil); got != tt.want {
			t.Errorf("%s:\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
	if got := fwdMaskStr(1 | 4 | 8); got != "stp,lacp,0x8" {
		t.Errorf("fwdMaskStr: %q", got)
	}
	if got := ethProto(0x0081); got != "802.1Q" {
		t.Errorf("ethProto(be 0x8100): %q", got)
	}
}
