package btfload

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// bpftoolMembers returns the member bit offsets of each struct in a raw
// "bpftool btf dump file F" listing: name → offsets in order.
func bpftoolMembers(t *testing.T, raw []byte, want map[string]bool) map[string][]uint32 {
	t.Helper()
	bpftool, err := exec.LookPath("bpftool")
	if err != nil {
		t.Skip("bpftool not installed")
	}
	file := filepath.Join(t.TempDir(), "btf")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bpftool, "btf", "dump", "file", file).Output()
	if err != nil {
		t.Skipf("bpftool btf dump: %v", err)
	}
	head := regexp.MustCompile(`^\[\d+\] STRUCT '([^']+)' size=(\d+) vlen=(\d+)`)
	mem := regexp.MustCompile(`^\s+'[^']*' type_id=\d+ bits_offset=(\d+)`)
	res := map[string][]uint32{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := head.FindStringSubmatch(line); m != nil {
			cur = ""
			if want[m[1]] && res[m[1]] == nil {
				cur = m[1]
				res[cur] = []uint32{}
			}
			continue
		}
		if cur == "" {
			continue
		}
		if m := mem.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			res[cur] = append(res[cur], uint32(n))
		} else {
			cur = ""
		}
	}
	return res
}

// TestLayoutAgainstBpftool compares NewLayout's member offsets with the
// offsets bpftool itself reads from the same BTF (the running kernel's
// and each lab guest's, read from its dump).
func TestLayoutAgainstBpftool(t *testing.T) {
	specs := map[string]*Spec{"live": liveSpec(t)}
	for n, s := range labSpecs(t) {
		specs[n] = s
	}
	structs := []string{"bpf_prog", "task_struct", "sk_buff", "bpf_map", "bpf_prog_aux", "xa_node"}
	want := map[string]bool{}
	for _, s := range structs {
		want[s] = true
	}
	for name, s := range specs {
		truth := bpftoolMembers(t, s.Raw(), want)
		for _, st := range structs {
			t.Run(name+"/"+st, func(t *testing.T) {
				typ, err := s.Type("struct " + st)
				if err != nil {
					t.Fatal(err)
				}
				l, err := NewLayout(typ, 0)
				if err != nil {
					t.Fatal(err)
				}
				exp := truth[st]
				if len(exp) != len(l.Members) {
					t.Fatalf("%d members, bpftool lists %d", len(l.Members), len(exp))
				}
				for i, m := range l.Members {
					if m.BitOffset != exp[i] {
						t.Errorf("member %d %s: bit offset %d, bpftool %d", i, m.Name, m.BitOffset, exp[i])
					}
					if m.BitfieldSize == 0 && m.Offset*8 != exp[i] {
						t.Errorf("member %d %s: offset %d, bpftool bits %d", i, m.Name, m.Offset, exp[i])
					}
				}
				var sum uint32
				for _, m := range l.Members {
					sum += m.HoleAfter
				}
				if sum != l.SumHoles {
					t.Errorf("holes %d != sum %d", sum, l.SumHoles)
				}
			})
		}
	}
}

func TestLayoutSynthetic(t *testing.T) {
	s := liveSpec(t)
	typ, err := s.Type("struct list_head")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLayout(typ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Size != 16 || len(l.Members) != 2 || l.Members[1].Offset != 8 || l.Holes != 0 || l.Padding != 0 || l.Cachelines != 1 {
		t.Errorf("list_head layout %+v", l)
	}
}
