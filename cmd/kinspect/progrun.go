package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/orc"
	"golang.org/x/term"
)

// prog run, prog state and prog debug: the replay of programs from the
// dump (package bpfrun).

var (
	optTrace  = &option{long: "--trace", help: "run: print each instruction executed with the registers it changed"}
	optPcap   = &option{long: "--pcap", value: "FILE", help: "run: one run per packet of FILE (classic pcap, Ethernet), each its data_in"}
	optCPU    = &option{long: "--cpu", value: "N", help: "run, debug: the CPU the program runs on (default 0)"}
	optPID    = &option{long: "--pid", value: "PID", help: "run, debug: the current task (default the CPU's idle task)"}
	optResume = &option{long: "--resume", value: "PID", help: "debug: start where the program is on PID's stack (prog state), to replay the rest of that run"}
)

// progStdin is where data_in - and prog debug read (tests replace it).
var progStdin io.Reader = os.Stdin

// runOpts is prog run's and prog debug's line.
type runOpts struct {
	sel                     progSelector
	dataIn, dataOut         string
	ctxIn, ctxOut           string
	dataSizeOut, ctxSizeOut uint64
	repeat                  uint64
	trace                   bool
	pcap, kallsyms          string
	session                 bpfrun.Options
	resume                  int // prog debug --resume PID; -1 without
}

// parseRunArgs parses "PROG data_in FILE [data_out FILE [data_size_out
// L]] [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] [repeat N]", in any
// order after PROG as bpftool's do_run, with kinspect's options.
func parseRunArgs(verb string, args []string) (runOpts, error) {
	o := runOpts{repeat: 1, resume: -1}
	args, ks, err := progFlags(args)
	if err != nil {
		return o, err
	}
	o.kallsyms = ks
	var rest []string
	num := func(i int, what string) (uint64, error) {
		if i+1 >= len(args) {
			return 0, fmt.Errorf("prog %s: %s wants a value: %w", verb, args[i], errUsage)
		}
		n, err := strconv.ParseUint(args[i+1], 0, 32)
		if err != nil {
			return 0, fmt.Errorf("prog %s: can't parse %s as %s: %w", verb, args[i+1], what, errUsage)
		}
		return n, nil
	}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--trace":
			o.trace = true
		case "--pcap", "--cpu", "--pid", "--resume":
			if i+1 >= len(args) {
				return o, fmt.Errorf("prog %s: %s wants a value: %w", verb, a, errUsage)
			}
			i++
			switch a {
			case "--pcap":
				o.pcap = args[i]
			default:
				n, err := strconv.Atoi(args[i])
				if err != nil || n < 0 {
					return o, fmt.Errorf("prog %s: %s %q: want a number: %w", verb, a, args[i], errUsage)
				}
				switch a {
				case "--cpu":
					o.session.CPU = n
				case "--pid":
					o.session.PID = n
				default:
					o.resume = n
				}
			}
		default:
			rest = append(rest, a)
		}
	}
	args = rest
	if len(args) < 2 {
		return o, fmt.Errorf("prog %s: want PROG (id ID, tag TAG, name NAME or pinned FILE): %w", verb, errUsage)
	}
	if o.sel, err = parseProgSelector(args); err != nil {
		return o, err
	}
	args = args[o.sel.words:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if amb := ambiguousPrefix(a, "data_in", "data_out", "data_size_out"); amb != "" {
			return o, fmt.Errorf("prog %s: parameter '%s' is ambiguous, which could be one of %s: %w", verb, a, amb, errUsage)
		}
		if amb := ambiguousPrefix(a, "ctx_in", "ctx_out", "ctx_size_out"); amb != "" {
			return o, fmt.Errorf("prog %s: parameter '%s' is ambiguous, which could be one of %s: %w", verb, a, amb, errUsage)
		}
		file := func(dst *string) error {
			if i+1 >= len(args) {
				return fmt.Errorf("prog %s: %s wants a FILE: %w", verb, a, errUsage)
			}
			i++
			*dst = args[i]
			return nil
		}
		var err error
		switch {
		case strings.HasPrefix("data_in", a):
			err = file(&o.dataIn)
		case strings.HasPrefix("data_out", a):
			err = file(&o.dataOut)
		case strings.HasPrefix("data_size_out", a):
			o.dataSizeOut, err = num(i, "output data size")
			i++
		case strings.HasPrefix("ctx_in", a):
			err = file(&o.ctxIn)
		case strings.HasPrefix("ctx_out", a):
			err = file(&o.ctxOut)
		case strings.HasPrefix("ctx_size_out", a):
			o.ctxSizeOut, err = num(i, "output context size")
			i++
		case strings.HasPrefix("repeat", a):
			o.repeat, err = num(i, "repeat number")
			i++
		default:
			err = fmt.Errorf("prog %s: expected no more arguments, 'data_in', 'data_out', 'data_size_out', 'ctx_in', 'ctx_out', 'ctx_size_out' or 'repeat', got: '%s'?: %w", verb, a, errUsage)
		}
		if err != nil {
			return o, err
		}
	}
	if o.dataIn == "-" && o.ctxIn == "-" {
		return o, fmt.Errorf("prog %s: cannot use standard input for both data_in and ctx_in: %w", verb, errUsage)
	}
	if o.pcap != "" && o.dataIn != "" {
		return o, fmt.Errorf("prog %s: --pcap gives the data: no data_in with it: %w", verb, errUsage)
	}
	if o.resume >= 0 && (verb != "debug" || o.dataIn != "" || o.ctxIn != "") {
		return o, fmt.Errorf("prog %s: --resume is prog debug's, and takes the run's data and context from the dump: %w", verb, errUsage)
	}
	return o, nil
}

