package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/x86dis"
)

func init() {
	register(&command{name: "prog", summary: "show BPF programs and dump their instructions (like bpftool prog)", run: runProg})
}

const progHelp = `Usage: kinspect [-c DUMP | --live] [--json | --pretty] prog COMMAND

  prog show [PROG] [-f] [--pids]                list programs, or the ones PROG names
  prog dump xlated PROG [opcodes | linum | visual]
  prog dump jited PROG [opcodes | linum]
  prog tag [PROG]

PROG is "id ID", "tag TAG", "name NAME" (several programs may share a tag
or a name) or "pinned PATH" (a file of a bpffs mount, found in memory;
an absolute path, no symbolic links followed). Everything comes from the
kernel's memory, as bpftool gets it from bpf_prog_get_info_by_fd; the
output is bpftool 7.1's, text and JSON.

  show          id, type, name, tag, gpl, run_time_ns/run_cnt (when stats
                were on), loaded_at (wall clock: load_time plus the boot
                time of the kernel's timekeeper; printed in UTC), uid,
                xlated/jited sizes, memlock, map_ids, btf_id
  dump xlated   the instructions after the verifier, as the kernel's
                disassembler prints them, with helper and map names,
                function prototypes and source lines from the program's
                BTF; opcodes adds the bytes, linum file:line:column,
                visual a Graphviz CFG
  dump jited    the x86-64 JIT image of each (sub)program in objdump's AT&T
                syntax; calls and jumps name their targets
  tag           kinspect's own: recomputes each program's tag (below)

Options:
  -k, --kallsyms FILE   symbols from FILE, a copy of the kernel's /proc/kallsyms
  -f, --bpffs           show: each program's pinned paths (bpftool -f): every
                        bpffs mount of init's mount namespace walked in memory
                        as bpftool's nftw walks it
  --pids                show: the processes holding an fd to each program, as
                        "pids comm(pid), ..." (bpftool prints these by default
                        when built with skeletons; Debian's is not, so kinspect
                        keeps them behind this option)

The kernel's tag is the SHA-1 of the instructions as loaded, before the
verifier rewrote them in place; it keeps no copy of them. "prog tag"
reconstructs them from the xlated instructions by undoing each rewrite that
has an exact inverse: map loads, helper calls (and map operations called
directly) back to the helper's ID, tail calls, kfunc and BPF-to-BPF calls,
inlined lookups of array and hash maps, BPF_PROBE_MEM loads, and context
loads converted one to one into a kernel field's load. It prints, per
program:

  ID: tag TAG recomputed TAG equal
  ID: tag TAG recomputed TAG differs: insn N: REWRITE; ...

naming each rewrite, at xlated instruction N, that could not be undone (an
inlined helper, a context access of several instructions, ...); "differs"
alone means none was seen (dead code removed or a branch hard-wired leaves
no trace). With --json: [{"id", "name", "tag", "recomputed_tag", "equal",
"undone", "kept": [{"insn", "what"}]}]. "prog dump xlated" prints the
"differs" line on stderr, its output staying bpftool's.
`

var progCommands = []*command{
	{name: "show", summary: "list programs", run: runProgShow},
	{name: "list", summary: "list programs (show)", run: runProgShow},
	{name: "dump", summary: "dump xlated or jited instructions", run: runProgDump},
	{name: "tag", summary: "recompute programs' tags from their instructions as loaded", run: runProgTag},
	{name: "help", summary: "this help", run: func(e *env, _ []string) error { fmt.Fprint(e.stdout, progHelp); return nil }},
}

func runProg(e *env, args []string) error {
	if len(args) == 0 {
		return runProgShow(e, nil)
	}
	c, err := lookup(progCommands, args[0])
	if err != nil {
		return fmt.Errorf("prog: %w", err)
	}
	return c.run(e, args[1:])
}

// progSelector is bpftool's PROG: id, tag or name.
type progSelector struct {
	kind  string // "", "id", "tag", "name", "pinned"
	id    uint32
	tag   [8]byte
	name  string
	path  string // pinned
	words int    // arguments consumed
}

