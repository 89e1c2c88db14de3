package bpfrun

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/kinspect/kinspect/bpfinsn"
	"github.com/kinspect/kinspect/bpfvm"
	"github.com/kinspect/kinspect/objects"
)

// Debugger steps one test run of a program: breakpoints at instructions
// or source lines, steps by instruction or line (into or over BPF-to-BPF
// calls), registers, stacks, C expressions over the kernel as the run
// has changed it, memory, map changes.
type Debugger struct {
	s      *Session
	p      *Prog
	ctx    *ctxState
	ro     RunOptions
	bps    []Breakpoint
	nextBP int
	done   bool
	err    error
	res    *Result
}

// Breakpoint is a stop before an instruction of a program.
type Breakpoint struct {
	ID   int    `json:"id"`
	Prog string `json:"prog"`
	Insn int    `json:"insn"`
	// Line is the source line it was set at, if any.
	Line string `json:"line,omitempty"`
	vm   *bpfvm.Program
}

// Position is where a stopped run is.
type Position struct {
	// Stop says why it stopped: "start", "step", "breakpoint", "exit",
	// "error".
	Stop string `json:"stop"`
	Prog string `json:"prog"`
	// Insn is the next instruction to execute, Text it as prog dump
	// xlated prints it, Func its subprogram, Depth the BPF-to-BPF call
	// depth.
	Insn  int           `json:"insn"`
	Text  string        `json:"text"`
	Func  string        `json:"func"`
	Depth int           `json:"depth"`
	Line  *bpfinsn.Line `json:"line,omitempty"`
	// Retval is R0 after the exit.
	Retval uint64 `json:"retval,omitempty"`
	// Executed counts the instructions run so far.
	Executed uint64 `json:"executed"`
	Error    string `json:"error,omitempty"`
}

// Debug starts a test run of p, stopped before its first instruction.
func (s *Session) Debug(p *Prog, ro RunOptions) (*Debugger, error) {
	c, err := s.buildCtx(p, ro)
	if err != nil {
		return nil, err
	}
	s.ran(p)
	if err := s.m.Start(p.VM, c.addr); err != nil {
		return nil, err
	}
	return &Debugger{s: s, p: p, ctx: c, ro: ro, nextBP: 1}, nil
}

// Resume starts a debugger at the state of a running program (a frame
// prog state found interrupted): its instruction, registers and stack, so
// that continuing replays the rest of that run over the dump's memory
// (its context is the one in the dump); a frame in the prologue resumes
// at the first instruction with its arguments. Registers pointing into the
// frame's stack in the dump are moved to the machine's copy of it. Only a
// program's main function resumes (not a subprogram, whose callers'
// frames are not rebuilt). Errors wrap ErrNotSupported.
func (s *Session) Resume(p *Prog, fs FrameState) (*Debugger, error) {
	switch {
	case fs.ProgID != p.ID:
		return nil, fmt.Errorf("resume prog %d from a frame of prog %d: %w", p.ID, fs.ProgID, ErrNotSupported)
	case !fs.Interrupted || !fs.Exact || fs.Insn < -1 || fs.Mid:
		return nil, fmt.Errorf("resume prog %d: the frame is not stopped at an instruction whose registers are known (%s): %w", p.ID, fs.How, ErrNotSupported)
	case fs.Depth > 0 || fs.Insn >= p.VM.Len() || p.VM.SubprogAt(max(fs.Insn, 0)).Start != 0:
		return nil, fmt.Errorf("resume prog %d in subprogram %s: only a program's main function resumes: %w", p.ID, fs.Func, ErrNotSupported)
	}
	var regs bpfvm.Regs
	for i, r := range fs.Regs {
		if i < len(regs) && r.Known {
			regs[i] = uint64(r.Value)
		}
	}
	s.ran(p)
	pc, stack := fs.Insn, fs.Stack
	if pc < 0 {
		// In the prologue: nothing of the program ran, its arguments
		// are in R1-R5.
		pc, stack = 0, nil
		for i := range regs {
			if i == 0 || i > 5 {
				regs[i] = 0
			}
		}
	}
	if err := s.m.StartAt(p.VM, pc, regs, stack); err != nil {
		return nil, err
	}
	// Pointers into the stack's copy (in the prologue rbp is not yet
	// the program's R10).
	dumpTop, top := uint64(fs.Regs[10].Value), s.m.Regs()[10]
	for i := 0; i < 10 && fs.Insn >= 0; i++ {
		if v := regs[i]; v <= dumpTop && dumpTop-v <= bpfvm.StackSize {
			s.m.SetReg(i, top-(dumpTop-v))
		}
	}
	return &Debugger{s: s, p: p, ctx: &ctxState{}, nextBP: 1}, nil
}

