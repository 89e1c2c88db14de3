package bpfvm

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

// labProg is a lab program as bpftool dumped it in the guest.
type labProg struct {
	name  string
	insns []I
	calls syms // call imm (sign-extended) -> the helper bpftool named
}

var labCall = regexp.MustCompile(`\(85\) call ([A-Za-z_][A-Za-z0-9_]*)#(-?[0-9]+)`)

// labProgs reads every scenario's xlated dumps (truth/xlated/ID.txt and
// ID.opcodes.txt).
func labProgs(tb testing.TB) []labProg {
	root := os.Getenv("KINSPECT_LAB_DIR")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "kinspect-lab")
	}
	files, _ := filepath.Glob(filepath.Join(root, "*", "truth", "xlated", "*.opcodes.txt"))
	var out []labProg
	for _, f := range files {
		ops, err1 := os.ReadFile(f)
		text, err2 := os.ReadFile(strings.TrimSuffix(f, ".opcodes.txt") + ".txt")
		if err1 != nil || err2 != nil {
			continue
		}
		var raw []byte
		for _, l := range strings.Split(string(ops), "\n") {
			if !strings.HasPrefix(l, "       ") {
				continue
			}
			if b, err := hex.DecodeString(strings.Join(strings.Fields(l), "")); err == nil {
				raw = append(raw, b...)
			}
		}
		insns, err := bpfinsn.Decode(raw)
		if err != nil || len(insns) == 0 {
			tb.Errorf("%s: %v", f, err)
			continue
		}
		p := labProg{name: strings.TrimPrefix(f, root+"/"), insns: insns, calls: syms{}}
		for _, m := range labCall.FindAllStringSubmatch(string(text), -1) {
			imm, _ := strconv.ParseInt(m[2], 10, 32)
			p.calls[uint64(imm)] = m[1]
		}
		out = append(out, p)
	}
	return out
}

// TestLabPrograms runs every lab program as the guest's bpftool dumped
// it (map references by ID, helpers by address) over zeroed maps and a
// zeroed context: every instruction the lab kernels (6.1, 6.12) produced
// is one the machine runs. The helpers the standard set lacks return 0
// (a lookup finds nothing).
func TestLabPrograms(t *testing.T) {
	progs := labProgs(t)
	if len(progs) == 0 {
		if os.Getenv("KINSPECT_LAB_REQUIRE") != "" {
			t.Fatal("no lab xlated dumps")
		}
		t.Skip("no lab xlated dumps (build the lab: go run ./lab)")
	}
	for _, lp := range progs {
		t.Run(lp.name, func(t *testing.T) {
			reg := StandardHelpers().Clone()
			for _, name := range lp.calls {
				if _, ok := reg.Lookup(name); !ok {
					reg.Register(name, func(*Machine, [5]uint64) (uint64, error) { return 0, nil })
				}
			}
			var maps *Region
			arr := &progArray{slots: []*Program{nil}}
			m := New(nil, Options{
				Syms:      lp.calls,
				Helpers:   reg,
				TailCalls: arr,
				Task:      &Task{PID: 1, TGID: 1, Comm: "lab"},
				MapRef: func(src uint8, imm, imm2 int32) (uint64, bool) {
					return maps.Addr + uint64(imm2), src == bpfinsn.PseudoMapFD || src == bpfinsn.PseudoMapValue
				},
			})
			maps, _ = m.Alloc("maps", 1<<16, false)
			arr.addr = maps.Addr
			ctx, _ := m.Alloc("ctx", 4096, false)
			p := NewProgram(lp.name, lp.insns, nil)
			for i := range lp.insns {
				if why := p.Invalid(i); why != "" && !strings.HasPrefix(why, "second half") {
					t.Errorf("insn %d %s: %s", i, bpfinsn.Format(lp.insns, i), why)
				}
			}
			_, err := m.Exec(p, ctx.Addr)
			// A fault is a helper's zero where the kernel had a pointer;
			// the budget ends a program made to spin (kd-lockup's
			// ki_lockup loops 2^23 times in bpf_loop).
			if err != nil && !errors.Is(err, ErrFault) && !errors.Is(err, ErrBudget) {
				t.Errorf("run: %v", err)
			}
			if m.Executed() == 0 {
				t.Errorf("nothing executed")
			}
			t.Logf("%d instructions, r0 %#x, err %v", m.Executed(), m.Return(), err)
		})
	}
}
