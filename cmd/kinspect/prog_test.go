package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// TestProgShowTruth runs "prog show" and "--json prog show" on each
// scenario's dumps and compares them byte for byte with what bpftool
// printed in the guest (truth/bpftool/prog.{txt,json}): every format of
// basic and of a scenario without VMCOREINFO, the ELF dump of the others.
func TestProgShowTruth(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		for _, f := range s.Formats {
			if s.Scenario != "basic" && !s.NoVMCOREINFO && f.Name != "elf" {
				continue
			}
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				hidden := s.Hidden(t)
				for _, tc := range []struct{ args, truth string }{
					{"--json prog show", "truth/bpftool/prog.json"},
					{"prog show", "truth/bpftool/prog.txt"},
				} {
					if f.Name != "elf" && !strings.HasPrefix(tc.args, "--json") {
						continue
					}
					want, err := os.ReadFile(s.Path(tc.truth))
					if err != nil {
						t.Fatal(err)
					}
					var out, errb bytes.Buffer
					args := append([]string{"-c", s.Path(f.Path)}, strings.Fields(tc.args)...)
					if code := run(args, &out, &errb); code != 0 {
						t.Fatalf("%s: exit %d: %s", tc.args, code, errb.String())
					}
					// bpftool cannot list the hidden program (TestHiddenProg).
					got := labdata.DropText(out.Bytes(), hidden.Progs)
					if strings.HasPrefix(tc.args, "--json") {
						got = labdata.DropJSON(out.Bytes(), hidden.Progs)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s differs from bpftool's:\n%s", tc.args, firstDiff(string(got), string(want)))
						if strings.HasPrefix(tc.args, "--json") {
							var a, b any
							json.Unmarshal(got, &a)
							json.Unmarshal(want, &b)
							if reflect.DeepEqual(a, b) {
								t.Logf("(equal as JSON values)")
							}
						}
					}
				}
			})
		}
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + a + "\nwant: " + b
		}
	}
	return "(lengths differ)"
}

// TestProgDumpXlatedTruth dumps every program the truth has xlated
// dumps of, in every form bpftool made (truth/xlated/ID.{txt,
// opcodes.txt, linum.txt, json, dot}), from the ELF dump of each
// scenario and a compressed, filtered one of basic, and compares them
// byte for byte.
func TestProgDumpXlatedTruth(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		for _, f := range []string{"elf", "kdump-lzo-d31.flat"} {
			if f != "elf" && s.Scenario != "basic" {
				continue
			}
			fm, ok := s.Format(f)
			if !ok {
				continue
			}
			t.Run(s.Scenario+"/"+f, func(t *testing.T) {
				k, err := openKernel(&env{globals: globals{dump: s.Path(fm.Path), cache: defaultPageCacheMiB}}, "")
				if err != nil {
					t.Fatal(err)
				}
				defer k.Close()
				files, _ := filepath.Glob(s.Path("truth/xlated/*"))
				same, total := 0, 0
				for _, tf := range files {
					base := filepath.Base(tf)
					if strings.HasSuffix(base, ".rc") || strings.HasSuffix(base, ".err") {
						continue
					}
					idStr, form, _ := strings.Cut(base, ".")
					id, err := strconv.ParseUint(idStr, 10, 32)
					if err != nil {
						continue
					}
					if _, err := os.Stat(tf + ".err"); err == nil {
						continue
					}
					e := &env{globals: globals{dump: s.Path(fm.Path)}}
					var o bpfinsn.TextOptions
					visual := false
					switch form {
					case "txt":
					case "opcodes.txt":
						o.Opcodes = true
					case "linum.txt":
						o.Linum = true
					case "json":
						e.json = true
					case "dot":
						visual = true
					default:
						continue
					}
					var out, errb bytes.Buffer
					e.stdout, e.stderr = &out, &errb
					total++
					if err := progDump(e, k, progSelector{Selector: bpf.Selector{Kind: bpf.SelectID, ID: uint32(id)}}, false, o, visual); err != nil {
						t.Errorf("%s: %v", base, err)
						continue
					}
					want, _ := os.ReadFile(tf)
					if !bytes.Equal(out.Bytes(), want) {
						t.Errorf("%s differs from bpftool's:\n%s", base, firstDiff(out.String(), string(want)))
						continue
					}
					same++
				}
				if total == 0 {
					t.Fatalf("no xlated truth")
				}
				t.Logf("%d/%d xlated dumps equal to bpftool's", same, total)
			})
		}
	}
}