func parseProgSelector(args []string) (progSelector, error) {
	if len(args) == 0 {
		return progSelector{}, nil
	}
	if len(args) < 2 {
		return progSelector{}, fmt.Errorf("%q wants a value: %w", args[0], errUsage)
	}
	s := progSelector{words: 2}
	switch {
	case strings.HasPrefix("id", args[0]):
		n, err := strconv.ParseUint(args[1], 0, 32)
		if err != nil {
			return s, fmt.Errorf("can't parse %q as ID: %w", args[1], errUsage)
		}
		s.kind, s.id = "id", uint32(n)
	case strings.HasPrefix("tag", args[0]):
		b, err := hex.DecodeString(args[1])
		if err != nil || len(b) != 8 {
			return s, fmt.Errorf("can't parse tag %q: want 16 hex digits: %w", args[1], errUsage)
		}
		s.kind = "tag"
		copy(s.tag[:], b)
	case strings.HasPrefix("name", args[0]):
		s.kind, s.name = "name", args[1]
	case strings.HasPrefix("pinned", args[0]):
		s.kind, s.path = "pinned", args[1]
	default:
		return s, fmt.Errorf("expected 'id', 'tag', 'name' or 'pinned', got %q: %w", args[0], errUsage)
	}
	return s, nil
}

func (s progSelector) String() string {
	switch s.kind {
	case "id":
		return fmt.Sprintf("id %d", s.id)
	case "tag":
		return "tag " + hex.EncodeToString(s.tag[:])
	case "pinned":
		return "pinned " + s.path
	}
	return "name " + s.name
}

// selectProgs returns the programs s names (every program for none).
func selectProgs(p *objects.Program, s progSelector) ([]*bpf.Prog, error) {
	if s.kind == "pinned" {
		id, err := findPinned(p, s.path, bpf.ObjProg)
		if err != nil {
			return nil, err
		}
		s.kind, s.id = "id", id
	}
	if s.kind == "id" {
		bp, err := bpf.ProgByID(p, s.id)
		if err != nil {
			return nil, err
		}
		return []*bpf.Prog{bp}, nil
	}
	var out []*bpf.Prog
	for bp, err := range bpf.ProgForEach(p) {
		if err != nil {
			return out, err
		}
		switch s.kind {
		case "tag":
			if bp.Tag != s.tag {
				continue
			}
		case "name":
			if bp.FullName() != s.name {
				continue
			}
		}
		out = append(out, bp)
	}
	if s.kind != "" && len(out) == 0 {
		return nil, fmt.Errorf("no BPF program with %s: %w", s, objects.ErrNotFound)
	}
	return out, nil
}

// progFlags takes -k FILE out of args.
func progFlags(args []string) (rest []string, kallsymsFile string, err error) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-k", "--kallsyms":
			if i+1 == len(args) {
				return nil, "", fmt.Errorf("%s wants a file: %w", a, errUsage)
			}
			kallsymsFile = args[i+1]
			i++
		default:
			rest = append(rest, a)
		}
	}
	return rest, kallsymsFile, nil
}

// progInfo is what "prog show" reports of one program, bpftool's
// bpf_prog_info fields.
type progInfo struct {
	ID           uint32
	Type         string
	Name         string
	Tag          string
	GPL          bool
	RunTimeNs    uint64
	RunCnt       uint64
	Misses       uint64
	LoadTime     uint64
	LoadedAt     time.Time // zero when the boot time is unknown
	UID          uint32
	BytesXlated  uint64
	Jited        bool
	BytesJited   uint64
	BytesMemlock uint64
	MapIDs       []uint32
	BTFID        uint32
	Problems     []string
}

