package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// runOK runs kinspect and returns stdout, failing on a non-zero exit.
func runOK(t testing.TB, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("kinspect %s: exit %d: %s%s", strings.Join(args, " "), code, errb.String(), out.String())
	}
	return out.Bytes()
}

func readTruth(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: ours is not JSON: %v\n%.500s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: truth: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s differs from bpftool's:\nours  %.1500s\ntruth %.1500s", what, got, want)
	}
}

// workloadMaps reads truth/workload.json's maps by name.
type workloadMap struct {
	Name    string
	ID      int
	Type    string
	Content string
}

func workloadMaps(t *testing.T, s *labdata.Scenario) map[string]workloadMap {
	var w struct{ Maps []workloadMap }
	if err := json.Unmarshal(readTruth(t, s.Path("truth/workload.json")), &w); err != nil {
		t.Fatal(err)
	}
	out := map[string]workloadMap{}
	for _, m := range w.Maps {
		out[m.Name] = m
	}
	return out
}

// TestMapShowAllFormats: "map show" (JSON and text) equals bpftool's on
// every dump format of basic, and on the ELF dump of every scenario.
func TestMapShowAllFormats(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		for _, f := range s.Formats {
			if s.Scenario != "basic" && f.Name != "elf" {
				continue
			}
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				d := s.Path(f.Path)
				jsonEqual(t, "map show --json", runOK(t, "-c", d, "--json", "map", "show"), readTruth(t, s.Path("truth/bpftool/map.json")))
				if got, want := runOK(t, "-c", d, "map", "show"), readTruth(t, s.Path("truth/bpftool/map.txt")); !bytes.Equal(got, want) {
					t.Errorf("map show text:\n%s\nbpftool:\n%s", got, want)
				}
			})
		}
	}
}

// TestMapDump: "map dump" of every map bpftool could dump equals its
// JSON and text field by field; the maps bpftool cannot read are checked
// against the workload's description.
func TestMapDump(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			d := s.Path("dumps/elf")
			wl := workloadMaps(t, s)
			for _, m := range wl {
				if m.Name == "ki_big_hash" {
					continue // TestBigHash
				}
				id := strconv.Itoa(m.ID)
				t.Run(m.Name, func(t *testing.T) {
					rc, _ := os.ReadFile(s.Path("truth/maps/" + id + ".json.rc"))
					gotJ := runOK(t, "-c", d, "--json", "map", "dump", "id", id)
					gotT := runOK(t, "-c", d, "map", "dump", "id", id)
					switch {
					case m.Name == "ki_counters":
						// Program run counters move between the truth and
						// the dump: compare the keys only.
						var g, w []struct{ Key []string }
						json.Unmarshal(gotJ, &g)
						json.Unmarshal(readTruth(t, s.Path("truth/maps/"+id+".json")), &w)
						if !reflect.DeepEqual(g, w) {
							t.Errorf("keys %v, bpftool %v", g, w)
						}
					case strings.TrimSpace(string(rc)) == "0" && m.Name != "ki_perf_events" && m.Name != "ki_tr_perf":
						jsonEqual(t, "map dump --json", gotJ, readTruth(t, s.Path("truth/maps/"+id+".json")))
						if want := readTruth(t, s.Path("truth/maps/"+id+".txt")); !bytes.Equal(gotT, want) {
							t.Errorf("map dump text:\n%.1000s\nbpftool:\n%.1000s", gotT, want)
						}
					default:
						checkDescribed(t, m, gotJ)
					}
				})
			}
		})
	}
}

func hexBytes(t *testing.T, hs []string) []byte {
	var b []byte
	for _, h := range hs {
		x, err := strconv.ParseUint(h, 0, 8)
		if err != nil {
			t.Fatalf("hex %q", h)
		}
		b = append(b, byte(x))
	}
	return b
}

func le(b []byte) uint64 {
	var x uint64
	for i := len(b) - 1; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}

