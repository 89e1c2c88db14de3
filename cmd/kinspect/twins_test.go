package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

// The twin tests: every command and its JavaScript twin (docs/scripting.md)
// render the same Go result, so on lab dumps the command's --json (or
// text) and the twin's value must agree. A key the command prints must be
// in the twin's record with the same value; the twin may have more.

// twinDumps are the dumps the twin tests run on: a 6.1 kdump and a 6.12
// ELF, when built.
func twinDumps(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, s := range labdata.Built(t) {
		want := map[string]string{"basic": "kdump-zlib", "k612": "elf"}[s.Scenario]
		if f, ok := s.Format(want); ok {
			out = append(out, s.Path(f.Path))
		}
	}
	if len(out) == 0 {
		t.Skip("neither basic nor k612 is built")
	}
	return out
}

// jsPrelude turns twins' values into JSON the way the command prints
// them: BigInts as decimal strings, byte arrays as bpftool's "0x.." lists;
// kernel objects (obj, aux, ...) are left out.
const jsPrelude = `const clean = (x) => {
	if (typeof x === "bigint") return x.toString();
	if (x instanceof Uint8Array) return Array.from(x, (b) => "0x" + b.toString(16).padStart(2, "0"));
	if (Array.isArray(x)) return x.map(clean);
	if (x && typeof x === "object") {
		if (x.type_ !== undefined) return undefined; // a kernel object
		const o = {};
		for (const k of Object.keys(x)) o[k] = clean(x[k]);
		return o;
	}
	return x;
};
`

// js evaluates expr over the dump and returns clean(expr) as JSON.
func js(t *testing.T, dump, expr string) any {
	t.Helper()
	out := runOK(t, "-c", dump, "-e", jsPrelude+"JSON.stringify(clean("+expr+"))")
	return decode(t, out)
}

// cliJSON runs a command with --json and decodes its output.
func cliJSON(t *testing.T, dump string, args ...string) any {
	t.Helper()
	return decode(t, runOK(t, append([]string{"-c", dump, "--json"}, args...)...))
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v: %.300s", err, b)
	}
	return v
}

// scalar normalizes a JSON scalar: numbers and "0x.." strings to decimal
// text, so that 18446744071562067968, "18446744071562067968" and
// "0xffffffff80000000" compare equal.
func scalar(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		if strings.HasPrefix(x, "0x") {
			if n, ok := new(big.Int).SetString(x[2:], 16); ok {
				return n.String()
			}
		}
		if n, ok := new(big.Int).SetString(x, 10); ok {
			return n.String()
		}
		return strconv.Quote(x)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// sub reports where want (the command's) is not contained in got (the
// twin's): objects key by key, arrays element by element.
func sub(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: command has an object, twin %.200v", path, got)
			return
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s.%s: the twin lacks it (command: %.100v)", path, k, wv)
				continue
			}
			sub(t, path+"."+k, wv, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: command has an array, twin %.200v", path, got)
			return
		}
		if len(w) == 1 && w[0] == nil && len(g) == 0 {
			return // bpftool's "operands": [null] for none
		}
		if len(w) != len(g) {
			t.Errorf("%s: %d elements, twin %d", path, len(w), len(g))
			return
		}
		for i := range w {
			sub(t, fmt.Sprintf("%s[%d]", path, i), w[i], g[i])
		}
	default:
		if scalar(want) != scalar(got) {
			t.Errorf("%s: command %s, twin %s", path, scalar(want), scalar(got))
		}
	}
}

// ids lists the "id" of each record of a command's JSON array.
func ids(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, r := range v.([]any) {
		out = append(out, scalar(r.(map[string]any)["id"]))
	}
	return out
}

