package bpfvm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpfinsn"
)

// callHelper calls the standard helper name on m directly.
func callStd(t *testing.T, m *Machine, name string, args ...uint64) uint64 {
	t.Helper()
	fn, ok := StandardHelpers().Lookup(name)
	if !ok {
		t.Fatalf("no helper %s", name)
	}
	var a [5]uint64
	copy(a[:], args)
	v, err := fn(m, a)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// region allocates a region holding b.
func region(t *testing.T, m *Machine, name string, b []byte) *Region {
	t.Helper()
	r, err := m.Alloc(name, len(b), false)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.Bytes(), b)
	return r
}

func TestTimeAndRandom(t *testing.T) {
	m := testMachine(Options{Clock: Series{Values: []uint64{5, 7}}, Random: Series{Values: []uint64{0x100000002}}})
	var got []uint64
	for _, n := range []string{"bpf_ktime_get_ns", "bpf_ktime_get_boot_ns", "bpf_ktime_get_coarse_ns", "bpf_ktime_get_tai_ns"} {
		got = append(got, callStd(t, m, n))
	}
	want := []uint64{5, 7, DefaultClock, DefaultClock + DefaultClockStep}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("clock call %d = %d, want %d", i, got[i], want[i])
		}
	}
	if v := callStd(t, m, "bpf_get_prandom_u32"); v != 2 {
		t.Errorf("prandom from the list = %#x, want 2 (truncated to 32 bits)", v)
	}
	// The default sequence is the same on every machine, and 32-bit.
	m2 := testMachine(Options{Random: Series{Values: []uint64{0x100000002}}})
	callStd(t, m2, "bpf_get_prandom_u32")
	for i := 0; i < 5; i++ {
		a, b := callStd(t, m, "bpf_get_prandom_u32"), callStd(t, m2, "bpf_get_prandom_u32")
		if a != b || a>>32 != 0 {
			t.Fatalf("prandom %#x and %#x", a, b)
		}
	}
	n := uint64(100)
	m3 := testMachine(Options{Jiffies: Series{Next: func() uint64 { n++; return n }}})
	if a, b := callStd(t, m3, "bpf_jiffies64"), callStd(t, m3, "bpf_jiffies64"); a != 101 || b != 102 {
		t.Errorf("jiffies from Next: %d %d", a, b)
	}
	if v := callStd(t, testMachine(Options{}), "bpf_jiffies64"); v != DefaultJiffies {
		t.Errorf("default jiffies %d", v)
	}
}

func TestCPUAndTask(t *testing.T) {
	task := &Task{PID: 100, TGID: 99, UID: 1000, GID: 1001, Comm: "workload-name-long", Addr: 0xffff888001234000}
	m := testMachine(Options{CPU: 3, NumaNode: 1, Task: task})
	checks := []struct {
		name string
		want uint64
	}{
		{"bpf_get_smp_processor_id", 3},
		{"bpf_get_raw_cpu_id", 3},
		{"bpf_get_numa_node_id", 1},
		{"bpf_get_current_pid_tgid", 99<<32 | 100},
		{"bpf_get_current_uid_gid", 1001<<32 | 1000},
		{"bpf_get_current_task", 0xffff888001234000},
		{"bpf_get_current_task_btf", 0xffff888001234000},
	}
	for _, c := range checks {
		if v := callStd(t, m, c.name); v != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, v, c.want)
		}
	}
	comm := []struct {
		size int
		want string
	}{
		{16, "workload-name-l\x00"},
		{4, "wor\x00"},
		{20, "workload-name-l\x00\x00\x00\x00\x00"},
	}
	for _, c := range comm {
		buf := region(t, m, "comm", bytes.Repeat([]byte{0xff}, c.size))
		if v := callStd(t, m, "bpf_get_current_comm", buf.Addr, uint64(c.size)); v != 0 || string(buf.Bytes()) != c.want {
			t.Errorf("comm of size %d: %d, %q; want 0, %q", c.size, v, buf.Bytes(), c.want)
		}
	}
	short := testMachine(Options{Task: &Task{Comm: "ab"}})
	buf := region(t, short, "comm", bytes.Repeat([]byte{0xff}, 8))
	callStd(t, short, "bpf_get_current_comm", buf.Addr, 8)
	if string(buf.Bytes()) != "ab\x00\x00\x00\x00\x00\x00" {
		t.Errorf("comm not zero-padded: %q", buf.Bytes())
	}
	// No task: the kernel's -EINVAL, comm zeroed.
	none := testMachine(Options{})
	if v := callStd(t, none, "bpf_get_current_pid_tgid"); v != Errno(errnoEINVAL) {
		t.Errorf("pid_tgid without a task = %#x", v)
	}
	buf = region(t, none, "comm", bytes.Repeat([]byte{0xff}, 8))
	if v := callStd(t, none, "bpf_get_current_comm", buf.Addr, 8); v != Errno(errnoEINVAL) || string(buf.Bytes()) != strings.Repeat("\x00", 8) {
		t.Errorf("comm without a task: %#x, %q", v, buf.Bytes())
	}
}

