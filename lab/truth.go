package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// jitedProg is what the workload writes of a program's JIT image
// (truth/jited/prog-ID.json).
type jitedProg struct {
	ID        int      `json:"id"`
	Name      string   `json:"name"`
	Tag       string   `json:"tag"`
	Ksyms     []string `json:"jited_ksyms"`
	FuncLens  []uint32 `json:"jited_func_lens"`
	InsnsHex  string   `json:"jited_insns_hex"`
	funcAddrs []uint64
}

func loadJited(truth string) ([]*jitedProg, error) {
	files, _ := filepath.Glob(filepath.Join(truth, "jited", "prog-*.json"))
	var out []*jitedProg
	for _, f := range files {
		if strings.Contains(f, "linfo") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		p := &jitedProg{}
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, k := range p.Ksyms {
			a, err := strconv.ParseUint(strings.TrimPrefix(k, "0x"), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: ksym %q: %w", f, k, err)
			}
			p.funcAddrs = append(p.funcAddrs, a)
		}
		if len(p.funcAddrs) != len(p.FuncLens) {
			return nil, fmt.Errorf("%s: %d ksyms but %d function lengths", f, len(p.funcAddrs), len(p.FuncLens))
		}
		out = append(out, p)
	}
	return out, nil
}

// jitedTruth disassembles each program's JIT image with objdump (bpftool
// 7.1 here has no disassembler) into truth/jited/prog-ID.txt: per
// function a line "# NAME ADDR LEN", then objdump's lines.
func jitedTruth(truth string) error {
	progs, err := loadJited(truth)
	if err != nil {
		return err
	}
	syms, err := readKallsyms(filepath.Join(truth, "kallsyms.txt"))
	if err != nil {
		return err
	}
	byAddr := map[uint64]string{}
	for _, s := range syms {
		if strings.HasPrefix(s.name, "bpf_prog_") {
			byAddr[s.addr] = s.name
		}
	}
	tmp, err := os.CreateTemp("", "jited-*.bin")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tmp.Close()
	for _, p := range progs {
		insns, err := hex.DecodeString(p.InsnsHex)
		if err != nil {
			return fmt.Errorf("jited prog %d: %w", p.ID, err)
		}
		var b strings.Builder
		off := 0
		for i, a := range p.funcAddrs {
			n := int(p.FuncLens[i])
			if off+n > len(insns) {
				return fmt.Errorf("jited prog %d: functions longer than the %d-byte image", p.ID, len(insns))
			}
			if err := os.WriteFile(tmp.Name(), insns[off:off+n], 0o644); err != nil {
				return err
			}
			out, err := exec.Command("objdump", "-D", "-b", "binary", "-m", "i386:x86-64",
				fmt.Sprintf("--adjust-vma=%#x", a), tmp.Name()).Output()
			if err != nil {
				return fmt.Errorf("objdump of prog %d: %v", p.ID, err)
			}
			fmt.Fprintf(&b, "# %s %#x %d\n", byAddr[a], a, n)
			for _, line := range strings.Split(string(out), "\n") {
				// Instruction lines are "  addr:\tbytes\tinsn".
				if strings.Contains(line, ":\t") {
					b.WriteString(line + "\n")
				}
			}
			off += n
		}
		if err := os.WriteFile(filepath.Join(truth, "jited", fmt.Sprintf("prog-%d.txt", p.ID)), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

type ksym struct {
	addr uint64
	name string
}

func readKallsyms(p string) ([]ksym, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ksym
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			continue
		}
		out = append(out, ksym{a, fs[2]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out, sc.Err()
}

// truthSymbols symbolizes addresses with the guest's /proc/kallsyms and
// knows the spinner's program.
type truthSymbols struct {
	syms       []ksym
	spinnerCPU int
	spinnerTID int
	spinner    [][2]uint64 // address ranges of the spinner's functions
}

func loadTruthSymbols(truth string) (*truthSymbols, error) {
	syms, err := readKallsyms(filepath.Join(truth, "kallsyms.txt"))
	if err != nil {
		return nil, err
	}
	var wl struct {
		Spinner struct {
			ProgID int `json:"prog_id"`
			CPU    int `json:"cpu"`
			TID    int `json:"tid"`
		} `json:"spinner"`
	}
	b, err := os.ReadFile(filepath.Join(truth, "workload.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &wl); err != nil {
		return nil, fmt.Errorf("workload.json: %w", err)
	}
	ts := &truthSymbols{syms: syms, spinnerCPU: wl.Spinner.CPU, spinnerTID: wl.Spinner.TID}
	progs, err := loadJited(truth)
	if err != nil {
		return nil, err
	}
	for _, p := range progs {
		if p.ID != wl.Spinner.ProgID {
			continue
		}
		for i, a := range p.funcAddrs {
			ts.spinner = append(ts.spinner, [2]uint64{a, a + uint64(p.FuncLens[i])})
		}
	}
	if len(ts.spinner) == 0 {
		return nil, fmt.Errorf("no JIT image of the spinner's program %d in the truth", wl.Spinner.ProgID)
	}
	return ts, nil
}

func (ts *truthSymbols) name(addr uint64) string {
	i := sort.Search(len(ts.syms), func(i int) bool { return ts.syms[i].addr > addr })
	if i == 0 {
		return fmt.Sprintf("%#x", addr)
	}
	s := ts.syms[i-1]
	return fmt.Sprintf("%s+%#x", s.name, addr-s.addr)
}

func (ts *truthSymbols) inSpinner(addr uint64) bool {
	for _, r := range ts.spinner {
		if addr >= r[0] && addr < r[1] {
			return true
		}
	}
	return false
}