func TestTwinInfoPsBt(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "info", cliJSON(t, d, "info"), js(t, d, "kernel.info"))
			sub(t, "ps", cliJSON(t, d, "ps"), js(t, d, "kernel.ps()"))
			sub(t, "bt -a", cliJSON(t, d, "bt", "-a"), js(t, d, "kernel.bt({cpus: true})"))
			sub(t, "bt 1", cliJSON(t, d, "bt", "1"), js(t, d, "kernel.bt({pids: [1]})"))
			sub(t, "dmesg", cliJSON(t, d, "dmesg"), js(t, d, "kernel.dmesg()"))
		})
	}
}

func TestTwinProgs(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			show := cliJSON(t, d, "prog", "show")
			twin := js(t, d, "Array.from(kernel.bpf.progs())")
			// loaded_at: seconds in bpftool's JSON, a date for scripts.
			for _, r := range twin.([]any) {
				m := r.(map[string]any)
				if s, ok := m["loaded_at"].(string); ok {
					tm, err := time.Parse(time.RFC3339Nano, s)
					if err != nil {
						t.Fatal(err)
					}
					m["loaded_at"] = json.Number(strconv.FormatInt(tm.Unix(), 10))
				}
			}
			sub(t, "prog show", show, twin)
			sub(t, "prog tag", cliJSON(t, d, "prog", "tag"), js(t, d, "Array.from(kernel.bpf.tags())"))
			for _, id := range ids(t, show) {
				sub(t, "xlated "+id, cliJSON(t, d, "prog", "dump", "xlated", "id", id, "opcodes"), js(t, d, "kernel.bpf.xlated("+id+", {opcodes: true})"))
				for _, kw := range []string{"", "opcodes", "linum"} {
					args := []string{"-c", d, "prog", "dump", "xlated", "id", id}
					if kw != "" {
						args = append(args, kw)
					}
					text := string(runOK(t, args...))
					got := js(t, d, fmt.Sprintf("kernel.bpf.xlated(%s, {text: true, %s: true})", id, cmpOr(kw, "none")))
					if got != text {
						t.Errorf("xlated %s %s: text differs:\n%.300s\ntwin:\n%.300v", id, kw, text, got)
					}
				}
				jited := cliJSON(t, d, "prog", "dump", "jited", "id", id)
				tj := js(t, d, "kernel.bpf.jited("+id+")")
				if l, ok := jited.([]any); ok && len(l) > 0 {
					// The command's JSON names each instruction's source
					// line by its text (src); the twin keeps the whole line.
					for _, f := range l {
						for _, in := range f.(map[string]any)["insns"].([]any) {
							delete(in.(map[string]any), "src")
						}
					}
					sub(t, "jited "+id, jited, tj)
				}
				for _, kw := range []string{"linum", "opcodes"} {
					text := string(runOK(t, "-c", d, "prog", "dump", "jited", "id", id, kw))
					if got := js(t, d, "kernel.bpf.jited("+id+", {text: true, "+kw+": true})"); got != text {
						t.Errorf("jited %s %s: text differs:\n%.300s\ntwin:\n%.300v", id, kw, text, got)
					}
				}
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

func TestTwinMaps(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			show := cliJSON(t, d, "map", "show")
			twin := js(t, d, "Array.from(kernel.bpf.maps())")
			// bpftool's owner_prog_type/owner_jited are the twin's owner;
			// its frozen is 0 or 1.
			for i, r := range show.([]any) {
				m := r.(map[string]any)
				tw := twin.([]any)[i].(map[string]any)
				tw["frozen"] = map[bool]string{false: "0", true: "1"}[tw["frozen"] == true]
				if pt, ok := m["owner_prog_type"]; ok {
					sub(t, "owner", map[string]any{"prog_type": pt, "jited": m["owner_jited"]}, twin.([]any)[i].(map[string]any)["owner"])
					delete(m, "owner_prog_type")
					delete(m, "owner_jited")
				}
			}
			sub(t, "map show", show, twin)
			for _, r := range show.([]any) {
				id := scalar(r.(map[string]any)["id"])
				typ := scalar(r.(map[string]any)["type"])
				if typ == `"struct_ops"` {
					continue // struct_ops dump below
				}
				var dump, lookupOut []byte
				var out, errb bytes.Buffer
				if code := run([]string{"-c", d, "--json", "map", "dump", "id", id}, &out, &errb); code != 0 {
					continue // a type neither can dump
				}
				dump = out.Bytes()
				want := decode(t, dump)
				if typ == `"ringbuf"` {
					// A ring buffer: its header, then its records.
					w := want.(map[string]any)
					sub(t, "map dump "+id+" records", w["records"], js(t, d, "Array.from(kernel.bpf.mapDump("+id+"))"))
					delete(w, "records")
					sub(t, "map dump "+id, w, js(t, d, "kernel.bpf.ringbuf("+id+")"))
					continue
				}
				sub(t, "map dump "+id, want, js(t, d, "Array.from(kernel.bpf.mapDump("+id+"))"))
				// lookup of the first element's key
				els, _ := want.([]any)
				if len(els) == 0 || typ == `"queue"` || typ == `"stack"` || typ == `"ringbuf"` || typ == `"perf_event_array"` {
					continue
				}
				key, ok := els[0].(map[string]any)["key"].([]any)
				if !ok {
					continue
				}
				args := []string{"-c", d, "--json", "map", "lookup", "id", id, "key"}
				var jsKey []string
				for _, b := range key {
					args = append(args, b.(string))
					jsKey = append(jsKey, b.(string))
				}
				lookupOut = runOK(t, args...)
				sub(t, "map lookup "+id, decode(t, lookupOut), js(t, d, fmt.Sprintf("kernel.bpf.mapLookup(%s, [%s])", id, strings.Join(jsKey, ","))))
			}
		})
	}
}