func TestProbeRead(t *testing.T) {
	m := testMachine(Options{})
	src := region(t, m, "src", []byte("hi\x00zzzz"))
	cases := []struct {
		name   string
		helper string
		src    uint64
		size   uint64
		ret    uint64
		dst    string // the 8-byte buffer after, prefilled with '#'
	}{
		{"kernel", "bpf_probe_read_kernel", kernelData + 0x41, 8, 0, "ABCDEFGH"},
		{"kernel, short", "bpf_probe_read_kernel", kernelData + 0x41, 3, 0, "ABC#####"},
		{"kernel, machine memory", "bpf_probe_read_kernel", src.Addr, 4, 0, "hi\x00z####"[:8]},
		{"kernel, unmapped", "bpf_probe_read_kernel", 0xffff888000000000, 8, Errno(errnoEFAULT), "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"kernel, across the end of the dump", "bpf_probe_read_kernel", kernelData + 2*4096 - 4, 8, Errno(errnoEFAULT), "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"kernel, user address", "bpf_probe_read_kernel", 0x1000, 4, Errno(errnoERANGE), "\x00\x00\x00\x00####"},
		{"compat, user address", "bpf_probe_read_compat", 0x1000, 4, Errno(errnoEFAULT), "\x00\x00\x00\x00####"},
		{"compat, kernel", "bpf_probe_read_compat", kernelData + 0x41, 2, 0, "AB######"},
		{"str", "bpf_probe_read_kernel_str", src.Addr, 8, 3, "hi\x00#####"},
		{"str, truncated", "bpf_probe_read_kernel_str", kernelData + 0x41, 8, 8, "ABCDEFG\x00"},
		{"str, ends at the size", "bpf_probe_read_kernel_str", kernelData + 0xf9, 8, 8, "\xf9\xfa\xfb\xfc\xfd\xfe\xff\x00"},
		{"str, size 0", "bpf_probe_read_kernel_str", src.Addr, 0, 0, "########"},
		{"str, unmapped", "bpf_probe_read_kernel_str", 0xffff888000000000, 6, Errno(errnoEFAULT), "\x00\x00\x00\x00\x00\x00##"},
		{"str, user address", "bpf_probe_read_kernel_str", 0x1000, 6, Errno(errnoERANGE), "\x00\x00\x00\x00\x00\x00##"},
		{"compat str", "bpf_probe_read_compat_str", kernelData + 0xfe, 8, 3, "\xfe\xff\x00#####"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := region(t, m, "dst", []byte("########"))
			if v := callStd(t, m, c.helper, dst.Addr, c.size, c.src); v != c.ret || string(dst.Bytes()) != c.dst {
				t.Errorf("%s = %#x, dst %q; want %#x, %q", c.helper, v, dst.Bytes(), c.ret, c.dst)
			}
		})
	}
	// A destination the program may not write is the run's error.
	fn, _ := StandardHelpers().Lookup("bpf_probe_read_kernel")
	if _, err := fn(m, [5]uint64{0, 8, kernelData}); !errors.Is(err, ErrFault) {
		t.Errorf("write to NULL: %v", err)
	}
}

