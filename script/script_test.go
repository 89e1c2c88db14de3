package script

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/objects"
)

// labKernel is an opened lab dump, as the CLI opens one.
type labKernel struct {
	s *labdata.Scenario
	k *kinspect.Kernel
}

func openLab(tb testing.TB, s *labdata.Scenario, format string) *labKernel {
	tb.Helper()
	return &labKernel{s: s, k: labkernel.Open(tb, s, format)}
}

func (k *labKernel) engine(tb testing.TB, out *bytes.Buffer, args ...string) *Engine {
	e, err := New(Config{Kernel: k.k, Stdout: out, Args: args})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	return e
}

// basic opens the basic scenario's kdump (or skips).
func basic(t *testing.T) *labKernel {
	return openLab(t, labdata.Require(t, "basic"), "kdump-zlib")
}

func evalJS(t *testing.T, e *Engine, src string) string {
	t.Helper()
	s, err := e.Eval(context.Background(), src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return s
}

func truthJSON(t *testing.T, s *labdata.Scenario, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(s.Path(filepath.Join("truth", rel)))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestValues(t *testing.T) {
	k := basic(t)
	var out bytes.Buffer
	e := k.engine(t, &out)
	var ps []struct {
		PID  int    `json:"pid"`
		TID  int    `json:"tid"`
		Comm string `json:"comm"`
	}
	truthJSON(t, k.s, "ps.json", &ps)
	initTask, _ := k.k.Symbols().Addr("init_task")
	for _, tt := range []struct{ expr, want string }{
		{`kernel.var("init_task").comm`, "swapper/0"},
		{`typeof kernel.var("init_task").comm`, "string"},
		{`typeof kernel.var("init_task").pid`, "number"},
		{`kernel.var("init_task").pid`, "0"},
		{`typeof kernel.var("jiffies").value_()`, "bigint"},
		{`typeof kernel.var("init_task").tasks.next`, "object"},
		{`typeof kernel.var("init_task").tasks.next.addr_`, "bigint"},
		{`kernel.var("init_task").addr_ === kernel.sym("init_task").addr`, "true"},
		{`kernel.var("init_task").addr_ === ` + strconv.FormatUint(initTask, 10) + `n`, "true"},
		{`kernel.var("init_task").type_`, "struct task_struct"},
		{`kernel.var("init_task").tasks.next.type_`, "struct list_head *"},
		{`kernel.var("init_task").member_("tasks.next").type_`, "struct list_head *"},
		{`kernel.var("init_task").member_("comm").string_()`, "swapper/0"},
		{`kernel.var("init_task").comm.length`, "9"},
		{`kernel.var("init_task").member_("comm").length`, "16"},
		{`kernel.var("init_task").member_("comm")[0]`, "115"},
		{`kernel.var("init_task").has_("comm")`, "true"},
		{`kernel.var("init_task").has_("nosuch")`, "false"},
		{`"comm" in kernel.var("init_task")`, "true"},
		{`kernel.var("init_task").size_ === kernel.sizeof("struct task_struct")`, "true"},
		{`kernel.var("init_task").address_of_().deref_() === kernel.var("init_task")`, "true"},
		{`kernel.var("init_task").tasks.container_of_("struct task_struct", "tasks") === kernel.var("init_task")`, "true"},
		{`kernel.containerOf(kernel.var("init_task").tasks.address_of_(), "struct task_struct", "tasks").comm`, "swapper/0"},
		{`kernel.cast(kernel.var("init_task").tasks.next, "unsigned long").value_() === kernel.var("init_task").tasks.next.addr_`, "true"},
		{`kernel.object("struct task_struct", kernel.sym("init_task").addr).comm`, "swapper/0"},
		{`kernel.object("struct task_struct", "0x` + strconv.FormatUint(initTask, 16) + `").comm`, "swapper/0"},
		{`kernel.var("init_task").mm.is_null_()`, "true"},
		{`kernel.var("init_task").tasks.next.add_(1).addr_ - kernel.var("init_task").tasks.next.addr_`, "16"},
		{`kernel.var("init_task").members_().includes("comm")`, "true"},
		{`kernel.read(kernel.sym("init_task").addr + BigInt(kernel.offsetof("struct task_struct", "comm")), 9).length`, "9"},
		{`String.fromCharCode(...kernel.read(kernel.sym("init_task").addr + BigInt(kernel.offsetof("struct task_struct", "comm")), 7))`, "swapper"},
		{`kernel.var("init_task").member_("comm").read_() instanceof Uint8Array`, "true"},
		{`JSON.parse(kernel.var("init_task").tasks.json_()).next.startsWith("0x")`, "true"},
		{`typeof kernel.var("init_task").tasks.value_().next`, "string"},
		{`kernel.eval("init_task.pid").value_()`, "0"},
		{`kernel.enumName("enum bpf_map_type", 1)`, "BPF_MAP_TYPE_HASH"},
		{`kernel.constant("BPF_MAP_TYPE_HASH")`, "1"},
		{`kernel.hasType("struct bpf_prog")`, "true"},
		{`kernel.hasMember("struct bpf_prog", "type")`, "true"},
		{`kernel.sym("init_task").kind`, "D"},
		{`kernel.symbolize(kernel.sym("schedule").addr + 4n)`, "schedule+0x4"},
		{`kernel.percpu("runqueues", 1).cpu`, "1"},
		{`kernel.currentTask(1).comm`, "ki_spinner"},
		{`kernel.findTask(1).comm`, "init"},
		{`kernel.findTask(999999)`, "null"},
		{`kernel.taskInfo(kernel.findTask(1)).ppid`, "0"},
		{`kernel.info.release`, k.s.Release},
		{`kernel.cpus.length`, strconv.Itoa(k.s.CPUs)},
		{`kernel.cpus[1].task.comm`, "ki_spinner"},
		{`typeof kernel.cpus[1].rip`, "bigint"},
		{`kinspect.json({a: 1n << 63n, b: kernel.var("init_task").tasks.next})`, ""},
	} {
		got := evalJS(t, e, tt.expr)
		if tt.want == "" {
			continue
		}
		if !strings.HasPrefix(got, tt.want) || tt.want != "schedule+0x4" && got != tt.want {
			t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
		}
	}
	// BigInts stay exact in JSON.
	got := evalJS(t, e, `kinspect.json({a: 1n << 63n})`)
	if got != `{"a":9223372036854775808}` {
		t.Errorf("json of 2^63 = %s", got)
	}
	// bpf_prog has a member called type: it keeps its name.
	got = evalJS(t, e, `[...kernel.bpf.progs()].map(p => p.obj.type + ":" + p.aux.name).join(",")`)
	if !strings.Contains(got, ":ki_xdp") {
		t.Errorf("prog.obj.type: %q", got)
	}
	// pid of the truth's processes.
	got = evalJS(t, e, `kinspect.json(Object.fromEntries([...kernel.tasks()].map(t => [t.pid, t.comm])))`)
	var comms map[string]string
	if err := json.Unmarshal([]byte(got), &comms); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		// ps names workqueue workers by their work (kworker/0:0-events).
		if c, ok := comms[strconv.Itoa(p.TID)]; !ok || !strings.HasPrefix(p.Comm, c) {
			t.Errorf("task %d %s: kernel.tasks() has %q", p.TID, p.Comm, c)
		}
	}
}

func TestIdentity(t *testing.T) {
	k := basic(t)
	e := k.engine(t, &bytes.Buffer{})
	for _, expr := range []string{
		`const p = [...kernel.bpf.progs()][0].obj; p.aux === p.aux`,
		`kernel.var("init_task") === kernel.var("init_task")`,
		`kernel.var("init_task").tasks === kernel.var("init_task").tasks`,
		`kernel.var("init_task").tasks.next === kernel.var("init_task").tasks.next`,
		`kernel.findTask(1) === kernel.findTask(1)`,
		`kernel.findTask(1) === kernel.var("init_task").tasks.next.container_of_("struct task_struct", "tasks")`,
		`[...kernel.tasks()].includes(kernel.findTask(1))`,
		`kernel.var("init_task").tasks.next !== kernel.var("init_task").tasks.prev`,
	} {
		if got := evalJS(t, e, "{"+expr+"}"); got != "true" {
			t.Errorf("%s: %s", expr, got)
		}
	}
}

func TestIterators(t *testing.T) {
	k := basic(t)
	e := k.engine(t, &bytes.Buffer{})
	var progs []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	truthJSON(t, k.s, "bpftool/prog.json", &progs)
	// The programs hidden from bpftool are in prog_idr (labdata.Hidden).
	nprogs := len(progs) + len(k.s.Hidden(t).Progs)
	var maps []struct {
		ID int `json:"id"`
	}
	truthJSON(t, k.s, "bpftool/map.json", &maps)
	var ps []json.RawMessage
	truthJSON(t, k.s, "ps.json", &ps)
	for _, tt := range []struct {
		expr string
		want int
	}{
		{`let n = 0; for (const t of kernel.tasks()) n++; n`, len(ps)},
		{`let n = 0; for (const t of kernel.listForEach(kernel.var("init_task").tasks, "struct task_struct", "tasks")) n++; n + 1`, -1},
		{`let n = 0; for (const [id, p] of kernel.idr(kernel.var("prog_idr"), "struct bpf_prog")) { if (p.aux.id !== Number(id)) throw new Error("id"); n++ } n`, nprogs},
		{`let n = 0; for (const [id, p] of kernel.idr(kernel.var("map_idr"))) n++; n`, len(maps)},
		{`[...kernel.bpf.progs()].length`, nprogs},
		{`[...kernel.bpf.maps()].length`, len(maps)},
		{`let n = 0; for (const t of kernel.tasks()) { n++; if (n == 3) break; } n`, 3},
		{`[...kernel.var("init_task").member_("comm")].length`, 16},
		{`[...kernel.modules()].length`, -1},
		{`kernel.dmesg().length > 100 ? 1 : 0`, 1},
	} {
		got := evalJS(t, e, "{"+tt.expr+"}")
		n, err := strconv.Atoi(got)
		if err != nil || tt.want >= 0 && n != tt.want || n <= 0 {
			t.Errorf("%s = %s, want %d", tt.expr, got, tt.want)
		}
	}
	// The task list and the process walker agree.
	a := evalJS(t, e, `[...kernel.listForEach(kernel.var("init_task").tasks, "struct task_struct", "tasks")].length`)
	b := evalJS(t, e, `[...kernel.processes()].length`)
	if a != b {
		t.Errorf("list walk %s, processes %s", a, b)
	}
	// Leaving loops early stops the walkers.
	if len(e.open) > 0 {
		evalJS(t, e, `1`)
	}
	for it := range e.open {
		if !it.done {
			t.Errorf("an iterator left open")
		}
	}
}

func TestErrors(t *testing.T) {
	k := basic(t)
	var out bytes.Buffer
	e := k.engine(t, &out)
	for _, tt := range []struct {
		expr, code, msg string
	}{
		{`kernel.var("init_task").nosuch`, "not_found", "no member named nosuch in struct task_struct"},
		{`kernel.var("init_task").commm`, "not_found", "did you mean"},
		{`kernel.var("init_task").mm.pgd`, "corrupt", "dereference of NULL struct mm_struct *"},
		{`kernel.object("struct task_struct", 4096).pid`, "fault", "not mapped"},
		{`kernel.var("nosuchvar")`, "not_found", "no symbol named nosuchvar"},
		{`kernel.object("struct nosuch", 0)`, "not_found", "struct nosuch"},
		{`kernel.var("init_task").pid = 1`, "read_only", "read-only"},
		{`delete kernel.var("init_task").pid; kernel.var("init_task").pid = 2`, "read_only", "read-only"},
		{`kernel.read(0, -1)`, "argument", "length"},
		{`kernel.object("struct task_struct", 1.5)`, "argument", "not an exact address"},
		{`kernel.sym("no_such_symbol_x")`, "not_found", "no_such_symbol_x"},
		{`for (const x of kernel.var("init_task")) {}`, "type", "not iterable"},
		{`kernel.var("init_task").deref_()`, "type", "not a pointer"},
	} {
		got := evalJS(t, e, `{ let r; try { `+tt.expr+`; r = "no error" } catch (e) { r = e.code + ": " + e.message } r }`)
		if !strings.HasPrefix(got, tt.code+": ") || !strings.Contains(got, tt.msg) {
			t.Errorf("%s: %q, want code %s and %q", tt.expr, got, tt.code, tt.msg)
		}
	}
	// An uncaught error names the script position.
	_, err := e.Run(context.Background(), "t.js", "\n\nkernel.var('init_task').nosuch")
	if !errors.Is(err, ErrScript) || !strings.HasPrefix(err.Error(), "t.js:3:") || !strings.Contains(err.Error(), "no member named nosuch") {
		t.Errorf("uncaught: %v", err)
	}
	// A runaway script stops at its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = e.Run(ctx, "loop.js", "for (;;) {}")
	if !errors.Is(err, ErrInterrupted) || time.Since(start) > 5*time.Second {
		t.Errorf("runaway: %v after %v", err, time.Since(start))
	}
	// And the engine still works after.
	if got := evalJS(t, e, `kernel.var("init_task").pid`); got != "0" {
		t.Errorf("after interrupt: %s", got)
	}
}

func TestConsoleAndFiles(t *testing.T) {
	k := basic(t)
	var out bytes.Buffer
	e := k.engine(t, &out, "a", "b")
	evalJS(t, e, `print(kinspect.args.join(",")); console.log("x", 1, 2n, [1, "s"], {k: true}); print(kernel.var("init_task").tasks)`)
	want := "a,b\nx 1 2 [1, \"s\"] { k: true }\n(struct list_head){\n\t.next = (struct list_head *)0x"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("console output %q, want prefix %q", out.String(), want)
	}
	if got := evalJS(t, e, `kernel.var("init_task").tasks.next`); !strings.HasPrefix(got, "(struct list_head *)0xffff") {
		t.Errorf("pointer printed as %q", got)
	}
	path := filepath.Join(t.TempDir(), "out.txt")
	js := strconv.Quote(path)
	evalJS(t, e, `kinspect.writeFile(`+js+`, "one")`)
	got := evalJS(t, e, `{ let r = "ok"; try { kinspect.writeFile(`+js+`, "two") } catch (e) { r = e.message } r }`)
	if !strings.Contains(got, "exists") {
		t.Errorf("overwrite without the flag: %q", got)
	}
	evalJS(t, e, `kinspect.writeFile(`+js+`, "three", {overwrite: true})`)
	if b, _ := os.ReadFile(path); string(b) != "three" {
		t.Errorf("file holds %q", b)
	}
}