func TestTwinLinksBTFStructOpsFeature(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "link show", cliJSON(t, d, "link", "show"), js(t, d, "Array.from(kernel.bpf.links())"))
			btfs := cliJSON(t, d, "btf", "show")
			sub(t, "btf show", btfs, js(t, d, "Array.from(kernel.bpf.btfs())"))
			sub(t, "struct_ops dump", cliJSON(t, d, "struct_ops", "dump"), js(t, d, "kernel.bpf.structOpsDump()"))
			feat := js(t, d, `(() => { const f = kernel.bpf.features();
				const have = (l, s) => Object.fromEntries(l.map((x) => ["have_" + x.name + s, x.have]));
				const names = (l) => l.filter((x) => x.have).map((x) => x.name);
				return {program_types: have(f.program_types, "_prog_type"), map_types: have(f.map_types, "_map_type"),
					helpers: names(f.helpers), attach_types: names(f.attach_types), link_types: names(f.link_types), tables_read: f.tables_read}; })()`)
			sub(t, "feature", cliJSON(t, d, "feature"), feat)
			// btf dump: types as C and layouts; a BTF object raw and as C.
			text := string(runOK(t, "-c", d, "btf", "dump", "struct bpf_prog", "struct xarray"))
			if got := js(t, d, `kernel.btfDump("struct bpf_prog", "struct xarray")`); got != text {
				t.Errorf("btf dump: C differs")
			}
			sub(t, "btf dump --layout", cliJSON(t, d, "btf", "dump", "struct task_struct", "struct bpf_map", "--layout"),
				js(t, d, `kernel.btfDump("struct task_struct", "struct bpf_map", {layout: true})`))
			for _, r := range btfs.([]any) {
				m := r.(map[string]any)
				if m["kernel"] == true {
					continue
				}
				id := scalar(m["id"])
				c := decode(t, runOK(t, "-c", d, "--json", "btf", "dump", "id", id, "format", "c")).(map[string]any)["c"]
				if got := js(t, d, "kernel.btfDump({id: "+id+", format: \"c\"})"); got != c {
					t.Errorf("btf dump id %s format c differs", id)
				}
				raw := cliJSON(t, d, "btf", "dump", "id", id).(map[string]any)["types"]
				twin := js(t, d, "kernel.btfDump({id: "+id+"})")
				if n := len(raw.([]any)); n != len(twin.([]any)) {
					t.Errorf("btf dump id %s: %d types, twin %d", id, n, len(twin.([]any)))
				}
				for i, ty := range raw.([]any) {
					w := ty.(map[string]any)
					g := twin.([]any)[i].(map[string]any)
					if scalar(w["id"]) != scalar(g["id"]) || scalar(w["name"]) != scalar(cmpOrAny(g["name"], "(anon)")) {
						t.Errorf("btf dump id %s: type %d: command %v %v, twin %v %v", id, i, w["id"], w["name"], g["id"], g["name"])
					}
				}
			}
		})
	}
}

