package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

// TestMain lets the test binary be kinspect itself, for the shells the
// completion tests run: with KINSPECT_TEST_MAIN=1 it runs the command line.
func TestMain(m *testing.M) {
	if os.Getenv("KINSPECT_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// kinspectOnPath puts a "kinspect" that runs this test binary first on
// PATH, and returns the environment to run shells with.
func kinspectOnPath(t *testing.T) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nKINSPECT_TEST_MAIN=1 exec %s \"$@\"\n", shellQuote(self))
	if err := os.WriteFile(filepath.Join(dir, "kinspect"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "HOME="+dir)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// complete runs "kinspect __complete words..." and returns the words
// offered and the directive.
func complete(t *testing.T, words ...string) ([]string, int) {
	t.Helper()
	var out bytes.Buffer
	if code := run(append([]string{"__complete"}, words...), &out, &out); code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", words, code, out.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	dir, err := strconv.Atoi(strings.TrimPrefix(last, ":"))
	if !strings.HasPrefix(last, ":") || err != nil {
		t.Fatalf("__complete %q: no directive: %q", words, out.String())
	}
	var got []string
	for _, l := range lines[:len(lines)-1] {
		w, _, _ := strings.Cut(l, "\t")
		got = append(got, w)
	}
	return got, dir
}

func TestCompleteLine(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  []string // exactly these, in any order (nil: none)
		has   []string // at least these
		lacks []string
		dir   int
	}{
		{words: []string{""}, has: []string{"prog", "map", "link", "btf", "struct_ops", "feature", "bt", "ps", "script", "completion"}, lacks: []string{"__complete", "man"}},
		{words: []string{"pr"}, want: []string{"print", "prog"}},
		{words: []string{"-j", "m"}, want: []string{"map", "mod", "mount"}},
		{words: []string{"prog", ""}, want: []string{"show", "list", "dump", "tag", "run", "state", "debug", "help"}},
		{words: []string{"prog", "d"}, want: []string{"dump", "debug"}},
		{words: []string{"prog", "dump", ""}, want: []string{"xlated", "jited"}},
		{words: []string{"prog", "dump", "xlated", ""}, want: []string{"id", "tag", "name", "pinned"}},
		{words: []string{"prog", "--json", "dump", "x", "id", "5", ""}, want: []string{"opcodes", "linum", "visual"}},
		{words: []string{"prog", "dump", "jited", "id", "5", ""}, want: []string{"opcodes", "linum"}},
		{words: []string{"prog", "dump", "jited", "id", "5", "linum", ""}, want: nil},
		{words: []string{"prog", "dump", "xlated", "pinned", ""}, want: nil, dir: directiveFiles},
		{words: []string{"prog", "show", ""}, want: []string{"id", "tag", "name", "pinned"}},
		{words: []string{"prog", "show", "-k", ""}, want: nil, dir: directiveFiles},
		{words: []string{"prog", "show", "--p"}, want: []string{"--pids", "--pretty", "--page-cache"}},
		{words: []string{"prog", "dump", "--"}, has: []string{"--kallsyms", "--json", "--core"}, lacks: []string{"--pids", "--layout"}},
		{words: []string{"map", ""}, want: []string{"show", "list", "dump", "lookup", "help"}},
		{words: []string{"map", "dump", ""}, want: []string{"id", "name"}},
		{words: []string{"map", "lookup", "id", "3", ""}, want: []string{"key"}},
		{words: []string{"map", "lookup", "id", "3", "key", ""}, want: []string{"hex"}},
		{words: []string{"map", "dump", "--order", ""}, want: []string{"kernel", "memory"}},
		{words: []string{"map", "dump", "--order=m"}, want: []string{"--order=memory"}},
		{words: []string{"map", "dump", "--order", "=", "k"}, want: []string{"--order=kernel"}},
		{words: []string{"link", "show", ""}, want: []string{"id", "pinned"}},
		{words: []string{"link", "show", "--d"}, want: []string{"--details", "--declare", "--declare-file"}},
		{words: []string{"btf", ""}, want: []string{"dump", "show", "list", "funcs", "help"}},
		{words: []string{"btf", "dump", "id", "3", ""}, want: []string{"format"}},
		{words: []string{"btf", "dump", "id", "3", "format", ""}, want: []string{"raw", "c"}},
		{words: []string{"btf", "dump", "struct", "task_struct", "format", ""}, want: []string{"c", "layout"}},
		{words: []string{"struct_ops", "dump", ""}, want: []string{"id", "name"}},
		{words: []string{"feature", ""}, want: []string{"probe"}},
		{words: []string{"bt", "-"}, has: []string{"-a", "-T", "--all-tasks", "-f", "-k", "-c", "--json"}},
		{words: []string{"ps", "--t"}, want: []string{"--threads", "--timeout"}},
		{words: []string{"script", "--t"}, want: []string{"--timeout"}}, // script's own
		{words: []string{"script", ""}, want: nil, dir: directiveFiles},
		{words: []string{"script", "x.js", "--j"}, want: nil, dir: directiveFiles}, // the script's arguments
		{words: []string{"completion", ""}, want: []string{"bash", "zsh", "fish"}},
		{words: []string{"-c", ""}, want: nil, dir: directiveFiles},
		{words: []string{"--core=/tm"}, want: nil, dir: directiveFiles},
		{words: []string{"--page-cache", ""}, want: nil},
		{words: []string{"-e", "1", ""}, want: nil},
		{words: []string{"nosuch", ""}, want: nil},
		{words: []string{"prog", "nosuch", ""}, want: nil},
		{words: []string{"--", "-"}, want: nil},
	} {
		t.Run(strings.Join(tc.words, " "), func(t *testing.T) {
			got, dir := complete(t, tc.words...)
			if dir != tc.dir {
				t.Errorf("directive %d, want %d", dir, tc.dir)
			}
			if tc.has == nil && tc.lacks == nil {
				a, b := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tc.want))
				if !slices.Equal(a, b) {
					t.Errorf("got %q, want %q", a, b)
				}
			}
			for _, w := range tc.has {
				if !slices.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range tc.lacks {
				if slices.Contains(got, w) {
					t.Errorf("%q has %q", got, w)
				}
			}
		})
	}
}