// checkDescribed checks a dump bpftool could not make against the
// workload's description of the map (truth/workload.json).
func checkDescribed(t *testing.T, m workloadMap, got []byte) {
	switch m.Name {
	case "ki_queue":
		// "values 0x1001,0x1002,0x1003,0x1004 (u32, pushed in that order)"
		var es []struct{ Value []string }
		if err := json.Unmarshal(got, &es); err != nil {
			t.Fatal(err)
		}
		if len(es) != 4 {
			t.Fatalf("%d elements, want 4: %s", len(es), got)
		}
		for i, e := range es {
			if v := le(hexBytes(t, e.Value)); v != 0x1001+uint64(i) {
				t.Errorf("element %d = %#x, want %#x", i, v, 0x1001+i)
			}
		}
	case "ki_stack":
		// "values 0x2001,0x2002,0x2003 (u32, pushed in that order)":
		// listed in pop order, the last pushed first.
		var es []struct{ Value []string }
		if err := json.Unmarshal(got, &es); err != nil {
			t.Fatal(err)
		}
		if len(es) != 3 {
			t.Fatalf("%d elements, want 3: %s", len(es), got)
		}
		for i, e := range es {
			if v := le(hexBytes(t, e.Value)); v != 0x2003-uint64(i) {
				t.Errorf("element %d = %#x, want %#x", i, v, 0x2003-i)
			}
		}
	case "ki_ringbuf":
		// "3 pending records {magic=0x4b495f524242 len=60+i mark=0}": len
		// is the skb's, the test-run data less its Ethernet header (14).
		var rb struct {
			ConsumerPos, ProducerPos uint64 `json:"-"`
			Records                  []struct {
				Len  int
				Busy bool
				Data []string
			}
		}
		if err := json.Unmarshal(got, &rb); err != nil {
			t.Fatal(err)
		}
		if len(rb.Records) != 3 {
			t.Fatalf("%d records, want 3: %s", len(rb.Records), got)
		}
		for i, r := range rb.Records {
			d := hexBytes(t, r.Data)
			if r.Len != 16 || r.Busy || len(d) != 16 || le(d[:8]) != 0x4b495f524242 || le(d[8:12]) != uint64(60+i-14) || le(d[12:]) != 0 {
				t.Errorf("record %d: %+v %x", i, r, d)
			}
		}
	case "ki_tr_rb":
		// "ki_tr_rawtp's records, consumed after each test run": none
		// pending, everything produced consumed.
		var rb struct {
			ConsumerPos uint64 `json:"consumer_pos"`
			ProducerPos uint64 `json:"producer_pos"`
			Records     []any
		}
		if err := json.Unmarshal(got, &rb); err != nil {
			t.Fatal(err)
		}
		if len(rb.Records) != 0 || rb.ConsumerPos != rb.ProducerPos || rb.ProducerPos == 0 {
			t.Errorf("%s: want no pending records and some consumed", got)
		}
	case "ki_tr_perf":
		// "a BPF output perf event on each of 2 CPUs; ki_tr_xdp's records
		// consumed after each test run"
		var es []struct {
			Value struct {
				CPU       int
				EventType int   `json:"event_type"`
				Config    int   `json:"config"`
				Records   []any `json:"records"`
			}
		}
		if err := json.Unmarshal(got, &es); err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 {
			t.Fatalf("%d slots, want 2", len(es))
		}
		for i, e := range es {
			if v := e.Value; v.CPU != i || v.EventType != 1 || v.Config != 10 || len(v.Records) != 0 {
				t.Errorf("slot %d: %+v, want cpu %d, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, no records", i, v, i)
			}
		}
	case "ki_perf_events":
		// "a BPF output perf event on each of 2 CPUs; 1 pending record
		// from ki_xdp on CPU 0 {magic=0x4b495f50455246 sum=1112
		// pkt_len=64 lpm_val=4}"
		var es []struct {
			Value struct {
				CPU       int
				EventType int `json:"event_type"`
				Config    int
				Records   []struct {
					Type int
					Raw  []string
				}
			}
		}
		if err := json.Unmarshal(got, &es); err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 {
			t.Fatalf("%d slots, want 2", len(es))
		}
		for i, e := range es {
			v := e.Value
			if v.CPU != i || v.EventType != 1 || v.Config != 10 {
				t.Errorf("slot %d: %+v, want cpu %d, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT", i, v, i)
			}
			want := 0
			if i == 0 {
				want = 1
			}
			if len(v.Records) != want {
				t.Fatalf("slot %d: %d records, want %d", i, len(v.Records), want)
			}
			if want == 1 {
				d := hexBytes(t, v.Records[0].Raw)
				if v.Records[0].Type != 9 || len(d) < 24 || le(d[:8]) != 0x4b495f50455246 || le(d[8:16]) != 1112 || le(d[16:20]) != 64 || le(d[20:24]) != 4 {
					t.Errorf("record %+v: %x", v.Records[0], d)
				}
			}
		}
	default:
		t.Errorf("bpftool could not dump %s; nothing describes it", m.Name)
	}
}