// Session is the debugger's session.
func (d *Debugger) Session() *Session { return d.s }

// Prog is the program debugged.
func (d *Debugger) Prog() *Prog { return d.p }

// Ctx is the address of the context the run was given.
func (d *Debugger) Ctx() uint64 { return d.ctx.addr }

// Where is the current position.
func (d *Debugger) Where() Position { return d.position("step") }

func (d *Debugger) position(stop string) Position {
	m := d.s.m
	pos := Position{Stop: stop, Executed: m.Executed()}
	if d.err != nil {
		pos.Stop, pos.Error = "error", d.err.Error()
	}
	if d.done {
		pos.Stop, pos.Retval = "exit", m.Return()
		pos.Prog, pos.Insn = d.p.Name, -1
		return pos
	}
	vp, pc := m.PC()
	if vp == nil {
		return pos
	}
	pos.Prog, pos.Insn = vp.Name, pc
	pos.Depth = len(m.Frames()) - 1
	if p := d.s.progOf(vp); p != nil {
		pos.Text = p.InsnText(pc)
		pos.Func = p.FuncName(pc)
		if l, ok := p.Line(pc); ok {
			pos.Line = &l
		}
	}
	return pos
}

// after records how a machine step ended.
func (d *Debugger) after(st bpfvm.Stop, err error) (Position, error) {
	if err != nil {
		d.err = err
		return d.position("error"), err
	}
	switch st {
	case bpfvm.StopExit:
		d.done = true
		if err := d.finish(); err != nil {
			return d.position("exit"), err
		}
		return d.position("exit"), nil
	case bpfvm.StopBreakpoint:
		return d.position("breakpoint"), nil
	}
	return d.position("step"), nil
}

// finish fills the result of the run once it exited.
func (d *Debugger) finish() error {
	res := &Result{ProgID: d.p.ID, ProgName: d.p.Name, Retval: uint32(d.s.m.Return()), Insns: d.s.m.Executed()}
	var err error
	if res.DataOut, res.CtxOut, err = d.s.finish(d.ctx); err != nil {
		return err
	}
	for _, o := range d.s.m.Outputs() {
		res.Outputs = append(res.Outputs, d.s.output(o))
	}
	res.Printk = d.s.m.Printk()
	res.MapChanges, err = d.s.MapChanges()
	d.res = res
	return err
}

// Result is the run's result once it exited (nil before).
func (d *Debugger) Result() *Result { return d.res }

func (d *Debugger) ready() error {
	switch {
	case d.err != nil:
		return fmt.Errorf("the run failed: %w", d.err)
	case d.done:
		return fmt.Errorf("the program exited: %w", bpfvm.ErrNotRunning)
	}
	return nil
}

// Step executes one instruction (into a BPF-to-BPF call).
func (d *Debugger) Step() (Position, error) {
	if err := d.ready(); err != nil {
		return d.Where(), err
	}
	return d.after(d.s.m.Step())
}

// Next executes one instruction, or a whole BPF-to-BPF call.
func (d *Debugger) Next() (Position, error) {
	if err := d.ready(); err != nil {
		return d.Where(), err
	}
	return d.after(d.s.m.StepOver())
}

// Finish runs until the current BPF function returns.
func (d *Debugger) Finish() (Position, error) {
	if err := d.ready(); err != nil {
		return d.Where(), err
	}
	return d.after(d.s.m.StepOut())
}