// ambiguousPrefix is bpftool's detect_common_prefix: the words a prefix
// of several of them names, "" when at most one.
func ambiguousPrefix(a string, words ...string) string {
	var hit []string
	for _, w := range words {
		if strings.HasPrefix(w, a) {
			hit = append(hit, "'"+w+"'")
		}
	}
	if len(hit) < 2 {
		return ""
	}
	return strings.Join(hit, ", ")
}

// readRunData reads data_in or ctx_in ("-": standard input); nil for no
// file.
func readRunData(name string) ([]byte, error) {
	if name == "" {
		return nil, nil
	}
	if name == "-" {
		return io.ReadAll(progStdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", name, err)
	}
	return b, nil
}

// openRun opens the kernel and the program of a run line.
func openRun(e *env, o runOpts) (*kinspect.Kernel, *bpfrun.Replayer, *bpfrun.Prog, error) {
	k, err := openKernel(e, o.kallsyms)
	if err != nil {
		return nil, nil, nil, err
	}
	progs, err := bpf.SelectProgs(k.Program(), o.sel.Selector)
	if err == nil && len(progs) == 0 {
		err = fmt.Errorf("no such program")
	}
	if err == nil && len(progs) > 1 {
		err = fmt.Errorf("%d programs match: name one (id ID)", len(progs))
	}
	if err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	r := bpfrun.FromKernel(k)
	p, err := r.Load(progs[0])
	if err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	return k, r, p, nil
}

func runProgRun(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, progHelp)
		return nil
	}
	o, err := parseRunArgs("run", args)
	if err != nil {
		return err
	}
	dataIn, err := readRunData(o.dataIn)
	if err != nil {
		return err
	}
	ctxIn, err := readRunData(o.ctxIn)
	if err != nil {
		return err
	}
	var pcap []byte
	if o.pcap != "" {
		if pcap, err = os.ReadFile(o.pcap); err != nil {
			return err
		}
	}
	k, r, p, err := openRun(e, o)
	if err != nil {
		return err
	}
	defer k.Close()
	s, err := r.NewSession(o.session)
	if err != nil {
		return err
	}
	ro := bpfrun.RunOptions{DataIn: dataIn, CtxIn: ctxIn, Repeat: int(o.repeat), Trace: o.trace}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	var results []*bpfrun.Result
	if pcap != nil {
		results, err = s.RunPcap(p, strings.NewReader(string(pcap)), ro)
	} else {
		var res *bpfrun.Result
		res, err = s.Run(p, ro)
		if res != nil {
			results = append(results, res)
		}
	}
	if e.json && err != nil {
		// bpftool prints only the error ({"error": ...}).
		return fmt.Errorf("failed to run program: %w", err)
	}
	var j *jsonw
	if e.json {
		j = newJSONW(bw, e.pretty)
		if pcap != nil {
			j.BeginArray()
		}
	}
	// A run whose map changes are unknown (a program's maps unreadable)
	// ran: its result stands, the error says so instead of a count.
	unknown := errors.Is(err, bpfrun.ErrMapChangesUnknown)
	for i, res := range results {
		last := i == len(results)-1
		failed := err != nil && !unknown && last
		prefix := ""
		if pcap != nil {
			prefix = fmt.Sprintf("packet %d: ", i)
		}
		if perr := printRun(e, bw, j, o, res, prefix, failed, (pcap == nil || last) && !unknown); perr != nil && err == nil {
			err = perr
		}
	}
	if j != nil {
		if pcap != nil {
			j.EndArray()
		}
		bw.WriteByte('\n')
	}
	if err != nil {
		return fmt.Errorf("failed to run program: %w", err)
	}
	return nil
}

