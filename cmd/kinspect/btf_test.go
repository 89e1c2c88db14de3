package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// btfTargets are the kernels btf dump is tested on: the running one
// (from /sys/kernel/btf) and the lab's.
func btfTargets(t *testing.T) map[string][]string {
	out := map[string][]string{}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		out["live"] = []string{"--live"}
	}
	if sc, err := labdata.Load("basic"); err == nil {
		out["basic"] = []string{"-c", sc.Path("dumps/elf")}
	}
	if len(out) == 0 {
		t.Skip("no BTF: neither /sys/kernel/btf/vmlinux nor a lab scenario")
	}
	return out
}

func TestBTFDumpCCompiles(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	for name, target := range btfTargets(t) {
		for _, typ := range []string{"struct bpf_prog", "struct task_struct", "struct sk_buff"} {
			t.Run(name+"/"+typ, func(t *testing.T) {
				var out, errb bytes.Buffer
				if code := run(append(target, "btf", "dump", typ), &out, &errb); code != 0 {
					t.Fatalf("exit %d: %s", code, errb.String())
				}
				dir := t.TempDir()
				src := filepath.Join(dir, "t.c")
				os.WriteFile(src, append(out.Bytes(), []byte("\n"+typ+" kinspect_test_var;\n")...), 0o644)
				if b, err := exec.Command(gcc, "-std=gnu11", "-Werror", "-c", "-o", filepath.Join(dir, "t.o"), src).CombinedOutput(); err != nil {
					t.Fatalf("gcc: %v\n%.2000s", err, b)
				}
			})
		}
	}
}

func TestBTFDumpLayout(t *testing.T) {
	for name, target := range btfTargets(t) {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(append(target, "--json", "btf", "dump", "struct", "bpf_prog", "--layout"), &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var l struct {
				Type    string
				Size    int
				Members []struct {
					Name      string
					BitOffset int `json:"bit_offset"`
				}
			}
			if err := json.Unmarshal(out.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			if l.Type != "struct bpf_prog" || len(l.Members) < 10 || l.Members[0].Name != "pages" {
				t.Errorf("layout %+v", l)
			}
			out.Reset()
			if code := run(append(target, "btf", "dump", "struct bpf_prog", "--layout"), &out, &errb); code != 0 {
				t.Fatalf("exit %d", code)
			}
			for _, want := range []string{"struct bpf_prog {", "u16 pages;", "/* size: ", "cacheline 1 boundary", "};"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("layout lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestBTFDumpBadName(t *testing.T) {
	for name, target := range btfTargets(t) {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(append(target, "btf", "dump", "struct", "bpf_porg"), &out, &out)
			if code != 255 || !strings.Contains(out.String(), "no type named struct bpf_porg; did you mean struct bpf_prog") {
				t.Errorf("exit %d: %s", code, out.String())
			}
		})
	}
}

func TestSplitTypeNames(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"struct bpf_prog", "struct bpf_prog"},
		{"struct|bpf_prog|u64", "struct bpf_prog|u64"},
		{"unsigned|long|struct|x", "unsigned long|struct x"},
		{"struct task_struct|struct|list_head|*", "struct task_struct|struct list_head *"},
	} {
		if got := strings.Join(splitTypeNames(strings.Split(tc.in, "|")), "|"); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestBTFObjects: btf show (JSON, text) equals bpftool's; btf dump id N
// (raw text and format c) equals bpftool's for every BTF object the
// workload made.
func TestBTFObjects(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			d := s.Path("dumps/elf")
			// bpftool cannot open the hidden program: its BTF object has
			// no prog_ids there (TestHiddenProg).
			hidden := s.Hidden(t).Progs
			jsonEqual(t, "btf show --json", labdata.DropBTFJSON(runOK(t, "-c", d, "--json", "btf", "show"), hidden), readTruth(t, s.Path("truth/bpftool/btf.json")))
			if got, want := labdata.DropBTFText(runOK(t, "-c", d, "btf", "show"), hidden), readTruth(t, s.Path("truth/bpftool/btf.txt")); !bytes.Equal(got, want) {
				t.Errorf("btf show text differs:\n%.800s\nbpftool:\n%.800s", got, want)
			}
			files, _ := os.ReadDir(s.Path("truth/btf"))
			n := 0
			for _, f := range files {
				id, ok := strings.CutSuffix(f.Name(), ".txt")
				if !ok || s.Scenario == "scale" && n >= 40 {
					continue
				}
				if id == "vmlinux" {
					// bpftool btf dump file /sys/kernel/btf/vmlinux: the
					// kernel's BTF, the object bpftool names vmlinux.
					vid := vmlinuxBTFID(t, s.Path("truth/bpftool/btf.json"))
					if got, want := runOK(t, "-c", d, "btf", "dump", "id", vid), readTruth(t, s.Path("truth/btf/vmlinux.txt")); !bytes.Equal(got, want) {
						t.Errorf("btf dump id %s (vmlinux) differs from bpftool's: %s", vid, firstDiff(string(got), string(want)))
					}
					continue
				}
				n++
				if got, want := runOK(t, "-c", d, "btf", "dump", "id", id), readTruth(t, s.Path("truth/btf/"+id+".txt")); !bytes.Equal(got, want) {
					t.Errorf("btf dump id %s:\n%s\nbpftool:\n%s", id, got, want)
				}
				if got, want := runOK(t, "-c", d, "btf", "dump", "id", id, "format", "c"), readTruth(t, s.Path("truth/btf/"+id+".c")); !bytes.Equal(got, want) {
					t.Errorf("btf dump id %s format c:\n%s\nbpftool:\n%s", id, got, want)
				}
			}
			if n == 0 {
				t.Error("no BTF objects in the truth")
			}
		})
	}
}

// vmlinuxBTFID is the id of the BTF object bpftool's btf show (JSON)
// names vmlinux.
func vmlinuxBTFID(t *testing.T, path string) string {
	var objs []struct {
		ID   uint32 `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(readTruth(t, path), &objs); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Name == "vmlinux" {
			return fmt.Sprint(o.ID)
		}
	}
	t.Fatalf("%s: no BTF object named vmlinux", path)
	return ""
}

// TestBTFDumpModuleType finds a type only a module's split BTF has:
// struct p9_client of the 9pnet module the lab loads (net/9p/client.c).
func TestBTFDumpModuleType(t *testing.T) {
	for _, s := range labdata.Built(t) {
		f, ok := s.Format("elf")
		if !ok {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			var out bytes.Buffer
			if code := run([]string{"-c", s.Path(f.Path), "btf", "dump", "struct", "p9_client"}, &out, &out); code != 0 {
				t.Fatalf("exit %d: %s", code, out.String())
			}
			if !strings.Contains(out.String(), "struct p9_client {") || !strings.Contains(out.String(), "trans_mod;") {
				t.Errorf("no struct p9_client with trans_mod in:\n%s", out.String())
			}
		})
	}
}