// StepLine steps until the source line changes (into calls, as step);
// over calls with over (as next). Without line info it is Step (Next).
func (d *Debugger) StepLine(over bool) (Position, error) {
	start := d.Where()
	for {
		var pos Position
		var err error
		if over {
			pos, err = d.Next()
		} else {
			pos, err = d.Step()
		}
		if err != nil || pos.Stop != "step" || start.Line == nil || pos.Line == nil ||
			pos.Line.LineNum != start.Line.LineNum || pos.Line.File != start.Line.File || pos.Prog != start.Prog {
			return pos, err
		}
	}
}

// Continue runs to the next breakpoint or the exit.
func (d *Debugger) Continue() (Position, error) {
	if err := d.ready(); err != nil {
		return d.Where(), err
	}
	return d.after(d.s.m.Run())
}

// Break sets breakpoints: "N" or "insn N" (an instruction of the
// program debugged), "FILE:LINE", ":LINE" or "line LINE" (the first
// instruction of each stretch of that source line; FILE may be a suffix
// of the file's name), "FUNC" (a subprogram's first instruction).
func (d *Debugger) Break(spec string) ([]Breakpoint, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "line ") {
		spec = ":" + strings.TrimSpace(spec[5:])
	}
	spec = strings.TrimSpace(strings.TrimPrefix(spec, "insn "))
	p := d.p
	var at []int
	var line string
	if n, err := strconv.Atoi(spec); err == nil {
		if n < 0 || n >= p.VM.Len() {
			return nil, fmt.Errorf("break %d: %s has %d instructions: %w", n, p.Name, p.VM.Len(), objects.ErrNotFound)
		}
		at = append(at, n)
	} else {
		file, num := "", spec
		if i := strings.LastIndexByte(spec, ':'); i >= 0 {
			file, num = spec[:i], spec[i+1:]
		}
		if ln, err := strconv.Atoi(num); err == nil {
			line = spec
			prev := -1
			for _, l := range p.Source.Lines {
				if int(l.LineNum) == ln && (file == "" || strings.HasSuffix(l.File, file)) {
					if prev != ln {
						at = append(at, int(l.InsnOff))
					}
				}
				prev = int(l.LineNum)
			}
		} else {
			for i, s := range p.Starts {
				if p.FuncName(s) == spec {
					at = append(at, p.Starts[i])
				}
			}
		}
	}
	if len(at) == 0 {
		return nil, fmt.Errorf("break %q: no such instruction, source line or function in %s: %w", spec, p.Name, objects.ErrNotFound)
	}
	var out []Breakpoint
	for _, i := range at {
		bp := Breakpoint{ID: d.nextBP, Prog: p.Name, Insn: i, Line: line, vm: p.VM}
		d.nextBP++
		d.s.m.SetBreakpoint(p.VM, i)
		d.bps = append(d.bps, bp)
		out = append(out, bp)
	}
	return out, nil
}

// BreakLine sets breakpoints at a source line of the program.
func (d *Debugger) BreakLine(line int) ([]Breakpoint, error) {
	return d.Break(":" + strconv.Itoa(line))
}