// printRun prints a result as bpftool prog run does (data_out and ctx_out
// to their files or, for "-", in hex; the return value and duration),
// then what kinspect adds: the trace (--trace, before), instructions,
// outputs and the map changes (for a pcap's runs, with the last).
func printRun(e *env, w *bufio.Writer, j *jsonw, o runOpts, res *bpfrun.Result, prefix string, failed, changes bool) error {
	var err error
	out := func(data []byte, size uint64, file, key string) {
		if file == "" || data == nil {
			return
		}
		if size != 0 && uint64(len(data)) > size {
			if err == nil {
				err = fmt.Errorf("%s: %d bytes do not fit in %d (the kernel's ENOSPC)", key, len(data), size)
			}
			data = data[:size]
		}
		if file != "-" {
			if werr := os.WriteFile(file, data, 0o644); werr != nil && err == nil {
				err = fmt.Errorf("failed to write output data/ctx: %w", werr)
			}
			return
		}
		if j != nil {
			j.Name(key)
			j.BeginArray()
			for _, b := range data {
				j.Uint(uint64(b))
			}
			j.EndArray()
			return
		}
		hexPrint(w, data)
	}
	if j != nil {
		j.BeginObject()
	} else if o.trace {
		printTrace(w, res)
	}
	if !failed {
		out(res.DataOut, o.dataSizeOut, o.dataOut, "data_out")
		out(res.CtxOut, o.ctxSizeOut, o.ctxOut, "ctx_out")
	}
	if j != nil {
		if !failed {
			j.UintField("retval", uint64(res.Retval))
			j.UintField("duration", uint64(res.Duration))
		}
		extra := struct {
			Insns          uint64             `json:"insns"`
			Outputs        []bpfrun.Output    `json:"outputs"`
			Printk         []string           `json:"printk"`
			MapChanges     []bpfrun.MapChange `json:"map_changes"`
			Trace          []bpfrun.TraceStep `json:"trace,omitempty"`
			TraceTruncated bool               `json:"trace_truncated,omitempty"`
		}{res.Insns, nonNil(res.Outputs), nonNil(res.Printk), nonNil(res.MapChanges), res.Trace, res.TraceTruncated}
		b, _ := json.Marshal(extra)
		s := strings.TrimSuffix(strings.TrimPrefix(string(b), "{"), "}")
		for _, f := range splitTopLevel(s) {
			k, v, _ := strings.Cut(f, ":")
			name, _ := strconv.Unquote(k)
			j.Name(name)
			j.Raw(v)
		}
		j.EndObject()
		return err
	}
	if !failed {
		avg := ""
		if o.repeat > 1 {
			avg = " (average)"
		}
		fmt.Fprintf(w, "%sReturn value: %d, duration%s: %dns\n", prefix, res.Retval, avg, res.Duration)
	}
	fmt.Fprintf(w, "%sInstructions executed: %d\n", prefix, res.Insns)
	for _, op := range res.Outputs {
		what := "output"
		if op.Discarded {
			what = "discarded"
		}
		fmt.Fprintf(w, "%s%s by %s (insn %d) to map %d, cpu %d, %d bytes: %s\n", prefix, what, op.Helper, op.Insn, op.MapID, op.CPU, len(op.Data), hex.EncodeToString(op.Data))
	}
	for _, m := range res.Printk {
		fmt.Fprintf(w, "%sbpf_trace_printk: %s\n", prefix, strings.TrimRight(m, "\n"))
	}
	if changes {
		printChanges(w, res.MapChanges)
	}
	return err
}

