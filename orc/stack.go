package orc

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/objects"
)

// StackKind is the kind of a kernel stack (enum stack_type of
// arch/x86/include/asm/stacktrace.h).
type StackKind int

// The kinds.
const (
	StackUnknown   StackKind = iota
	StackTask                // the task's own stack (THREAD_SIZE)
	StackIRQ                 // the CPU's hard IRQ stack (softirqs run there too on x86-64)
	StackEntry               // the CPU's entry (trampoline) stack
	StackException           // one of the CPU's IST stacks: NMI, DB, MCE, DF, VC
)

func (k StackKind) String() string {
	switch k {
	case StackTask:
		return "task"
	case StackIRQ:
		return "IRQ"
	case StackEntry:
		return "entry"
	case StackException:
		return "exception"
	case StackUnknown:
		return "unknown"
	}
	return fmt.Sprintf("stack(%d)", int(k))
}

// Stack is one stack's extent, [Begin, End).
type Stack struct {
	Kind StackKind
	// Name is "task", "IRQ", "entry", or the IST stack's name from
	// struct cea_exception_stacks ("NMI", "DB", "MCE", "DF", "VC", ...).
	Name       string
	Begin, End uint64
}

func (s Stack) contains(addr, n uint64) bool {
	return s.End != 0 && addr >= s.Begin && addr+n <= s.End && addr+n >= addr
}

// layouts are the kernel structures the unwinder reads, from BTF.
type layouts struct {
	regsSize  int
	regsOff   map[string]regField // struct pt_regs member -> place
	ipOff     uint64              // IRET_FRAME_OFFSET: offsetof(struct pt_regs, ip)
	frameSize uint64              // sizeof(struct inactive_task_frame)
	frameBP   uint64
	frameRet  uint64
	threadSz  uint64 // THREAD_SIZE
	forkRets  []uint64
}

type regField struct {
	off  uint64
	size int
}

type layoutCache struct {
	once sync.Once
	l    *layouts
	err  error
}

// ptRegsNames are the members of struct pt_regs (x86-64), in Regs'
// order.
var ptRegsNames = []string{"r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
	"ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss"}

func (k *Kernel) layouts() (*layouts, error) {
	c := &k.lcache
	c.once.Do(func() { c.l, c.err = k.readLayouts() })
	return c.l, c.err
}

func (k *Kernel) readLayouts() (*layouts, error) {
	p := k.prog
	l := &layouts{regsOff: map[string]regField{}}
	rt, err := p.Type("struct pt_regs")
	if err != nil {
		return nil, fmt.Errorf("unwinder: %w", err)
	}
	if l.regsSize, err = btf.Sizeof(rt); err != nil {
		return nil, fmt.Errorf("unwinder: sizeof(struct pt_regs): %v: %w", err, ErrNotSupported)
	}
	for _, name := range ptRegsNames {
		// Since 6.9 (FRED) cs and ss are u16 members of anonymous
		// unions; objects finds them by name either way.
		off, t, err := p.MemberOffset("struct pt_regs", name)
		if err != nil {
			return nil, fmt.Errorf("unwinder: struct pt_regs: %w", err)
		}
		sz, _ := btf.Sizeof(t)
		if sz <= 0 || sz > 8 || int(off)+sz > l.regsSize {
			return nil, fmt.Errorf("unwinder: struct pt_regs member %s of %d bytes at %d: %w", name, sz, off, ErrNotSupported)
		}
		l.regsOff[name] = regField{off, sz}
	}
	l.ipOff = l.regsOff["ip"].off
	ft, err := p.Type("struct inactive_task_frame")
	if err != nil {
		return nil, fmt.Errorf("unwinder: %w", err)
	}
	fs, _ := btf.Sizeof(ft)
	l.frameSize = uint64(fs)
	if l.frameBP, _, err = p.MemberOffset("struct inactive_task_frame", "bp"); err != nil {
		return nil, fmt.Errorf("unwinder: %w", err)
	}
	if l.frameRet, _, err = p.MemberOffset("struct inactive_task_frame", "ret_addr"); err != nil {
		return nil, fmt.Errorf("unwinder: %w", err)
	}
	// THREAD_SIZE is a macro; the init task's stack spans it
	// (INIT_TASK_DATA in include/asm-generic/vmlinux.lds.h), bounded by
	// __start_init_task/__end_init_task, renamed
	// __start_init_stack/__end_init_stack with the FRED work of 6.9,
	// which also made pt_regs' cs a union with csx: ask BTF which to try
	// first, since looking up a missing symbol is not free.
	pairs := [][2]string{{"__start_init_task", "__end_init_task"}, {"__start_init_stack", "__end_init_stack"}}
	if _, _, err := p.MemberOffset("struct pt_regs", "csx"); err == nil {
		pairs[0], pairs[1] = pairs[1], pairs[0]
	}
	var s, e uint64
	var errs []error
	for _, pair := range pairs {
		a, err1 := p.Symbol(pair[0])
		b, err2 := p.Symbol(pair[1])
		if err1 == nil && err2 == nil {
			s, e = a, b
			break
		}
		errs = append(errs, err1, err2)
	}
	if e <= s || e-s > 1<<20 || (e-s)&(e-s-1) != 0 {
		return nil, fmt.Errorf("unwinder: THREAD_SIZE from the init task's stack bounds (%#x-%#x): %w", s, e, errors.Join(append(errs, ErrNotSupported)...))
	}
	l.threadSz = e - s
	// A new task's first frame returns to ret_from_fork, an assembly
	// symbol until 6.6 (3aec4ecb3d1f "x86: Rewrite ret_from_fork() in
	// C"), which made ret_from_fork a C function (in BTF) called from
	// ret_from_fork_asm, the new first frame.
	forks := []string{"ret_from_fork"}
	if _, err := btfFunc(p, "ret_from_fork"); err == nil {
		forks = []string{"ret_from_fork_asm"}
	}
	for _, n := range forks {
		if a, err := p.Symbol(n); err == nil {
			l.forkRets = append(l.forkRets, a)
		}
	}
	return l, nil
}

