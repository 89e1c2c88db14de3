package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinspect/kinspect/internal/labdata"
)

func TestParseLine(t *testing.T) {
	type want struct {
		dump, noun       string
		live, json, pret bool
		help             bool
		cache            int
		timeout          time.Duration
		declares         []string
		eval             string
		args, evalArgs   []string
		err              string
	}
	for _, tc := range []struct {
		line string
		want want
	}{
		// Global options anywhere: before, between and after the noun and verbs.
		{"-c D prog show --json", want{dump: "D", json: true, noun: "prog", args: []string{"show"}}},
		{"prog show -c D -j -p", want{dump: "D", json: true, pret: true, noun: "prog", args: []string{"show"}}},
		{"map dump id 5 --json", want{json: true, noun: "map", args: []string{"dump", "id", "5"}}},
		{"map -c D dump --pretty id 5", want{dump: "D", json: true, pret: true, noun: "map", args: []string{"dump", "id", "5"}}},
		{"link show --pretty", want{json: true, pret: true, noun: "link", args: []string{"show"}}},
		{"--live info -p", want{live: true, json: true, pret: true, noun: "info"}},
		// Spellings: --name=V, -xV, clusters.
		{"--core=D prog", want{dump: "D", noun: "prog"}},
		{"-cD prog", want{dump: "D", noun: "prog"}},
		{"-jp prog", want{json: true, pret: true, noun: "prog"}},
		{"-jcD prog", want{dump: "D", json: true, noun: "prog"}},
		{"ps --page-cache 9 --timeout 2s", want{cache: 9, timeout: 2 * time.Second, noun: "ps"}},
		{"--declare A ps --declare=B", want{declares: []string{"A", "B"}, noun: "ps"}},
		// "--" ends the options.
		{"prog show -- name -j", want{noun: "prog", args: []string{"show", "name", "-j"}}},
		{"-- prog show", want{noun: "prog", args: []string{"show"}}},
		{"-j -- -c", want{json: true, noun: "-c"}}, // a command named -c: none
		// ... and is passed on to the commands that read it.
		{"print -- -1 --json", want{noun: "print", args: []string{"--", "-1", "--json"}}},
		{"script -- -f.js --json", want{noun: "script", args: []string{"--", "-f.js", "--json"}}},
		// Commands' own options stay theirs, with their values.
		{"prog show -f --pids -k F", want{noun: "prog", args: []string{"show", "-f", "--pids", "-k", "F"}}},
		{"prog show -k -j", want{noun: "prog", args: []string{"show", "-k", "-j"}}},
		{"bt -f -a 12 -j", want{json: true, noun: "bt", args: []string{"-f", "-a", "12"}}},
		{"sym -l sched*", want{noun: "sym", args: []string{"-l", "sched*"}}},
		{"prog show --bogus", want{noun: "prog", args: []string{"show", "--bogus"}}},
		{"print -k F --max 3 init_task", want{noun: "print", args: []string{"-k", "F", "--max", "3", "init_task"}}},
		// script's --timeout is its own; the words after FILE are the script's.
		{"script --timeout 5s f.js --json -c x", want{noun: "script", args: []string{"--timeout", "5s", "f.js", "--json", "-c", "x"}}},
		{"--timeout 5s -c D script f.js a -h", want{dump: "D", timeout: 5 * time.Second, noun: "script", args: []string{"f.js", "a", "-h"}}},
		// -e: the other words are its arguments.
		{"-e expr a b -c D", want{dump: "D", eval: "expr", evalArgs: []string{"a", "b"}}},
		{"-c D -e expr -- -j", want{dump: "D", eval: "expr", evalArgs: []string{"-j"}}},
		{"prog -e x", want{noun: "prog", err: "-e evaluates an expression and takes no command"}},
		// Help anywhere but after "--".
		{"ps -h", want{help: true, noun: "ps"}},
		{"prog show --help id 3", want{help: true, noun: "prog", args: []string{"show", "id", "3"}}},
		// Errors.
		{"-c", want{err: "-c wants a value (DUMP)"}},
		{"prog show -c", want{noun: "prog", args: []string{"show"}, err: "-c wants a value"}},
		{"--core", want{err: "--core wants a value"}},
		{"--page-cache x prog", want{noun: "prog", cache: defaultPageCacheMiB, err: `--page-cache "x": want a number`}},
		{"--timeout forever ps", want{noun: "ps", err: `--timeout "forever": want a duration`}},
		{"--json=yes prog", want{noun: "prog", err: "--json takes no value"}},
		{"-f prog show", want{noun: "prog", args: []string{"show"}, err: `unknown option "-f" (the options of a command`}},
		{"--bogus", want{err: `unknown option "--bogus"`}},
		{"-jx prog", want{noun: "prog", err: `unknown option "-jx"`}},
		// The hidden __complete takes every word as it is.
		{"__complete -c D prog ''", want{noun: "__complete", args: []string{"-c", "D", "prog", "''"}}},
	} {
		t.Run(tc.line, func(t *testing.T) {
			w := tc.want
			if w.cache == 0 {
				w.cache = defaultPageCacheMiB
			}
			cl, err := parseLine(strings.Fields(tc.line))
			switch {
			case w.err == "" && err != nil:
				t.Errorf("error %v", err)
			case w.err != "" && (err == nil || !strings.Contains(err.Error(), w.err)):
				t.Errorf("error %v, want %q", err, w.err)
			}
			got := want{dump: cl.dump, noun: cl.noun, live: cl.live, json: cl.json, pret: cl.pretty, help: cl.help,
				cache: cl.cache, timeout: cl.timeout, declares: cl.declares, eval: cl.eval, args: cl.args, evalArgs: cl.evalArgs, err: w.err}
			if got.dump != w.dump || got.noun != w.noun || got.live != w.live || got.json != w.json || got.pret != w.pret ||
				got.help != w.help || got.cache != w.cache || got.timeout != w.timeout || got.eval != w.eval ||
				!slices.Equal(got.declares, w.declares) || !slices.Equal(got.args, w.args) || !slices.Equal(got.evalArgs, w.evalArgs) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

// TestExitStatus: bpftool's nouns exit 255 on every error, as bpftool;
// the others 2 on a usage error and 1 on another.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"-h"}, 0, "Commands:"},
		{[]string{"prog", "help"}, 0, "prog dump xlated PROG"},
		{[]string{"prog", "show", "-h"}, 0, "prog dump xlated PROG"},
		{[]string{"-c", "D", "ps", "--help"}, 0, "Lists every task like crash's ps"},
		{[]string{"version", "-h"}, 0, "Prints kinspect's version"},
		{[]string{"completion", "bash"}, 0, "complete -F _kinspect kinspect"},
		// bpftool's nouns: 255.
		{[]string{"prog", "bogus"}, 255, `unknown command "bogus"`},
		{[]string{"prog", "show", "id"}, 255, "wants a value"},
		{[]string{"prog", "show"}, 255, "give -c DUMP or --live"},
		{[]string{"--json", "map", "dump", "id", "1"}, 255, `{"error":`},
		{[]string{"map", "dump", "id", "1", "-c"}, 255, "-c wants a value"},
		{[]string{"link", "show", "--frob"}, 255, "unexpected arguments"},
		{[]string{"btf"}, 255, "want a subcommand"},
		{[]string{"struct_ops", "show", "id", "0"}, 255, "invalid id 0"},
		{[]string{"feature", "--page-cache", "-1", "-c", "D"}, 255, "want MiB >= 0"},
		{[]string{"-f", "map", "show"}, 255, `unknown option "-f"`},
		// The others: 2 for usage, 1 for other errors.
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"-c"}, 2, "-c wants a value"},
		{[]string{"ps"}, 2, "give -c DUMP or --live"},
		{[]string{"bt", "x1"}, 2, `"x1" is not a PID`},
		{[]string{"version", "extra"}, 2, "takes no arguments"},
		{[]string{"completion", "tcsh"}, 2, "want one of bash, fish, zsh"},
		{[]string{"ps", "-e", "1"}, 2, "-e evaluates an expression and takes no command"},
		{[]string{"script", "/nonexistent.js", "-h"}, 1, "no such file"}, // -h is the script's
		{[]string{"-c", "/nonexistent", "dmesg"}, 1, "/nonexistent"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			code := run(tc.args, &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, want %d and %q; output:\n%.600s", code, tc.code, tc.want, out.String())
			}
		})
	}
}