func nonNil[T any](x []T) []T {
	if x == nil {
		return []T{}
	}
	return x
}

// splitTopLevel splits the members of a JSON object's body.
func splitTopLevel(s string) []string {
	var out []string
	depth, start, inStr := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// printChanges lists map changes: "map ID NAME (TYPE) key K: BEFORE ->
// AFTER", "(none)" for an entry that did not exist or was deleted.
func printChanges(w io.Writer, ch []bpfrun.MapChange) {
	fmt.Fprintf(w, "Map changes: %d\n", len(ch))
	h := func(x *bpfrun.HexBytes) string {
		if x == nil {
			return "(none)"
		}
		return hexWords([]byte(*x))
	}
	for _, c := range ch {
		fmt.Fprintf(w, "  map %d %s (%s) key %s: %s -> %s\n", c.MapID, c.MapName, c.MapType, hexWords(c.Key), h(c.Before), h(c.After))
	}
}

// hexWords renders bytes as hex, a space every 8 bytes.
func hexWords(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 8 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(hex.EncodeToString(b[i:min(i+8, len(b))]))
	}
	return sb.String()
}

// printTrace prints each instruction executed, indented by call depth,
// with the registers it changed and the memory it accessed.
func printTrace(w io.Writer, res *bpfrun.Result) {
	prog := res.ProgName
	for _, st := range res.Trace {
		if st.Prog != prog {
			fmt.Fprintf(w, "; %s\n", st.Prog)
			prog = st.Prog
		}
		line := fmt.Sprintf("%s%4d: %s", strings.Repeat("  ", st.Depth), st.Insn, st.Text)
		var notes []string
		for _, r := range st.Regs {
			notes = append(notes, fmt.Sprintf("%s=%#x", r.Reg, uint64(r.Value)))
		}
		if m := st.Mem; m != nil {
			op := "load"
			if m.Write {
				op = "store"
			}
			notes = append(notes, fmt.Sprintf("%s %d at %#x", op, m.Size, uint64(m.Addr)))
		}
		if len(notes) > 0 {
			line = fmt.Sprintf("%-48s ; %s", line, strings.Join(notes, " "))
		}
		fmt.Fprintln(w, line)
	}
	if res.TraceTruncated {
		fmt.Fprintf(w, "(trace cut at %d instructions)\n", len(res.Trace))
	}
}