func TestStack(t *testing.T) {
	k := basic(t)
	e := k.engine(t, &bytes.Buffer{})
	var wl struct {
		Sleepers []struct {
			PID   int    `json:"pid"`
			Wchan string `json:"wchan"`
		} `json:"sleepers"`
		Spinner struct {
			TID    int `json:"tid"`
			ProgID int `json:"prog_id"`
		} `json:"spinner"`
	}
	truthJSON(t, k.s, "workload.json", &wl)
	for _, s := range wl.Sleepers {
		got := evalJS(t, e, `kernel.stack(kernel.findTask(`+strconv.Itoa(s.PID)+`)).map(f => f.function).join(" ")`)
		if !strings.Contains(got, s.Wchan) {
			t.Errorf("pid %d stack %q lacks %s", s.PID, got, s.Wchan)
		}
	}
	got := evalJS(t, e, `kernel.stack(kernel.findTask(`+strconv.Itoa(wl.Spinner.TID)+`)).filter(f => f.bpf).map(f => f.bpf.id).join()`)
	if !strings.Contains(got, strconv.Itoa(wl.Spinner.ProgID)) {
		t.Errorf("spinner's BPF frames: %q", got)
	}
}

func TestComplete(t *testing.T) {
	k := basic(t)
	e := k.engine(t, &bytes.Buffer{})
	evalJS(t, e, `var it = kernel.var("init_task")`)
	for _, tt := range []struct {
		line string
		want string
	}{
		{"ker", "kernel"},
		{"kernel.va", "var"},
		{"kernel.bpf.pr", "progs"},
		{"it.com", "comm"},
		{"it.deref", "deref_"},
		{"x = it.tasks.ne", "next"},
	} {
		c, start := e.Complete(tt.line)
		if len(c) == 0 || c[0] != tt.want || !strings.HasPrefix(tt.want, tt.line[start:]) {
			t.Errorf("complete %q: %v at %d, want %s", tt.line, c, start, tt.want)
		}
	}
}

