package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labcorrupt"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// garbage is a non-canonical pointer; absent a canonical one no page of
// a lab guest's memory holds (its direct map stops at its RAM).
const (
	garbage = 0x4b1d4b1d4b1d4b1d
	absent  = 0xffff8880deadb000
)

// damageCase is a corruption of a lab dump and what it may cost.
type damageCase struct {
	name    string
	patches []labcorrupt.Patch
	// named is the address the damage report must name.
	named uint64
	// lostTID, lostProg, lostModule, lostSeq: the one task, program,
	// module or printk record the damage may hide (-1, 0, "": none).
	lostTID    int
	lostProg   uint32
	lostModule string
	lostSeq    int64
	// idrs: prog_idr and map_idr are broken: the programs come back
	// from bpf_kallsyms, the maps the programs use from their used_maps.
	idrs bool
}

// damageCases picks, in the kernel of a lab dump, the objects to damage:
// a process from the middle of the task list, a program from the middle
// of prog_idr, a module from the middle of the module list, a record
// from the middle of the printk ring.
func damageCases(t *testing.T, k *kinspect.Kernel) []damageCase {
	p := k.Program()
	var leaders []objects.Value
	for l, err := range linux.ForEachProcess(p) {
		if err != nil {
			t.Fatal(err)
		}
		leaders = append(leaders, l)
	}
	off := func(typ, member string) uint64 {
		o, _, err := p.MemberOffset(typ, member)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	task := leaders[len(leaders)/2]
	tid, _ := task.MemberInt("pid")
	next := task.Addr() + off("struct task_struct", "tasks")
	early := leaders[2].Addr() + off("struct task_struct", "tasks")

	var progs []*bpf.Prog
	for bp, err := range bpf.ProgForEach(p) {
		if err != nil {
			t.Fatal(err)
		}
		progs = append(progs, bp)
	}
	prog := progs[len(progs)/2]

	var mods []objects.Value
	for m, err := range linux.ForEachModule(p) {
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	mod := mods[len(mods)/2]
	modName, _ := mod.Member("name")
	mname, _ := modName.CString()

	ring, err := linux.ReadPrintkRing(p)
	if err != nil {
		t.Fatal(err)
	}
	rec := ring.Records[len(ring.Records)/2]
	prb, err := p.Variable("prb")
	if err == nil {
		prb, err = prb.Deref()
	}
	var textLen uint64
	if err == nil {
		textLen, err = recordTextLen(p, prb, rec.Seq)
	}
	if err != nil {
		t.Fatal(err)
	}
	return []damageCase{
		{name: "tasks.next non-canonical", patches: []labcorrupt.Patch{labcorrupt.U64(next, garbage)},
			named: next, lostTID: int(tid), lostSeq: -1},
		{name: "tasks.next a cycle", patches: []labcorrupt.Patch{labcorrupt.U64(next, early)},
			named: next, lostTID: int(tid), lostSeq: -1},
		{name: "bpf_prog_aux garbage", patches: []labcorrupt.Patch{labcorrupt.U64(prog.Obj.Addr()+off("struct bpf_prog", "aux"), absent)},
			named: prog.Obj.Addr(), lostTID: -1, lostProg: prog.ID, lostSeq: -1},
		{name: "module list broken", patches: []labcorrupt.Patch{labcorrupt.U64(mod.Addr()+off("struct module", "list"), garbage)},
			named: mod.Addr() + off("struct module", "list"), lostTID: -1, lostModule: mname, lostSeq: -1},
		{name: "BPF IDRs broken", patches: []labcorrupt.Patch{
			labcorrupt.U64(mustVar(t, p, "prog_idr")+off("struct idr", "idr_rt.xa_head"), garbage),
			labcorrupt.U64(mustVar(t, p, "map_idr")+off("struct idr", "idr_rt.xa_head"), garbage)},
			named: mustVar(t, p, "prog_idr"), lostTID: -1, lostSeq: -1, idrs: true},
		{name: "printk text_len garbage", patches: []labcorrupt.Patch{{Addr: textLen, Data: []byte{0xf0, 0xff}}},
			lostTID: -1, lostSeq: int64(rec.Seq)},
	}
}

// recordTextLen returns the address of the text_len of the record of
// sequence number seq: its struct printk_info in desc_ring.infos.
func recordTextLen(p *objects.Program, prb objects.Value, seq uint64) (uint64, error) {
	bits, err := prb.Path("desc_ring.count_bits")
	if err != nil {
		return 0, err
	}
	n, _ := bits.Uint()
	infos, err := prb.Path("desc_ring.infos")
	if err != nil {
		return 0, err
	}
	for i := range int64(1) << n {
		info, err := infos.Index(i)
		if err != nil {
			return 0, err
		}
		if s, _ := info.MemberUint("seq"); s == seq {
			tl, err := info.Member("text_len")
			if err != nil {
				return 0, err
			}
			return tl.Addr(), nil
		}
	}
	return 0, fmt.Errorf("no printk_info of seq %d", seq)
}

// TestDamagedDumps damages copies of lab dumps the way bad memory does
// (a task's tasks.next non-canonical; the same made a cycle that never
// returns to the head; a bpf_prog_aux pointer to an absent page; a
// module list link broken; a printk record's text_len garbage) and
// checks that ps, prog show, bt --all-tasks, the module walk and dmesg
// show everything but the damaged object, name the damaged address on
// stderr (as JSON under --json) and exit 3.
func TestDamagedDumps(t *testing.T) {
	for _, name := range []string{"basic", "k612"} {
		s, err := labdata.Load(name)
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		format := "elf-d31"
		if fm, ok := s.Format(format); !ok || s.Misfiltered(fm) != "" {
			format = "elf"
		}
		fm, ok := s.Format(format)
		if !ok {
			continue
		}
		k := labkernel.Open(t, s, format)
		cases := damageCases(t, k)
		truthPs, excluded := readTruthPs(t, s)
		var truthProgs []truthProg
		labdata.ReadJSON(t, s.Path("truth/bpftool/prog.json"), &truthProgs)
		truthMods := truthModules(t, s)
		dmesgTruth, err := os.ReadFile(s.Path("truth/dmesg.txt"))
		if err != nil {
			t.Fatal(err)
		}
		var origBt []btJSON
		runJSON(t, &origBt, "--json", "-c", s.Path(fm.Path), "bt", "--all-tasks")
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				dump := filepath.Join(t.TempDir(), "dump")
				if d := os.Getenv("KINSPECT_KEEP_DAMAGED"); d != "" {
					// Keep the copies, to look at them by hand.
					dump = filepath.Join(d, name+"-"+strings.ReplaceAll(c.name, " ", "_"))
				}
				if err := labcorrupt.Copy(k, dump, c.patches...); err != nil {
					t.Fatal(err)
				}
				checkDamaged(t, dump, c, truthPs, excluded, truthProgs, truthMods, lines(dmesgTruth), origBt, rec(k, c.lostSeq))
			})
		}
	}
}