// hexPrint is bpftool's hex_print: offset, 16 bytes in pairs, ASCII.
func hexPrint(w io.Writer, data []byte) {
	for i := 0; i < len(data); i += 16 {
		fmt.Fprintf(w, "%07x\t", i)
		j := i
		for ; j < i+16 && j < len(data); j++ {
			sep := ""
			if j%2 == 1 {
				sep = " "
			}
			fmt.Fprintf(w, "%02x%s", data[j], sep)
		}
		for ; j < i+16; j++ {
			sep := ""
			if j%2 == 1 {
				sep = " "
			}
			fmt.Fprintf(w, "  %s", sep)
		}
		fmt.Fprint(w, "| ")
		for j = i; j < i+16 && j < len(data); j++ {
			c := data[j]
			if c < ' ' || c > '~' {
				c = '.'
			}
			sep := ""
			if j == i+7 {
				sep = " "
			}
			fmt.Fprintf(w, "%c%s", c, sep)
		}
		fmt.Fprintln(w)
	}
}

// prog state

func runProgState(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, progHelp)
		return nil
	}
	sel, _, k, err := openProgArgs(e, "state", args, false)
	if err != nil {
		return err
	}
	defer k.Close()
	b, err := orc.NewBacktracer(k)
	if err != nil {
		return fmt.Errorf("prog state: %w", err)
	}
	bts, cerr := b.Collect(orc.Selection{AllTasks: true})
	if len(bts) == 0 && cerr != nil {
		return cerr
	}
	r := bpfrun.FromKernel(k)
	states := r.State(bts)
	if sel.Kind != bpf.SelectAll {
		progs, err := bpf.SelectProgs(k.Program(), sel.Selector)
		if err != nil {
			return err
		}
		states = bpfrun.OfProgs(states, progs)
	}
	if e.json {
		return writeJSON(e, nonNil(states))
	}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	for i, st := range states {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		fmt.Fprintf(bw, "PID: %-7d TASK: %016x  CPU: %-3d COMMAND: %q\n", st.TID, uint64(st.Task), st.CPU, st.Comm)
		for _, f := range st.Frames {
			fmt.Fprintf(bw, " #%-2d %s\n", f.Frame, frameTitle(f))
			printFrameState(bw, f, "     ")
		}
	}
	return nil
}

// frameTitle is a BPF frame's first line: program, function, pc.
func frameTitle(f bpfrun.FrameState) string {
	s := fmt.Sprintf("prog %d %s, %s at %016x", f.ProgID, f.ProgName, f.Func, uint64(f.PC))
	if f.Interrupted {
		s += " (interrupted)"
	}
	if f.CalledFrom >= 0 {
		s += fmt.Sprintf(", called from #%d", f.CalledFrom)
	}
	return s
}

// printFrameState prints the BPF view of a frame: instruction, line,
// registers, stack.
func printFrameState(w io.Writer, f bpfrun.FrameState, ind string) {
	if f.Err != "" && f.Insn < -1 {
		fmt.Fprintf(w, "%sno BPF view: %s\n", ind, f.Err)
		return
	}
	switch {
	case f.Insn == -1:
		fmt.Fprintf(w, "%sin the prologue, before insn 0\n", ind)
	case f.Exact:
		verb := "insn"
		if !f.Interrupted {
			verb = "called from insn"
		}
		mid := ""
		if f.Mid {
			mid = " (inside its x86 code)"
		}
		fmt.Fprintf(w, "%s%s %d%s: %s\n", ind, verb, f.Insn, mid, f.Text)
	default:
		fmt.Fprintf(w, "%sinsns %d-%d (inexact: %s); first: %s\n", ind, f.Insn, f.InsnLast, f.How, f.Text)
	}
	if l := f.Line; l != nil {
		fmt.Fprintf(w, "%s%s:%d:%d: %s\n", ind, l.File, l.LineNum, l.LineCol, strings.TrimSpace(l.Src))
	}
	var regs []string
	for _, r := range f.Regs {
		if r.Known {
			regs = append(regs, fmt.Sprintf("%s=%#x", r.Reg, uint64(r.Value)))
		} else {
			regs = append(regs, r.Reg+"=?")
		}
	}
	for i := 0; i < len(regs); i += 4 {
		fmt.Fprintf(w, "%s%s\n", ind, strings.Join(regs[i:min(i+4, len(regs))], " "))
	}
	for _, r := range f.Regs {
		if r.Known && (r.Reg == "r6" || r.Reg == "r7" || r.Reg == "r8" || r.Reg == "r9") && !f.Interrupted && strings.HasPrefix(r.From, "saved") {
			fmt.Fprintf(w, "%s%s %s\n", ind, r.Reg, r.From)
		}
	}
	if f.StackDepth > 0 && f.Stack != nil {
		fmt.Fprintf(w, "%sstack [r10-%d, r10):\n", ind, f.StackDepth)
		for i := 0; i < len(f.Stack); i += 16 {
			fmt.Fprintf(w, "%s  r10-%-3d %s\n", ind, int(f.StackDepth)-i, hexWords(f.Stack[i:min(i+16, len(f.Stack))]))
		}
	}
	if f.Err != "" {
		fmt.Fprintf(w, "%s(%s)\n", ind, f.Err)
	}
}