func TestParseAddr(t *testing.T) {
	k := basic(t)
	e := k.engine(t, &bytes.Buffer{})
	for _, tt := range []struct {
		js   string
		want uint64
		ok   bool
	}{
		{`4096`, 4096, true},
		{`0xffffffff81000000n`, 0xffffffff81000000, true},
		{`"0xffffffff81000000"`, 0xffffffff81000000, true},
		{`"ffffffff81000000"`, 0xffffffff81000000, true},
		{`2**60`, 0, false},
		{`-1n`, ^uint64(0), true},
		{`"zz"`, 0, false},
		{`1n << 64n`, 0, false},
	} {
		v, err := e.rt.RunString(tt.js)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseAddr(v)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("%s: %#x, %v", tt.js, got, err)
		}
	}
}

// FuzzParseAddr: addresses from scripts are parsed without panics.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"0x10", "ffffffff81000000", "12n", "", "0x", "-1"} {
		f.Add(s)
	}
	e, err := New(Config{Kernel: kinspect.FromProgram(objects.NewProgram(nil, nil, nil)), Stdout: &bytes.Buffer{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseAddr(e.rt.ToValue(s))
	})
}

// TestConsoleHexAddresses: the console prints kernel addresses in hex, as
// drgn does, and other BigInts in decimal.
func TestConsoleHexAddresses(t *testing.T) {
	k := basic(t)
	var out bytes.Buffer
	e := k.engine(t, &out)
	got := evalJS(t, e, `kernel.sym("init_task")`)
	want, err := k.k.Symbols().Addr("init_task")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, fmt.Sprintf("addr: %#x", want)) {
		t.Errorf("kernel.sym prints %s, want addr: %#x", got, want)
	}
	if got := evalJS(t, e, `[123n, 0xffffffff81000000n]`); got != "[123, 0xffffffff81000000]" {
		t.Errorf("BigInts print as %s", got)
	}
}
