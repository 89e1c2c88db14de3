package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const manDir = "../../docs/man"

// TestManPagesFresh fails when docs/man differs from what "kinspect man"
// makes of the help texts and tables now: run go generate ./cmd/kinspect.
func TestManPagesFresh(t *testing.T) {
	pages := manPages()
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join(manDir, name))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./cmd/kinspect)", name, err)
			continue
		}
		if string(got) != want {
			t.Errorf("docs/man/%s is stale: run go generate ./cmd/kinspect\n%s", name, firstDiff(string(got), want))
		}
	}
	files, _ := filepath.Glob(filepath.Join(manDir, "*.1"))
	for _, f := range files {
		if _, ok := pages[filepath.Base(f)]; !ok {
			t.Errorf("docs/man/%s: no command makes it (run go generate ./cmd/kinspect)", filepath.Base(f))
		}
	}
	for _, want := range []string{"kinspect.1", "kinspect-prog.1", "kinspect-struct_ops.1", "kinspect-completion.1"} {
		if _, ok := pages[want]; !ok {
			t.Errorf("no %s", want)
		}
	}
	if _, ok := pages["kinspect-__complete.1"]; ok {
		t.Error("a page for the hidden __complete")
	}
}

// TestManPage: the pages say what the tables and help texts say.
func TestManPage(t *testing.T) {
	main := manPage(nil)
	for _, want := range []string{".SH SYNOPSIS", ".SH OPTIONS", `\fB\-c\fR, \fB\-\-core\fR \fIDUMP\fR`, ".SH EXIT STATUS", "255", `\fBkinspect\-prog\fR(1)`,
		".SH THE COMMAND LINE"} {
		if !strings.Contains(main, want) {
			t.Errorf("kinspect(1) lacks %q", want)
		}
	}
	c, _ := lookup(commands, "prog")
	prog := manPage(c)
	for _, want := range []string{
		`\fBkinspect\fR [\fIOPTIONS\fR] \fBprog\fR \fBdump\fR \fBjited\fR \fIPROG\fR [\fBopcodes\fR | \fBlinum\fR] [\fB\-k\fR \fIFILE\fR]`,
		`\fIPROG\fR := \fBid\fR \fIPROG_ID\fR`,
		"reconstructs them from the xlated instructions", // the help text
		`\fBbpftool\-prog\fR(8)`, "255 on an error",
	} {
		if !strings.Contains(prog, want) {
			t.Errorf("kinspect-prog(1) lacks %q", want)
		}
	}
	if strings.Contains(prog, "Usage:") {
		t.Error("kinspect-prog(1) keeps the help's Usage line")
	}
	// Lines beginning with a roff control character are escaped.
	if got := helpToRoff("a\n.b\n'c\n  -d \\e\n"); got != "a\n\\&.b\n\\&'c\n.PP\n.RS 4\n.nf\n\\-d \\ee\n.fi\n.RE\n" {
		t.Errorf("helpToRoff: %q", got)
	}
	var out bytes.Buffer
	if code := run([]string{"man", "ps"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), `.\" Generated`) || !strings.Contains(out.String(), ".TH KINSPECT-PS 1") {
		t.Errorf("kinspect man ps: exit %d: %.200s", code, out.String())
	}
	if code := run([]string{"man", "nosuch"}, &out, &out); code != 2 {
		t.Errorf("kinspect man nosuch: exit %d", code)
	}
}

// TestManPagesRender: mandoc finds nothing wrong (but the empty date,
// left out so that the pages do not change by themselves), and man
// renders each page.
func TestManPagesRender(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(manDir, "*.1"))
	if len(files) == 0 {
		t.Fatal("no pages in docs/man")
	}
	mandoc, errMandoc := exec.LookPath("mandoc")
	man, errMan := exec.LookPath("man")
	if errMandoc != nil && errMan != nil {
		t.Skip("neither mandoc nor man installed")
	}
	for _, f := range files {
		if errMandoc == nil {
			out, _ := exec.Command(mandoc, "-Tlint", "-W", "warning", f).CombinedOutput()
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if l != "" && !strings.Contains(l, "missing date") {
					t.Errorf("mandoc: %s", l)
				}
			}
		}
		if errMan == nil {
			cmd := exec.Command(man, "-l", f)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
			out, err := cmd.Output()
			name := strings.ToUpper(strings.TrimSuffix(filepath.Base(f), ".1"))
			if err != nil || !bytes.Contains(out, []byte("SYNOPSIS")) || !bytes.HasPrefix(out, []byte(name+"(1)")) {
				t.Errorf("man -l %s: %v:\n%.300s", f, err, out)
			}
			if slices.Contains([]string{"KINSPECT-PROG", "KINSPECT-MAP"}, name) && !bytes.Contains(out, []byte("bpftool")) {
				t.Errorf("man -l %s: no bpftool", f)
			}
		}
	}
}