// prog debug

func runProgDebug(e *env, args []string) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, progHelp)
		return nil
	}
	o, err := parseRunArgs("debug", args)
	if err != nil {
		return err
	}
	if o.pcap != "" || o.trace {
		return fmt.Errorf("prog debug: --pcap and --trace are prog run's: %w", errUsage)
	}
	if o.dataIn == "-" || o.ctxIn == "-" {
		return fmt.Errorf("prog debug: standard input holds the debugger's commands: give data_in and ctx_in as files: %w", errUsage)
	}
	dataIn, err := readRunData(o.dataIn)
	if err != nil {
		return err
	}
	ctxIn, err := readRunData(o.ctxIn)
	if err != nil {
		return err
	}
	k, r, p, err := openRun(e, o)
	if err != nil {
		return err
	}
	defer k.Close()
	s, err := r.NewSession(o.session)
	if err != nil {
		return err
	}
	var d *bpfrun.Debugger
	if o.resume >= 0 {
		d, err = resumeDebug(k, r, s, p, o.resume)
	} else {
		d, err = s.Debug(p, bpfrun.RunOptions{DataIn: dataIn, CtxIn: ctxIn})
	}
	if err != nil {
		return err
	}
	interactive := false
	if f, ok := progStdin.(*os.File); ok && f == os.Stdin && term.IsTerminal(int(f.Fd())) {
		interactive = true
	}
	return debugLoop(e.stdout, progStdin, d, interactive)
}

// resumeDebug starts the debugger at the program's innermost frame on
// the stack of task pid.
func resumeDebug(k *kinspect.Kernel, r *bpfrun.Replayer, s *bpfrun.Session, p *bpfrun.Prog, pid int) (*bpfrun.Debugger, error) {
	b, err := orc.NewBacktracer(k)
	if err != nil {
		return nil, err
	}
	t, err := b.FindTask(pid)
	if err != nil {
		return nil, err
	}
	bt, err := b.Task(t)
	if err != nil {
		return nil, err
	}
	for _, f := range r.StackFrames(bt) {
		if f.ProgID == p.ID {
			return s.Resume(p, f)
		}
	}
	return nil, fmt.Errorf("prog debug --resume %d: prog %d is not on its stack (see prog state)", pid, p.ID)
}

const debugPrompt = "(bpf) "

