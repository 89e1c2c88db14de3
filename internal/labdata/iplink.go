package labdata

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// IPLinkTruth is the guest's ip -d link show of a namespace
// (truth/proc/NAME, ip_d_link.txt for init_net), in lines made
// comparable with kinspect's: trailing blanks dropped, "link-netns
// NAME" as the "link-netnsid ID" the kernel keeps (ip netns list-id),
// the time left on bridge timers masked (MaskIPLinkTimers), and the
// data of the link kinds kinspect does not decode removed
// (undecoded: "bridge", "bridge_slave"; a line's kind data runs to
// addrgenmode, numtxqueues or the line's end).
func IPLinkTruth(tb testing.TB, s *Scenario, name string, undecoded map[string]bool) []string {
	tb.Helper()
	raw := string(TruthFile(tb, s, "proc/"+name))
	ids := map[string]string{}
	if b, err := readTruth(s, "proc/ip_netns_list_id.txt"); err == nil {
		// "nsid 0 (iproute2 netns name: ki_ns)"
		for _, m := range netnsListID.FindAllStringSubmatch(b, -1) {
			ids[m[2]] = m[1]
		}
	}
	return NormalizeIPLink(raw, ids, undecoded)
}

var (
	netnsListID = regexp.MustCompile(`nsid (\d+) \(iproute2 netns name: ([^)]+)\)`)
	bridgeTimer = regexp.MustCompile(`\b(hello_timer|tcn_timer|topology_change_timer|gc_timer|hold_timer|message_age_timer|forward_delay_timer) +\d+\.\d+`)
	linkNetns   = regexp.MustCompile(` link-netns (\S+)`)
)

// NormalizeIPLink does IPLinkTruth's work on ip -d link's text, with
// the namespace ids by name.
func NormalizeIPLink(raw string, ids map[string]string, undecoded map[string]bool) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(raw, "\n"), "\n") {
		l = linkNetns.ReplaceAllStringFunc(l, func(m string) string {
			if id, ok := ids[strings.TrimPrefix(m, " link-netns ")]; ok {
				return " link-netnsid " + id
			}
			return m
		})
		if rest, ok := strings.CutPrefix(l, "    "); ok {
			kind, data, _ := strings.Cut(rest, " ")
			if undecoded[kind] {
				end := len(data)
				for _, w := range []string{"addrgenmode ", "numtxqueues "} {
					if i := strings.Index(data, w); i >= 0 && (i == 0 || data[i-1] == ' ') && i < end {
						end = i
					}
				}
				l = "    " + kind + " " + data[end:]
			}
		}
		out = append(out, strings.TrimRight(l, " "))
	}
	return MaskIPLinkTimers(out)
}

// MaskIPLinkTimers replaces the time left on bridges' and bridge ports'
// timers (gc_timer   40.45) with "*": it runs down between the truth and
// the dump.
func MaskIPLinkTimers(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = bridgeTimer.ReplaceAllString(l, "$1 *")
	}
	return out
}

func readTruth(s *Scenario, rel string) (string, error) {
	b, err := os.ReadFile(s.Path("truth/" + rel))
	return string(b), err
}
