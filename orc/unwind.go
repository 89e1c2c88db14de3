package orc

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

// Frame is one frame of a trace.
type Frame struct {
	// PC is the frame's instruction address: a return address, or (Signal)
	// the interrupted instruction.
	PC uint64
	// SP and BP are the stack and frame pointers in this frame: the
	// caller's after the callee returned.
	SP, BP uint64
	// Slot is the stack address PC was read from: the return address's
	// slot, or the pt_regs' ip; 0 when PC came from a CPU's note.
	Slot uint64
	// Regs is set when PC came from a register set: the CPU's note (the
	// first frame), or a pt_regs of an interrupt, exception or syscall
	// entry on the stack.
	Regs *Regs
	// Stack names the stack SP is on ("task", "IRQ", "NMI", ...).
	Stack string
	// Signal says PC is an interrupted instruction, not a return
	// address: symbolize PC itself, not PC-1.
	Signal bool
	// Guess says the frame was found without the callee's ORC data: by
	// the frame pointer (BPF JIT code: what the kernel's unwinder also
	// does, orc_fp_entry), or by following the callee's code (a function
	// objtool left without ORC, such as __crash_kexec); How says which.
	// The trace is then unreliable.
	Guess bool
	How   string
}

// Trace is a stack trace, innermost frame first.
type Trace struct {
	Frames []Frame
	// Reliable is false when a frame was found by a heuristic (Guess) or
	// the unwind stopped early (Err).
	Reliable bool
	// End says why the unwind ended cleanly: "end of stack" (an ORC
	// end-of-stack entry: ret_from_fork, the idle task's start), "user
	// mode" (the syscall's or interrupt's pt_regs hold user registers;
	// UserRegs), "user mode registers" (the CPU was in user space).
	End string
	// UserRegs are user space's registers at the kernel entry.
	UserRegs *Regs
	// Err says why the unwind stopped early (wraps ErrCorrupt, ErrFormat,
	// or a memory error): the frames before it stand.
	Err error
	// Scan are the kernel text addresses on the stacks the unwind
	// crossed that are not its return addresses: what the kernel's
	// show_trace_log_lvl prints with a "?" (stale return addresses,
	// function pointers), in stack order.
	Scan []ScanEntry
}

// ScanEntry is a kernel text address found on a stack by scanning it.
type ScanEntry struct {
	// Slot is its stack address, PC the address, Stack the stack's name.
	Slot, PC uint64
	Stack    string
	// After is the index of the frame whose stack range holds it.
	After int
}

// maxScanWords bounds a stack scan (IRQ and task stacks are 16 KiB).
const maxScanWords = 1 << 13

// scan lists the text addresses on each stack the frames are on, from
// the first frame on it up to the stack's end, but the frames' own
// return addresses (show_trace_log_lvl's walk, "?" entries).
func (st *state) scan(frames []Frame) []ScanEntry {
	slots := map[uint64]bool{}
	for _, f := range frames {
		if f.Slot != 0 {
			slots[f.Slot] = true
		}
	}
	var out []ScanEntry
	done := map[string]bool{}
	for i, f := range frames {
		if f.Stack == "" || done[f.Stack] {
			continue
		}
		done[f.Stack] = true
		var s *Stack
		for j := range st.stacks {
			if st.stacks[j].Name == f.Stack && st.stacks[j].contains(f.SP, 8) {
				s = &st.stacks[j]
			}
		}
		if s == nil {
			continue
		}
		after := i
		n := 0
		for a := f.SP &^ 7; a+8 <= s.End && n < maxScanWords; a, n = a+8, n+1 {
			for after+1 < len(frames) && frames[after+1].Stack == f.Stack && frames[after+1].Slot != 0 && frames[after+1].Slot <= a {
				after++
			}
			if slots[a] {
				continue
			}
			v, err := st.mem.u64(a)
			if err != nil {
				break
			}
			if v>>47 != 0x1ffff || !st.k.isText(v) {
				continue
			}
			out = append(out, ScanEntry{Slot: a, PC: v, Stack: f.Stack, After: after})
		}
	}
	return out
}