func cmpOrAny(v any, def string) any {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}

func TestTwinProgRunState(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			pkt := make([]byte, 64)
			pkt[12], pkt[30], pkt[31], pkt[32], pkt[33] = 8, 10, 1, 2, 3
			file := filepath.Join(t.TempDir(), "pkt")
			if err := os.WriteFile(file, pkt, 0o644); err != nil {
				t.Fatal(err)
			}
			var arr []string
			for _, b := range pkt {
				arr = append(arr, strconv.Itoa(int(b)))
			}
			for _, name := range []string{"ki_xdp", "ki_tail_entry"} {
				cli := cliJSON(t, d, "prog", "run", "name", name, "data_in", file, "data_out", "-", "--trace")
				delete(cli.(map[string]any), "duration") // the replay's own time, different each run
				sub(t, "prog run "+name, cli, js(t, d, fmt.Sprintf("kernel.bpf.run(%q, {data_in: [%s], trace: true})", name, strings.Join(arr, ","))))
			}
			sub(t, "prog state", cliJSON(t, d, "prog", "state"), js(t, d, "kernel.bpf.state()"))
		})
	}
}

// TestTwinMemory: kmem, vtop and ptov and kernel.slab, kernel.mm,
// kernel.identify.
func TestTwinMemory(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "kmem -s", cliJSON(t, d, "kmem", "-s"), js(t, d, "kernel.slab.caches()"))
			sub(t, "kmem -i", cliJSON(t, d, "kmem", "-i"), js(t, d, "kernel.mm.meminfo()"))
			sub(t, "kmem -v", cliJSON(t, d, "kmem", "-v"), js(t, d, "kernel.mm.vmallocInfo()"))
			objs := cliJSON(t, d, "kmem", "-S", "task_struct").(map[string]any)
			sub(t, "kmem -S", objs["objects"], js(t, d, `Array.from(kernel.slab.objects("task_struct", "struct task_struct"), (o) => o.addr_)`))
			// What a task, its stack, a symbol and a page are.
			ps := cliJSON(t, d, "ps", "1").([]any)[0].(map[string]any)
			task := ps["task"].(string)
			addrs := []string{task, "init_task", "schedule+4"}
			twin := js(t, d, fmt.Sprintf(`[kernel.identify(%q), kernel.identify(kernel.sym("init_task").addr), kernel.identify(kernel.sym("schedule").addr + 4n)]`, task))
			sub(t, "kmem ADDR", cliJSON(t, d, append([]string{"kmem"}, addrs...)...), twin)
			sub(t, "kmem --page", cliJSON(t, d, "kmem", "--page", "0x1000"), js(t, d, "[kernel.mm.page(0x1000)]"))
			sub(t, "vtop", cliJSON(t, d, "vtop", "schedule", task), js(t, d, fmt.Sprintf(`[kernel.mm.vtop(kernel.sym("schedule").addr), kernel.mm.vtop(%q)]`, task)))
			sub(t, "vtop --pid 1", cliJSON(t, d, "vtop", "--pid", "1", "0x400000"), js(t, d, `[kernel.mm.vtop(0x400000, {pid: 1})]`))
			sub(t, "ptov", cliJSON(t, d, "ptov", "0x1000000"), js(t, d, "[kernel.mm.ptov(0x1000000)]"))
		})
	}
}