func newProgInfo(bp *bpf.Prog, bootWall int64, bootErr error) progInfo {
	pi := progInfo{ID: bp.ID, Type: bpftoolName(bp.TypeName, uint64(bp.Type), libbpfLastProgType), Name: bp.FullName(), Tag: hex.EncodeToString(bp.Tag[:]),
		GPL: bp.GPL, LoadTime: bp.LoadTime, UID: bp.UID, BytesXlated: uint64(bp.Len) * bpfinsn.InsnSize,
		Jited: bp.Jited && bp.JitedLen > 0, BytesJited: bp.JitedLen, BytesMemlock: bp.Memlock(), MapIDs: bp.MapIDs, BTFID: bp.BTFID}
	if !pi.Jited {
		pi.BytesJited = 0
	}
	st, err := bp.Stats()
	if err != nil {
		pi.Problems = append(pi.Problems, fmt.Sprintf("stats: %v", err))
	}
	pi.RunTimeNs, pi.RunCnt, pi.Misses = st.RunTimeNs, st.RunCnt, st.RecursionMisses
	if bootErr == nil && bp.LoadTime != 0 {
		ns := int64(bp.LoadTime) + bootWall
		pi.LoadedAt = time.Unix(0, 0).Add(time.Duration(ns)).UTC()
	} else if bootErr != nil {
		pi.Problems = append(pi.Problems, fmt.Sprintf("loaded_at: %v", bootErr))
	}
	return pi
}

// loadedSecs is bpftool's wall-clock seconds of the load.
func (pi progInfo) loadedSecs() int64 { return pi.LoadedAt.Unix() }

func runProgShow(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, progHelp)
		return nil
	}
	sel, opts, k, err := openProgArgs(e, "show", args, true)
	if err != nil {
		return err
	}
	defer k.Close()
	return progShow(e, k, sel, opts)
}

// openProgArgs parses the "[PROG] [-k FILE]" of prog subcommand name
// (with -f and --pids when withOpts) and opens the kernel.
func openProgArgs(e *env, name string, args []string, withOpts bool) (progSelector, showOpts, *kinspect.Kernel, error) {
	var opts showOpts
	args, ksFile, err := progFlags(args)
	if err != nil {
		return progSelector{}, opts, nil, err
	}
	if withOpts {
		args, opts = takeShowOpts(args)
	}
	sel, err := parseProgSelector(args)
	if err != nil {
		return sel, opts, nil, err
	}
	if len(args) > sel.words {
		return sel, opts, nil, fmt.Errorf("prog %s: unexpected %q: %w", name, args[sel.words], errUsage)
	}
	k, err := openKernel(e, ksFile)
	return sel, opts, k, err
}

// progShow prints the programs sel names, with what opts add.
func progShow(e *env, k *kinspect.Kernel, sel progSelector, opts showOpts) error {
	progs, walkErr := selectProgs(k.Program(), sel)
	if walkErr != nil && len(progs) == 0 {
		return walkErr
	}
	tabs := buildObjTables(e, k, opts, bpf.ObjProg)
	bootWall, bootErr := linux.RealMinusBoot(k.Program())
	infos := make([]progInfo, len(progs))
	for i, bp := range progs {
		infos[i] = newProgInfo(bp, bootWall, bootErr)
	}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if e.json {
		j := newJSONW(bw, e.pretty)
		array := sel.kind == "" || len(infos) > 1
		if array {
			j.BeginArray()
		}
		for _, pi := range infos {
			j.BeginObject()
			writeProgHeaderJSON(j, pi)
			writeProgBodyJSON(j, pi)
			tabs.writeJSON(j, pi.ID)
			j.EndObject()
		}
		if array {
			j.EndArray()
		}
		bw.WriteByte('\n')
	} else {
		for _, pi := range infos {
			writeProgPlain(bw, pi, tabs)
		}
	}
	bw.Flush()
	for _, pi := range infos {
		for _, pr := range pi.Problems {
			if strings.HasPrefix(pr, "loaded_at") && len(infos) > 1 && pi.ID != infos[0].ID {
				continue
			}
			fmt.Fprintf(e.stderr, "kinspect: prog %d: %s\n", pi.ID, pr)
		}
	}
	return walkErr
}

