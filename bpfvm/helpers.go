package bpfvm

import (
	"fmt"
)

// Kernel error numbers helpers return, negated (include/uapi/asm-generic/errno-base.h).
const (
	errnoE2BIG  = 7
	errnoEFAULT = 14
	errnoEINVAL = 22
	errnoERANGE = 34
)

// Errno returns -errno as a helper's result.
func Errno(errno int) uint64 { return uint64(-int64(errno)) }

// Output is a record a program sent to user space: bpf_ringbuf_output,
// bpf_ringbuf_submit of a bpf_ringbuf_reserve, bpf_perf_event_output.
type Output struct {
	// Helper is the helper called.
	Helper string
	// Prog and Insn are the call's program and instruction.
	Prog string
	Insn int
	// Map is the address of the map (struct bpf_map) given.
	Map uint64
	// Flags are the helper's flags; for perf output, CPU is the index of
	// the perf event (BPF_F_CURRENT_CPU resolved).
	Flags uint64
	CPU   uint32
	Data  []byte
	// Discarded: bpf_ringbuf_discard of a reservation.
	Discarded bool
}

// Outputs returns the records sent so far (all runs).
func (m *Machine) Outputs() []Output { return append([]Output(nil), m.outputs...) }

// Printk returns the messages of bpf_trace_printk and bpf_trace_vprintk
// so far, one per call, as formatted (without the trace_pipe prefix).
func (m *Machine) Printk() []string { return append([]string(nil), m.printk...) }

// Task returns the run's current task (Options.Task).
func (m *Machine) Task() *Task { return m.opts.Task }

// CPU returns the run's CPU (Options.CPU).
func (m *Machine) CPU() uint32 { return m.opts.CPU }

// Record appends an output record, for helpers implemented elsewhere
// (bpf_skb_event_output); Prog and Insn are filled in.
func (m *Machine) Record(o Output) {
	o.Prog, o.Insn = "", m.pc
	if len(m.frames) > 0 {
		o.Prog = m.frames[len(m.frames)-1].prog.Name
	}
	m.outputs = append(m.outputs, o)
}

// Series indexes.
const (
	seriesClock = iota
	seriesJiffies
	seriesRandom
	numSeries
)

// Defaults of the series: the clock starts at DefaultClock ns and moves
// DefaultClockStep ns a call; jiffies start at DefaultJiffies.
const (
	DefaultClock     = 1_000_000_000
	DefaultClockStep = 1000
	DefaultJiffies   = 1 << 32
	defaultSeed      = 0x9e3779b97f4a7c15
)

// next returns series k's next value.
func (m *Machine) next(k int) uint64 {
	s := [numSeries]*Series{&m.opts.Clock, &m.opts.Jiffies, &m.opts.Random}[k]
	i := m.counts[k]
	m.counts[k]++
	if i < len(s.Values) {
		return s.Values[i]
	}
	if s.Next != nil {
		return s.Next()
	}
	j := uint64(i - len(s.Values))
	switch k {
	case seriesClock:
		return DefaultClock + j*DefaultClockStep
	case seriesJiffies:
		return DefaultJiffies + j
	}
	// xorshift64* from a fixed seed.
	if m.rng == 0 {
		m.rng = defaultSeed
	}
	m.rng ^= m.rng >> 12
	m.rng ^= m.rng << 25
	m.rng ^= m.rng >> 27
	return m.rng * 0x2545f4914f6cdd1d >> 32
}

// maxHelperSize bounds the sizes helpers copy: the verifier bounds them
// by the buffers (at most a map value), so a larger one is not a
// verified program's.
const maxHelperSize = 1 << 24

// checkBuf checks a helper's buffer before the helper allocates its
// size.
func (m *Machine) checkBuf(addr, n uint64, write bool) error {
	if n > maxHelperSize {
		return fmt.Errorf("size %d beyond any buffer a verified program has", n)
	}
	return m.Check(addr, int(n), write)
}