// TestTwinTaskCommands: files, vm, sig, task, mount, cgroup, mod, log,
// ps -a and foreach, and their twins.
func TestTwinTaskCommands(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "files", cliJSON(t, d, "files", "1"), js(t, d, "[kernel.files(1)]"))
			sub(t, "vm", cliJSON(t, d, "vm", "1"), js(t, d, "[kernel.vmas(1)]"))
			sub(t, "sig", cliJSON(t, d, "sig", "1"), js(t, d, "[kernel.signals(kernel.findTask(1))]"))
			task := cliJSON(t, d, "task", "1").([]any)[0].(map[string]any)
			value := task["value"]
			delete(task, "value")
			sub(t, "task", task, js(t, d, "kernel.task(1)"))
			sub(t, "task value", value, decode(t, []byte(js(t, d, "kinspect.json(kernel.task(1).value)").(string))))
			sub(t, "mount", cliJSON(t, d, "mount"), js(t, d, "kernel.mounts()"))
			sub(t, "path", cliJSON(t, d, "path", "/", "/proc", "/dev/null"), js(t, d, `["/", "/proc", "/dev/null"].map((p) => kernel.pathLookup(p))`))
			sub(t, "files -p", cliJSON(t, d, "files", "-p", "/etc/passwd"), js(t, d, `[kernel.mm.inodePages("/etc/passwd")]`))
			sub(t, "cgroup", cliJSON(t, d, "cgroup", "1"), js(t, d, "[kernel.cgroup(1)]"))
			sub(t, "cgroup tree", cliJSON(t, d, "cgroup", "tree"), js(t, d, "kernel.bpf.cgroupTree()"))
			sub(t, "mod", cliJSON(t, d, "mod"), js(t, d, "Array.from(kernel.modules())"))
			sub(t, "log", cliJSON(t, d, "log"), js(t, d, "kernel.dmesg()"))
			sub(t, "ps -a", cliJSON(t, d, "ps", "-a"), js(t, d, `Array.from(kernel.processes()).filter((t) => !kernel.taskInfo(t).kthread).map((t) => kernel.cmdline(t)).sort((a, b) => a.pid - b.pid)`))
			sub(t, "foreach user vm", cliJSON(t, d, "foreach", "user", "vm"), js(t, d, `(() => { const seen = new Set(); const out = [];
				for (const t of Array.from(kernel.tasks()).sort((a, b) => a.pid - b.pid)) {
					if (kernel.taskInfo(t).kthread) continue;
					const mm = t.mm.value_(); if (seen.has(mm)) continue; seen.add(mm);
					out.push(kernel.vmas(t)); }
				return out; })()`))
			sub(t, "foreach sig", cliJSON(t, d, "foreach", "ki_*", "sig"), js(t, d, `Array.from(kernel.tasks()).filter((t) => t.comm.startsWith("ki_")).sort((a, b) => a.pid - b.pid).map((t) => kernel.signals(t))`))
		})
	}
}

// TestTwinMachineCommands: runq, dev, uptime, irq, timer and their twins.
func TestTwinMachineCommands(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "runq", cliJSON(t, d, "runq"), js(t, d, "kernel.runq()"))
			sub(t, "runq 1", cliJSON(t, d, "runq", "1"), js(t, d, "[kernel.runq(1)]"))
			sub(t, "dev", cliJSON(t, d, "dev"), js(t, d, "kernel.devices()"))
			sub(t, "uptime", cliJSON(t, d, "uptime"), js(t, d, "kernel.uptime()"))
			sub(t, "irq", cliJSON(t, d, "irq"), js(t, d, "kernel.interrupts()"))
			sub(t, "timer", cliJSON(t, d, "timer"), js(t, d, "kernel.timers()"))
		})
	}
}

