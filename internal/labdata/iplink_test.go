package labdata

import (
	"slices"
	"testing"
)

// TestNormalizeIPLink: on lines as iproute2 6.1 prints them.
func TestNormalizeIPLink(t *testing.T) {
	raw := "4: ki_veth1@ki_veth0: <UP> mtu 1500 qdisc noqueue master ki_br0 state UP mode DEFAULT group default qlen 1000\n" +
		"    link/ether 62:ee:17:40:0f:b2 brd ff:ff:ff:ff:ff:ff promiscuity 1  allmulti 1 minmtu 68 maxmtu 3506 \n" +
		"    veth \n" +
		"    bridge_slave state forwarding priority 32 hold_timer    0.00 locked off addrgenmode eui64 numtxqueues 2 \n" +
		"7: ki_veth2@if2: <UP> mtu 1500\n" +
		"    link/ether 62:ee:17:40:0f:b3 brd ff:ff:ff:ff:ff:ff link-netns ki_ns promiscuity 0 \n" +
		"    bridge forward_delay 1500 gc_timer   40.45 numtxqueues 1 \n" +
		"    bridge_slave hold_timer    0.00 numtxqueues 1\n"
	got := NormalizeIPLink(raw, map[string]string{"ki_ns": "0"}, map[string]bool{"bridge": true})
	want := []string{
		"4: ki_veth1@ki_veth0: <UP> mtu 1500 qdisc noqueue master ki_br0 state UP mode DEFAULT group default qlen 1000",
		"    link/ether 62:ee:17:40:0f:b2 brd ff:ff:ff:ff:ff:ff promiscuity 1  allmulti 1 minmtu 68 maxmtu 3506",
		"    veth",
		"    bridge_slave state forwarding priority 32 hold_timer * locked off addrgenmode eui64 numtxqueues 2",
		"7: ki_veth2@if2: <UP> mtu 1500",
		"    link/ether 62:ee:17:40:0f:b3 brd ff:ff:ff:ff:ff:ff link-netnsid 0 promiscuity 0",
		"    bridge numtxqueues 1",
		"    bridge_slave hold_timer * numtxqueues 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