// TestGlobalOptionsAnywhere: the BPF commands print bpftool's JSON with
// --json, -j and --pretty after the command, as bpftool reads them.
func TestGlobalOptionsAnywhere(t *testing.T) {
	s := labdata.Require(t, "basic")
	d := s.Path("dumps/elf")
	want := func(f string) []byte {
		b, err := os.ReadFile(s.Path("truth/bpftool/" + f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var hash string
	for _, id := range truthValues(t, s, "map.json", "id") {
		if rc, _ := os.ReadFile(s.Path("truth/maps/" + id + ".json.rc")); strings.TrimSpace(string(rc)) == "0" {
			var out bytes.Buffer
			run([]string{"-c", d, "map", "show", "id", id, "-j"}, &out, &out)
			if strings.Contains(out.String(), `"type":"hash"`) {
				hash = id
				break
			}
		}
	}
	if hash == "" {
		t.Fatal("no hash map bpftool could dump in the truth")
	}
	// bpftool cannot list the hidden program and link, nor name the
	// program among its BTF's users (labdata.Hidden).
	h := s.Hidden(t)
	for _, tc := range []struct {
		args   []string
		truth  string
		pretty bool
	}{
		{[]string{"-c", d, "prog", "show", "--json"}, "prog.json", false},
		{[]string{"prog", "show", "-c", d, "-j"}, "prog.json", false},
		{[]string{"prog", "--core=" + d, "show", "-p"}, "prog.json", true},
		{[]string{"map", "show", "-j", "-p", "-c", d}, "map.json", true},
		{[]string{"-c", d, "map", "dump", "id", hash, "--json"}, "../maps/" + hash + ".json", false},
		{[]string{"-c", d, "link", "show", "--pretty"}, "link.json", true},
		{[]string{"btf", "show", "-c", d, "--json"}, "btf.json", false},
		{[]string{"struct_ops", "show", "-jc", d}, "struct_ops.json", false},
	} {
		t.Run(strings.ReplaceAll(strings.Join(tc.args, " "), d, "DUMP"), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			got := out.Bytes()
			switch tc.truth {
			case "prog.json":
				got = labdata.DropJSON(got, h.Progs)
			case "link.json":
				got = labdata.DropJSON(got, h.Links)
			case "btf.json":
				got = labdata.DropBTFJSON(got, h.Progs)
			}
			jsonEqual(t, strings.Join(tc.args, " "), got, want(tc.truth))
			if indented := bytes.Contains(out.Bytes(), []byte("\n ")); indented != tc.pretty {
				t.Errorf("indented %v, want %v:\n%.300s", indented, tc.pretty, out.String())
			}
		})
	}
	// bpftool's exit status on an error of a dump's command.
	var out bytes.Buffer
	if code := run([]string{"map", "dump", "id", "99999", "-c", d, "--json"}, &out, &out); code != 255 || !strings.HasPrefix(out.String(), `{"error":`) {
		t.Errorf("map dump id 99999: exit %d: %s", code, out.String())
	}
	// -e's arguments are kinspect.args.
	out.Reset()
	if code := run([]string{"-e", "kinspect.args.join('+')", "a", "-c", d, "b"}, &out, &out); code != 0 || out.String() != "a+b\n" {
		t.Errorf("-e with arguments: exit %d: %q", code, out.String())
	}
}

// TestOptionCollisions: no command has an option spelled as a global
// one but script's --timeout (which means the same, for the script), so
// that -c, -j, -p, -e and -h mean the same after every command; where a
// command has one, its own wins after its name.
func TestOptionCollisions(t *testing.T) {
	// crash's own spellings, which its users type: rd -p and search -p
	// (physical), search -e (end), files -p (an inode's pages); --pretty
	// and -e EXPR stay global there.
	allowed := map[string]bool{"script --timeout": true, "rd -p": true, "search -p": true, "search -e": true, "files -p": true}
	forEachCommand(func(path []string, noun, c *command) {
		for _, o := range optionsOf(noun, c) {
			for _, n := range []string{o.short, o.long} {
				if n == "" || findOption(globalOptions, n) == nil {
					continue
				}
				if !allowed[path[0]+" "+n] {
					t.Errorf("%s: option %s is also a global option", path, n)
				}
			}
		}
	})
	cl, err := parseLine([]string{"script", "--timeout", "3s", "f.js"})
	if err != nil || cl.timeout != 0 || !slices.Equal(cl.args, []string{"--timeout", "3s", "f.js"}) {
		t.Errorf("script --timeout: %v %v %q", err, cl.timeout, cl.args)
	}
}