// TestProgLive checks "kinspect --live --json prog show" run in the
// basic-live guest against the bpftool truth taken there.
func TestProgLive(t *testing.T) {
	s := labdata.Require(t, "basic-live")
	r, ok := liveRuns(t, s)["--json prog show"]
	if !ok {
		t.Skip(`the lab did not run "--json prog show": rebuild basic-live (go run ./lab basic-live)`)
	}
	if r.rc != 0 {
		t.Fatalf("exit %d: %s%s", r.rc, r.out, r.err)
	}
	want, err := os.ReadFile(s.Path("truth/bpftool/prog.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got, exp []map[string]any
	if err := json.Unmarshal(r.out, &got); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	if err := json.Unmarshal(want, &exp); err != nil {
		t.Fatal(err)
	}
	// bpftool ran after kinspect: programs loaded in between are only
	// in its list; each of kinspect's must be there, equal, but the
	// hidden ones, which bpftool cannot list (labdata.Hidden).
	byID := map[float64]map[string]any{}
	for _, p := range exp {
		byID[p["id"].(float64)] = p
	}
	hidden := s.Hidden(t).Progs
	for _, g := range got {
		if name, ok := hidden[uint32(g["id"].(float64))]; ok {
			if g["name"] != name {
				t.Errorf("hidden program %v: name %v, workload's %s", g["id"], g["name"], name)
			}
			delete(hidden, uint32(g["id"].(float64)))
			continue
		}
		w, ok := byID[g["id"].(float64)]
		if !ok {
			t.Errorf("program %v is not in bpftool's list", g["id"])
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("program %v:\n got %v\nwant %v", g["id"], g, w)
		}
	}
	for id, name := range hidden {
		t.Errorf("hidden program %d (%s) not listed", id, name)
	}
}

func TestProgUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"prog", "help"}, 0, "prog dump xlated PROG"},
		{[]string{"prog", "dump", "xlated"}, 255, "want PROG"},
		{[]string{"prog", "dump", "bogus", "id", "1"}, 255, "expected 'xlated' or 'jited'"},
		{[]string{"prog", "show", "tag", "xyz"}, 255, "16 hex digits"},
		{[]string{"prog", "show", "id"}, 255, "wants a value"},
		{[]string{"--json", "prog", "show", "id"}, 255, `{"error":`},
	} {
		var out bytes.Buffer
		if code := run(tc.args, &out, &out); code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%q: exit %d, %q; want exit %d and %q", tc.args, code, out.String(), tc.code, tc.want)
		}
	}
}