// writeProgHeaderJSON is bpftool's print_prog_header_json.
func writeProgHeaderJSON(j *jsonw, pi progInfo) {
	j.UintField("id", uint64(pi.ID))
	if n, err := strconv.ParseUint(pi.Type, 10, 32); err == nil {
		j.UintField("type", n)
	} else {
		j.StringField("type", pi.Type)
	}
	if pi.Name != "" {
		j.StringField("name", pi.Name)
	}
	j.Name("tag")
	j.Raw(`"` + pi.Tag + `"`)
	j.BoolField("gpl_compatible", pi.GPL)
	if pi.RunTimeNs != 0 {
		j.UintField("run_time_ns", pi.RunTimeNs)
		j.UintField("run_cnt", pi.RunCnt)
	}
	if pi.Misses != 0 {
		j.UintField("recursion_misses", pi.Misses)
	}
}

// writeProgBodyJSON is the rest of bpftool's print_prog_json.
func writeProgBodyJSON(j *jsonw, pi progInfo) {
	if pi.LoadTime != 0 && !pi.LoadedAt.IsZero() {
		j.Name("loaded_at")
		j.Raw(strconv.FormatInt(pi.loadedSecs(), 10))
		j.UintField("uid", uint64(pi.UID))
	}
	j.UintField("bytes_xlated", pi.BytesXlated)
	j.BoolField("jited", pi.Jited)
	if pi.Jited {
		j.UintField("bytes_jited", pi.BytesJited)
	}
	j.IntField("bytes_memlock", int64(pi.BytesMemlock))
	if len(pi.MapIDs) > 0 {
		j.Name("map_ids")
		j.BeginArray()
		for _, id := range pi.MapIDs {
			j.Uint(uint64(id))
		}
		j.EndArray()
	}
	if pi.BTFID != 0 {
		j.IntField("btf_id", int64(pi.BTFID))
	}
}

// writeProgHeaderPlain is bpftool's print_prog_header_plain.
func writeProgHeaderPlain(w io.Writer, pi progInfo) {
	fmt.Fprintf(w, "%d: ", pi.ID)
	if _, err := strconv.ParseUint(pi.Type, 10, 32); err == nil {
		fmt.Fprintf(w, "type %s  ", pi.Type)
	} else {
		fmt.Fprintf(w, "%s  ", pi.Type)
	}
	if pi.Name != "" {
		fmt.Fprintf(w, "name %s  ", pi.Name)
	}
	fmt.Fprintf(w, "tag %s", pi.Tag)
	if pi.GPL {
		fmt.Fprint(w, "  gpl")
	}
	if pi.RunTimeNs != 0 {
		fmt.Fprintf(w, " run_time_ns %d run_cnt %d", pi.RunTimeNs, pi.RunCnt)
	}
	if pi.Misses != 0 {
		fmt.Fprintf(w, " recursion_misses %d", pi.Misses)
	}
	fmt.Fprintln(w)
}

// writeProgPlain is bpftool's print_prog_plain.
func writeProgPlain(w io.Writer, pi progInfo, tabs objTables) {
	writeProgHeaderPlain(w, pi)
	if pi.LoadTime != 0 && !pi.LoadedAt.IsZero() {
		fmt.Fprintf(w, "\tloaded_at %s  uid %d\n", pi.LoadedAt.Format("2006-01-02T15:04:05-0700"), pi.UID)
	}
	fmt.Fprintf(w, "\txlated %dB", pi.BytesXlated)
	if pi.Jited {
		fmt.Fprintf(w, "  jited %dB", pi.BytesJited)
	} else {
		fmt.Fprint(w, "  not jited")
	}
	fmt.Fprintf(w, "  memlock %dB", pi.BytesMemlock)
	if len(pi.MapIDs) > 0 {
		ids := make([]string, len(pi.MapIDs))
		for i, id := range pi.MapIDs {
			ids[i] = strconv.FormatUint(uint64(id), 10)
		}
		fmt.Fprintf(w, "  map_ids %s", strings.Join(ids, ","))
	}
	tabs.pins.writePlain(w, pi.ID)
	if pi.BTFID != 0 {
		fmt.Fprintf(w, "\n\tbtf_id %d", pi.BTFID)
	}
	tabs.refs.writePlain(w, pi.ID)
	fmt.Fprintln(w)
}