// TestBigHash dumps the scale scenario's 1,000,000-element ki_big_hash
// completely and checks every element: value = 3*key+7, each key in
// 0..999999 once; and the element lookups bpftool made.
func TestBigHash(t *testing.T) {
	s := labdata.Require(t, "scale")
	wl := workloadMaps(t, s)
	m, ok := wl["ki_big_hash"]
	if !ok {
		t.Fatal("no ki_big_hash in the workload")
	}
	id := strconv.Itoa(m.ID)
	d := s.Path("dumps/kdump-zlib")
	var out, errb bytes.Buffer
	if code := run([]string{"-c", d, "--json", "map", "dump", "id", id}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	dec := json.NewDecoder(&out)
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, 1_000_000)
	n := 0
	for dec.More() {
		var e struct {
			Key, Value []string
			Formatted  struct{ Key, Value uint64 }
		}
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		k, v := le(hexBytes(t, e.Key)), le(hexBytes(t, e.Value))
		if k >= uint64(len(seen)) || seen[k] || v != 3*k+7 || e.Formatted.Key != k || e.Formatted.Value != v {
			t.Fatalf("element %d: key %d value %d formatted %+v (seen %v)", n, k, v, e.Formatted, k < uint64(len(seen)) && seen[k])
		}
		seen[k] = true
		n++
	}
	if n != 1_000_000 {
		t.Errorf("%d elements, want 1000000", n)
	}
	// bpftool map lookup: the truth's lookups, one JSON object each.
	dl := json.NewDecoder(bytes.NewReader(readTruth(t, s.Path("truth/maps/"+id+".lookups.json"))))
	for dl.More() {
		var want json.RawMessage
		if err := dl.Decode(&want); err != nil {
			t.Fatal(err)
		}
		var w struct{ Key []string }
		json.Unmarshal(want, &w)
		args := append([]string{"-c", d, "--json", "map", "lookup", "id", id, "key"}, w.Key...)
		jsonEqual(t, "map lookup "+strings.Join(w.Key, " "), runOK(t, args...), want)
	}
}

// BenchmarkBigHashDump measures "map dump --json" of ki_big_hash on the
// scale scenario's kdump-zlib, output discarded; it reports elements/s.
func BenchmarkBigHashDump(b *testing.B) {
	s := labdata.Require(b, "scale")
	for _, f := range []string{"elf", "kdump-zlib"} {
		b.Run(f, func(b *testing.B) {
			d := s.Path("dumps/" + f)
			for b.Loop() {
				if code := run([]string{"-c", d, "--json", "map", "dump", "name", "ki_big_hash"}, io.Discard, io.Discard); code != 0 {
					b.Fatal("exit", code)
				}
			}
			b.ReportMetric(1e6*float64(b.N)/b.Elapsed().Seconds(), "elements/s")
		})
	}
}

