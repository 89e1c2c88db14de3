package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfinsn"
)

func init() {
	register(&command{name: "prog", summary: "show, dump, run and debug BPF programs (like bpftool prog)", run: runProg,
		help: progHelp, verbs: progCommands, opts: []*option{optKallsyms}, bpftool: true})
}

const progHelp = `Usage: kinspect [-c DUMP | --live] [--json | --pretty] prog COMMAND

  prog show [PROG] [-f] [--pids]                list programs, or the ones PROG names
  prog dump xlated PROG [opcodes | linum | visual]
  prog dump jited PROG [opcodes | linum]
  prog tag [PROG]
  prog run PROG [data_in FILE [data_out FILE [data_size_out L]]]
                [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] [repeat N]
                [--trace] [--pcap FILE] [--cpu N] [--pid PID]
  prog state [PROG]
  prog debug PROG [data_in FILE] [ctx_in FILE] [--cpu N] [--pid PID]
  prog debug PROG --resume PID

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
  run           replays the program from the dump as BPF_PROG_TEST_RUN
                runs it (below)
  state         the BPF view of every BPF frame on a CPU's or task's
                stack (below)
  debug         steps a replayed run (below); "help" at its prompt lists
                its commands

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

"prog run" takes bpftool prog run's line and prints its output
("Return value: N, duration: Nns"; data_out and ctx_out written to their
FILE, or for "-" printed in hex; --json: {"data_out", "ctx_out", "retval",
"duration"}), after running the program's instructions as the kernel
holds them (after the verifier) in kinspect's interpreter, over the
dump's memory under a copy-on-write overlay: the dump is never changed.
The context is built as the kernel's test run builds it (a struct sk_buff
for socket filter, cgroup skb and tc programs, a struct xdp_buff for
XDP, a raw tracepoint's u64 arguments from ctx_in), the maps are the
dump's, with their real layouts: a lookup returns the kernel address of
the value, an update or delete changes the overlay. The duration is the
interpreter's, not the kernel's. kinspect adds, after bpftool's line, the
instructions executed, the records sent to ring buffers and perf event
arrays, and the map entries the runs changed ("Map changes: N", then per
entry "map ID NAME (TYPE) key KEY: BEFORE -> AFTER", "(none)" for an entry
that did not exist or was deleted; a per-CPU value is every possible
CPU's, each padded to 8 bytes); --json adds "insns", "outputs", "printk"
and "map_changes": [{"map_id", "map_name", "map_type", "key", "before",
"after"}], hex strings or null. --trace prints each instruction executed,
indented by BPF-to-BPF call depth, with the registers it changed and the
memory it accessed (--json: "trace"). --pcap FILE runs the program once
per packet of a classic pcap file, in order, on the same maps; --cpu and
--pid choose the CPU (per-CPU values, bpf_get_smp_processor_id) and the
current task (bpf_get_current_*; default the CPU's idle task). A function
the program calls that kinspect does not implement stops the run with an
error naming it and the instruction.

"prog state" lists, for every stack of the dump (each CPU's, each
task's) holding a BPF program's frame, the frame's BPF view: the xlated
instruction executing (for a frame that called another, the call), its
source line, R0-R10 from the x86 registers by the x86-64 JIT's fixed
mapping (r0 rax, r1 rdi, r2 rsi, r3 rdx, r4 rcx, r5 r8, r6 rbx, r7 r13,
r8 r14, r9 r15, r10 rbp), known for a frame that was interrupted (or the
CPU's own); of a BPF caller only r10 and what its BPF callee saved of r6-r9
("?" otherwise), and the BPF stack below r10. The kernel keeps no map from
JIT addresses back to instructions; kinspect derives each instruction's
x86 code from the JIT's code generation and checks it against every
address the line info records (jited_linfo), saying "inexact" with the
candidates where it cannot. --json: [{"pid", "tid", "comm", "task", "cpu",
"on_cpu", "frames": [{"frame", "pc", "prog_id", "prog_name", "func",
"image", "interrupted", "insn", "insn_last", "exact", "mid", "text",
"line", "how", "regs": [{"reg", "x86", "value", "known", "from"}],
"stack_depth", "stack", "called_from", "depth", "error"}]}].

"prog debug" starts a run as prog run would and stops before its first
instruction; it reads commands from standard input (gdb's names: break,
step, next, stepi, nexti, finish, continue, print, x, regs, stack,
backtrace, changes, result; "help" lists them). Piped in, each command is
echoed after the prompt, so the session reads as a transcript
(docs/debugger.md is one). With --resume PID it starts instead where the
program is on the stack of task PID (as prog state shows it: its
instruction, registers and stack), so that continuing replays the rest of
that run over the dump, its context the dump's (a program's main
function only; one caught in its prologue starts at its first
instruction).
`

