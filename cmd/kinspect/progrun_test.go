package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/internal/labdata"
)

// basicELF is the basic scenario's ELF dump.
func basicELF(t *testing.T) string {
	t.Helper()
	s := labdata.Require(t, "basic")
	f, ok := s.Format("elf")
	if !ok {
		t.Skip("basic has no ELF dump")
	}
	return s.Path(f.Path)
}

// docPacket is the packet of docs/debugger.md: Ethernet, IPv4 from
// 10.0.0.1 to 10.1.2.3, zeros to 64 bytes.
func docPacket() []byte {
	p := make([]byte, 64)
	copy(p[6:], []byte{2, 0, 0, 0, 0, 1})
	p[12], p[14] = 8, 0x45
	copy(p[26:], []byte{10, 0, 0, 1, 10, 1, 2, 3})
	return p
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// runIn runs the command line with stdin and returns its code and
// output.
func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	old := progStdin
	progStdin = strings.NewReader(stdin)
	defer func() { progStdin = old }()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestDebuggerDoc runs docs/debugger.md's session and compares its
// transcript.
func TestDebuggerDoc(t *testing.T) {
	dump := basicELF(t)
	doc, err := os.ReadFile("../../docs/debugger.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```session\n\\$ kinspect -c basic/dumps/elf (prog debug [^\n]*)\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/debugger.md: no session block")
	}
	args := strings.Fields(string(m[1]))
	pkt := writeTemp(t, "pkt.bin", docPacket())
	for i, a := range args {
		if a == "pkt.bin" {
			args[i] = pkt
		}
	}
	want := string(m[2])
	var cmds []string
	for _, l := range strings.Split(want, "\n") {
		if c, ok := strings.CutPrefix(l, debugPrompt); ok {
			cmds = append(cmds, c)
		}
	}
	code, out, errs := runIn(t, strings.Join(cmds, "\n")+"\n", append([]string{"-c", dump}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Kernel addresses move with KASLR from one build of the lab to the
	// next, map IDs whenever the workload creates more objects: the
	// lines that name a map's ID name the map too, or are checked below.
	kaddr := regexp.MustCompile(`(0x|\b)ffff[0-9a-f]{12}\b`)
	mapID := regexp.MustCompile(`\bmap( |\[id:)[0-9]+\b`)
	norm := func(s string) string {
		return mapID.ReplaceAllString(kaddr.ReplaceAllString(s, "${1}ffff............"), "map${1}N")
	}
	if norm(out) != norm(want) {
		t.Errorf("the session differs from docs/debugger.md:\n%s", lineDiff(norm(want), norm(out)))
	}
	checkMapIDs(t, out)
	// --resume: the spinner's run continued from the dump; 218 is what
	// its whole run returns (TestLabSpinnerState).
	w := readSpinner(t, labdata.Require(t, "basic"))
	code, out, errs = runIn(t, "continue\n", "-c", dump, "prog", "debug", "id", fmt.Sprint(w.ProgID), "--resume", fmt.Sprint(w.TID))
	if code != 0 || !strings.Contains(out, "(bpf) continue\nexited after ") || !strings.HasSuffix(out, " instructions\nReturn value: 218\n") {
		t.Errorf("--resume: %d %s\n%s", code, errs, out)
	}
}

// checkMapIDs checks that every "map ID NAME" of out has the ID
// truth/workload.json gives NAME.
func checkMapIDs(t *testing.T, out string) {
	t.Helper()
	maps := workloadMaps(t, labdata.Require(t, "basic"))
	for _, m := range regexp.MustCompile(`\bmap ([0-9]+) (ki_[a-z0-9_]+)`).FindAllStringSubmatch(out, -1) {
		if id := strconv.Itoa(maps[m[2]].ID); id != m[1] {
			t.Errorf("%q: %s is map %s in the truth", m[0], m[2], id)
		}
	}
}

// readSpinner reads the spinner of the scenario's workload.json.
func readSpinner(t *testing.T, s *labdata.Scenario) (sp struct {
	ProgID uint32 `json:"prog_id"`
	TID    int    `json:"tid"`
}) {
	var w struct {
		Spinner struct {
			ProgID uint32 `json:"prog_id"`
			TID    int    `json:"tid"`
		} `json:"spinner"`
	}
	labdata.ReadJSON(t, s.Path("truth/workload.json"), &w)
	sp.ProgID, sp.TID = w.Spinner.ProgID, w.Spinner.TID
	return sp
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n want: %s\n  got: %s", i+1, a, b)
		}
	}
	return ""
}

