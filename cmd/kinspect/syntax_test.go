package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParseSyntax(t *testing.T) {
	for _, tc := range []struct {
		syntax string
		words  string
		next   []string // the words that may follow words
		end    bool     // words may end there
	}{
		{"", "", nil, true},
		{"", "x", nil, false},
		{"a b", "", []string{"a"}, false},
		{"a b", "a", []string{"b"}, false},
		{"a b", "a b", nil, true},
		{"[a] b", "", []string{"a", "b"}, false},
		{"{a | b} c", "b", []string{"c"}, false},
		{"a | b c", "", []string{"a", "b"}, false},
		{"a | b c", "a", nil, true},
		{"X...", "", []string{"X"}, false},
		{"X...", "1 2 3", []string{"X"}, true},
		{"[X...] [z]", "1", []string{"X", "z"}, true},
		{"TYPE... [format {c | layout}]", "t format", []string{"c", "layout"}, false},
		{"TYPE... [format {c | layout}]", "t fo", []string{"c", "layout", "format", "TYPE"}, true}, // a keyword's prefix, or a TYPE
		{"[PROG]", "", []string{"id", "tag", "name", "pinned"}, true},
		{"[PROG]", "i", []string{"PROG_ID"}, false},
		{"[PROG]", "name", []string{"PROG_NAME"}, false},
		{"xlated PROG [opcodes | linum | visual] | jited PROG [opcodes | linum]", "j id 3", []string{"opcodes", "linum"}, true},
		{"xlated PROG [opcodes | linum | visual] | jited PROG [opcodes | linum]", "xlated id 3 visual", nil, true},
		{"xlated PROG [opcodes | linum | visual] | jited PROG [opcodes | linum]", "jited id 3 visual", nil, false},
		{"id BTF_ID [format {raw | c}] | TYPE... [format {c | layout}]", "id 3 format", []string{"raw", "c"}, false},
	} {
		n, err := parseSyntax(tc.syntax)
		if err != nil {
			t.Errorf("%q: %v", tc.syntax, err)
			continue
		}
		terms, end := n.next(strings.Fields(tc.words))
		var got []string
		for _, tm := range terms {
			got = append(got, tm.word)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.next))
		if !slices.Equal(got, want) || end != tc.end {
			t.Errorf("%q after %q: %q end %v, want %q end %v", tc.syntax, tc.words, got, end, want, tc.end)
		}
	}
	for _, bad := range []string{"[a", "a]", "{a | b", "...", "a } b"} {
		if _, err := parseSyntax(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// forEachCommand calls f with each listed noun and verb, and the
// command whose syntax and options apply (the verb, or the noun).
func forEachCommand(f func(path []string, noun, c *command)) {
	for _, n := range commands {
		if n.hidden {
			continue
		}
		if n.verbs == nil {
			f([]string{n.name}, n, n)
			continue
		}
		for _, v := range n.verbs {
			f([]string{n.name, v.name}, n, v)
		}
	}
}

// TestSyntaxAgreesWithParsers: every sentence a command's syntax allows,
// and each of its options, pass the command's own parser, which, with
// no kernel to open, then stops at "give -c DUMP or --live" (or, for
// what opens none, succeeds). So the tables that completion and the
// man page read cannot drift from what the commands take.
func TestSyntaxAgreesWithParsers(t *testing.T) {
	// A FILE: a script for script, a /proc/kallsyms copy for -k.
	file := filepath.Join(t.TempDir(), "x.js")
	os.WriteFile(file, []byte("ffffffff81000000 T schedule\n"), 0o644)
	fill := func(v string) string {
		switch {
		case strings.HasSuffix(v, "_ID"):
			return "7"
		case strings.HasSuffix(v, "_NAME"):
			return "ki_x"
		}
		return map[string]string{"PROG_TAG": "0123456789abcdef", "FILE": file, "TYPE": "task_struct", "PID": "1",
			"SYMBOL": "schedule", "EXPR": "init_task.pid", "BYTE": "0x01", "ARG": "a", "N": "4", "D": "1s",
			"ADDR": "0xffffffff81000000", "PADDR": "0x1000", "CPU": "0", "OFFSET": "8", "VALUE": "0x1", "CACHE": "task_struct", "SELECTOR": "1", "NAME": "9p", "NAME-GLOB": "tcp_*", "PATH": "/proc", "INODE": "/etc/passwd", "NS_INODE": "4026531840"}[v]
	}
	accepted := func(args []string) (bool, string) {
		var out bytes.Buffer
		code := run(args, &out, &out)
		return code == 0 || strings.Contains(out.String(), errNoTarget.Error()), out.String()
	}
	forEachCommand(func(path []string, noun, c *command) {
		syn, err := parseSyntax(c.syntax)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		sentences := syn.sentences(fill)
		for _, s := range sentences {
			if fill("FILE") == "" || slices.Contains(s, "") {
				t.Fatalf("%s: a value without a sample: %q", path, s)
			}
			args := append(slices.Clone(path), s...)
			if ok, out := accepted(args); !ok {
				t.Errorf("%q: the syntax %q allows it, the command does not: %s", args, c.syntax, out)
			}
		}
		for _, o := range optionsOf(noun, c) {
			opt := []string{o.name()}
			if o.value != "" {
				v := fill(o.value)
				if o.choices != nil {
					v = o.choices[0]
				}
				opt = append(opt, v)
			}
			ok := false
			var out string
			for _, s := range sentences {
				args := append(append(slices.Clone(path), s...), opt...)
				if ok, out = accepted(args); ok {
					break
				}
			}
			if !ok {
				t.Errorf("%s %q: no sentence of %q takes it: %s", path, opt, c.syntax, out)
			}
		}
		// One word more than the syntax allows is refused by the syntax
		// (where a sentence ends in an optional value, "bogus" is that
		// value: it is the longer sentence that must refuse one more).
		longer := func(s []string) bool {
			return slices.ContainsFunc(sentences, func(l []string) bool { return len(l) == len(s)+1 && slices.Equal(l[:len(s)], s) })
		}
		for _, s := range sentences {
			if !strings.Contains(c.syntax, "...") && !longer(s) && syn.accepts(append(slices.Clone(s), "bogus")) {
				t.Errorf("%s: syntax %q accepts %q bogus", path, c.syntax, s)
			}
		}
	})
}

// TestHelpDocumentsSyntax: each keyword of a command's syntax, and one
// spelling at least of each of its options, appear in its noun's help.
func TestHelpDocumentsSyntax(t *testing.T) {
	forEachCommand(func(path []string, noun, c *command) {
		if noun.help == "" {
			t.Errorf("%s: no help", path[0])
			return
		}
		syn, _ := parseSyntax(c.syntax)
		for _, k := range syn.keywords() {
			if !strings.Contains(noun.help, k) {
				t.Errorf("%s: keyword %q is not in the help", path, k)
			}
		}
		for _, o := range optionsOf(noun, c) {
			short := regexp.MustCompile(`(^|[^\w-])` + o.short + `\b`)
			if !(o.short != "" && short.MatchString(noun.help) || o.long != "" && strings.Contains(noun.help, o.long)) {
				t.Errorf("%s: option %s is not in the help", path, o.spelling())
			}
		}
	})
}
