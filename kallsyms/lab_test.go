package kallsyms

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/vmcore"
)

// labFormats are the dump formats the lab tests decode, for speed: one
// ELF and one compressed kdump file per scenario.
var labFormats = []string{"elf", "kdump-zlib"}

// truthVmlinux reads the guest's /proc/kallsyms and returns its vmlinux
// symbols (the lines without a [module] column) and the whole table.
func truthVmlinux(t testing.TB, s *labdata.Scenario) ([]Symbol, *Table) {
	t.Helper()
	f, err := os.Open(s.Path("truth/kallsyms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := ParseProcKallsyms(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []Symbol
	for sym := range tab.All() {
		if sym.Module == "" {
			sym.Size = 0
			out = append(out, sym)
		}
	}
	return out, tab
}

func compareTriples(a, b Symbol) int {
	if c := cmp.Compare(a.Addr, b.Addr); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return cmp.Compare(a.Type, b.Type)
}

// TestLabMatchesProcKallsyms: the table rebuilt from each dump equals the
// guest's /proc/kallsyms for vmlinux: same count, same (address, type,
// name) triples.
func TestLabMatchesProcKallsyms(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		want, _ := truthVmlinux(t, s)
		slices.SortFunc(want, compareTriples)
		for _, fname := range labFormats {
			f, ok := s.Format(fname)
			if !ok {
				continue
			}
			t.Run(s.Scenario+"/"+fname, func(t *testing.T) {
				d, err := vmcore.Open(s.Path(f.Path))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				tab, err := FromDump(d)
				if err != nil {
					t.Fatal(err)
				}
				info, err := tab.Info()
				if err != nil {
					t.Fatal(err)
				}
				var got []Symbol
				for sym := range tab.All() {
					sym.Size = 0
					got = append(got, sym)
				}
				slices.SortFunc(got, compareTriples)
				diff := diffSymbols(got, want)
				t.Logf("%s %s: %d symbols decoded, %d in /proc/kallsyms, %d differ; %+v", s.Scenario, fname, len(got), len(want), len(diff), info)
				checkLabInfo(t, s, info)
				for i, d := range diff {
					if i == 20 {
						break
					}
					t.Error(d)
				}
			})
		}
	}
}

// diffSymbols lists the triples only one side has.
func diffSymbols(got, want []Symbol) []string {
	var out []string
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want) || (i < len(got) && compareTriples(got[i], want[j]) < 0):
			out = append(out, fmt.Sprintf("decoded only: %v", got[i]))
			i++
		case i == len(got) || compareTriples(got[i], want[j]) > 0:
			out = append(out, fmt.Sprintf("/proc/kallsyms only: %v", want[j]))
			j++
		default:
			i++
			j++
		}
	}
	return out
}

// labTable decodes the table of a scenario's ELF dump.
func labTable(t testing.TB, s *labdata.Scenario) *Table {
	t.Helper()
	f, ok := s.Format("elf")
	if !ok {
		f = s.Formats[0]
	}
	d, err := vmcore.Open(s.Path(f.Path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	tab, err := FromDump(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Load(); err != nil {
		t.Fatal(err)
	}
	return tab
}

// TestLabLookupAddr: every vmlinux symbol of the truth in _text.._end
// resolves to a symbol at its address, the first of its aliases in
// /proc/kallsyms order, as the kernel's kallsyms_lookup answers.
func TestLabLookupAddr(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live || len(s.Formats) == 0 {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			want, _ := truthVmlinux(t, s)
			tab := labTable(t, s)
			firstAt := map[uint64]string{}
			for _, w := range want {
				if _, ok := firstAt[w.Addr]; !ok {
					firstAt[w.Addr] = w.Name
				}
			}
			bad := 0
			for _, w := range want {
				if w.Addr < 0x100000000 { // per-CPU offsets
					continue
				}
				l, err := tab.LookupAddr(w.Addr)
				if err != nil || l.Offset != 0 || l.Name != firstAt[w.Addr] {
					if bad++; bad < 10 {
						t.Errorf("LookupAddr(%#x) = %v, %v; want %s+0x0", w.Addr, l, err, firstAt[w.Addr])
					}
				}
			}
		})
	}
}

// TestLabStacks: the frames of the guest's /proc/PID/stack,
// "name+0xoff/0xsize", resolve to the same name, offset and size.
func TestLabStacks(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live || len(s.Formats) == 0 {
			continue
		}
		t.Run(s.Scenario, func(t *testing.T) {
			b, err := os.ReadFile(s.Path("truth/stacks.json"))
			if err != nil {
				t.Skip(err)
			}
			var stacks map[string][]string
			if err := json.Unmarshal(b, &stacks); err != nil {
				t.Fatal(err)
			}
			tab := labTable(t, s)
			checked := 0
			seen := map[string]bool{}
			for _, frames := range stacks {
				for _, fr := range frames {
					if seen[fr] || strings.Contains(fr, "[") {
						continue
					}
					seen[fr] = true
					var name string
					var off, size uint64
					plus := strings.LastIndexByte(fr, '+')
					if plus < 0 {
						continue
					}
					name = fr[:plus]
					if _, err := fmt.Sscanf(fr[plus+1:], "0x%x/0x%x", &off, &size); err != nil {
						t.Errorf("frame %q: %v", fr, err)
						continue
					}
					syms, err := tab.Lookup(name)
					if err != nil {
						t.Errorf("frame %q: %v", fr, err)
						continue
					}
					var got []string
					ok := false
					for _, sym := range syms {
						l, err := tab.LookupAddr(sym.Addr + off)
						if err != nil {
							got = append(got, err.Error())
							continue
						}
						got = append(got, l.String())
						ok = ok || l.String() == fr
					}
					if !ok {
						t.Errorf("frame %q resolves to %q", fr, got)
					}
					checked++
				}
			}
			t.Logf("%s: %d distinct frames checked", s.Scenario, checked)
		})
	}
}

// checkLabInfo fails when a kernel that should use a table feature does
// not: kallsyms_seqs_of_names from 6.2 (Debian's 6.1 has it backported),
// absolute per-CPU offsets on x86-64 before 6.15.
func checkLabInfo(t *testing.T, s *labdata.Scenario, info Info) {
	t.Helper()
	var major, minor int
	if _, err := fmt.Sscanf(s.Release, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("release %q: %v", s.Release, err)
	}
	v := major*100 + minor
	if v >= 602 && !strings.HasPrefix(info.NameIndex, "kallsyms_seqs_of_names") {
		t.Errorf("%s: name index %q, want kallsyms_seqs_of_names", s.Release, info.NameIndex)
	}
	if want := EncodingAbsolutePercpu; v < 615 && info.Encoding != want {
		t.Errorf("%s: encoding %v, want %v", s.Release, info.Encoding, want)
	}
	if v >= 615 && info.Encoding != EncodingRelative && info.Encoding != EncodingPlaceRelative {
		t.Errorf("%s: encoding %v, want relative", s.Release, info.Encoding)
	}
	if info.Checked == 0 || len(info.Disagreed) > 0 {
		t.Errorf("VMCOREINFO check: %d agree, %v disagree", info.Checked, info.Disagreed)
	}
}