// state is the unwinder's (struct unwind_state).
type state struct {
	k        *Kernel
	l        *layouts
	ip, sp   uint64
	bp       uint64
	signal   bool
	regs     *Regs // the last register set (full or partial)
	prevRegs *Regs // a full set below a partial one
	cur      int   // index in stacks of the stack sp is on; -1 none
	stacks   []Stack
	visited  uint64
	mem      pageReader
	// taskUnknown: the task's stack could not be read from its
	// task_struct (a page the dump lacks); the first address on no
	// known stack places it (see access).
	taskUnknown bool
}

// UnwindTask unwinds a task that is not running, from the frame
// __switch_to_asm left at task->thread.sp (struct inactive_task_frame:
// the saved bp and the return address into __schedule), as the kernel's
// __unwind_start for a task other than current. Only the task's own
// stack is walked. The error is for a trace that cannot start; a trace
// that stops early has Trace.Err.
func (k *Kernel) UnwindTask(task objects.Value) (*Trace, error) {
	l, err := k.layouts()
	if err != nil {
		return nil, err
	}
	ts, err := k.TaskStack(task)
	if err != nil {
		return nil, err
	}
	v, err := task.Path("thread.sp")
	var tsp uint64
	if err == nil {
		tsp, err = v.Uint()
	}
	if err != nil {
		return nil, fmt.Errorf("unwind task: %w", err)
	}
	st := k.newState(l, []Stack{ts})
	tr := &Trace{Reliable: true}
	if !st.access(tsp, l.frameSize) {
		tr.Err = fmt.Errorf("thread.sp %#x is outside the task's stack %#x-%#x: %w", tsp, ts.Begin, ts.End, ErrCorrupt)
		tr.Reliable = false
		return tr, nil
	}
	bp, err1 := st.mem.u64(tsp + l.frameBP)
	ret, err2 := st.mem.u64(tsp + l.frameRet)
	if err1 != nil || err2 != nil {
		tr.Err = fmt.Errorf("read the switch frame at %#x: %w", tsp, firstErr(err1, err2))
		tr.Reliable = false
		return tr, nil
	}
	st.sp, st.bp, st.ip = tsp+l.frameSize, bp, ret
	for _, a := range l.forkRets {
		st.signal = st.signal || ret == a
	}
	first := Frame{PC: ret, SP: st.sp, BP: bp, Slot: tsp + l.frameRet, Stack: ts.Name, Signal: st.signal}
	return k.run(st, tr, first), nil
}

// UnwindRegs unwinds from registers a CPU saved (a dump's NT_PRSTATUS),
// on CPU cpu, whose current task is task: the task's stack and the CPU's
// IRQ, exception and entry stacks are walked, as get_stack_info does for
// current. Registers of user mode give a trace of no kernel frames (End
// "user mode registers").
func (k *Kernel) UnwindRegs(regs vmcore.Regs, cpu int, task objects.Value) (*Trace, error) {
	l, err := k.layouts()
	if err != nil {
		return nil, err
	}
	var stacks []Stack
	ts, tsErr := k.TaskStack(task)
	if tsErr == nil {
		stacks = append(stacks, ts)
	}
	cs, err := k.CPUStacks(cpu)
	if err != nil {
		return nil, err
	}
	stacks = append(stacks, cs...)
	r := &Regs{Regs: regs}
	tr := &Trace{Reliable: true}
	if r.UserMode() {
		tr.End, tr.UserRegs = "user mode registers", r
		return tr, nil
	}
	st := k.newState(l, stacks)
	st.taskUnknown = tsErr != nil
	st.ip, st.sp, st.bp, st.regs, st.signal = regs.RIP, regs.RSP, regs.RBP, r, true
	if !st.access(st.sp, 8) && !st.access((st.sp+4095)&^4095, 8) {
		tr.Err = fmt.Errorf("RSP %#x is on none of CPU %d's stacks: %w", st.sp, cpu, ErrCorrupt)
		tr.Reliable = false
		tr.Frames = []Frame{{PC: st.ip, SP: st.sp, BP: st.bp, Regs: r, Signal: true}}
		return tr, nil
	}
	// Registers an NMI handler saved (a CPU kdump stopped): its frames
	// come first, and the registers are those of its pt_regs.
	if nf, at, ok := k.nmiFrames(l, stacks, regs); ok {
		tr.Frames = nf
		tr.Reliable = false
		r.Addr = at
	}
	first := Frame{PC: st.ip, SP: st.sp, BP: st.bp, Regs: r, Stack: st.stackOf(st.sp), Signal: true}
	return k.run(st, tr, first), nil
}