// truthIDs reads the "id"s (or "name"s) of a bpftool JSON list of the truth.
func truthValues(t *testing.T, s *labdata.Scenario, file, key string) []string {
	var list []map[string]any
	labdata.ReadJSON(t, s.Path("truth/bpftool/"+file), &list)
	var out []string
	for _, o := range list {
		switch v := o[key].(type) {
		case float64:
			out = append(out, strconv.Itoa(int(v)))
		case string:
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("truth %s has no %s", file, key)
	}
	return out
}

// hiddenValues are the ids, names or tags of the objects hidden from
// bpftool that a truth file of its lists would have had.
func hiddenValues(h labdata.Hidden, file, key string) []string {
	var out []string
	switch file + " " + key {
	case "prog.json id":
		for id := range h.Progs {
			out = append(out, strconv.Itoa(int(id)))
		}
	case "prog.json name":
		for _, name := range h.Progs {
			out = append(out, name)
		}
	case "prog.json tag":
		if h.Prog.ID != 0 {
			out = append(out, h.Prog.Tag)
		}
	case "link.json id":
		for id := range h.Links {
			out = append(out, strconv.Itoa(int(id)))
		}
	}
	return out
}

// TestCompleteFromDump: the ids and names offered are the dump's, as
// bpftool listed them in the guest.
func TestCompleteFromDump(t *testing.T) {
	s := labdata.Require(t, "basic")
	dump := s.Path("dumps/elf")
	for _, tc := range []struct {
		words           []string
		truth, truthKey string
	}{
		{[]string{"prog", "dump", "xlated", "id", ""}, "prog.json", "id"},
		{[]string{"prog", "dump", "jited", "name", ""}, "prog.json", "name"},
		{[]string{"prog", "show", "tag", ""}, "prog.json", "tag"},
		{[]string{"map", "dump", "id", ""}, "map.json", "id"},
		{[]string{"map", "show", "name", ""}, "map.json", "name"},
		{[]string{"link", "show", "id", ""}, "link.json", "id"},
		{[]string{"btf", "dump", "id", ""}, "btf.json", "id"},
		{[]string{"struct_ops", "dump", "id", ""}, "struct_ops.json", "id"},
		{[]string{"struct_ops", "dump", "name", ""}, "struct_ops.json", "name"},
	} {
		t.Run(strings.Join(tc.words, " "), func(t *testing.T) {
			// The objects hidden from bpftool are the dump's too
			// (labdata.Hidden).
			want := append(truthValues(t, s, tc.truth, tc.truthKey), hiddenValues(s.Hidden(t), tc.truth, tc.truthKey)...)
			// -c before the command, and after it.
			for _, words := range [][]string{
				append([]string{"-c", dump}, tc.words...),
				append([]string{tc.words[0], "--core", dump}, tc.words[1:]...),
			} {
				got, _ := complete(t, words...)
				a, b := slices.Compact(slices.Sorted(slices.Values(got))), slices.Compact(slices.Sorted(slices.Values(want)))
				if !slices.Equal(a, b) {
					t.Errorf("%q: got %q, want %q", words, a, b)
				}
			}
			// Without a dump, no values.
			if got, _ := complete(t, tc.words...); len(got) != 0 {
				t.Errorf("no dump: got %q", got)
			}
		})
	}
	t.Run("bt PID", func(t *testing.T) {
		truth, excluded := readTruthPs(t, s)
		got, _ := complete(t, "-c", dump, "bt", "")
		have := map[string]bool{}
		for _, g := range got {
			have[g] = true
		}
		for _, tr := range truth {
			if !have[strconv.Itoa(tr.TID)] {
				t.Errorf("bt: PID %d (%s) not offered", tr.TID, tr.Comm)
			}
			delete(have, strconv.Itoa(tr.TID))
		}
		delete(have, strconv.Itoa(excluded))
		if len(have) > 0 {
			t.Errorf("bt: PIDs not in the truth offered: %v", have)
		}
		if got, _ := complete(t, "-c", dump, "ps", "1"); !slices.Contains(got, "1") || slices.Contains(got, "2") {
			t.Errorf("ps 1<Tab>: %q", got)
		}
	})
}

// bashComplete runs the bash script's _kinspect with COMP_WORDS set to
// words (the last being completed) and returns COMPREPLY.
func bashComplete(t *testing.T, env []string, words ...string) []string {
	t.Helper()
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	script := fmt.Sprintf(`source <(kinspect completion bash) || exit 1
COMP_WORDS=(kinspect %s); COMP_CWORD=%d
_kinspect
printf '%%s\n' "${COMPREPLY[@]}"`, strings.Join(quoted, " "), len(words))
	out := shell(t, env, "bash", "--norc", "--noprofile", "-c", script)
	return strings.Fields(out)
}

func shell(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("no %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s%s", name, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestCompletionBash(t *testing.T) {
	env := kinspectOnPath(t)
	files := t.TempDir()
	for _, f := range []string{"vmcore.elf", "vmcore.kdump"} {
		os.WriteFile(filepath.Join(files, f), nil, 0o644)
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"pr"}, []string{"print", "prog"}},
		{[]string{"prog", "dump", "x"}, []string{"xlated"}},
		{[]string{"prog", "dump", "xlated", "id", "1", ""}, []string{"linum", "opcodes", "visual"}},
		{[]string{"map", "dump", "--order", "=", ""}, []string{"kernel", "memory"}},
		{[]string{"map", "dump", "--order", "="}, []string{"=kernel", "=memory"}},
		{[]string{"-c", files + "/vmcore.e"}, []string{files + "/vmcore.elf"}},
		{[]string{"--core", "=", files + "/vmcore."}, []string{files + "/vmcore.elf", files + "/vmcore.kdump"}},
	} {
		got := bashComplete(t, env, tc.words...)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.words, got, tc.want)
		}
	}
	s := labdata.Require(t, "basic")
	want := append(truthValues(t, s, "prog.json", "id"), hiddenValues(s.Hidden(t), "prog.json", "id")...)
	got := bashComplete(t, env, "-c", s.Path("dumps/elf"), "prog", "dump", "xlated", "id", "")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("kinspect -c DUMP prog dump xlated id <Tab>: got %q, want the dump's program ids %q", got, want)
	}
}