// Delete removes breakpoint id.
func (d *Debugger) Delete(id int) error {
	for i, b := range d.bps {
		if b.ID == id {
			d.s.m.ClearBreakpoint(b.vm, b.Insn)
			d.bps = append(d.bps[:i], d.bps[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no breakpoint %d: %w", id, objects.ErrNotFound)
}

// Breakpoints lists the breakpoints.
func (d *Debugger) Breakpoints() []Breakpoint { return append([]Breakpoint(nil), d.bps...) }

// Regs are the registers of the current frame (R0-R10).
func (d *Debugger) Regs() []RegValue {
	r := d.s.m.Regs()
	out := make([]RegValue, 11)
	for i := range out {
		out[i] = RegValue{Reg: bpfvm.RegName(i), Value: objects.Hex(r[i])}
	}
	return out
}

// DebugFrame is a frame of the BPF-to-BPF calls of a stopped run.
type DebugFrame struct {
	Depth    int           `json:"depth"`
	Prog     string        `json:"prog"`
	Func     string        `json:"func"`
	Insn     int           `json:"insn"`
	Text     string        `json:"text"`
	Line     *bpfinsn.Line `json:"line,omitempty"`
	R10      objects.Hex   `json:"r10"`
	Callback bool          `json:"callback,omitempty"`
}

// Backtrace lists the BPF-to-BPF frames, the innermost first: each
// frame's instruction (a caller's: its call).
func (d *Debugger) Backtrace() []DebugFrame {
	fr := d.s.m.Frames()
	var out []DebugFrame
	for i := len(fr) - 1; i >= 0; i-- {
		f := fr[i]
		df := DebugFrame{Depth: i, Prog: f.Prog.Name, Insn: f.PC, R10: objects.Hex(f.StackTop), Callback: f.Callback}
		if p := d.s.progOf(f.Prog); p != nil {
			df.Func, df.Text = p.FuncName(f.PC), p.InsnText(f.PC)
			if l, ok := p.Line(f.PC); ok {
				df.Line = &l
			}
		}
		out = append(out, df)
	}
	return out
}

// Stack is the 512-byte BPF stack of frame depth (-1: the current one),
// ending at its R10.
func (d *Debugger) Stack(depth int) (HexBytes, uint64, error) {
	fr := d.s.m.Frames()
	if depth < 0 {
		depth = len(fr) - 1
	}
	if depth < 0 || depth >= len(fr) {
		return nil, 0, fmt.Errorf("no frame %d: %w", depth, objects.ErrNotFound)
	}
	return fr[depth].Stack, fr[depth].StackTop, nil
}

// Read reads memory as the program would.
func (d *Debugger) Read(addr uint64, n int) (HexBytes, error) {
	b, err := d.s.bytes(addr, n)
	return b, err
}

// MapChanges are the map entries the run changed so far.
func (d *Debugger) MapChanges() ([]MapChange, error) { return d.s.MapChanges() }

// ctxType is the kernel type of the context of the program's type.
func (d *Debugger) ctxType() string {
	switch {
	case d.ctx.skb != nil:
		return "struct sk_buff *"
	case d.ctx.xdp != nil:
		return "struct xdp_buff *"
	case d.ctx.addr == 0:
		return "void *"
	}
	return "u64 *"
}

// Eval evaluates a C expression (print's) over the kernel as the run has
// left it, where ctx is the run's context (struct sk_buff *, struct
// xdp_buff *, u64 *) and r0-r10 the current frame's registers (u64).
func (d *Debugger) Eval(expr string) (objects.Value, error) {
	regs := d.s.m.Regs()
	var b strings.Builder
	for i := 0; i < len(expr); {
		c := rune(expr[i])
		if c == '_' || unicode.IsLetter(c) {
			j := i
			for j < len(expr) && (expr[j] == '_' || unicode.IsLetter(rune(expr[j])) || unicode.IsDigit(rune(expr[j]))) {
				j++
			}
			word := expr[i:j]
			prev := strings.TrimRight(expr[:i], " \t")
			member := strings.HasSuffix(prev, ".") || strings.HasSuffix(prev, "->") || strings.HasSuffix(prev, "struct") || strings.HasSuffix(prev, "union")
			switch {
			case member:
				b.WriteString(word)
			case word == "ctx":
				fmt.Fprintf(&b, "((%s)%#x)", d.ctxType(), d.ctx.addr)
			case len(word) >= 2 && word[0] == 'r' && isDigits(word[1:]):
				n, _ := strconv.Atoi(word[1:])
				if n > 10 {
					b.WriteString(word)
					break
				}
				fmt.Fprintf(&b, "((u64)%#x)", regs[n])
			default:
				b.WriteString(word)
			}
			i = j
			continue
		}
		if unicode.IsDigit(c) {
			j := i
			for j < len(expr) && (expr[j] == '_' || unicode.IsLetter(rune(expr[j])) || unicode.IsDigit(rune(expr[j]))) {
				j++
			}
			b.WriteString(expr[i:j])
			i = j
			continue
		}
		b.WriteByte(expr[i])
		i++
	}
	return d.s.View().Eval(b.String())
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Print evaluates expr and formats it as the print command does.
func (d *Debugger) Print(expr string) (string, error) {
	v, err := d.Eval(expr)
	if err != nil {
		return "", err
	}
	return objects.Format(v, objects.FormatOptions{})
}