func TestBprintf(t *testing.T) {
	m := testMachine(Options{Syms: syms{0xffffffff81234000: "do_work"}})
	str := region(t, m, "str", []byte("hello\x00"))
	ip4 := region(t, m, "ip4", []byte{192, 168, 1, 2})
	ip6 := region(t, m, "ip6", []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	cases := []struct {
		format string
		args   []uint64
		want   string
		errno  int
	}{
		{"x=%d\n", []uint64{0xfffffffffffffffb}, "x=-5\n", 0},
		{"%i", []uint64{7}, "7", 0},
		{"%u", []uint64{0xffffffff}, "4294967295", 0},
		{"%u", []uint64{0x100000001}, "1", 0},
		{"%ld", []uint64{0xffffffffffffffff}, "-1", 0},
		{"%llu", []uint64{0xffffffffffffffff}, "18446744073709551615", 0},
		{"%x", []uint64{0x10000000f}, "f", 0},
		{"%lx", []uint64{0x10000000f}, "10000000f", 0},
		{"%llX", []uint64{0xabc}, "ABC", 0},
		{"%5d|", []uint64{42}, "   42|", 0},
		{"%-5d|", []uint64{42}, "42   |", 0},
		{"%05d", []uint64{42}, "00042", 0},
		{"%05d", []uint64{0xffffffffffffffd6}, "-0042", 0},
		{"%+d % d", []uint64{5, 5}, "+5  5", 0},
		{"%08x", []uint64{0xbeef}, "0000beef", 0},
		{"%c%c", []uint64{'o', 0x14b}, "oK", 0},
		{"%s!", []uint64{str.Addr}, "hello!", 0},
		{"%10s|%-7s|", []uint64{str.Addr, str.Addr}, "     hello|hello  |", 0},
		{"[%s]", []uint64{0xffff888000000000}, "[]", 0},
		{"100%%", nil, "100%", 0},
		{"%p %px %pK", []uint64{0xffff888000001234, 0x10, 0xffff888000001234}, "ffff888000001234 0000000000000010 ffff888000001234", 0},
		{"%ps, %pS", []uint64{0xffffffff81234000, 0xffffffff81234008}, "do_work, ffffffff81234008", 0},
		{"%pks", []uint64{str.Addr}, "hello", 0},
		{"%pI4 %pi4", []uint64{ip4.Addr, ip4.Addr}, "192.168.1.2 192.168.001.002", 0},
		{"%pI6", []uint64{ip6.Addr}, "2001:0db8:0000:0000:0000:0000:0000:0001", 0},
		{"%pI6c", []uint64{ip6.Addr}, "2001:db8::1", 0},
		{"%pi6", []uint64{ip6.Addr}, "20010db8000000000000000000000001", 0},
		{"%pI4", []uint64{0}, "0.0.0.0", 0},
		{"tab\there", nil, "tab\there", 0},
		{"%d %d %d %d", []uint64{1, 2, 3}, "", -errnoEINVAL},
		{"%q", []uint64{1}, "", -errnoEINVAL},
		{"%hd", []uint64{1}, "", -errnoEINVAL},
		{"%lld%lls", []uint64{1, 2}, "", -errnoEINVAL},
		{"%sx", []uint64{str.Addr}, "", -errnoEINVAL},
		{"%pZ", []uint64{1}, "", -errnoEINVAL},
		{"%pI5", []uint64{1}, "", -errnoEINVAL},
		{"bell\a", nil, "", -errnoEINVAL},
	}
	for _, c := range cases {
		got, errno := m.Bprintf(c.format, c.args)
		if got != c.want || errno != c.errno {
			t.Errorf("Bprintf(%q) = %q, %d; want %q, %d", c.format, got, errno, c.want, c.errno)
		}
	}
}

func TestTracePrintk(t *testing.T) {
	m := testMachine(Options{})
	// The format is in the context: r1 already points at it.
	ctx := region(t, m, "fmt", []byte("v=%d w=%u\n\x00junk"))
	got := mustRun(t, m, prog(mov64(r2, 11), mov64(r3, -7), mov64(r4, 8), call("bpf_trace_printk"), exit()), ctx.Addr)
	if got != uint64(len("v=-7 w=8\n")) {
		t.Errorf("bpf_trace_printk returned %d", got)
	}
	// No NUL within fmt_size.
	got = mustRun(t, m, prog(mov64(r2, 10), call("bpf_trace_printk"), exit()), ctx.Addr)
	if got != Errno(errnoEINVAL) {
		t.Errorf("format without NUL: %#x", got)
	}
	if p := m.Printk(); len(p) != 1 || p[0] != "v=-7 w=8\n" {
		t.Errorf("printk %q", p)
	}
	// bpf_trace_vprintk: the arguments in an array.
	args := region(t, m, "args", []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0})
	v := callStd(t, m, "bpf_trace_vprintk", ctx.Addr, 11, args.Addr, 16)
	if p := m.Printk(); v != 8 || len(p) != 2 || p[1] != "v=1 w=2\n" {
		t.Errorf("vprintk %d %q", v, p)
	}
	if v := callStd(t, m, "bpf_trace_vprintk", ctx.Addr, 11, args.Addr, 12); v != Errno(errnoEINVAL) {
		t.Errorf("vprintk with data_len 12: %#x", v)
	}
	// bpf_snprintf: the length with the NUL, the output truncated.
	out := region(t, m, "out", []byte("########"))
	if v := callStd(t, m, "bpf_snprintf", out.Addr, 4, ctx.Addr, args.Addr, 16); v != 9 || string(out.Bytes()) != "v=1\x00####" {
		t.Errorf("snprintf = %d, %q", v, out.Bytes())
	}
	if v := callStd(t, m, "bpf_snprintf", out.Addr, 0, ctx.Addr, args.Addr, 8); v != Errno(errnoEINVAL) {
		t.Errorf("snprintf with too few arguments: %#x", v)
	}
}

