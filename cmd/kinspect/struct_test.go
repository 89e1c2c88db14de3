package main

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// truthSymbols reads the guest's /proc/kallsyms: "NAME" or "NAME [MOD]"
// to the address in hex.
func truthSymbols(t *testing.T, s *labdata.Scenario) map[string]string {
	t.Helper()
	f, err := os.Open(s.Path("truth/kallsyms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 {
			out[strings.Join(fs[2:], " ")] = fs[0]
		}
	}
	return out
}

// truthModuleStates reads the guest's /proc/modules: each module's name and
// state.
func truthModuleStates(t *testing.T, s *labdata.Scenario) map[string]string {
	t.Helper()
	b, err := os.ReadFile(s.Path("truth/modules.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if fs := strings.Fields(l); len(fs) >= 5 {
			out[fs[0]] = fs[4]
		}
	}
	return out
}

// labDumps are the dumps of basic and k612 in a format, when built.
func labDumps(t *testing.T, format string) map[*labdata.Scenario]string {
	t.Helper()
	out := map[*labdata.Scenario]string{}
	for _, s := range labdata.Built(t) {
		if s.Live || (s.Scenario != "basic" && s.Scenario != "k612") {
			continue
		}
		if f, ok := s.Format(format); ok {
			out[s] = s.Path(f.Path)
		}
	}
	if len(out) == 0 {
		t.Skip("neither basic nor k612 is built")
	}
	return out
}

// TestStructLab: struct at the addresses the guest's /proc/kallsyms
// gives reads what the guest said: init_task is pid 0, swapper/0; each
// module's struct module (its __this_module) has the name and state
// /proc/modules shows.
func TestStructLab(t *testing.T) {
	for s, d := range labDumps(t, "kdump-zlib") {
		t.Run(s.Scenario, func(t *testing.T) {
			syms := truthSymbols(t, s)
			v := cliJSON(t, d, "struct", "task_struct", "0x"+syms["init_task"]).(map[string]any)
			val := v["value"].(map[string]any)
			if scalar(val["pid"]) != "0" || val["comm"] != "swapper/0" || scalar(v["address"]) != scalar("0x"+syms["init_task"]) {
				t.Errorf("struct task_struct init_task: pid %v comm %v address %v", val["pid"], val["comm"], v["address"])
			}
			mods := truthModuleStates(t, s)
			for name, state := range mods {
				addr, ok := syms["__this_module ["+name+"]"]
				if !ok {
					t.Errorf("%s: no __this_module in the truth", name)
					continue
				}
				v := cliJSON(t, d, "struct", "module", "0x"+addr).(map[string]any)["value"].(map[string]any)
				want := map[string]string{"Live": "MODULE_STATE_LIVE", "Loading": "MODULE_STATE_COMING", "Unloading": "MODULE_STATE_GOING"}[state]
				if v["name"] != name || v["state"] != want {
					t.Errorf("struct module %s: name %v state %v, /proc/modules %s %s", addr, v["name"], v["state"], name, state)
				}
			}
			t.Logf("init_task and %d modules as the guest shows them", len(mods))
		})
	}
}

// TestStructText: struct's and whatis's text forms, against the kernel's
// own definitions (include/linux/types.h, include/linux/sched.h).
func TestStructText(t *testing.T) {
	for s, d := range labDumps(t, "elf") {
		t.Run(s.Scenario, func(t *testing.T) {
			init := "0x" + truthSymbols(t, s)["init_task"]
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"struct", "list_head"}, "struct list_head {\n\tstruct list_head *next;\n\tstruct list_head *prev;\n};\nSIZE: 16\n"},
				{[]string{"struct", "-o", "struct list_head"}, "struct list_head {\n     [0] struct list_head *next;\n     [8] struct list_head *prev;\n}\nSIZE: 16\n"},
				{[]string{"whatis", "init_task"}, "struct task_struct init_task;\n"},
				{[]string{"whatis", "schedule"}, "void schedule(void);\n"},
				{[]string{"whatis", "u64"}, "typedef __u64 u64;\nSIZE: 8\n"},
				{[]string{"whatis", "struct", "hlist_node"}, "struct hlist_node {\n\tstruct hlist_node *next;\n\tstruct hlist_node **pprev;\n};\nSIZE: 16\n"},
			} {
				if got := string(runOK(t, append([]string{"-c", d}, c.args...)...)); got != c.want {
					t.Errorf("%q:\n%s\nwant:\n%s", c.args, got, c.want)
				}
			}
			out := string(runOK(t, "-c", d, "struct", "task_struct", init))
			if !strings.HasPrefix(out, "(struct task_struct){") || !strings.Contains(out, "\t.comm = (char [16])\"swapper/0\",\n") {
				t.Errorf("struct task_struct %s:\n%.400s", init, out)
			}
			out = string(runOK(t, "-c", d, "struct", "-o", "task_struct", init))
			if !strings.Contains(out, "  ["+init[2:]+"] struct thread_info thread_info;\n") {
				t.Errorf("struct -o task_struct %s:\n%.400s", init, out)
			}
			for _, c := range []struct {
				args []string
				code int
				want string
			}{
				{[]string{"struct"}, 2, "give a TYPE"},
				{[]string{"union", "list_head"}, 1, "not a union"},
				{[]string{"struct", "no_such_type_x"}, 1, "no type named"},
				{[]string{"whatis", "no_such_name_x"}, 1, "not a type, a function or a variable"},
				{[]string{"struct", "list_head", "0x10"}, 1, "0x10"},
			} {
				var out strings.Builder
				if code := run(append([]string{"-c", d}, c.args...), &out, &out); code != c.code || !strings.Contains(out.String(), c.want) {
					t.Errorf("%q: exit %d, output %q; want %d and %q", c.args, code, out.String(), c.code, c.want)
				}
			}
		})
	}
}