// readBuf reads a helper's input buffer (checked first, so that a size a
// verified program cannot pass allocates nothing).
func (m *Machine) readBuf(addr, n uint64) ([]byte, error) {
	if err := m.checkBuf(addr, n, false); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if err := m.Read(addr, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// StandardHelpers returns a registry of the helpers that need no kernel
// object (their kallsyms names):
//
//   - time and randomness, from Options.Clock, Jiffies and Random:
//     bpf_ktime_get_ns, bpf_ktime_get_boot_ns, bpf_ktime_get_coarse_ns,
//     bpf_ktime_get_tai_ns, bpf_jiffies64, bpf_get_prandom_u32;
//   - the CPU and task, from Options: bpf_get_smp_processor_id,
//     bpf_get_raw_cpu_id, bpf_get_numa_node_id, bpf_get_current_pid_tgid,
//     bpf_get_current_uid_gid, bpf_get_current_comm,
//     bpf_get_current_task, bpf_get_current_task_btf;
//   - memory: bpf_probe_read_kernel, bpf_probe_read_kernel_str,
//     bpf_probe_read_compat, bpf_probe_read_compat_str;
//   - text: bpf_trace_printk, bpf_trace_vprintk (collected, see Printk),
//     bpf_snprintf;
//   - bpf_loop, calling its callback with Machine.Call;
//   - output, recorded (see Outputs): bpf_ringbuf_output,
//     bpf_ringbuf_reserve, bpf_ringbuf_submit, bpf_ringbuf_discard,
//     bpf_perf_event_output, bpf_perf_event_output_tp,
//     bpf_perf_event_output_raw_tp.
//
// Maps' operations and the helpers of packets and sockets need the
// kernel's objects: register them on a Clone.
func StandardHelpers() *Registry {
	r := NewRegistry()
	clock := func(m *Machine, _ [5]uint64) (uint64, error) { return m.next(seriesClock), nil }
	for _, n := range []string{"bpf_ktime_get_ns", "bpf_ktime_get_boot_ns", "bpf_ktime_get_coarse_ns", "bpf_ktime_get_tai_ns"} {
		r.Register(n, clock)
	}
	r.Register("bpf_jiffies64", func(m *Machine, _ [5]uint64) (uint64, error) { return m.next(seriesJiffies), nil })
	r.Register("bpf_get_prandom_u32", func(m *Machine, _ [5]uint64) (uint64, error) {
		return uint64(uint32(m.next(seriesRandom))), nil
	})
	cpu := func(m *Machine, _ [5]uint64) (uint64, error) { return uint64(m.opts.CPU), nil }
	r.Register("bpf_get_smp_processor_id", cpu)
	r.Register("bpf_get_raw_cpu_id", cpu)
	r.Register("bpf_get_numa_node_id", func(m *Machine, _ [5]uint64) (uint64, error) { return uint64(m.opts.NumaNode), nil })
	r.Register("bpf_get_current_pid_tgid", func(m *Machine, _ [5]uint64) (uint64, error) {
		t := m.opts.Task
		if t == nil {
			return Errno(errnoEINVAL), nil
		}
		return uint64(t.TGID)<<32 | uint64(t.PID), nil
	})
	r.Register("bpf_get_current_uid_gid", func(m *Machine, _ [5]uint64) (uint64, error) {
		t := m.opts.Task
		if t == nil {
			return Errno(errnoEINVAL), nil
		}
		return uint64(t.GID)<<32 | uint64(t.UID), nil
	})
	r.Register("bpf_get_current_comm", helperGetCurrentComm)
	task := func(m *Machine, _ [5]uint64) (uint64, error) {
		if m.opts.Task == nil {
			return 0, nil
		}
		return m.opts.Task.Addr, nil
	}
	r.Register("bpf_get_current_task", task)
	r.Register("bpf_get_current_task_btf", task)
	r.Register("bpf_probe_read_kernel", func(m *Machine, a [5]uint64) (uint64, error) { return probeRead(m, a, true) })
	r.Register("bpf_probe_read_compat", func(m *Machine, a [5]uint64) (uint64, error) { return probeRead(m, a, false) })
	r.Register("bpf_probe_read_kernel_str", func(m *Machine, a [5]uint64) (uint64, error) { return probeReadStr(m, a, true) })
	r.Register("bpf_probe_read_compat_str", func(m *Machine, a [5]uint64) (uint64, error) { return probeReadStr(m, a, false) })
	r.Register("bpf_trace_printk", helperTracePrintk)
	r.Register("bpf_trace_vprintk", helperTraceVprintk)
	r.Register("bpf_snprintf", helperSnprintf)
	r.Register("bpf_loop", helperLoop)
	r.Register("bpf_ringbuf_output", helperRingbufOutput)
	r.Register("bpf_ringbuf_reserve", helperRingbufReserve)
	r.Register("bpf_ringbuf_submit", func(m *Machine, a [5]uint64) (uint64, error) { return ringbufCommit(m, a, "bpf_ringbuf_submit", false) })
	r.Register("bpf_ringbuf_discard", func(m *Machine, a [5]uint64) (uint64, error) { return ringbufCommit(m, a, "bpf_ringbuf_discard", true) })
	for _, n := range []string{"bpf_perf_event_output", "bpf_perf_event_output_tp", "bpf_perf_event_output_raw_tp"} {
		r.Register(n, perfOutput(n))
	}
	return r
}

// taskCommLen is TASK_COMM_LEN.
const taskCommLen = 16

// helperGetCurrentComm is bpf_get_current_comm(buf, size): the comm,
// NUL-terminated and zero-padded to size (strscpy_pad).
func helperGetCurrentComm(m *Machine, a [5]uint64) (uint64, error) {
	buf, size := a[0], uint32(a[1])
	if err := m.checkBuf(buf, uint64(size), true); err != nil {
		return 0, err
	}
	out := make([]byte, size)
	ret := uint64(0)
	if t := m.opts.Task; t == nil {
		ret = Errno(errnoEINVAL)
	} else if size > 0 {
		comm := t.Comm
		if len(comm) > taskCommLen-1 {
			comm = comm[:taskCommLen-1]
		}
		copy(out[:size-1], comm)
	}
	return ret, m.Write(buf, out)
}

// kernelReadable says copy_from_kernel_nofault would try addr (x86-64:
// not a user address): the machine's own memory stands for kernel
// memory.
func (m *Machine) kernelReadable(addr uint64) bool {
	return addr >= 1<<63 || (addr >= StackBase && addr < allocEnd)
}

// probeRead is bpf_probe_read_kernel (kernel true) and
// bpf_probe_read_compat(dst, size, unsafe_ptr): on a fault dst is zeroed
// and the result is -EFAULT (-ERANGE for a user address, kernel only).
func probeRead(m *Machine, a [5]uint64, kernel bool) (uint64, error) {
	dst, size, src := a[0], uint32(a[1]), a[2]
	if err := m.checkBuf(dst, uint64(size), true); err != nil {
		return 0, err
	}
	buf := make([]byte, size)
	ret := uint64(0)
	if kernel && size > 0 && !m.kernelReadable(src) {
		ret = Errno(errnoERANGE)
	} else if err := m.Read(src, buf); err != nil {
		clear(buf)
		ret = Errno(errnoEFAULT)
	}
	return ret, m.Write(dst, buf)
}

// probeReadStr is bpf_probe_read_kernel_str and bpf_probe_read_compat_str
// (strncpy_from_kernel_nofault): the string's length with its NUL, size
// if truncated (the last byte then NUL); on a fault dst is zeroed.
func probeReadStr(m *Machine, a [5]uint64, kernel bool) (uint64, error) {
	dst, size, src := a[0], uint32(a[1]), a[2]
	if err := m.checkBuf(dst, uint64(size), true); err != nil {
		return 0, err
	}
	if size == 0 {
		return 0, nil
	}
	fail := func(errno int) (uint64, error) {
		return Errno(errno), m.Write(dst, make([]byte, size))
	}
	if kernel && !m.kernelReadable(src) {
		return fail(errnoERANGE)
	}
	s, _, err := m.ReadCString(src, int(size))
	if err != nil {
		return fail(errnoEFAULT)
	}
	if len(s) >= int(size) {
		s = s[:size-1]
	}
	return uint64(len(s) + 1), m.Write(dst, append(s, 0))
}

// bpfMaxLoops is BPF_MAX_LOOPS.
const bpfMaxLoops = 1 << 23

// helperLoop is bpf_loop(nr_loops, callback_fn, callback_ctx, flags):
// callback(i, ctx) for i < nr_loops until it returns non-zero; the
// number of calls.
func helperLoop(m *Machine, a [5]uint64) (uint64, error) {
	n, fn, ctx, flags := uint32(a[0]), a[1], a[2], a[3]
	if flags != 0 {
		return Errno(errnoEINVAL), nil
	}
	if n > bpfMaxLoops {
		return Errno(errnoE2BIG), nil
	}
	for i := uint32(0); i < n; i++ {
		ret, err := m.Call(fn, uint64(i), ctx, 0, 0, 0)
		if err != nil {
			return 0, err
		}
		if ret != 0 {
			return uint64(i) + 1, nil
		}
	}
	return uint64(n), nil
}

// Ring buffer flags (BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP).
const rbWakeupFlags = 1 | 2

// helperRingbufOutput is bpf_ringbuf_output(ringbuf, data, size, flags).
func helperRingbufOutput(m *Machine, a [5]uint64) (uint64, error) {
	mp, data, size, flags := a[0], a[1], a[2], a[3]
	if flags&^rbWakeupFlags != 0 {
		return Errno(errnoEINVAL), nil
	}
	buf, err := m.readBuf(data, size)
	if err != nil {
		return 0, err
	}
	m.Record(Output{Helper: "bpf_ringbuf_output", Map: mp, Flags: flags, Data: buf})
	return 0, nil
}

// helperRingbufReserve is bpf_ringbuf_reserve(ringbuf, size, flags): a
// region of the machine's (the ring buffer's size is the map's, unknown
// here, so any size up to maxHelperSize is granted).
func helperRingbufReserve(m *Machine, a [5]uint64) (uint64, error) {
	size, flags := a[1], a[2]
	if flags != 0 || size > maxHelperSize {
		return 0, nil
	}
	r, err := m.Alloc(fmt.Sprintf("ringbuf reservation %#x", a[0]), int(size), false)
	if err != nil {
		return 0, nil
	}
	m.reserved = append(m.reserved, reservation{region: r, mapAddr: a[0]})
	return r.Addr, nil
}

// ringbufCommit is bpf_ringbuf_submit and bpf_ringbuf_discard(data,
// flags).
func ringbufCommit(m *Machine, a [5]uint64, name string, discard bool) (uint64, error) {
	for i, rv := range m.reserved {
		if rv.region.Addr == a[0] {
			m.reserved = append(m.reserved[:i], m.reserved[i+1:]...)
			m.Record(Output{Helper: name, Map: rv.mapAddr, Flags: a[1], Data: append([]byte(nil), rv.region.Bytes()...), Discarded: discard})
			return 0, nil
		}
	}
	return 0, fmt.Errorf("%#x is not a ring buffer reservation", a[0])
}

// reservation is a bpf_ringbuf_reserve not yet submitted.
type reservation struct {
	region  *Region
	mapAddr uint64
}

// Perf event output flags (BPF_F_INDEX_MASK, BPF_F_CURRENT_CPU).
const (
	perfIndexMask  = 0xffffffff
	perfCurrentCPU = perfIndexMask
)

// perfOutput is bpf_perf_event_output(ctx, map, flags, data, size) of
// tracing programs (and its _tp, _raw_tp variants).
func perfOutput(name string) HelperFunc {
	return func(m *Machine, a [5]uint64) (uint64, error) {
		mp, flags, data, size := a[1], a[2], a[3], a[4]
		if flags&^perfIndexMask != 0 {
			return Errno(errnoEINVAL), nil
		}
		buf, err := m.readBuf(data, size)
		if err != nil {
			return 0, err
		}
		cpu := uint32(flags & perfIndexMask)
		if flags&perfIndexMask == perfCurrentCPU {
			cpu = m.opts.CPU
		}
		m.Record(Output{Helper: name, Map: mp, Flags: flags, CPU: cpu, Data: buf})
		return 0, nil
	}
}
