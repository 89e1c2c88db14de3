package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// The interrupt descriptors (include/linux/irqdesc.h, kernel/irq/) and
// /proc/interrupts (kernel/irq/proc.c show_interrupts, and x86's
// arch_show_interrupts in arch/x86/kernel/irq.c).

// maxActions bounds an IRQ's chain of actions (shared handlers).
const maxActions = 256

// ForEachIRQDesc yields the interrupt descriptors (struct irq_desc) of
// a kernel with sparse IRQs by number, as for_each_irq_desc: the maple
// tree sparse_irqs (6.5+, "genirq: Use a maple tree for interrupt
// descriptor management"), else the radix tree irq_desc_tree.
// A damaged node of the tree is a *Damage, after which the walk goes
// on.
func ForEachIRQDesc(p *objects.Program) iter.Seq2[objects.IndexedValue, error] {
	return func(yield func(objects.IndexedValue, error) bool) {
		dt, err := p.Type("struct irq_desc")
		if err != nil {
			yield(objects.IndexedValue{}, fmt.Errorf("irq descriptors: %w", err))
			return
		}
		if mt, err := p.Variable("sparse_irqs"); err == nil {
			for e, err := range objects.MtForEach(mt) {
				if err != nil {
					if !yield(objects.IndexedValue{}, err) || !objects.IsDamage(err) {
						return
					}
					continue
				}
				a, err := e.Entry.Uint()
				if err != nil {
					if !yield(objects.IndexedValue{}, err) {
						return
					}
					continue
				}
				// An entry covers First..Last; an IRQ's is one number.
				for i := e.First; i <= e.Last && i-e.First < 1<<16; i++ {
					if !yield(objects.IndexedValue{Index: i, Value: p.Object(dt, a)}, nil) {
						return
					}
				}
			}
			return
		}
		rt, err := p.Variable("irq_desc_tree")
		if err != nil {
			yield(objects.IndexedValue{}, fmt.Errorf("irq descriptors: neither sparse_irqs nor irq_desc_tree: %w", err))
			return
		}
		for e, err := range objects.RadixTreeForEach(rt) {
			if err != nil {
				if !yield(objects.IndexedValue{}, err) || !objects.IsDamage(err) {
					return
				}
				continue
			}
			a, err := e.Value.Uint()
			if err != nil {
				if !yield(objects.IndexedValue{}, err) {
					return
				}
				continue
			}
			if !yield(objects.IndexedValue{Index: e.Index, Value: p.Object(dt, a)}, nil) {
				return
			}
		}
	}
}

// IRQLine is a line of /proc/interrupts: an interrupt number's, or an
// architecture's counter (NMI, LOC, ...).
type IRQLine struct {
	// IRQ is the interrupt number, -1 on an architecture's line;
	// Name is what the line begins with: the number, or "NMI", "LOC".
	IRQ  int    `json:"irq"`
	Name string `json:"name"`
	// Counts are the interrupts each online CPU took (Interrupts.CPUs),
	// one total for ERR and MIS.
	Counts []uint64 `json:"counts"`
	// Chip is the irq_chip's name ("IO-APIC", "PCI-MSI"), "-" for a
	// chip without one, "None" without a chip; HWIRQ the interrupt's
	// number in its domain (absent without a domain); Handler the flow
	// handler's name (desc->name: "edge", "fasteoi").
	Chip    string  `json:"chip,omitempty"`
	HWIRQ   *uint64 `json:"hwirq,omitempty"`
	Handler string  `json:"handler,omitempty"`
	// Actions are the names of the handlers registered (desc->action
	// and its chain); Description an architecture line's words
	// ("Non-maskable interrupts").
	Actions     []string    `json:"actions,omitempty"`
	Description string      `json:"description,omitempty"`
	Desc        objects.Hex `json:"desc,omitempty"` // the struct irq_desc
	// PrintChip: the chip prints its own name (irq_print_chip), which
	// kinspect cannot call: Chip is its name field instead.
	PrintChip bool `json:"print_chip,omitempty"`
}

// Interrupts is /proc/interrupts.
type Interrupts struct {
	// CPUs are the online CPUs, the columns.
	CPUs []int `json:"cpus"`
	// Prec is the width of the first column (3 for fewer than 1000
	// IRQs, one more for each power of ten of nr_irqs).
	Prec  int       `json:"prec"`
	Lines []IRQLine `json:"lines"`
}

