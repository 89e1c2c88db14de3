package linux_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
)

// truthFunc is a vmlinux text symbol of the guest's /proc/kallsyms, with
// its extent: up to the next symbol's address.
type truthFunc struct {
	name      string
	addr, end uint64
}

// sampleTruthFuncs picks at least n of vmlinux's text symbols (between
// _stext and _etext) from the guest's /proc/kallsyms: every k-th by
// address, k chosen from the count alone, so the sample is not tuned.
func sampleTruthFuncs(t *testing.T, sc *labdata.Scenario, n int) []truthFunc {
	t.Helper()
	f, err := os.Open(sc.Path("truth/kallsyms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type sym struct {
		name string
		addr uint64
		text bool
	}
	var syms []sym
	var stext, etext uint64
	sc2 := bufio.NewScanner(f)
	for sc2.Scan() {
		fs := strings.Fields(sc2.Text())
		if len(fs) != 3 { // a module's or BPF's symbol: "[mod]" follows
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		switch fs[2] {
		case "_stext":
			stext = a
		case "_etext":
			etext = a
		}
		syms = append(syms, sym{fs[2], a, fs[1] == "t" || fs[1] == "T"})
	}
	if stext == 0 || etext == 0 {
		t.Fatal("no _stext or _etext in the truth")
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	var funcs []truthFunc
	for i, s := range syms {
		if !s.text || s.addr < stext || s.addr >= etext || i > 0 && syms[i-1].addr == s.addr {
			continue
		}
		j := i + 1
		for j < len(syms) && syms[j].addr == s.addr {
			j++
		}
		if j == len(syms) {
			continue
		}
		funcs = append(funcs, truthFunc{s.name, s.addr, syms[j].addr})
	}
	k := max(len(funcs)/n, 1)
	var out []truthFunc
	for i := 0; i < len(funcs); i += k {
		out = append(out, funcs[i])
	}
	return out
}

// objdumpLine is an instruction as objdump prints it.
type objdumpLine struct {
	addr uint64
	text string
}

// objdump disassembles code (at addr) with binutils' objdump, as raw
// bytes: objdump -D -b binary -m i386:x86-64 --adjust-vma=ADDR.
func objdump(t *testing.T, dir string, code []byte, addr uint64) []objdumpLine {
	t.Helper()
	bin := dir + "/code.bin"
	if err := os.WriteFile(bin, code, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "--adjust-vma=0x"+strconv.FormatUint(addr, 16), bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var lines []objdumpLine
	for _, l := range strings.Split(string(out), "\n") {
		// "ffffffff81000000:\tf3 0f 1e fa          \tendbr64"; a long
		// instruction's further bytes go on lines without text.
		parts := strings.SplitN(l, "\t", 3)
		if len(parts) < 3 {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(parts[0]), ":"), 16, 64)
		if err != nil {
			continue
		}
		lines = append(lines, objdumpLine{a, strings.TrimRight(parts[2], " ")})
	}
	return lines
}

// annotation is the symbol dis names after an address (objdump does the
// same in a linked object; of raw bytes it knows no symbols).
var annotation = regexp.MustCompile(` <[^<>]+>$`)

// TestLabDisObjdump: dis of a function is objdump's disassembly of the
// same bytes, instruction by instruction (boundaries and text), for a
// sample of at least 200 of vmlinux's functions (from the guest's
// /proc/kallsyms: the extent of each is up to the next symbol). The only
// difference allowed is by design: dis names the symbol of a target or
// RIP-relative address after it (" <__schedule+0x10>"), which objdump
// cannot of raw bytes; it is removed before comparing.
func TestLabDisObjdump(t *testing.T) {
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Skip("no objdump (binutils)")
	}
	for _, sc := range basicAndK612(t) {
		t.Run(sc.Scenario, func(t *testing.T) {
			k := labkernel.Open(t, sc, "elf")
			p := k.Program()
			dir := t.TempDir()
			funcs := sampleTruthFuncs(t, sc, 250)
			same, insns := 0, 0
			for _, f := range funcs {
				d, err := linux.Disassemble(p, k.Symbols(), f.addr, 0)
				if err != nil {
					t.Errorf("%s: %v", f.name, err)
					continue
				}
				code := make([]byte, f.end-f.addr)
				if err := p.Read(code, f.addr); err != nil {
					t.Errorf("%s: %v", f.name, err)
					continue
				}
				want := objdump(t, dir, code, f.addr)
				var diffs []string
				if d.Function != f.name {
					diffs = append(diffs, fmt.Sprintf("function %q", d.Function))
				}
				if len(d.Insns) != len(want) {
					diffs = append(diffs, fmt.Sprintf("%d instructions, objdump %d", len(d.Insns), len(want)))
				}
				for i := range min(len(d.Insns), len(want)) {
					g, w := d.Insns[i], want[i]
					text := annotation.ReplaceAllString(g.Text, "")
					if uint64(g.Addr) != w.addr || text != w.text {
						diffs = append(diffs, fmt.Sprintf("%#x %q, objdump %#x %q", uint64(g.Addr), text, w.addr, w.text))
						break
					}
				}
				insns += len(want)
				if len(diffs) > 0 {
					t.Errorf("%s (%#x-%#x): %s", f.name, f.addr, f.end, strings.Join(diffs, "; "))
					continue
				}
				same++
			}
			if len(funcs) < 200 {
				t.Errorf("only %d functions sampled", len(funcs))
			}
			t.Logf("%d/%d functions (%d instructions) as objdump disassembles them", same, len(funcs), insns)
		})
	}
}

// basicAndK612 are the scenarios basic (6.1) and k612 (6.12), those built.
func basicAndK612(t *testing.T) []*labdata.Scenario {
	t.Helper()
	var out []*labdata.Scenario
	for _, sc := range labdata.Built(t) {
		if !sc.Live && (sc.Scenario == "basic" || sc.Scenario == "k612") {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		t.Skip("neither basic nor k612 is built")
	}
	return out
}
