package x86dis

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// objdumpInst is one instruction of the lab's objdump listing, its
// continuation lines (bytes past the seventh) joined.
type objdumpInst struct {
	addr  uint64
	bytes []byte
	text  string
}

// ObjdumpFunc is one function of a truth jited/prog-ID.txt.
type objdumpFunc struct {
	name  string
	addr  uint64
	insts []objdumpInst
}

// parseObjdump reads a truth prog-ID.txt: "# NAME ADDR LEN" headers,
// then objdump's "addr:\tbytes\ttext" lines.
func parseObjdump(t testing.TB, path string) []objdumpFunc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []objdumpFunc
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "# ") {
			fs := strings.Fields(l)
			a, _ := strconv.ParseUint(strings.TrimPrefix(fs[2], "0x"), 16, 64)
			out = append(out, objdumpFunc{name: fs[1], addr: a})
			continue
		}
		parts := strings.Split(l, "\t")
		if len(parts) < 2 || len(out) == 0 {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(parts[0]), ":"), 16, 64)
		if err != nil {
			continue
		}
		bs, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(parts[1]), " ", ""))
		if err != nil {
			t.Fatalf("%s: %q: %v", path, l, err)
		}
		fn := &out[len(out)-1]
		if len(parts) >= 3 {
			fn.insts = append(fn.insts, objdumpInst{addr: a, bytes: bs, text: strings.Join(strings.Fields(parts[2]), " ")})
		} else if n := len(fn.insts); n > 0 {
			fn.insts[n-1].bytes = append(fn.insts[n-1].bytes, bs...)
		}
	}
	return out
}

type jitedTruth struct {
	ID       uint32   `json:"id"`
	Ksyms    []string `json:"jited_ksyms"`
	FuncLens []uint32 `json:"jited_func_lens"`
	InsnsHex string   `json:"jited_insns_hex"`
}

// TestAgainstObjdump disassembles each lab program's JIT image (the
// bytes the guest's bpf_prog_info returned) and compares every
// instruction with binutils objdump's: boundaries, bytes, text (up to
// whitespace).
func TestAgainstObjdump(t *testing.T) {
	for _, sc := range labdata.Built(t) {
		files, _ := filepath.Glob(sc.Path("truth/jited/prog-*.json"))
		total, same := 0, 0
		for _, jf := range files {
			if strings.HasSuffix(jf, "-jited-linfo.json") {
				continue
			}
			var jt jitedTruth
			b, err := os.ReadFile(jf)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &jt); err != nil {
				t.Fatalf("%s: %v", jf, err)
			}
			code, err := hex.DecodeString(jt.InsnsHex)
			if err != nil {
				t.Fatal(err)
			}
			funcs := parseObjdump(t, strings.TrimSuffix(jf, ".json")+".txt")
			off := 0
			for k, fn := range funcs {
				if k >= len(jt.FuncLens) {
					t.Fatalf("%s: more functions than lengths", jf)
				}
				n := int(jt.FuncLens[k])
				got := Disassemble(code[off:off+n], fn.addr)
				off += n
				if len(got) != len(fn.insts) {
					t.Errorf("%s %s: %d instructions, objdump has %d", sc.Scenario, fn.name, len(got), len(fn.insts))
				}
				for i := 0; i < min(len(got), len(fn.insts)); i++ {
					total++
					g, w := got[i], fn.insts[i]
					if g.Addr != w.addr || hex.EncodeToString(g.Bytes) != hex.EncodeToString(w.bytes) {
						t.Errorf("%s %s: instruction %d at %#x %x, objdump %#x %x", sc.Scenario, fn.name, i, g.Addr, g.Bytes, w.addr, w.bytes)
						break
					}
					if strings.Join(strings.Fields(g.Text), " ") != w.text {
						t.Errorf("%s %s %#x: %x: %q, objdump %q", sc.Scenario, fn.name, g.Addr, g.Bytes, g.Text, w.text)
						continue
					}
					same++
				}
			}
		}
		t.Logf("%s: %d/%d instructions as objdump prints them", sc.Scenario, same, total)
	}
}