func TestProgRun(t *testing.T) {
	dump := basicELF(t)
	maps := workloadMaps(t, labdata.Require(t, "basic"))
	pkt := writeTemp(t, "pkt.bin", docPacket())
	// bpftool's output: data_out in hex, then the return value line;
	// kinspect's additions after it.
	code, out, errs := runIn(t, "", "-c", dump, "prog", "run", "name", "ki_xdp", "data_in", pkt, "data_out", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wantRe := regexp.MustCompile(`^0000000\t0000 0000 0000 0200 0000 0001 0800 4500 \| \.\.\.\.\.\.\.\. \.\.\.\.\.\.E\.
0000010\t0000 0000 0000 0000 0000 0a00 0001 0a01 \| \.\.\.\.\.\.\.\. \.\.\.\.\.\.\.\.
0000020\t0203 0000 0000 0000 0000 0000 0000 0000 \| \.\.\.\.\.\.\.\. \.\.\.\.\.\.\.\.
0000030\t0000 0000 0000 0000 0000 0000 0000 0000 \| \.\.\.\.\.\.\.\. \.\.\.\.\.\.\.\.
Return value: 2, duration: \d+ns
Instructions executed: 80
output by bpf_xdp_event_output \(insn 74\) to map ` + strconv.Itoa(maps["ki_perf_events"].ID) + `, cpu 0, 24 bytes: 465245505f494b0058040000000000004000000004000000
Map changes: 1
  map ` + strconv.Itoa(maps["ki_counters"].ID) + ` ki_counters \(array\) key 04000000: ([0-9a-f]{2})00000000000000 -> ([0-9a-f]{2})00000000000000
$`)
	if m := wantRe.FindStringSubmatch(out); m == nil {
		t.Errorf("prog run:\n%s", out)
	} else if b, _ := strconv.ParseUint(m[1], 16, 8); m[2] != fmt.Sprintf("%02x", b+1) {
		// The counter's value in the dump is not the truth's (it
		// counts): the run adds one.
		t.Errorf("ki_counters[4]: %s -> %s", m[1], m[2])
	}
	// repeat: "(average)", the counter grows by the repeats.
	code, out, _ = runIn(t, "", "-c", dump, "prog", "run", "name", "ki_cgroup_skb", "data_in", pkt, "repeat", "4")
	if code != 0 || !regexp.MustCompile(`Return value: 1, duration \(average\): \d+ns\n`).MatchString(out) ||
		!strings.Contains(out, "key 03000000: 0000000000000000 -> 0400000000000000") {
		t.Errorf("repeat 4: %d\n%s", code, out)
	}
	// data_in from stdin, data_out to a file.
	outFile := filepath.Join(t.TempDir(), "out")
	if code, _, errs := runIn(t, string(docPacket()), "-c", dump, "prog", "run", "name", "ki_sock_filter", "data_in", "-", "data_out", outFile); code != 0 {
		t.Fatalf("data_in -: %s", errs)
	}
	if b, _ := os.ReadFile(outFile); !bytes.Equal(b, append(make([]byte, 14), docPacket()[14:]...)) {
		t.Errorf("data_out file: % x", b)
	}
	// A pcap: one run per packet, on the same maps.
	var pc bytes.Buffer
	if err := bpfrun.WritePcap(&pc, [][]byte{docPacket(), docPacket(), docPacket()}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runIn(t, "", "-c", dump, "prog", "run", "name", "ki_cgroup_skb", "--pcap", writeTemp(t, "p.pcap", pc.Bytes()))
	if code != 0 || strings.Count(out, ": Return value: 1, duration: ") != 3 || !strings.Contains(out, "packet 2: Return value") ||
		!strings.Contains(out, "key 03000000: 0000000000000000 -> 0300000000000000") {
		t.Errorf("--pcap: %d %s\n%s", code, errs, out)
	}
	// bpftool's errors.
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"name", "ki_xdp", "data", pkt}, "parameter 'data' is ambiguous, which could be one of 'data_in', 'data_out', 'data_size_out'"},
		{[]string{"name", "ki_xdp", "data_in", pkt, "repeat", "x"}, "can't parse x as repeat number"},
		{[]string{"name", "ki_xdp", "data_in", "-", "ctx_in", "-"}, "cannot use standard input for both data_in and ctx_in"},
		{[]string{"name", "ki_xdp", "nosuch"}, "expected no more arguments"},
		{[]string{"name", "ki_xdp", "data_in", writeTemp(t, "short", make([]byte, 10))}, "failed to run program"},
	} {
		code, _, errs := runIn(t, "", append([]string{"-c", dump, "prog", "run"}, c.args...)...)
		if code != 255 || !strings.Contains(errs, c.msg) {
			t.Errorf("%q: exit %d, %s; want 255 and %q", c.args, code, errs, c.msg)
		}
	}
}

func TestProgStateAndBt(t *testing.T) {
	s := labdata.Require(t, "panic")
	f, ok := s.Format("elf")
	if !ok {
		t.Skip("panic has no ELF dump")
	}
	dump := s.Path(f.Path)
	w := readSpinner(t, s)
	// The spinner, through the NMI's registers.
	code, out, errs := runIn(t, "", "-c", dump, "prog", "state", "name", "ki_spin")
	at := regexp.MustCompile(fmt.Sprintf(`prog %d ki_spin, ki_spin at ffffffffc[0-9a-f]{7} \(interrupted\)`, w.ProgID))
	if code != 0 || !strings.Contains(out, `COMMAND: "ki_spinner"`) || !at.MatchString(out) ||
		!strings.Contains(out, "insn 26: (05) goto pc-21") || !strings.Contains(out, "spin.bpf.c:23:2: for (int i = 0; i < KI_SPIN_ITERS; i++) {") ||
		!strings.Contains(out, "r1=0x9e3779b97f4a7c15") {
		t.Errorf("prog state: %d %s\n%s", code, errs, out)
	}
	code, out, errs = runIn(t, "", "-c", dump, "bt", "-f", fmt.Sprint(w.TID))
	if code != 0 || !strings.Contains(out, "--- BPF view ---\n     insn 26: (05) goto pc-21\n") {
		t.Errorf("bt -f: %d %s\n%s", code, errs, out)
	}
}