const debugHelp = `Commands (a prefix of a command's name does):
  break SPEC | b SPEC   stop before an instruction: N (insn N), FILE:LINE,
                        :LINE or line LINE (a source line), FUNC
  delete ID             remove breakpoint ID
  info breakpoints      list the breakpoints
  stepi | si            execute one instruction (into BPF-to-BPF calls)
  nexti | ni            execute one instruction, or a whole call
  step | s              run to the next source line (into calls)
  next | n              run to the next source line (over calls)
  finish                run until the current function returns
  continue | c          run to a breakpoint or the exit
  where | w             the next instruction and its source line
  regs                  R0-R10
  stack [DEPTH]         the 512-byte stack of the frame (the current one)
  backtrace | bt        the BPF-to-BPF frames
  print EXPR | p EXPR   a C expression over the kernel as the run left it:
                        ctx is the context (struct sk_buff *, struct
                        xdp_buff *, u64 *), r0-r10 the registers (u64)
  x ADDR [LEN]          LEN bytes (default 16) of memory at ADDR
  changes               the map entries the run changed so far
  result                the run's result, once it exited
  quit | q              leave
`

// debugLoop reads commands from in and prints their answers to out.
// Without a terminal each command is echoed after the prompt, so that a
// session piped in reads as a transcript.
func debugLoop(out io.Writer, in io.Reader, d *bpfrun.Debugger, interactive bool) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	printPos(w, d.Where())
	sc := bufio.NewScanner(in)
	for {
		if interactive {
			fmt.Fprint(w, debugPrompt)
			w.Flush()
		}
		if !sc.Scan() {
			break
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !interactive {
			fmt.Fprintf(w, "%s%s\n", debugPrompt, line)
		}
		if debugCommand(w, d, line) {
			break
		}
		w.Flush()
	}
	return sc.Err()
}