var progCommands = []*command{
	{name: "show", summary: "list programs", run: runProgShow, syntax: "[PROG]", opts: []*option{optBPFFS, optPids}},
	{name: "list", summary: "list programs (show)", run: runProgShow, syntax: "[PROG]", opts: []*option{optBPFFS, optPids}},
	{name: "dump", summary: "dump xlated or jited instructions", run: runProgDump,
		syntax: "xlated PROG [opcodes | linum | visual] | jited PROG [opcodes | linum]"},
	{name: "tag", summary: "recompute programs' tags from their instructions as loaded", run: runProgTag, syntax: "[PROG]"},
	{name: "run", summary: "replay a program from the dump as BPF_PROG_TEST_RUN", run: runProgRun,
		syntax: "PROG [data_in FILE [data_out FILE [data_size_out N]]] [ctx_in FILE [ctx_out FILE [ctx_size_out N]]] [repeat N]",
		opts:   []*option{optTrace, optPcap, optCPU, optPID}},
	{name: "state", summary: "the BPF view of the programs on the stacks", run: runProgState, syntax: "[PROG]"},
	{name: "debug", summary: "step a replayed run of a program", run: runProgDebug,
		syntax: "PROG [data_in FILE] [ctx_in FILE]", opts: []*option{optCPU, optPID, optResume}},
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

// progSelector is bpftool's PROG parsed, with the words it took.
type progSelector struct {
	bpf.Selector
	words int // arguments consumed
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
		s.Kind, s.ID = bpf.SelectID, uint32(n)
	case strings.HasPrefix("tag", args[0]):
		b, err := hex.DecodeString(args[1])
		if err != nil || len(b) != 8 {
			return s, fmt.Errorf("can't parse tag %q: want 16 hex digits: %w", args[1], errUsage)
		}
		s.Kind = bpf.SelectTag
		copy(s.Tag[:], b)
	case strings.HasPrefix("name", args[0]):
		s.Kind, s.Name = bpf.SelectName, args[1]
	case strings.HasPrefix("pinned", args[0]):
		if !path.IsAbs(args[1]) {
			return s, fmt.Errorf("bpf obj get (%s): a dump has no working directory: give an absolute path: %w", args[1], errUsage)
		}
		s.Kind, s.Path = bpf.SelectPinned, args[1]
	default:
		return s, fmt.Errorf("expected 'id', 'tag', 'name' or 'pinned', got %q: %w", args[0], errUsage)
	}
	return s, nil
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
	progs, walkErr := bpf.SelectProgs(k.Program(), sel.Selector)
	if walkErr != nil && len(progs) == 0 {
		return walkErr
	}
	tabs := buildObjTables(e, k, opts, bpf.ObjProg)
	infos := make([]*bpf.ProgInfo, len(progs))
	for i, bp := range progs {
		infos[i] = bp.Info()
	}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if e.json {
		j := newJSONW(bw, e.pretty)
		array := sel.Kind == bpf.SelectAll || len(infos) > 1
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
func writeProgHeaderJSON(j *jsonw, pi *bpf.ProgInfo) {
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
func writeProgBodyJSON(j *jsonw, pi *bpf.ProgInfo) {
	if pi.LoadTime != 0 && !pi.LoadedAt.IsZero() {
		j.Name("loaded_at")
		j.Raw(strconv.FormatInt(pi.LoadedSecs(), 10))
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
func writeProgHeaderPlain(w io.Writer, pi *bpf.ProgInfo) {
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
func writeProgPlain(w io.Writer, pi *bpf.ProgInfo, tabs objTables) {
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
	progs, err := bpf.SelectProgs(k.Program(), sel.Selector)
	if err != nil {
		return err
	}
	if visual && len(progs) > 1 {
		return fmt.Errorf("prog dump: several programs matched: %w", errUsage)
	}
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
			pi := bp.Info()
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
	p, err := bp.DumpXlated(k.Symbols())
	if err != nil {
		return err
	}
	if r := bp.RecomputeTag(k.Symbols()); !r.Equal {
		// stdout stays bpftool's: the verdict goes to stderr.
		fmt.Fprintf(stderr, "kinspect: prog %d: %s\n", bp.ID, r)
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
// disassembler (bpf.WriteJited), or its JSON.
func dumpJited(k *kinspect.Kernel, bp *bpf.Prog, w *bufio.Writer, j *jsonw, o bpfinsn.TextOptions) error {
	funcs, err := bp.DumpJited(k.Symbols())
	if err != nil {
		return err
	}
	if j == nil {
		return bpf.WriteJited(w, funcs, o)
	}
	j.BeginArray()
	for _, f := range funcs {
		j.BeginObject()
		if f.Proto != "" {
			j.StringField("proto", f.Proto)
		}
		j.StringField("name", f.Name)
		j.Name("insns")
		j.BeginArray()
		for _, in := range f.Insns {
			j.BeginObject()
			if l := in.Line; l != nil {
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
			j.Raw(fmt.Sprintf(`"0x%x"`, in.PC))
			j.StringField("operation", in.Operation)
			j.Name("operands")
			j.BeginArray()
			if len(in.Operands) == 0 {
				j.Raw("null")
			}
			for _, s := range in.Operands {
				j.String(s)
			}
			j.EndArray()
			if o.Opcodes {
				j.Name("opcodes")
				j.HexData(in.Bytes)
			}
			j.EndObject()
		}
		j.EndArray()
		j.EndObject()
	}
	j.EndArray()
	return nil
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
	progs, walkErr := bpf.SelectProgs(k.Program(), sel.Selector)
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	var j *jsonw
	if e.json {
		j = newJSONW(bw, e.pretty)
		j.BeginArray()
	}
	for _, bp := range progs {
		r := bp.RecomputeTag(k.Symbols())
		if j == nil {
			fmt.Fprintf(bw, "%d: %s\n", r.ID, r)
			continue
		}
		j.BeginObject()
		j.UintField("id", uint64(r.ID))
		j.StringField("name", r.Name)
		j.StringField("tag", r.Tag)
		if r.Err != nil {
			j.StringField("error", r.Err.Error())
		} else {
			j.StringField("recomputed_tag", r.Recomputed)
			j.BoolField("equal", r.Equal)
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
