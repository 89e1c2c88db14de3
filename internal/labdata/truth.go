package labdata

import (
	"errors"
	"os"
	"slices"
	"testing"
)

// capturedTogether lists truth files the lab began to capture in one
// change: a scenario whose truth has one of a group was built by a lab
// that captures them all. (The /proc files for issue 15's commands, lab
// commit 46a96b8; the same idea as branch sched's procTruth, which fails
// any missing proc file under KINSPECT_LAB_REQUIRE=1.)
var capturedTogether = [][]string{{
	"proc/interrupts.txt", "proc/timer_list.txt", "proc/loadavg.txt", "proc/uptime.txt",
	"proc/devices.txt", "proc/stat.txt", "proc/vmallocinfo.txt",
	"proc/net_tcp.txt", "proc/net_tcp6.txt", "proc/net_udp.txt", "proc/net_udp6.txt",
	"proc/net_raw.txt", "proc/net_unix.txt",
	"proc/available_filter_functions.txt", "btf/vmlinux.txt",
}, {
	// The network devices of init.sh, with iproute2 in the guest.
	"proc/ip_d_link.txt", "proc/ip_d_link.json", "proc/ip_d_addr.txt", "proc/ip_d_addr.json",
	"proc/tc_qdisc.json", "proc/ip_d_link_ki_ns.txt", "proc/ip_d_link_ki_ns.json", "proc/ip_netns_list_id.txt",
}}

// TruthCaptured says whether the lab that built the scenario captures the
// truth file rel (relative to truth/): it is there, or a file the lab
// began capturing with it is.
func (s *Scenario) TruthCaptured(rel string) bool {
	if _, err := os.Stat(s.Path("truth/" + rel)); err == nil {
		return true
	}
	for _, g := range capturedTogether {
		if !slices.Contains(g, rel) {
			continue
		}
		for _, o := range g {
			if _, err := os.Stat(s.Path("truth/" + o)); err == nil {
				return true
			}
		}
	}
	return false
}

// TruthFile reads the truth file rel (relative to truth/) of a scenario.
// Where it is missing the test is skipped: the lab that built the
// scenario did not capture it yet (k612 and the kdump scenarios of an
// older lab). It fails instead under KINSPECT_LAB_REQUIRE=1 when that
// lab captures it (TruthCaptured), and on any other error.
func TruthFile(tb testing.TB, s *Scenario, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(s.Path("truth/" + rel))
	if errors.Is(err, os.ErrNotExist) && !(os.Getenv(EnvRequire) == "1" && s.TruthCaptured(rel)) {
		tb.Skipf("%s: the truth has no %s (built by a lab that did not capture it)", s.Scenario, rel)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