// TestTwinRaw: the raw-access commands and their twins.
func TestTwinRaw(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "dis schedule", cliJSON(t, d, "dis", "schedule"), js(t, d, `kernel.dis("schedule")`))
			sub(t, "dis schedule+4 3", cliJSON(t, d, "dis", "schedule+4", "3"), js(t, d, `kernel.dis("schedule+4", 3)`))
			sub(t, "sym -l", cliJSON(t, d, "sym", "-l", "*sched*"), js(t, d, `kernel.symbols("*sched*")`))
			sub(t, "sym -l bpf", cliJSON(t, d, "sym", "-l", "bpf_prog_"), js(t, d, `kernel.symbols("bpf_prog_")`))
			sub(t, "struct -o", cliJSON(t, d, "struct", "-o", "task_struct"), js(t, d, `kernel.struct("task_struct", null, {offsets: true})`))
			sub(t, "struct -o ADDR", cliJSON(t, d, "struct", "-o", "list_head", "init_task"), js(t, d, `kernel.struct("list_head", "init_task", {offsets: true})`))
			sub(t, "union", cliJSON(t, d, "union", "bpf_attr"), js(t, d, `kernel.union("bpf_attr")`))
			sub(t, "whatis", cliJSON(t, d, "whatis", "init_task"), js(t, d, `kernel.whatis("init_task")`))
			sub(t, "whatis", cliJSON(t, d, "whatis", "schedule"), js(t, d, `kernel.whatis("schedule")`))
			if got := js(t, d, `kernel.struct("task_struct", "init_task").value.comm`); got != "swapper/0" {
				t.Errorf("kernel.struct(task_struct, init_task).value.comm = %v", got)
			}
			sub(t, "list modules", cliJSON(t, d, "list", "-H", "modules", "-o", "module.list"), js(t, d, `kernel.list("modules", {offset: "module.list"})`))
			sub(t, "list tasks", cliJSON(t, d, "list", "-o", "task_struct.tasks", "init_task.tasks"), js(t, d, `kernel.list(kernel.eval("init_task.tasks"), {offset: "task_struct.tasks"})`))
			sub(t, "search", cliJSON(t, d, "search", "--max", "20", "init_task"), js(t, d, `kernel.search("init_task", {max: 20})`))
			sub(t, "search -s -l", cliJSON(t, d, "search", "-s", "init_task", "-l", "0x3000", "-32", "0", "1"), js(t, d, `kernel.search([0, 1n], {start: "init_task", end: kernel.sym("init_task").addr + 0x3000n, size: 4})`))
			sub(t, "search -p", cliJSON(t, d, "search", "-p", "--max", "5", "init_task"), js(t, d, `kernel.search(["init_task"], {physical: true, max: 5})`))
			sub(t, "rd -8", cliJSON(t, d, "rd", "-8", "init_uts_ns", "40"), js(t, d, `kernel.rd("init_uts_ns", {size: 1, count: 40})`))
			sub(t, "rd -s", cliJSON(t, d, "rd", "-s", "init_task", "64"), js(t, d, `kernel.rd("init_task", {symbolic: true, count: 64})`))
			sub(t, "rd -p -32", cliJSON(t, d, "rd", "-p", "-32", "0x100000", "10"), js(t, d, `kernel.rd(0x100000, {physical: true, size: 4, count: 10})`))
		})
	}
}

// TestTwinBTFFuncs: btf funcs and kernel.btfFuncs.
func TestTwinBTFFuncs(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "btf funcs --arg", cliJSON(t, d, "btf", "funcs", "--arg", "struct sk_buff *"), js(t, d, `kernel.btfFuncs({arg: "struct sk_buff *"})`))
			sub(t, "btf funcs --ret GLOB", cliJSON(t, d, "btf", "funcs", "--ret", "int", "tcp_*"), js(t, d, `kernel.btfFuncs({ret: "int", name: "tcp_*"})`))
		})
	}
}

// TestTwinNet: net and kernel.net.
func TestTwinNet(t *testing.T) {
	for _, d := range twinDumps(t) {
		t.Run(d, func(t *testing.T) {
			sub(t, "net", cliJSON(t, d, "net"), js(t, d, "kernel.net()"))
			sub(t, "net --bpf", cliJSON(t, d, "net", "--bpf"), js(t, d, "[kernel.bpf.netShow()]"))
		})
	}
}