// xlatedProgram gathers what the xlated dumpers render: instructions as
// the kernel hands them out, func_info with prototypes and line_info
// with source from the program's BTF, the JIT addresses of subprograms
// and a resolver over the kernel's symbols and the program's own.
func xlatedProgram(k *kinspect.Kernel, bp *bpf.Prog) (*bpfinsn.Program, error) {
	insns, err := bp.XlatedInsns()
	if err != nil {
		return nil, err
	}
	p := &bpfinsn.Program{Insns: insns}
	if base, err := k.Program().Symbol("__bpf_call_base"); err == nil {
		p.CallBase = base
	}
	funcs, err := bp.Funcs()
	if err != nil {
		return nil, err
	}
	own := map[uint64]string{}
	for _, f := range funcs {
		p.FuncAddrs = append(p.FuncAddrs, f.Addr)
		own[f.Addr] = f.Name
	}
	p.Syms = symsAt(k, own)
	if bp.BTFAddr != 0 {
		b, err := bp.BTF()
		if err != nil {
			return nil, err
		}
		fi, err := bp.FuncInfo()
		if err != nil {
			return nil, err
		}
		li, err := bp.LineInfo()
		if err != nil {
			return nil, err
		}
		p.Funcs = b.Funcs(fi)
		p.Lines = b.Lines(li)
	}
	return p, nil
}

// symsAt resolves an address to the symbol starting exactly there: the
// program's own images first, then the kernel's table.
func symsAt(k *kinspect.Kernel, own map[uint64]string) bpfinsn.Resolver {
	return bpfinsn.ResolverFunc(func(addr uint64) (string, bool) {
		if n, ok := own[addr]; ok {
			return n, true
		}
		if k.Symbols() == nil {
			return "", false
		}
		loc, err := k.Symbols().LookupAddr(addr)
		if err != nil || loc.Offset != 0 {
			return "", false
		}
		return loc.Name, true
	})
}

func runProgDump(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, progHelp)
		return nil
	}
	args, ksFile, err := progFlags(args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return fmt.Errorf("prog dump: expected 'xlated' or 'jited': %w", errUsage)
	}
	var jited bool
	switch {
	case strings.HasPrefix("xlated", args[0]):
	case strings.HasPrefix("jited", args[0]):
		jited = true
	default:
		return fmt.Errorf("prog dump: expected 'xlated' or 'jited', got %q: %w", args[0], errUsage)
	}
	args = args[1:]
	if len(args) < 2 {
		return fmt.Errorf("prog dump: want PROG (id ID, tag TAG or name NAME): %w", errUsage)
	}
	sel, err := parseProgSelector(args)
	if err != nil {
		return err
	}
	args = args[sel.words:]
	var o bpfinsn.TextOptions
	visual := false
	if len(args) > 0 {
		switch {
		case strings.HasPrefix("opcodes", args[0]):
			o.Opcodes = true
		case strings.HasPrefix("linum", args[0]):
			o.Linum = true
		case strings.HasPrefix("visual", args[0]) && !jited:
			visual = true
		case args[0] == "file":
			return fmt.Errorf("prog dump: 'file' is not supported: %w", errUsage)
		default:
			return fmt.Errorf("prog dump: unexpected %q: %w", args[0], errUsage)
		}
		args = args[1:]
	}
	if len(args) > 0 {
		return fmt.Errorf("prog dump: unexpected %q: %w", args[0], errUsage)
	}
	k, err := openKernel(e, ksFile)
	if err != nil {
		return err
	}
	defer k.Close()
	return progDump(e, k, sel, jited, o, visual)
}

// progDump dumps the programs sel names.
func progDump(e *env, k *kinspect.Kernel, sel progSelector, jited bool, o bpfinsn.TextOptions, visual bool) error {
	progs, err := selectProgs(k.Program(), sel)
	if err != nil {
		return err
	}
	if visual && len(progs) > 1 {
		return fmt.Errorf("prog dump: several programs matched: %w", errUsage)
	}
	bootWall, bootErr := linux.RealMinusBoot(k.Program())
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	var j *jsonw
	many := len(progs) > 1
	if e.json {
		j = newJSONW(bw, e.pretty)
		if many {
			j.BeginArray()
		}
	}
	for i, bp := range progs {
		if many {
			pi := newProgInfo(bp, bootWall, bootErr)
			if j != nil {
				j.BeginObject()
				writeProgHeaderJSON(j, pi)
				j.Name("insns")
			} else {
				writeProgHeaderPlain(bw, pi)
			}
		}
		var err error
		if jited {
			err = dumpJited(k, bp, bw, j, o)
		} else {
			err = dumpXlated(k, bp, bw, j, o, visual, e.stderr)
		}
		if err != nil {
			return fmt.Errorf("prog %d: %w", bp.ID, err)
		}
		if j != nil && many {
			j.EndObject()
		} else if many && i != len(progs)-1 {
			bw.WriteByte('\n')
		}
	}
	if j != nil {
		if many {
			j.EndArray()
		}
		bw.WriteByte('\n')
	}
	return nil
}