// debugCommand runs one command; true to leave.
func debugCommand(w io.Writer, d *bpfrun.Debugger, line string) bool {
	cmd, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	moved := func(pos bpfrun.Position, err error) {
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
		}
		printPos(w, pos)
		if pos.Stop == "exit" {
			if res := d.Result(); res != nil {
				fmt.Fprintf(w, "Return value: %d\n", res.Retval)
			}
		}
	}
	is := func(names ...string) bool {
		for _, n := range names {
			if cmd == n {
				return true
			}
		}
		return false
	}
	switch {
	case is("q", "quit", "exit"):
		return true
	case is("h", "help"):
		fmt.Fprint(w, debugHelp)
	case is("b", "break"):
		bps, err := d.Break(arg)
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
		}
		for _, b := range bps {
			fmt.Fprintf(w, "breakpoint %d at insn %d of %s\n", b.ID, b.Insn, b.Prog)
		}
	case is("d", "delete"):
		id, err := strconv.Atoi(arg)
		if err == nil {
			err = d.Delete(id)
		}
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
		}
	case is("info") && strings.HasPrefix("breakpoints", arg) && arg != "":
		for _, b := range d.Breakpoints() {
			where := ""
			if b.Line != "" {
				where = " (" + b.Line + ")"
			}
			fmt.Fprintf(w, "%d: insn %d of %s%s\n", b.ID, b.Insn, b.Prog, where)
		}
	case is("si", "stepi"):
		moved(d.Step())
	case is("ni", "nexti"):
		moved(d.Next())
	case is("s", "step"):
		moved(d.StepLine(false))
	case is("n", "next"):
		moved(d.StepLine(true))
	case is("finish"):
		moved(d.Finish())
	case is("c", "cont", "continue"):
		moved(d.Continue())
	case is("w", "where"):
		printPos(w, d.Where())
	case is("regs", "info") && (arg == "" || strings.HasPrefix("registers", arg)):
		var parts []string
		for i, r := range d.Regs() {
			parts = append(parts, fmt.Sprintf("%-3s 0x%016x", r.Reg, uint64(r.Value)))
			if i%3 == 2 || i == 10 {
				fmt.Fprintln(w, strings.Join(parts, "  "))
				parts = nil
			}
		}
	case is("stack"):
		depth := -1
		if arg != "" {
			n, err := strconv.Atoi(arg)
			if err != nil {
				fmt.Fprintf(w, "error: stack %q: want a frame depth\n", arg)
				break
			}
			depth = n
		}
		st, top, err := d.Stack(depth)
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			break
		}
		// The used part: from the lowest non-zero byte.
		lo := len(st)
		for i, b := range st {
			if b != 0 {
				lo = i &^ 15
				break
			}
		}
		if lo == len(st) {
			fmt.Fprintf(w, "stack below r10=%#x: all 512 bytes zero\n", top)
			break
		}
		for i := lo; i < len(st); i += 16 {
			fmt.Fprintf(w, "r10-%-3d %s\n", len(st)-i, hexWords(st[i:min(i+16, len(st))]))
		}
	case is("bt", "backtrace"):
		for _, f := range d.Backtrace() {
			line := ""
			if f.Line != nil {
				line = fmt.Sprintf(" at %s:%d", shortFile(f.Line.File), f.Line.LineNum)
			}
			fmt.Fprintf(w, "#%d %s insn %d%s: %s\n", f.Depth, f.Func, f.Insn, line, f.Text)
		}
	case is("p", "print"):
		s, err := d.Print(arg)
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			break
		}
		fmt.Fprintln(w, s)
	case is("x"):
		fields := strings.Fields(arg)
		if len(fields) == 0 {
			fmt.Fprintln(w, "error: x ADDR [LEN]")
			break
		}
		addr, err := strconv.ParseUint(fields[0], 0, 64)
		if err != nil {
			// An expression: its value.
			v, eerr := d.Eval(fields[0])
			if eerr == nil {
				addr, err = v.Uint()
			}
			if err != nil {
				fmt.Fprintf(w, "error: x %s: %v\n", fields[0], err)
				break
			}
		}
		n := 16
		if len(fields) > 1 {
			if n, err = strconv.Atoi(fields[1]); err != nil || n <= 0 || n > 4096 {
				fmt.Fprintln(w, "error: x ADDR [LEN]: LEN from 1 to 4096")
				break
			}
		}
		b, err := d.Read(addr, n)
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			break
		}
		for i := 0; i < len(b); i += 16 {
			fmt.Fprintf(w, "%#x: %s\n", addr+uint64(i), hexWords(b[i:min(i+16, len(b))]))
		}
	case is("changes"):
		ch, err := d.MapChanges()
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
		}
		printChanges(w, ch)
	case is("result"):
		res := d.Result()
		if res == nil {
			fmt.Fprintln(w, "the program has not exited")
			break
		}
		fmt.Fprintf(w, "Return value: %d\nInstructions executed: %d\n", res.Retval, res.Insns)
		if res.DataOut != nil {
			fmt.Fprintln(w, "data_out:")
			hexPrint(w, res.DataOut)
		}
		for _, op := range res.Outputs {
			fmt.Fprintf(w, "output by %s (insn %d) to map %d, cpu %d: %s\n", op.Helper, op.Insn, op.MapID, op.CPU, hex.EncodeToString(op.Data))
		}
		printChanges(w, res.MapChanges)
	default:
		fmt.Fprintf(w, "error: unknown command %q (help lists them)\n", cmd)
	}
	return false
}

// printPos prints where a run stopped.
func printPos(w io.Writer, pos bpfrun.Position) {
	switch pos.Stop {
	case "exit":
		fmt.Fprintf(w, "exited after %d instructions\n", pos.Executed)
		return
	case "breakpoint":
		fmt.Fprint(w, "breakpoint: ")
	}
	fmt.Fprintf(w, "%s insn %d: %s\n", pos.Func, pos.Insn, pos.Text)
	if l := pos.Line; l != nil && l.Src != "" {
		fmt.Fprintf(w, "  %s:%d: %s\n", shortFile(l.File), l.LineNum, strings.TrimSpace(l.Src))
	}
}

// shortFile is a source file's name without the build's "./" prefixes.
func shortFile(f string) string {
	for strings.HasPrefix(f, "./") {
		f = f[2:]
	}
	return f
}