// TestMapLookup: lookups of existing and missing keys, both key grammars.
func TestMapLookup(t *testing.T) {
	s := labdata.Require(t, "basic")
	d := s.Path("dumps/elf")
	wl := workloadMaps(t, s)
	hash := strconv.Itoa(wl["ki_hash"].ID)
	lpm := strconv.Itoa(wl["ki_lpm"].ID)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--json", "map", "lookup", "id", hash, "key", "3", "0", "0", "0"}, `"name":"ki_entry_03"`},
		{[]string{"--json", "map", "lookup", "id", hash, "key", "hex", "05", "00", "00", "00"}, `"id":5}`},
		{[]string{"--json", "map", "lookup", "id", hash, "key", "0x63", "0", "0", "0"}, "null\n"},
		{[]string{"map", "lookup", "id", hash, "key", "99", "0", "0", "0"}, "Not found"},
		// Longest prefix: 10.1.2.3/32 falls in 10.1.2.0/24 (value 4).
		{[]string{"--json", "map", "lookup", "id", lpm, "key", "32", "0", "0", "0", "10", "1", "2", "3"}, `"value":4}`},
		{[]string{"map", "lookup", "id", hash, "key", "3", "0", "0", "0"}, "\"name\": \"ki_entry_03\""},
	} {
		got := runOK(t, append([]string{"-c", d}, tc.args...)...)
		if !strings.Contains(string(got), tc.want) {
			t.Errorf("%v: %s, want %q", tc.args, got, tc.want)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"-c", d, "map", "lookup", "id", hash, "key", "1", "2"}, &out, &out); code != 255 || !strings.Contains(out.String(), "key expected 4 bytes got 2") {
		t.Errorf("short key: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-c", d, "--json", "map", "dump", "id", "99999"}, &out, &out); code != 255 || !strings.HasPrefix(out.String(), `{"error":`) {
		t.Errorf("missing map: exit %d: %s", code, out.String())
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want []byte
		ok   bool
	}{
		{"0x01 0 0 0", 4, []byte{1, 0, 0, 0}, true},
		{"hex 01 ff 10 00", 4, []byte{1, 0xff, 0x10, 0}, true},
		{"017 10", 2, []byte{15, 10}, true},
		{"256 0", 2, nil, false},
		{"1 2 3", 2, nil, false},
		{"hex zz", 1, nil, false},
	} {
		got, err := parseBytes(strings.Fields(tc.in), "key", tc.n)
		if (err == nil) != tc.ok || tc.ok && !bytes.Equal(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestLiveBPF compares kinspect --live's BPF commands inside the
// basic-live guest with that guest's bpftool.
func TestLiveBPF(t *testing.T) {
	s := labdata.Require(t, "basic-live")
	runs := liveRuns(t, s)
	// bpftool cannot list the hidden program and link, nor name the
	// program among its BTF's users (labdata.Hidden).
	h := s.Hidden(t)
	same := func(b []byte) []byte { return b }
	progs := func(b []byte) []byte { return labdata.DropJSON(b, h.Progs) }
	links := func(b []byte) []byte { return labdata.DropJSON(b, h.Links) }
	btfs := func(b []byte) []byte { return labdata.DropBTFJSON(b, h.Progs) }
	for _, tc := range []struct {
		cmd, truth string
		drop       func([]byte) []byte
	}{
		{"--json map show", "truth/bpftool/map.json", same},
		{"--json btf show", "truth/bpftool/btf.json", btfs},
		{"--json prog show -f", "truth/bpftool/prog_f.json", progs},
		{"--json map show -f", "truth/bpftool/map_f.json", same},
		{"--json link show -f", "truth/bpftool/link_f.json", links},
		{"--json struct_ops show", "truth/bpftool/struct_ops.json", same},
		{"--json struct_ops dump", "truth/bpftool/struct_ops_dump.json", same},
	} {
		r, ok := runs[tc.cmd]
		if !ok {
			t.Logf("the lab did not run %q: rebuild basic-live", tc.cmd)
			continue
		}
		if r.rc != 0 {
			t.Errorf("%s: exit %d: %s", tc.cmd, r.rc, r.err)
			continue
		}
		jsonEqual(t, tc.cmd, tc.drop(r.out), readTruth(t, s.Path(tc.truth)))
	}
	if r, ok := runs["--json map dump name ki_hash"]; ok && r.rc == 0 {
		id := strconv.Itoa(workloadMaps(t, s)["ki_hash"].ID)
		jsonEqual(t, "live map dump", r.out, readTruth(t, s.Path("truth/maps/"+id+".json")))
	}
	if r, ok := runs["--json link show"]; ok {
		var got, want []map[string]any
		json.Unmarshal(links(r.out), &got)
		json.Unmarshal(readTruth(t, s.Path("truth/bpftool/link.json")), &want)
		if len(got) != len(want) {
			t.Errorf("live link show: %d links, bpftool %d", len(got), len(want))
		}
	}
}