func dumpXlated(k *kinspect.Kernel, bp *bpf.Prog, w *bufio.Writer, j *jsonw, o bpfinsn.TextOptions, visual bool, stderr io.Writer) error {
	if bp.Len == 0 {
		return fmt.Errorf("no instructions: %w", objects.ErrNotFound)
	}
	p, err := xlatedProgram(k, bp)
	if err != nil {
		return err
	}
	if r := recomputeTag(k, bp); !r.Match {
		// stdout stays bpftool's: the verdict goes to stderr.
		fmt.Fprintf(stderr, "kinspect: prog %d: %s\n", bp.ID, r.line())
	}
	switch {
	case visual && j != nil:
		j.Raw("null")
		return nil
	case visual:
		return p.WriteDot(w)
	case j != nil:
		writeXlatedJSON(j, p.JSON(o))
		return nil
	}
	return p.WriteText(w, o)
}

// writeXlatedJSON writes bpftool's dump_xlated_json array.
func writeXlatedJSON(j *jsonw, insns []bpfinsn.JSONInsn) {
	j.BeginArray()
	for _, in := range insns {
		j.BeginObject()
		if in.Proto != "" {
			j.StringField("proto", in.Proto)
		}
		if in.Src != nil {
			j.StringField("src", *in.Src)
		}
		if in.File != nil {
			j.StringField("file", *in.File)
		}
		if in.LineNum != 0 {
			j.IntField("line_num", int64(in.LineNum))
		}
		if in.LineCol != 0 {
			j.IntField("line_col", int64(in.LineCol))
		}
		j.Name("disasm")
		j.Raw(`"` + in.Disasm + `"`)
		if oc := in.Opcodes; oc != nil {
			j.Name("opcodes")
			j.BeginObject()
			j.Name("code")
			j.Raw(`"` + oc.Code + `"`)
			j.Name("src_reg")
			j.Raw(`"` + oc.SrcReg + `"`)
			j.Name("dst_reg")
			j.Raw(`"` + oc.DstReg + `"`)
			j.Name("off")
			rawList(j, oc.Off)
			j.Name("imm")
			rawList(j, oc.Imm)
			j.EndObject()
		}
		j.EndObject()
	}
	j.EndArray()
}

func rawList(j *jsonw, toks []string) {
	j.BeginArray()
	for _, t := range toks {
		j.Raw(`"` + t + `"`)
	}
	j.EndArray()
}

