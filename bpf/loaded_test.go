package bpf_test

import (
	"bufio"
	hexenc "encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// truthNamer names addresses from the guest's /proc/kallsyms, as
// kallsyms' LookupAddr does for a symbol's first byte.
func truthNamer(t *testing.T, path string) bpf.SymbolNamer {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[uint64]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		if _, dup := names[a]; !dup {
			names[a] = fs[2]
		}
	}
	return func(a uint64) (string, bool) { n, ok := names[a]; return n, ok }
}

// TestLabBPFProgAsLoaded recomputes the tag of every program of every
// scenario from its instructions reconstructed as loaded: each must equal
// the tag bpftool printed in the guest, or come with the rewrites that
// could not be undone.
func TestLabBPFProgAsLoaded(t *testing.T) {
	for name, p := range labkernel.Programs(t, "elf") {
		t.Run(name, func(t *testing.T) {
			sc := labkernel.Scenario(name)
			var truth []truthProg
			labdata.ReadJSON(t, sc.Path("truth/bpftool/prog.json"), &truth)
			want := map[uint32]string{}
			for _, tp := range truth {
				want[tp.ID] = tp.Tag
			}
			namer := truthNamer(t, sc.Path("truth/kallsyms.txt"))
			seen, equal, undone := 0, 0, 0
			for bp, err := range bpf.ProgForEach(p) {
				if err != nil {
					t.Fatal(err)
				}
				tag, ok := want[bp.ID]
				if !ok {
					continue
				}
				seen++
				l, err := bp.AsLoaded(namer)
				if err != nil {
					t.Errorf("prog %d: %v", bp.ID, err)
					continue
				}
				if xl, err := bp.XlatedInsns(); err == nil && bpfinsn.Tag(xl) != bpfinsn.Tag(l.Insns) {
					undone++
				}
				if hexenc.EncodeToString(l.Tag[:]) == tag {
					equal++
					continue
				}
				if len(l.Kept) == 0 {
					// The verifier removes code it proved dead
					// (opt_remove_dead_code, opt_remove_nops), which
					// leaves no trace in the program: the object file
					// the lab loaded says whether instructions went.
					if n, ok := labdata.ObjectInsns(t, sc, bp.Name); ok && len(l.Insns) < n {
						t.Logf("prog %d (%s): %d instructions as loaded from the object file, %d reconstructed: the verifier removed dead code", bp.ID, bp.FullName(), n, len(l.Insns))
						continue
					}
					t.Errorf("prog %d (%s): recomputed %x, bpftool's %s, and no rewrite named", bp.ID, bp.FullName(), l.Tag, tag)
					continue
				}
				t.Logf("prog %d (%s): differs: %v", bp.ID, bp.FullName(), l.Kept)
			}
			if seen != len(truth) {
				t.Errorf("%d of bpftool's %d programs found", seen, len(truth))
			}
			if undone == 0 {
				t.Errorf("no program needed a rewrite undone: the test proves nothing")
			}
			t.Logf("recomputed tag equal to bpftool's for %d/%d programs (%d of them rewritten by the verifier)", equal, seen, undone)
		})
	}
}