// rec is the text of the printk record of sequence number seq.
func rec(k *kinspect.Kernel, seq int64) string {
	if seq < 0 {
		return ""
	}
	ring, _ := linux.ReadPrintkRing(k.Program())
	for _, r := range ring.Records {
		if int64(r.Seq) == seq {
			return r.Text
		}
	}
	return ""
}

// btJSON is what the checks need of bt --json.
type btJSON struct {
	TID    int    `json:"tid"`
	Task   string `json:"task"`
	Frames []struct {
		Function string `json:"function"`
	} `json:"frames"`
}

// truthModules reads the module names of truth/modules.txt.
func truthModules(t *testing.T, s *labdata.Scenario) []string {
	b, err := os.ReadFile(s.Path("truth/modules.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// runDamaged runs the CLI on a damaged dump: exit 3, stdout one JSON
// document, stderr one JSON damage object per line, one of which names
// the address (when given).
func runDamaged(t *testing.T, v any, named uint64, args ...string) []objects.DamageReport {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	var reports []objects.DamageReport
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if l == "" {
			continue
		}
		var r objects.DamageReport
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Errorf("%v: stderr line %q is not a damage report: %v", args, l, err)
			continue
		}
		reports = append(reports, r)
	}
	if v != nil {
		if err := json.Unmarshal(out.Bytes(), v); err != nil {
			t.Fatalf("%v: stdout is not one JSON document: %v\n%s", args, err, out.String())
		}
	}
	if code != exitDamaged || len(reports) == 0 {
		t.Errorf("%v: exit %d with %d damage reports, want %d and some", args, code, len(reports), exitDamaged)
	}
	if named != 0 && !slices.ContainsFunc(reports, func(r objects.DamageReport) bool { return uint64(r.Addr) == named }) {
		t.Errorf("%v: no damage report names %#x: %+v", args, named, reports)
	}
	return reports
}

// truthProg is what the checks need of bpftool prog show --json.
type truthProg struct {
	ID     uint32   `json:"id"`
	MapIDs []uint32 `json:"map_ids"`
}

func checkDamaged(t *testing.T, dump string, c damageCase, truthPs []truthPs, excluded int,
	truthProgs []truthProg, truthMods []string, dmesgTruth []string, origBt []btJSON, lostText string) {
	// ps: every task of the truth but the damaged one.
	var ps []linux.PSRow
	named := c.named
	if c.lostTID < 0 {
		named = 0 // ps may not meet the damage
	}
	var out, errb bytes.Buffer
	if c.lostTID >= 0 {
		runDamaged(t, &ps, named, "--json", "-c", dump, "ps")
	} else {
		code := run([]string{"--json", "-c", dump, "ps"}, &out, &errb)
		if code != 0 && code != exitDamaged {
			t.Fatalf("ps: exit %d: %s", code, errb.String())
		}
		if err := json.Unmarshal(out.Bytes(), &ps); err != nil {
			t.Fatal(err)
		}
	}
	d := comparePs(ps, truthPs, excluded, nil)
	missing := slices.DeleteFunc(d.missing, func(s string) bool { return strings.HasPrefix(s, fmt.Sprintf("%d(", c.lostTID)) })
	if len(missing) > 0 {
		t.Errorf("ps: missing %v (the damaged task is %d)", missing, c.lostTID)
	}
	t.Logf("ps: %d tasks of %d in the truth", len(ps), len(truthPs))

	// prog show: every program of the truth but the damaged one.
	var progs []struct {
		ID uint32 `json:"id"`
	}
	if c.lostProg != 0 || c.idrs {
		runDamaged(t, &progs, 0, "--json", "-c", dump, "prog", "show")
	} else {
		out.Reset()
		errb.Reset()
		if code := run([]string{"--json", "-c", dump, "prog", "show"}, &out, &errb); code != 0 && code != exitDamaged {
			t.Fatalf("prog show: exit %d: %s", code, errb.String())
		}
		if err := json.Unmarshal(out.Bytes(), &progs); err != nil {
			t.Fatal(err)
		}
	}
	for _, tp := range truthProgs {
		if tp.ID != c.lostProg && !slices.ContainsFunc(progs, func(p struct {
			ID uint32 `json:"id"`
		}) bool {
			return p.ID == tp.ID
		}) {
			t.Errorf("prog show: program %d missing", tp.ID)
		}
	}
	t.Logf("prog show: %d programs of %d in the truth", len(progs), len(truthProgs))

	// map show, with map_idr broken: every map a program uses.
	if c.idrs {
		var maps []struct {
			ID uint32 `json:"id"`
		}
		runDamaged(t, &maps, 0, "--json", "-c", dump, "map", "show")
		used := map[uint32]bool{}
		for _, tp := range truthProgs {
			for _, id := range tp.MapIDs {
				used[id] = true
			}
		}
		for id := range used {
			if !slices.ContainsFunc(maps, func(m struct {
				ID uint32 `json:"id"`
			}) bool {
				return m.ID == id
			}) {
				t.Errorf("map show: map %d, used by a program, missing", id)
			}
		}
		t.Logf("map show: %d maps; %d used by programs in the truth", len(maps), len(used))
	}

	// bt --all-tasks: every other stack, as the undamaged dump has it.
	var bts []btJSON
	out.Reset()
	errb.Reset()
	code := run([]string{"--json", "-c", dump, "bt", "--all-tasks"}, &out, &errb)
	if code != 0 && code != exitDamaged && code != 1 {
		t.Fatalf("bt: exit %d: %s", code, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), &bts); err != nil {
		t.Fatalf("bt: %v: %s", err, out.String())
	}
	byTask := map[string]btJSON{}
	for _, b := range bts {
		byTask[b.Task] = b
	}
	for _, o := range origBt {
		if o.TID == c.lostTID {
			continue
		}
		b, ok := byTask[o.Task]
		if !ok {
			t.Errorf("bt: task %d missing", o.TID)
			continue
		}
		if fn := func(b btJSON) string {
			var s []string
			for _, f := range b.Frames {
				s = append(s, f.Function)
			}
			return strings.Join(s, " ")
		}; fn(b) != fn(o) {
			t.Errorf("bt: task %d: %s, undamaged %s", o.TID, fn(b), fn(o))
		}
	}
	if c.lostTID >= 0 && code != exitDamaged {
		t.Errorf("bt: exit %d, want %d", code, exitDamaged)
	}

	// The module list: every module of the truth but the damaged one.
	if c.lostModule != "" {
		var mods []string
		runDamaged(t, &mods, c.named, "--json", "-c", dump, "-e", "Array.from(kernel.modules(), m => m.name)")
		for _, m := range truthMods {
			if m != c.lostModule && !slices.Contains(mods, m) {
				t.Errorf("modules: %s missing", m)
			}
		}
		t.Logf("modules: %d of %d in the truth", len(mods), len(truthMods))
		// list: the same walk, the broken link named, the rest listed.
		var l struct {
			Entries []struct {
				Members []struct {
					Value string `json:"value"`
				} `json:"members"`
			} `json:"entries"`
			Damage []objects.DamageReport `json:"damage"`
		}
		runDamaged(t, &l, c.named, "--json", "-c", dump, "list", "-H", "modules", "-o", "module.list", "-s", "module.name")
		var listed []string
		for _, e := range l.Entries {
			listed = append(listed, e.Members[0].Value)
		}
		for _, m := range truthMods {
			if m != c.lostModule && !slices.Contains(listed, m) {
				t.Errorf("list -H modules: %s missing (listed %v)", m, listed)
			}
		}
		if len(l.Damage) == 0 || uint64(l.Damage[0].Addr) != c.named {
			t.Errorf("list -H modules: damage %+v, want the link at %#x named", l.Damage, c.named)
		}
	}

	// dmesg: every truth line but the damaged record's.
	if c.lostSeq >= 0 {
		out.Reset()
		errb.Reset()
		if code := run([]string{"-c", dump, "dmesg"}, &out, &errb); code != exitDamaged || !strings.Contains(errb.String(), "text_len 65520") {
			t.Errorf("dmesg: exit %d, stderr %s", code, errb.String())
		}
		got := lines(out.Bytes())
		var lost []string
		i := 0
		for _, w := range dmesgTruth {
			if i < len(got) && got[i] == w {
				i++
				continue
			}
			lost = append(lost, w)
		}
		if len(lost) == 0 || len(lost) > strings.Count(lostText, "\n")+1 || !strings.Contains(lost[0], strings.SplitN(lostText, "\n", 2)[0]) {
			t.Errorf("dmesg: lines lost %q, want the damaged record's %q", lost, lostText)
		}
	}
}

// TestPsMisfiltered: on dumps that makedumpfile filtered wrong (6.12's
// slab pages taken for free ones), ps lists every task whose
// task_struct the dump holds. Which tasks those are comes from the
// scenario's complete ELF dump: each task's address there, and whether
// the filtered dump can read the whole task_struct at it.
func TestPsMisfiltered(t *testing.T) {
	for _, s := range labdata.Built(t) {
		full, ok := s.Format("elf")
		if !ok || s.Live {
			continue
		}
		for _, f := range s.Formats {
			if s.Misfiltered(f) == "" {
				continue
			}
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				var all, got []linux.PSRow
				runJSON(t, &all, "--json", "-c", s.Path(full.Path), "ps")
				var out, errb bytes.Buffer
				if code := run([]string{"--json", "-c", s.Path(f.Path), "ps"}, &out, &errb); code != 0 && code != exitDamaged {
					t.Fatalf("exit %d: %s", code, errb.String())
				}
				if err := json.Unmarshal(out.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				k := labkernel.Open(t, s, f.Name)
				size, err := k.Program().SizeofType("struct task_struct")
				if err != nil {
					t.Fatal(err)
				}
				listed := map[objects.Hex]bool{}
				for _, r := range got {
					listed[r.Task] = true
				}
				present, missing := 0, 0
				for _, r := range all {
					buf := make([]byte, size)
					if k.Program().Read(buf, uint64(r.Task)) != nil {
						continue
					}
					present++
					if !listed[r.Task] {
						missing++
						t.Errorf("task %d (%s, %#x) is in the dump but not listed", r.TID, r.Name, uint64(r.Task))
					}
				}
				t.Logf("%s: ps lists %d tasks; %d of the %d tasks have their task_struct in the dump, %d of them not listed",
					f.Name, len(got), present, len(all), missing)
			})
		}
	}
}