// dumpJited prints each JIT image as bpftool's prog_dump does with a
// disassembler: the function's prototype and symbol, then "%4x:\t"
// offsets and objdump's AT&T text, source lines from line_info where
// the JIT recorded their addresses.
func dumpJited(k *kinspect.Kernel, bp *bpf.Prog, w *bufio.Writer, j *jsonw, o bpfinsn.TextOptions) error {
	funcs, err := bp.Funcs()
	if err != nil {
		return err
	}
	if len(funcs) == 0 {
		return fmt.Errorf("not JITed: no instructions returned: %w", objects.ErrNotFound)
	}
	own := map[uint64]string{}
	for _, f := range funcs {
		own[f.Addr] = f.Name
	}
	var protos []string
	var lines []bpfinsn.Line
	var jlines []uint64
	if bp.BTFAddr != 0 {
		b, err := bp.BTF()
		if err != nil {
			return err
		}
		fi, err := bp.FuncInfo()
		if err != nil {
			return err
		}
		for _, f := range b.Funcs(fi) {
			protos = append(protos, f.Proto)
		}
		li, err := bp.LineInfo()
		if err != nil {
			return err
		}
		lines = b.Lines(li)
		if jlines, err = bp.JitedLineInfo(); err != nil {
			return err
		}
		if len(jlines) != len(lines) {
			lines, jlines = nil, nil
		}
	}
	if j != nil {
		j.BeginArray()
	}
	for fi, f := range funcs {
		img, err := f.Image()
		if err != nil {
			return err
		}
		proto := ""
		if fi < len(protos) {
			proto = protos[fi]
		}
		// This function's line records: those whose JIT address is in it.
		var fl []bpfinsn.Line
		var fa []uint64
		for i, a := range jlines {
			if a >= f.Addr && a < f.Addr+uint64(f.Len) {
				fl, fa = append(fl, lines[i]), append(fa, a)
			}
		}
		skip := 0
		findLine := func(addr uint64) (bpfinsn.Line, bool) {
			if skip >= len(fa) || addr < fa[skip] {
				return bpfinsn.Line{}, false
			}
			i := skip
			for i < len(fa) && addr >= fa[i] {
				i++
			}
			skip++
			return fl[i-1], true
		}
		insts := x86dis.Disassemble(img, f.Addr)
		if j != nil {
			j.BeginObject()
			if proto != "" {
				j.StringField("proto", proto)
			}
			j.StringField("name", f.Name)
			j.Name("insns")
			j.BeginArray()
		} else {
			if proto != "" {
				fmt.Fprintf(w, "%s:\n", proto)
			}
			fmt.Fprintf(w, "%s:\n", f.Name)
		}
		for _, in := range insts {
			pc := in.Addr - f.Addr
			l, hasLine := findLine(in.Addr)
			text := in.Text
			if in.Target != 0 {
				if loc, err := symbolNear(k, own, in.Target); err == nil {
					text += " <" + loc + ">"
				}
			}
			if j != nil {
				j.BeginObject()
				if hasLine {
					if !l.NoSrc {
						j.StringField("src", strings.TrimLeft(l.Src, " \t\n\v\f\r"))
					}
					if o.Linum {
						if !l.NoFile {
							j.StringField("file", l.File)
						}
						if l.LineNum != 0 {
							j.IntField("line_num", int64(l.LineNum))
						}
						if l.LineCol != 0 {
							j.IntField("line_col", int64(l.LineCol))
						}
					}
				}
				j.Name("pc")
				j.Raw(fmt.Sprintf(`"0x%x"`, pc))
				op, operands := splitInst(in)
				j.StringField("operation", op)
				j.Name("operands")
				j.BeginArray()
				if len(operands) == 0 {
					j.Raw("null")
				}
				for _, s := range operands {
					j.String(s)
				}
				j.EndArray()
				if o.Opcodes {
					j.Name("opcodes")
					j.HexData(in.Bytes)
				}
				j.EndObject()
				continue
			}
			if hasLine && !l.NoSrc {
				fmt.Fprintf(w, "; %s", strings.TrimLeft(l.Src, " \t\n\v\f\r"))
				if o.Linum {
					fmt.Fprintf(w, " [file:%s line_num:%d line_col:%d]", l.File, l.LineNum, l.LineCol)
				}
				w.WriteByte('\n')
			}
			fmt.Fprintf(w, "%4x:\t%s", pc, text)
			if o.Opcodes {
				w.WriteString("\n\t")
				for _, c := range in.Bytes {
					fmt.Fprintf(w, "%02x ", c)
				}
			}
			w.WriteByte('\n')
		}
		if j != nil {
			j.EndArray()
			j.EndObject()
		} else {
			w.WriteByte('\n')
		}
	}
	if j != nil {
		j.EndArray()
	}
	return nil
}

