package labdata

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// ObjectInsns counts the instruction slots of the program named name (or,
// for a program the workload renamed, the ELF program name is its
// prefix) in the BPF object files of the scenario's initramfs (/bpf/):
// what the loader gave the verifier, subprograms included.
func ObjectInsns(t testing.TB, sc *Scenario, name string) (int, bool) {
	t.Helper()
	raw, err := os.ReadFile(sc.Path("initramfs.cpio"))
	if err != nil {
		t.Logf("initramfs: %v", err)
		return 0, false
	}
	bestLen, bestN := -1, 0
	for fname, data := range cpioFiles(raw) {
		if !strings.HasPrefix(fname, "bpf/") || !strings.HasSuffix(fname, ".bpf.o") {
			continue
		}
		spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(data))
		if err != nil {
			t.Logf("%s: %v", fname, err)
			continue
		}
		for pn, ps := range spec.Programs {
			// The longest ELF name that is the program's or its prefix.
			if (pn != name && !strings.HasPrefix(name, pn)) || len(pn) <= bestLen {
				continue
			}
			n := 0
			for _, ins := range ps.Instructions {
				n += int(ins.Size()) / 8
			}
			bestLen, bestN = len(pn), n
		}
	}
	return bestN, bestLen >= 0
}

// cpioFiles yields the regular files of a newc cpio archive by name.
func cpioFiles(raw []byte) map[string][]byte {
	out := map[string][]byte{}
	hexAt := func(b []byte) int {
		v, err := strconv.ParseUint(string(b), 16, 32)
		if err != nil {
			return -1
		}
		return int(v)
	}
	for off := 0; off+110 <= len(raw) && string(raw[off:off+6]) == "070701"; {
		h := raw[off : off+110]
		size, nsize := hexAt(h[54:62]), hexAt(h[94:102])
		if size < 0 || nsize < 1 {
			break
		}
		nameEnd := off + 110 + nsize
		data := (nameEnd + 3) &^ 3
		if data+size > len(raw) {
			break
		}
		name := strings.TrimPrefix(string(raw[off+110:nameEnd-1]), "./")
		if name == "TRAILER!!!" {
			break
		}
		out[name] = raw[data : data+size]
		off = (data + size + 3) &^ 3
	}
	return out
}