// BenchmarkProgDumpXlated is the time of "prog dump xlated id N" per
// program with the kernel already open: walking prog_idr to the
// program, reading its instructions, maps, BTF and line info from the
// dump, and rendering bpftool's text.
func BenchmarkProgDumpXlated(b *testing.B) {
	s := labdata.Require(b, "basic")
	fm, _ := s.Format("kdump-zstd")
	k, err := openKernel(&env{globals: globals{dump: s.Path(fm.Path), cache: defaultPageCacheMiB}}, "")
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	var truth []struct {
		ID uint32 `json:"id"`
	}
	raw, _ := os.ReadFile(s.Path("truth/bpftool/prog.json"))
	json.Unmarshal(raw, &truth)
	e := &env{globals: globals{dump: s.Path(fm.Path)}, stdout: io.Discard, stderr: io.Discard}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := truth[i%len(truth)].ID
		if err := progDump(e, k, progSelector{Selector: bpf.Selector{Kind: bpf.SelectID, ID: id}}, false, bpfinsn.TextOptions{}, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProgTagTruth runs "--json prog tag" on the ELF dump of each
// scenario and a filtered, compressed one of basic: every program
// bpftool listed has its tag recomputed equal to bpftool's, or is said
// to differ with the rewrites that could not be undone; "prog dump
// xlated" says nothing on stderr of a program whose tag is equal.
func TestProgTagTruth(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		for _, f := range []string{"elf", "kdump-lzo-d31.flat"} {
			fm, ok := s.Format(f)
			if !ok || f != "elf" && s.Scenario != "basic" {
				continue
			}
			t.Run(s.Scenario+"/"+f, func(t *testing.T) {
				var truth []struct {
					ID  uint32 `json:"id"`
					Tag string `json:"tag"`
				}
				labdata.ReadJSON(t, s.Path("truth/bpftool/prog.json"), &truth)
				e := &env{globals: globals{dump: s.Path(fm.Path)}}
				e.json = true
				var out, errb bytes.Buffer
				e.stdout, e.stderr = &out, &errb
				if err := runProg(e, []string{"tag"}); err != nil {
					t.Fatal(err)
				}
				var got []struct {
					ID         uint32 `json:"id"`
					Tag        string `json:"tag"`
					Recomputed string `json:"recomputed_tag"`
					Equal      bool   `json:"equal"`
					Kept       []struct {
						Insn int    `json:"insn"`
						What string `json:"what"`
					} `json:"kept"`
				}
				if err := json.Unmarshal(out.Bytes(), &got); err != nil {
					t.Fatalf("%v: %s", err, out.Bytes())
				}
				byID := map[uint32]int{}
				for i, g := range got {
					byID[g.ID] = i
				}
				equal := 0
				for _, tp := range truth {
					i, ok := byID[tp.ID]
					if !ok {
						t.Errorf("prog %d: not listed", tp.ID)
						continue
					}
					g := got[i]
					if g.Tag != tp.Tag {
						t.Errorf("prog %d: tag %s, bpftool's %s", tp.ID, g.Tag, tp.Tag)
					}
					if g.Equal != (g.Recomputed == tp.Tag) {
						t.Errorf("prog %d: recomputed %s, bpftool's tag %s, but equal is %v", tp.ID, g.Recomputed, tp.Tag, g.Equal)
					}
					if !g.Equal && len(g.Kept) == 0 {
						// Dead code the verifier removed leaves no trace:
						// the object file the lab loaded says whether
						// instructions went (as in bpf's
						// TestLabBPFProgAsLoaded).
						removed, n, have := false, 0, 0
						if bp, err := bpf.ProgByID(labkernel.Open(t, s, f).Program(), tp.ID); err == nil {
							if l, err := bp.AsLoaded(nil); err == nil {
								var ok bool
								n, ok = labdata.ObjectInsns(t, s, bp.Name)
								have = len(l.Insns)
								removed = ok && have < n
							}
						}
						if removed {
							t.Logf("prog %d: %d instructions in the object file, %d reconstructed: the verifier removed dead code", tp.ID, n, have)
						} else {
							t.Errorf("prog %d: recomputed %s differs from %s with no rewrite named", tp.ID, g.Recomputed, tp.Tag)
						}
					}
					if !g.Equal {
						continue
					}
					equal++
					e := &env{globals: globals{dump: s.Path(fm.Path)}}
					var dump, derr bytes.Buffer
					e.stdout, e.stderr = &dump, &derr
					if s.Scenario == "basic" {
						if err := runProg(e, []string{"dump", "xlated", "id", strconv.Itoa(int(tp.ID))}); err != nil {
							t.Fatal(err)
						}
						if derr.Len() != 0 {
							t.Errorf("prog %d: stderr %q", tp.ID, derr.String())
						}
					}
				}
				t.Logf("recomputed tag equal to bpftool's for %d/%d programs", equal, len(truth))
			})
		}
	}
}

// TestProgLiveDump checks "prog dump xlated" and "prog tag" run by
// kinspect --live in the basic-live guest against that guest's bpftool.
func TestProgLiveDump(t *testing.T) {
	s := labdata.Require(t, "basic-live")
	runs := liveRuns(t, s)
	var wl struct {
		Progs []struct {
			Name string
			ID   int
		}
	}
	if err := json.Unmarshal(readTruth(t, s.Path("truth/workload.json")), &wl); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, p := range wl.Progs {
		ids[p.Name] = p.ID
	}
	for _, tc := range []struct{ cmd, name, suffix string }{
		{"prog dump xlated name ki_xdp", "ki_xdp", ".txt"},
		{"prog dump xlated name ki_sock_filter opcodes", "ki_sock_filter", ".opcodes.txt"},
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
		want := readTruth(t, s.Path(fmt.Sprintf("truth/xlated/%d%s", ids[tc.name], tc.suffix)))
		if !bytes.Equal(r.out, want) {
			t.Errorf("%s:\n%s\nbpftool:\n%s", tc.cmd, r.out, want)
		}
	}
	r, ok := runs["--json prog tag"]
	if !ok {
		t.Skip(`the lab did not run "--json prog tag": rebuild basic-live`)
	}
	var got []struct {
		ID    int
		Tag   string
		Equal bool
		Kept  []struct {
			Insn int    `json:"insn"`
			What string `json:"what"`
		} `json:"kept"`
	}
	if err := json.Unmarshal(r.out, &got); err != nil || r.rc != 0 {
		t.Fatalf("prog tag: exit %d, %v: %s%s", r.rc, err, r.out, r.err)
	}
	var truth []struct {
		ID  int
		Tag string
	}
	if err := json.Unmarshal(readTruth(t, s.Path("truth/bpftool/prog.json")), &truth); err != nil {
		t.Fatal(err)
	}
	tags := map[int]string{}
	for _, p := range truth {
		tags[p.ID] = p.Tag
	}
	// The hidden program's tag is the workload's (labdata.Hidden).
	if h := s.Hidden(t); h.Prog.ID != 0 {
		tags[int(h.Prog.ID)] = h.Prog.Tag
	}
	for _, g := range got {
		// As on the dumps: a rewrite without an inverse (a context
		// store, say) must be named where the tag cannot be equal.
		if g.Tag != tags[g.ID] || !g.Equal && len(g.Kept) == 0 {
			t.Errorf("program %d: tag %s (bpftool %s), recomputed equal: %v, no rewrite named", g.ID, g.Tag, tags[g.ID], g.Equal)
		}
		if !g.Equal {
			t.Logf("program %d: recomputed tag differs: %+v", g.ID, g.Kept)
		}
	}
	if len(got) == 0 {
		t.Error("prog tag listed no program")
	}
}