// symbolNear names a call or jump target: a program image of its own,
// or the kernel symbol it falls in ("__htab_map_lookup_elem",
// "ki_xdp+0x70").
func symbolNear(k *kinspect.Kernel, own map[uint64]string, addr uint64) (string, error) {
	if n, ok := own[addr]; ok {
		return n, nil
	}
	if k.Symbols() == nil {
		return "", errors.New("no symbols")
	}
	loc, err := k.Symbols().LookupAddr(addr)
	if err != nil {
		return "", err
	}
	if loc.Offset == 0 {
		return loc.Name, nil
	}
	return fmt.Sprintf("%s+0x%x", loc.Name, loc.Offset), nil
}

// splitInst splits objdump text into the operation and its operands,
// as bpftool's JSON has them.
func splitInst(in x86dis.Inst) (string, []string) {
	text := in.Text
	if i := strings.Index(text, "        # "); i >= 0 {
		text = text[:i]
	}
	op := in.Mnemonic()
	rest := strings.TrimSpace(strings.TrimPrefix(text, op))
	if rest == "" {
		return op, nil
	}
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, rest[start:i])
				start = i + 1
			}
		}
	}
	return op, append(out, rest[start:])
}

// tagCheck is "prog tag"'s result for one program.
type tagCheck struct {
	ID         uint32
	Name       string
	Tag        [bpfinsn.TagSize]byte
	Recomputed [bpfinsn.TagSize]byte
	Match      bool
	Undone     int
	Kept       []bpfinsn.Rewrite
	// Err says why the instructions could not be reconstructed.
	Err error
}

// recomputeTag reconstructs bp's instructions as loaded and hashes them.
func recomputeTag(k *kinspect.Kernel, bp *bpf.Prog) tagCheck {
	r := tagCheck{ID: bp.ID, Name: bp.FullName(), Tag: bp.Tag}
	var symName bpf.SymbolNamer
	if k.Symbols() != nil {
		symName = func(addr uint64) (string, bool) {
			l, err := k.Symbols().LookupAddr(addr)
			if err != nil || l.Offset != 0 {
				return "", false
			}
			return l.Name, true
		}
	}
	l, err := bp.AsLoaded(symName)
	if err != nil {
		r.Err = err
		return r
	}
	r.Recomputed, r.Match, r.Undone, r.Kept = l.Tag, l.Match, l.Undone, l.Kept
	return r
}

// line is the text verdict: "tag X recomputed Y equal", or "differs"
// with the rewrites that could not be undone.
func (r tagCheck) line() string {
	if r.Err != nil {
		return fmt.Sprintf("tag %x not recomputed: %v", r.Tag, r.Err)
	}
	s := fmt.Sprintf("tag %x recomputed %x ", r.Tag, r.Recomputed)
	if r.Match {
		return s + "equal"
	}
	s += "differs"
	for i, k := range r.Kept {
		if i == 0 {
			s += ": "
		} else {
			s += "; "
		}
		s += k.String()
	}
	return s
}

func runProgTag(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, progHelp)
		return nil
	}
	sel, _, k, err := openProgArgs(e, "tag", args, false)
	if err != nil {
		return err
	}
	defer k.Close()
	progs, walkErr := selectProgs(k.Program(), sel)
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	var j *jsonw
	if e.json {
		j = newJSONW(bw, e.pretty)
		j.BeginArray()
	}
	for _, bp := range progs {
		r := recomputeTag(k, bp)
		if j == nil {
			fmt.Fprintf(bw, "%d: %s\n", r.ID, r.line())
			continue
		}
		j.BeginObject()
		j.UintField("id", uint64(r.ID))
		j.StringField("name", r.Name)
		j.StringField("tag", hex.EncodeToString(r.Tag[:]))
		if r.Err != nil {
			j.StringField("error", r.Err.Error())
		} else {
			j.StringField("recomputed_tag", hex.EncodeToString(r.Recomputed[:]))
			j.BoolField("equal", r.Match)
			j.UintField("undone", uint64(r.Undone))
			j.Name("kept")
			j.BeginArray()
			for _, kr := range r.Kept {
				j.BeginObject()
				j.UintField("insn", uint64(kr.Insn))
				j.StringField("what", kr.What)
				j.EndObject()
			}
			j.EndArray()
		}
		j.EndObject()
	}
	if j != nil {
		j.EndArray()
		bw.WriteByte('\n')
	}
	return walkErr
}