func TestOutputs(t *testing.T) {
	const mapAddr = 0xffff888000200000
	m := testMachine(Options{CPU: 2})
	data := region(t, m, "data", []byte("payload!"))
	if v := callStd(t, m, "bpf_ringbuf_output", mapAddr, data.Addr, 8, 2); v != 0 {
		t.Errorf("ringbuf_output = %#x", v)
	}
	if v := callStd(t, m, "bpf_ringbuf_output", mapAddr, data.Addr, 8, 4); v != Errno(errnoEINVAL) {
		t.Errorf("ringbuf_output with flags 4 = %#x", v)
	}
	if v := callStd(t, m, "bpf_perf_event_output", 0, mapAddr, 0xffffffff, data.Addr, 4); v != 0 {
		t.Errorf("perf_event_output = %#x", v)
	}
	if v := callStd(t, m, "bpf_perf_event_output", 0, mapAddr, 1<<32, data.Addr, 4); v != Errno(errnoEINVAL) {
		t.Errorf("perf_event_output with a context length = %#x", v)
	}
	// Reserve, fill, submit; reserve, discard.
	rec := callStd(t, m, "bpf_ringbuf_reserve", mapAddr, 4, 0)
	if rec == 0 {
		t.Fatal("reserve failed")
	}
	if err := m.Write(rec, []byte("abcd")); err != nil {
		t.Fatal(err)
	}
	callStd(t, m, "bpf_ringbuf_submit", rec, 0)
	rec = callStd(t, m, "bpf_ringbuf_reserve", mapAddr, 2, 0)
	callStd(t, m, "bpf_ringbuf_discard", rec, 0)
	if v := callStd(t, m, "bpf_ringbuf_reserve", mapAddr, 2, 1); v != 0 {
		t.Errorf("reserve with flags = %#x", v)
	}
	want := []Output{
		{Helper: "bpf_ringbuf_output", Map: mapAddr, Flags: 2, Data: []byte("payload!")},
		{Helper: "bpf_perf_event_output", Map: mapAddr, Flags: 0xffffffff, CPU: 2, Data: []byte("payl")},
		{Helper: "bpf_ringbuf_submit", Map: mapAddr, Data: []byte("abcd")},
		{Helper: "bpf_ringbuf_discard", Map: mapAddr, Data: []byte{0, 0}, Discarded: true},
	}
	got := m.Outputs()
	if len(got) != len(want) {
		t.Fatalf("outputs %+v", got)
	}
	for i := range want {
		g := got[i]
		g.Insn = 0
		if g.Helper != want[i].Helper || g.Map != want[i].Map || g.Flags != want[i].Flags || g.CPU != want[i].CPU || !bytes.Equal(g.Data, want[i].Data) || g.Discarded != want[i].Discarded {
			t.Errorf("output %d = %+v, want %+v", i, g, want[i])
		}
	}
	// In a program: the record names the instruction.
	m = testMachine(Options{})
	mustRun(t, m, prog(
		st(bpfinsn.SizeDW, r10, -8, 0x41),
		ldImm64(r1, mapAddr), mov64X(r2, r10), alu64K(bpfinsn.OpAdd, r2, -8), mov64(r3, 1), mov64(r4, 0),
		call("bpf_ringbuf_output"), exit()))
	if o := m.Outputs(); len(o) != 1 || o[0].Insn != 7 || o[0].Prog != "test" || string(o[0].Data) != "A" {
		t.Errorf("outputs %+v", o)
	}
}