// TestSamplesFiltered runs every sample on the -d 31 dumps, those that
// makedumpfile misfiltered included: each must finish (exit 0, or 3
// having gone past damage), print one JSON document, and report what it
// could not read per object, not stop at the first missing page.
func TestSamplesFiltered(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join("..", "..", "samples", "*.js"))
	if err != nil {
		t.Fatal(err)
	}
	args := map[string][]string{"open_files": {"1"}}
	for _, s := range labdata.Built(t) {
		for _, f := range s.Formats {
			if f.DumpLevel&16 == 0 || !strings.HasPrefix(f.Name, "kdump-zlib") {
				continue
			}
			t.Run(s.Scenario+"/"+f.Name, func(t *testing.T) {
				for _, path := range samples {
					name := strings.TrimSuffix(filepath.Base(path), ".js")
					var out, errb bytes.Buffer
					argv := append([]string{"-c", s.Path(f.Path), "script", path, "--json"}, args[name]...)
					code := run(argv, &out, &errb)
					if code != 0 && code != exitDamaged {
						t.Errorf("%s: exit %d: %s", name, code, errb.String())
						continue
					}
					var v any
					if err := json.Unmarshal(out.Bytes(), &v); err != nil {
						t.Errorf("%s: %v: %s", name, err, out.String())
					}
					if code == exitDamaged && !strings.Contains(errb.String(), "went past") {
						t.Errorf("%s: exit 3 without a damage report: %s", name, errb.String())
					}
				}
			})
		}
	}
}

func mustVar(t *testing.T, p *objects.Program, name string) uint64 {
	v, err := p.Variable(name)
	if err != nil {
		t.Fatal(err)
	}
	return v.Addr()
}