// Text renders the lines as /proc/interrupts prints them.
func (in *Interrupts) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%*s", in.Prec+8, "")
	for _, c := range in.CPUs {
		fmt.Fprintf(&b, "CPU%-8d", c)
	}
	b.WriteByte('\n')
	for _, l := range in.Lines {
		b.WriteString(l.Text(in.Prec))
		b.WriteByte('\n')
	}
	return b.String()
}

// Text renders the line as /proc/interrupts prints it, its first column
// prec wide.
func (l *IRQLine) Text(prec int) string {
	var b strings.Builder
	if l.IRQ < 0 {
		if l.Description == "" && len(l.Counts) == 1 {
			fmt.Fprintf(&b, "%*s: %10d", prec, l.Name, l.Counts[0])
			return b.String()
		}
		fmt.Fprintf(&b, "%*s: ", prec, l.Name)
		for _, c := range l.Counts {
			fmt.Fprintf(&b, "%10d ", c)
		}
		b.WriteString("  " + l.Description)
		return b.String()
	}
	fmt.Fprintf(&b, "%*d: ", prec, l.IRQ)
	for _, c := range l.Counts {
		fmt.Fprintf(&b, "%10d ", c)
	}
	fmt.Fprintf(&b, " %8s", l.Chip)
	if l.HWIRQ != nil {
		fmt.Fprintf(&b, " %*d", prec, *l.HWIRQ)
	} else {
		fmt.Fprintf(&b, " %*s", prec, "")
	}
	if l.Handler != "" {
		fmt.Fprintf(&b, "-%-8s", l.Handler)
	}
	for i, a := range l.Actions {
		if i == 0 {
			b.WriteString("  " + a)
		} else {
			b.WriteString(", " + a)
		}
	}
	return b.String()
}

// OnlineCPUs lists the online CPUs (__cpu_online_mask).
func OnlineCPUs(p *objects.Program) ([]int, error) {
	v, err := p.Variable("__cpu_online_mask")
	if err == nil {
		v, err = v.Member("bits")
	}
	var b []byte
	if err == nil {
		b, err = v.Bytes()
	}
	if err != nil {
		return nil, fmt.Errorf("online CPUs: %w", err)
	}
	var cpus []int
	for i := 0; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		for w != 0 {
			j := bits.TrailingZeros64(w)
			cpus = append(cpus, i*8+j)
			w &= w - 1
		}
	}
	return cpus, nil
}

// archIRQLines are x86's arch_show_interrupts lines of per-CPU counters
// of irq_stat (irq_cpustat_t), in its order; each is shown where the
// kernel has the member (they are under the same configuration as the
// lines), cond saying what else it needs.
var archIRQLines = []struct {
	name, member, desc string
	cond               string // "platform", "vector:N", "percpu"
}{
	{"NMI", "__nmi_count", "Non-maskable interrupts", ""},
	{"LOC", "apic_timer_irqs", "Local timer interrupts", ""},
	{"SPU", "irq_spurious_count", "Spurious interrupts", ""},
	{"PMI", "apic_perf_irqs", "Performance monitoring interrupts", ""},
	{"IWI", "apic_irq_work_irqs", "IRQ work interrupts", ""},
	{"RTR", "icr_read_retry_count", "APIC ICR read retries", ""},
	{"PLT", "x86_platform_ipis", "Platform interrupts", "platform"},
	{"RES", "irq_resched_count", "Rescheduling interrupts", ""},
	{"CAL", "irq_call_count", "Function call interrupts", ""},
	{"TLB", "irq_tlb_count", "TLB shootdowns", ""},
	{"TRM", "irq_thermal_count", "Thermal event interrupts", ""},
	{"THR", "irq_threshold_count", "Threshold APIC interrupts", ""},
	{"DFR", "irq_deferred_error_count", "Deferred Error APIC interrupts", ""},
	{"MCE", "mce_exception_count", "Machine check exceptions", "percpu"},
	{"MCP", "mce_poll_count", "Machine check polls", "percpu"},
	// HYPERVISOR_CALLBACK_VECTOR, HYPERV_REENLIGHTENMENT_VECTOR,
	// HYPERV_STIMER0_VECTOR (arch/x86/include/asm/irq_vectors.h): shown
	// when the vector is in system_vectors.
	{"HYP", "irq_hv_callback_count", "Hypervisor callback interrupts", "vector:243"},
	{"HRE", "irq_hv_reenlightenment_count", "Hyper-V reenlightenment interrupts", "vector:238"},
	{"HVS", "hyperv_stimer0_count", "Hyper-V stimer0 interrupts", "vector:237"},
	{"ERR", "irq_err_count", "", "total"},
	{"MIS", "irq_mis_count", "", "total"},
	{"PIN", "kvm_posted_intr_ipis", "Posted-interrupt notification event", ""},
	{"NPI", "kvm_posted_intr_nested_ipis", "Nested posted-interrupt event", ""},
	{"PIW", "kvm_posted_intr_wakeup_ipis", "Posted-interrupt wakeup event", ""},
	{"PMN", "posted_msi_notification_count", "Posted MSI notification event", ""},
}