func TestCompletionZsh(t *testing.T) {
	env := kinspectOnPath(t)
	shell(t, env, "zsh", "-n", "-c", zshCompletion)
	// compsys's _describe and _files stubbed: what _kinspect hands them.
	run := func(words ...string) string {
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = shellQuote(w)
		}
		return shell(t, env, "zsh", "-f", "-c", fmt.Sprintf(`compdef() { :; }
_describe() { shift 3; print -rl -- "${(@P)1}"; }
_files() { print -r -- FILES; }
source <(kinspect completion zsh) || exit 1
words=(kinspect %s); CURRENT=%d
_kinspect`, strings.Join(quoted, " "), len(words)+1))
	}
	if got, want := run("prog", "dump", ""), "xlated:dump\njited:dump\n"; !strings.Contains(got, "xlated") || !strings.Contains(got, "jited") {
		t.Errorf("prog dump <Tab>: %q, want %q", got, want)
	}
	if got := run("prog", ""); !strings.Contains(got, "show:list programs\n") {
		t.Errorf("prog <Tab>: %q, want show with its description", got)
	}
	if got := run("-c", ""); got != "FILES\n" {
		t.Errorf("-c <Tab>: %q, want file names", got)
	}
	s := labdata.Require(t, "basic")
	got := run("-c", s.Path("dumps/elf"), "prog", "dump", "xlated", "id", "")
	for _, id := range append(truthValues(t, s, "prog.json", "id"), hiddenValues(s.Hidden(t), "prog.json", "id")...) {
		if !strings.Contains(got, "\n"+id+":") && !strings.HasPrefix(got, id+":") {
			t.Errorf("prog dump xlated id <Tab>: %q lacks program %s", got, id)
		}
	}
}

func TestCompletionFish(t *testing.T) {
	env := kinspectOnPath(t)
	var out bytes.Buffer
	run([]string{"completion", "fish"}, &out, &out)
	f := filepath.Join(t.TempDir(), "kinspect.fish")
	os.WriteFile(f, out.Bytes(), 0o644)
	shell(t, env, "fish", "--no-config", "-n", f)
	complete := func(line string) string {
		return shell(t, env, "fish", "--no-config", "-c", fmt.Sprintf("source %s; complete -C%s", shellQuote(f), shellQuote(line)))
	}
	if got := complete("kinspect prog dump "); got != "xlated\njited\n" && got != "jited\nxlated\n" {
		t.Errorf("prog dump <Tab>: %q", got)
	}
	if got := complete("kinspect map "); !strings.Contains(got, "lookup\tlook up one element\n") {
		t.Errorf("map <Tab>: %q", got)
	}
	s := labdata.Require(t, "basic")
	got := complete("kinspect -c " + s.Path("dumps/elf") + " link show id ")
	for _, id := range truthValues(t, s, "link.json", "id") {
		if !strings.Contains(got, id+"\t") {
			t.Errorf("link show id <Tab>: %q lacks link %s", got, id)
		}
	}
}