type stackCache struct {
	mu   sync.Mutex
	cpus map[int][]Stack
}

// CPUStacks returns CPU cpu's own stacks: the hard IRQ stack, the IST
// exception stacks and the entry stack, as get_stack_info finds them. A
// stack the kernel lacks is left out.
func (k *Kernel) CPUStacks(cpu int) ([]Stack, error) {
	c := &k.stacks
	c.mu.Lock()
	s, ok := c.cpus[cpu]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := k.readCPUStacks(cpu)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.cpus == nil {
		c.cpus = map[int][]Stack{}
	}
	c.cpus[cpu] = s
	c.mu.Unlock()
	return s, nil
}

// perCPU reads CPU cpu's value of a per-CPU variable's member path
// ("" for the variable itself).
func (k *Kernel) perCPU(cpu int, name, path string) (uint64, error) {
	v, err := k.prog.Variable(name)
	if err != nil {
		return 0, err
	}
	if v, err = k.prog.PerCPU(v, cpu); err != nil {
		return 0, err
	}
	if path != "" {
		if v, err = v.Path(path); err != nil {
			return 0, err
		}
	}
	return v.Uint()
}

func (k *Kernel) readCPUStacks(cpu int) ([]Stack, error) {
	p := k.prog
	var out []Stack
	// The hard IRQ stack: the per-CPU hardirq_stack_ptr (before 6.2, and
	// again from 6.15), or pcpu_hot.hardirq_stack_ptr (6.2-6.14). It
	// points at the top-most word, 8 bytes below the end (in_irq_stack).
	var top uint64
	var err error
	if _, e := p.Types().PerCPUVar("hardirq_stack_ptr"); e == nil {
		top, err = k.perCPU(cpu, "hardirq_stack_ptr", "")
	} else if _, e := p.Types().PerCPUVar("pcpu_hot"); e == nil {
		top, err = k.perCPU(cpu, "pcpu_hot", "hardirq_stack_ptr")
	} else {
		err = fmt.Errorf("no per-CPU hardirq_stack_ptr or pcpu_hot in BTF: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("IRQ stack of CPU %d: %w", cpu, err)
	}
	if top != 0 {
		size := uint64(16384)
		if t, err := p.Type("struct irq_stack"); err == nil {
			if n, err := btf.Sizeof(t); err == nil {
				size = uint64(n)
			}
		}
		end := top + 8
		out = append(out, Stack{Kind: StackIRQ, Name: "IRQ", Begin: end - size, End: end})
	}
	// The IST stacks: per-CPU cea_exception_stacks points at struct
	// cea_exception_stacks in the CPU entry area, whose X_stack members
	// are the stacks (guards between them).
	if ce, err := k.perCPU(cpu, "cea_exception_stacks", ""); err == nil && ce != 0 {
		if t, err := p.Type("struct cea_exception_stacks"); err == nil {
			if s, ok := btfload.Underlying(t).(*btf.Struct); ok {
				for _, m := range s.Members {
					if !strings.HasSuffix(m.Name, "_stack") {
						continue
					}
					sz, _ := btf.Sizeof(m.Type)
					b := ce + uint64(m.Offset/8)
					out = append(out, Stack{Kind: StackException, Name: strings.TrimSuffix(m.Name, "_stack"), Begin: b, End: b + uint64(sz)})
				}
			}
			// The entry stack sits in the same struct cpu_entry_area:
			// entry_stack_page, before estacks.
			if off, _, err := p.MemberOffset("struct cpu_entry_area", "estacks"); err == nil {
				cea := ce - off
				if eo, et, err := p.MemberOffset("struct cpu_entry_area", "entry_stack_page"); err == nil {
					sz, _ := btf.Sizeof(et)
					out = append(out, Stack{Kind: StackEntry, Name: "entry", Begin: cea + eo, End: cea + eo + uint64(sz)})
				}
			}
		}
	}
	return out, nil
}

// TaskStack returns a task's stack: task->stack, THREAD_SIZE bytes.
func (k *Kernel) TaskStack(task objects.Value) (Stack, error) {
	l, err := k.layouts()
	if err != nil {
		return Stack{}, err
	}
	v, err := task.Member("stack")
	var b uint64
	if err == nil {
		b, err = v.Uint()
	}
	if err != nil {
		return Stack{}, fmt.Errorf("task stack: %w", err)
	}
	if b == 0 {
		return Stack{}, fmt.Errorf("task stack: task->stack is NULL (a dead task): %w", ErrNotFound)
	}
	return Stack{Kind: StackTask, Name: "task", Begin: b, End: b + l.threadSz}, nil
}

// btfFunc finds a function in BTF.
func btfFunc(p *objects.Program, name string) (*btf.Func, error) {
	var f *btf.Func
	err := p.Types().BTF().TypeByName(name, &f)
	return f, err
}