// ReadInterrupts reads /proc/interrupts: every interrupt descriptor
// below nr_irqs that show_interrupts prints (one not hidden, with an
// action that is not the chained handler's, or with a count), then the
// architecture's lines. A descriptor that cannot be read is left out
// and noted in the Program's damage log, as is a damaged node of the
// descriptors' tree (and the tree, when it cannot be walked at all).
func ReadInterrupts(p *objects.Program) (*Interrupts, error) {
	cpus, err := OnlineCPUs(p)
	if err != nil {
		return nil, fmt.Errorf("interrupts: %w", err)
	}
	in := &Interrupts{CPUs: cpus, Prec: 3, Lines: []IRQLine{}}
	nrv, err := p.Variable("nr_irqs")
	if err != nil {
		return nil, fmt.Errorf("interrupts: %w", err)
	}
	nr, err := nrv.Int()
	if err != nil {
		return nil, fmt.Errorf("interrupts: nr_irqs: %w", err)
	}
	for j := int64(1000); in.Prec < 10 && j <= nr; j *= 10 {
		in.Prec++
	}
	hidden, _ := p.Enumerator("IRQ_HIDDEN")
	chained, _ := p.Symbol("chained_action")
	for e, err := range ForEachIRQDesc(p) {
		if err != nil {
			if d := objects.AsDamage(err); d != nil {
				p.NoteDamage(d)
				continue
			}
			// The tree cannot be walked (its root node missing from
			// a filtered dump): the architecture's lines still can.
			p.NoteDamage(&objects.Damage{Walk: "irq descriptors", Expected: "a readable tree",
				Recovery: "the IRQs it holds are left out", Err: err})
			break
		}
		if int64(e.Index) >= nr {
			break
		}
		l, show, err := readIRQLine(p, e.Value, int(e.Index), cpus, hidden, chained)
		if err != nil {
			p.NoteDamage(&objects.Damage{Walk: "irq descriptors", Addr: objects.Hex(e.Value.Addr()),
				Object: fmt.Sprintf("struct irq_desc of IRQ %d", e.Index), Expected: "a readable descriptor", Err: err})
			continue
		}
		if show {
			in.Lines = append(in.Lines, l)
		}
	}
	arch, err := archIRQs(p, cpus)
	in.Lines = append(in.Lines, arch...)
	if err != nil {
		return in, fmt.Errorf("interrupts: %w", err)
	}
	return in, nil
}