func (k *Kernel) newState(l *layouts, stacks []Stack) *state {
	return &state{k: k, l: l, stacks: stacks, cur: -1, mem: pageReader{k: k}}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// run steps until the end, an error or the frame limit.
func (k *Kernel) run(st *state, tr *Trace, first Frame) *Trace {
	tr.Frames = append(tr.Frames, first)
	for {
		if len(tr.Frames) >= k.maxDepth {
			tr.Err = fmt.Errorf("more than %d frames: %w", k.maxDepth, ErrCorrupt)
			break
		}
		f, end, err := st.next()
		if err != nil {
			tr.Err = err
			break
		}
		if end != "" {
			tr.End = end
			if end == "user mode" {
				tr.UserRegs = st.regs
			}
			break
		}
		if f.Guess {
			tr.Reliable = false
		}
		tr.Frames = append(tr.Frames, f)
	}
	if tr.Err != nil {
		tr.Reliable = false
	}
	tr.Scan = st.scan(tr.Frames)
	return tr
}

// stackOf names the stack holding addr, without visiting it.
func (st *state) stackOf(addr uint64) string {
	for _, s := range st.stacks {
		if s.contains(addr, 8) {
			return s.Name
		}
	}
	return ""
}

// access is stack_access_ok: addr..addr+n is on the current stack, or on
// another one not yet visited (which becomes current).
func (st *state) access(addr, n uint64) bool {
	if st.cur >= 0 && st.stacks[st.cur].contains(addr, n) {
		return true
	}
	for i, s := range st.stacks {
		if s.contains(addr, n) {
			if st.visited&(1<<i) != 0 {
				return false // a stack seen twice: get_stack_info's recursion check
			}
			st.visited |= 1 << i
			st.cur = i
			return true
		}
	}
	if st.taskUnknown && st.l.threadSz != 0 && len(st.stacks) < 64 {
		// task->stack is unreadable, and addr is on no CPU stack: it is
		// on the task's stack, which is THREAD_SIZE-aligned (vmap'd or
		// not), if the dump holds it.
		st.taskUnknown = false
		b := addr &^ (st.l.threadSz - 1)
		if _, err := st.mem.u64(b); err == nil && addr+n <= b+st.l.threadSz {
			st.stacks = append(st.stacks, Stack{Kind: StackTask, Name: "task", Begin: b, End: b + st.l.threadSz})
			return st.access(addr, n)
		}
	}
	return false
}

// deref is deref_stack_reg.
func (st *state) deref(addr uint64) (uint64, error) {
	if !st.access(addr, 8) {
		return 0, fmt.Errorf("%#x is on none of the stacks: %w", addr, ErrCorrupt)
	}
	return st.mem.u64(addr)
}

// getReg is get_reg: a register from the last full register set, or the
// full set below a partial one.
func (st *state) getReg(reg Reg) (uint64, bool) {
	switch {
	case st.regs != nil && !st.regs.Partial:
		return st.regs.orcReg(reg)
	case st.prevRegs != nil:
		return st.prevRegs.orcReg(reg)
	}
	return 0, false
}

// next is unwind_next_frame: it returns the caller's frame, or why the
// stack ended, or an error.
func (st *state) next() (Frame, string, error) {
	k := st.k
	if st.regs != nil && st.regs.UserMode() {
		return Frame{}, "user mode", nil
	}
	origIP, prevSP, prevStack := st.ip, st.sp, st.cur
	look := st.ip
	if !st.signal {
		// A return address: look up the call instruction, which also
		// works for calls to noreturn functions at a function's end.
		look--
	}
	e, _, err := k.Find(look)
	how := ""
	if err != nil {
		if !isNotFound(err) {
			return Frame{}, "", fmt.Errorf("at %#x: %w", origIP, err)
		}
		// No ORC (BPF JIT code, ftrace trampolines): assume a frame
		// pointer, as the kernel does with orc_fp_entry.
		e, how = st.fpEntry(), "frame pointer"
	} else {
		switch e.Type {
		case TypeUndefined:
			// objtool left the function without ORC on purpose
			// (STACK_FRAME_NON_STANDARD): follow its code instead.
			ae, aerr := k.analyze(st, look, origIP)
			if aerr != nil {
				return Frame{}, "", fmt.Errorf("at %#x: ORC entry is undefined (no unwind data for this code), and %v: %w", origIP, aerr, ErrCorrupt)
			}
			e, how = ae, "code analysis"
		case TypeEndOfStack:
			return Frame{}, "end of stack", nil
		}
	}
	guess := how != ""

	// The caller's stack pointer (the CFA).
	var sp uint64
	indirect := false
	switch e.SPReg {
	case RegSP:
		sp = st.sp + uint64(int64(e.SPOffset))
	case RegBP:
		sp = st.bp + uint64(int64(e.SPOffset))
	case RegSPIndirect:
		sp, indirect = st.sp, true
	case RegBPIndirect:
		sp, indirect = st.bp+uint64(int64(e.SPOffset)), true
	case RegR10, RegR13, RegDI, RegDX:
		v, ok := st.getReg(e.SPReg)
		if !ok {
			return Frame{}, "", fmt.Errorf("at %#x: ORC needs register %s but no full register set is known: %w", origIP, e.SPReg, ErrCorrupt)
		}
		sp = v
	default:
		return Frame{}, "", fmt.Errorf("at %#x: ORC entry has unknown SP register %s: %w", origIP, e.SPReg, ErrCorrupt)
	}
	if indirect {
		v, err := st.deref(sp)
		if err != nil {
			return Frame{}, "", fmt.Errorf("at %#x: indirect stack pointer: %w", origIP, err)
		}
		sp = v
		if e.SPReg == RegSPIndirect {
			sp += uint64(int64(e.SPOffset))
		}
	}

	f := Frame{Guess: guess, How: how}
	switch e.Type {
	case TypeCall:
		slot := sp - 8
		ip, err := st.deref(slot)
		if err != nil {
			return Frame{}, "", fmt.Errorf("at %#x: return address: %w", origIP, err)
		}
		st.ip, st.sp, f.Slot = ip, sp, slot
		st.regs, st.prevRegs = nil, nil
	case TypeRegs:
		if !st.access(sp, uint64(st.l.regsSize)) {
			return Frame{}, "", fmt.Errorf("at %#x: pt_regs at %#x is on none of the stacks: %w", origIP, sp, ErrCorrupt)
		}
		b := make([]byte, st.l.regsSize)
		if err := st.mem.read(b, sp); err != nil {
			return Frame{}, "", fmt.Errorf("at %#x: read pt_regs at %#x: %w", origIP, sp, err)
		}
		r := decodeRegs(st.l, b, 0, sp, false)
		st.ip, st.sp, f.Slot = r.RIP, r.RSP, sp+st.l.ipOff
		st.regs, st.prevRegs = r, nil
		f.Regs = r
	case TypeRegsPartial:
		n := uint64(st.l.regsSize) - st.l.ipOff // IRET_FRAME_SIZE
		if !st.access(sp, n) {
			return Frame{}, "", fmt.Errorf("at %#x: iret frame at %#x is on none of the stacks: %w", origIP, sp, ErrCorrupt)
		}
		b := make([]byte, n)
		if err := st.mem.read(b, sp); err != nil {
			return Frame{}, "", fmt.Errorf("at %#x: read iret frame at %#x: %w", origIP, sp, err)
		}
		r := decodeRegs(st.l, b, st.l.ipOff, sp-st.l.ipOff, true)
		if st.regs != nil && !st.regs.Partial {
			st.prevRegs = st.regs
		}
		st.ip, st.sp, f.Slot = r.RIP, r.RSP, sp
		st.regs = r
		f.Regs = r
	default:
		return Frame{}, "", fmt.Errorf("at %#x: ORC entry type %s: %w", origIP, e.Type, ErrCorrupt)
	}

	// The caller's frame pointer.
	switch e.BPReg {
	case RegUndefined:
		if v, ok := st.getReg(RegBP); ok {
			st.bp = v
		}
	case RegPrevSP:
		v, err := st.deref(sp + uint64(int64(e.BPOffset)))
		if err != nil {
			return Frame{}, "", fmt.Errorf("at %#x: saved frame pointer: %w", origIP, err)
		}
		st.bp = v
	case RegBP:
		v, err := st.deref(st.bp + uint64(int64(e.BPOffset)))
		if err != nil {
			return Frame{}, "", fmt.Errorf("at %#x: saved frame pointer: %w", origIP, err)
		}
		st.bp = v
	default:
		return Frame{}, "", fmt.Errorf("at %#x: ORC entry has unknown BP register %s: %w", origIP, e.BPReg, ErrCorrupt)
	}

	// Bad ORC data could loop: the stack must grow up on one stack.
	if st.cur == prevStack && st.cur >= 0 && st.stacks[st.cur].contains(st.sp, 8) && st.sp <= prevSP {
		return Frame{}, "", fmt.Errorf("at %#x: stack pointer %#x does not move up from %#x: %w", origIP, st.sp, prevSP, ErrCorrupt)
	}
	st.signal = e.Signal
	if f.Regs != nil && f.Regs.UserMode() {
		return Frame{}, "user mode", nil
	}
	if !st.k.isText(st.ip) {
		return Frame{}, "", fmt.Errorf("at %#x: the caller's address %#x is not kernel text: %w", origIP, st.ip, ErrCorrupt)
	}
	f.PC, f.SP, f.BP, f.Stack, f.Signal = st.ip, st.sp, st.bp, st.stackOf(st.sp), st.signal
	return f, "", nil
}

// fpEntry is the frame-pointer guess for code without ORC. The kernel
// uses orc_fp_entry everywhere; for an interrupted instruction of a BPF
// program before its frame is set up (push rbp; mov rbp,rsp) or at its
// final ret, the return address is found from sp instead.
func (st *state) fpEntry() Entry {
	if !st.signal || st.regs == nil || st.regs.Partial {
		return fpEntry
	}
	sym, ok := st.k.BPFSymbolAt(st.ip)
	if !ok {
		return fpEntry
	}
	code := make([]byte, 32)
	if err := st.mem.read(code, sym.Start); err != nil {
		return fpEntry
	}
	atRet := Entry{SPOffset: 8, SPReg: RegSP, BPReg: RegUndefined, Type: TypeCall}
	push := bytes.Index(code, []byte{0x55, 0x48, 0x89, 0xe5}) // push %rbp; mov %rsp,%rbp
	off := st.ip - sym.Start
	switch {
	case push >= 0 && off <= uint64(push):
		return atRet
	case push >= 0 && off == uint64(push)+1:
		return Entry{SPOffset: 16, SPReg: RegSP, BPOffset: -16, BPReg: RegPrevSP, Type: TypeCall}
	}
	var b [1]byte
	if st.mem.read(b[:], st.ip) == nil && b[0] == 0xc3 { // ret, after leave
		return atRet
	}
	return fpEntry
}

// pageReader reads kernel memory a page at a time, keeping the pages of
// one trace.
type pageReader struct {
	k     *Kernel
	pages map[uint64][]byte
}

func (r *pageReader) page(a uint64) ([]byte, error) {
	if p, ok := r.pages[a]; ok {
		return p, nil
	}
	p := make([]byte, 4096)
	if err := r.k.read(p, a); err != nil {
		return nil, err
	}
	if r.pages == nil {
		r.pages = map[uint64][]byte{}
	}
	if len(r.pages) > 64 {
		clear(r.pages)
	}
	r.pages[a] = p
	return p, nil
}

func (r *pageReader) read(b []byte, addr uint64) error {
	for len(b) > 0 {
		pa := addr &^ 4095
		p, err := r.page(pa)
		if err != nil {
			return err
		}
		n := copy(b, p[addr-pa:])
		b, addr = b[n:], addr+uint64(n)
	}
	return nil
}

func (r *pageReader) u64(addr uint64) (uint64, error) {
	var b [8]byte
	if err := r.read(b[:], addr); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}