func readIRQLine(p *objects.Program, desc objects.Value, irq int, cpus []int, hidden, chained uint64) (IRQLine, bool, error) {
	l := IRQLine{IRQ: irq, Name: fmt.Sprint(irq), Desc: objects.Hex(desc.Addr())}
	if hidden != 0 {
		st, err := desc.MemberUint("status_use_accessors")
		if err != nil {
			return l, false, err
		}
		if st&hidden != 0 {
			return l, false, nil
		}
	}
	ks, err := desc.Member("kstat_irqs")
	if err != nil {
		return l, false, err
	}
	ksAddr, err := ks.Uint()
	if err != nil {
		return l, false, err
	}
	var any uint64
	for _, cpu := range cpus {
		var n uint64
		if ksAddr != 0 {
			c, err := p.PerCPU(ks, cpu)
			if err != nil {
				return l, false, err
			}
			// struct irqstat { cnt; ... } (6.10+, "genirq: Convert
			// kstat_irqs to a struct"), before an unsigned int.
			if cnt, err := c.Member("cnt"); err == nil {
				c = cnt
			}
			if n, err = c.Uint(); err != nil {
				return l, false, err
			}
		}
		any |= n
		l.Counts = append(l.Counts, n)
	}
	action, err := desc.MemberUint("action")
	if err != nil {
		return l, false, err
	}
	if (action == 0 || chained != 0 && action == chained) && any == 0 {
		return l, false, nil
	}
	l.Chip = "None"
	if chip, err := desc.MemberUint("irq_data.chip"); err != nil {
		return l, false, err
	} else if chip != 0 {
		cv, err := p.ObjectOf("struct irq_chip", chip)
		if err != nil {
			return l, false, err
		}
		if pc, err := cv.MemberUint("irq_print_chip"); err == nil && pc != 0 {
			l.PrintChip = true
		}
		l.Chip = "-"
		if n, err := cv.Member("name"); err != nil {
			return l, false, err
		} else if a, _ := n.Uint(); a != 0 {
			if l.Chip, err = n.CString(); err != nil {
				return l, false, err
			}
		}
	}
	if dom, err := desc.MemberUint("irq_data.domain"); err != nil {
		return l, false, err
	} else if dom != 0 {
		hw, err := desc.MemberUint("irq_data.hwirq")
		if err != nil {
			return l, false, err
		}
		l.HWIRQ = &hw
	}
	if n, err := desc.Member("name"); err != nil {
		return l, false, err
	} else if a, _ := n.Uint(); a != 0 {
		if l.Handler, err = n.CString(); err != nil {
			return l, false, err
		}
	}
	for a := action; a != 0 && len(l.Actions) < maxActions; {
		av, err := p.ObjectOf("struct irqaction", a)
		if err != nil {
			return l, false, err
		}
		name := ""
		if n, err := av.Member("name"); err != nil {
			return l, false, err
		} else if na, _ := n.Uint(); na != 0 {
			if name, err = n.CString(); err != nil {
				return l, false, err
			}
		} else {
			name = "(null)"
		}
		l.Actions = append(l.Actions, name)
		if a, err = av.MemberUint("next"); err != nil {
			return l, false, err
		}
	}
	return l, true, nil
}

// archIRQs reads x86's lines of /proc/interrupts.
func archIRQs(p *objects.Program, cpus []int) ([]IRQLine, error) {
	stat, err := p.Variable("irq_stat")
	if err != nil {
		return nil, err
	}
	var out []IRQLine
	for _, a := range archIRQLines {
		l := IRQLine{IRQ: -1, Name: a.name, Description: a.desc}
		switch {
		case a.cond == "total":
			v, err := p.Variable(a.member)
			if errors.Is(err, objects.ErrNotFound) {
				continue
			}
			var n uint64
			if err == nil {
				n, err = v.MemberUint("counter")
			}
			if err != nil {
				return out, fmt.Errorf("%s: %w", a.member, err)
			}
			l.Counts = []uint64{uint64(uint32(n))}
			out = append(out, l)
			continue
		case a.cond == "platform":
			if _, _, err := p.MemberOffset("irq_cpustat_t", a.member); err != nil {
				continue
			}
			addr, err := p.Symbol("x86_platform_ipi_callback")
			if err != nil {
				continue
			}
			if fn, err := p.ReadU64(addr); err != nil || fn == 0 {
				continue
			}
		case strings.HasPrefix(a.cond, "vector:"):
			if _, _, err := p.MemberOffset("irq_cpustat_t", a.member); err != nil {
				continue
			}
			var vec int
			fmt.Sscanf(a.cond, "vector:%d", &vec)
			addr, err := p.Symbol("system_vectors")
			if err != nil {
				continue
			}
			w, err := p.ReadU64(addr + uint64(vec/64*8))
			if err != nil || w&(1<<(vec%64)) == 0 {
				continue
			}
		}
		for _, cpu := range cpus {
			var v objects.Value
			var err error
			if a.cond == "percpu" {
				v, err = p.Variable(a.member)
				if errors.Is(err, objects.ErrNotFound) {
					break
				}
				if err == nil {
					v, err = p.PerCPU(v, cpu)
				}
			} else {
				v, err = p.PerCPU(stat, cpu)
				if err == nil {
					v, err = v.Member(a.member)
				}
				if errors.Is(err, objects.ErrNotFound) {
					break
				}
			}
			var n uint64
			if err == nil {
				n, err = v.Uint()
			}
			if err != nil {
				return out, fmt.Errorf("%s of CPU %d: %w", a.name, cpu, err)
			}
			l.Counts = append(l.Counts, n)
		}
		if len(l.Counts) == len(cpus) {
			out = append(out, l)
		}
	}
	return out, nil
}
