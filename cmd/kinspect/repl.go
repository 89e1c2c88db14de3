package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/script"
	"golang.org/x/term"
)

func init() {
	register(&command{name: "repl", summary: "interactive JavaScript over the kernel", run: runRepl, help: replHelp})
}

const replHelp = `Usage: kinspect [-c DUMP | --live] repl

An interactive JavaScript prompt with the globals of "kinspect script"
(kernel, kinspect, print, console). Each line is evaluated and its value
printed: kernel structs as drgn prints them, pointers with their type.
Tab completes globals and members (kernel.var("init_task").c<Tab>); the
arrow keys walk the history, kept in ~/.kinspect_history. A line that
ends inside a block continues on the next. Ctrl-C stops a running
evaluation; Ctrl-D (or .exit) leaves.

With stdin not a terminal, lines are read, evaluated and printed without
a prompt, so a session can be piped in.
`

const maxHistory = 1000

// replStdin is where the REPL reads (tests replace it).
var replStdin io.Reader = os.Stdin

func runRepl(e *env, args []string) error {
	if len(args) > 0 {
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprint(e.stdout, replHelp)
			return nil
		}
		return fmt.Errorf("repl takes no arguments: %w", errUsage)
	}
	k, err := openKernel(e, "")
	if err != nil {
		return err
	}
	defer k.Close()
	fd := int(os.Stdin.Fd())
	if f, ok := e.stdout.(*os.File); ok && f == os.Stdout && replStdin == os.Stdin && term.IsTerminal(fd) {
		return replTerminal(e, k, fd)
	}
	return replLines(e, k, replStdin)
}

// replLines evaluates the lines of r, printing each value (or error) to
// stdout; the REPL without a terminal.
func replLines(e *env, k *kinspect.Kernel, r io.Reader) error {
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	en, err := newEngine(k, w, w, nil, false)
	if err != nil {
		return err
	}
	defer en.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var pending strings.Builder
	var failed error
	for sc.Scan() {
		line := sc.Text()
		if pending.Len() == 0 && (strings.TrimSpace(line) == ".exit") {
			break
		}
		pending.WriteString(line + "\n")
		src := pending.String()
		if strings.TrimSpace(src) == "" {
			pending.Reset()
			continue
		}
		out, err := replEval(en, src)
		if errors.Is(err, errIncomplete) {
			continue
		}
		pending.Reset()
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			failed = err
			continue
		}
		if out != "" {
			fmt.Fprintln(w, out)
		}
		w.Flush()
	}
	if pending.Len() > 0 {
		if _, err := replEval(en, pending.String()); err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			failed = err
		}
	}
	if failed != nil {
		return fmt.Errorf("repl: the last error: %w", failed)
	}
	return sc.Err()
}

var errIncomplete = errors.New("incomplete input")

// replEval evaluates src under Ctrl-C; input that ends inside a block or
// string is incomplete.
func replEval(en *script.Engine, src string) (string, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, err := en.Eval(ctx, src)
	if err != nil && errors.Is(err, script.ErrScript) {
		msg := err.Error()
		if strings.Contains(msg, "Unexpected end of input") || strings.Contains(msg, "unexpected EOF") {
			return "", errIncomplete
		}
	}
	return out, err
}

// replTerminal is the interactive REPL on a terminal.
func replTerminal(e *env, k *kinspect.Kernel, fd int) error {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return replLines(e, k, os.Stdin)
	}
	defer term.Restore(fd, old)
	rw := struct {
		io.Reader
		io.Writer
	}{os.Stdin, os.Stdout}
	t := term.NewTerminal(rw, "kinspect> ")
	if w, h, err := term.GetSize(fd); err == nil {
		_ = t.SetSize(w, h)
	}
	hist := loadHistory()
	t.History = hist
	en, err := newEngine(k, t, t, nil, false)
	if err != nil {
		return err
	}
	defer en.Close()
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' {
			return "", 0, false
		}
		cands, start := en.Complete(line[:pos])
		switch len(cands) {
		case 0:
			return "", 0, false
		case 1:
			nl := line[:start] + cands[0] + line[pos:]
			return nl, start + len(cands[0]), true
		}
		common := cands[0]
		for _, c := range cands[1:] {
			for !strings.HasPrefix(c, common) {
				common = common[:len(common)-1]
			}
		}
		if len(common) > pos-start {
			nl := line[:start] + common + line[pos:]
			return nl, start + len(common), true
		}
		fmt.Fprintf(t, "\r\n%s\r\n", strings.Join(cands, "  "))
		return line, pos, true
	}
	var pending strings.Builder
	for {
		if pending.Len() > 0 {
			t.SetPrompt("... ")
		} else {
			t.SetPrompt("kinspect> ")
		}
		line, err := t.ReadLine()
		if err != nil {
			hist.save()
			if err == io.EOF {
				return nil
			}
			return err
		}
		if pending.Len() == 0 && strings.TrimSpace(line) == ".exit" {
			hist.save()
			return nil
		}
		pending.WriteString(line + "\n")
		out, err := replEval(en, pending.String())
		if errors.Is(err, errIncomplete) {
			continue
		}
		pending.Reset()
		if err != nil {
			fmt.Fprintf(t, "error: %v\n", err)
			continue
		}
		if out != "" {
			fmt.Fprintln(t, out)
		}
	}
}

// history is the REPL's history, most recent last, kept in a file.
type history struct {
	path  string
	lines []string
}

func loadHistory() *history {
	h := &history{}
	if home, err := os.UserHomeDir(); err == nil {
		h.path = filepath.Join(home, ".kinspect_history")
		if b, err := os.ReadFile(h.path); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if l != "" {
					h.lines = append(h.lines, l)
				}
			}
		}
	}
	if len(h.lines) > maxHistory {
		h.lines = h.lines[len(h.lines)-maxHistory:]
	}
	return h
}

func (h *history) Add(s string) {
	if s == "" || len(h.lines) > 0 && h.lines[len(h.lines)-1] == s {
		return
	}
	h.lines = append(h.lines, s)
	if len(h.lines) > maxHistory {
		h.lines = h.lines[1:]
	}
}

func (h *history) Len() int { return len(h.lines) }

func (h *history) At(i int) string { return h.lines[len(h.lines)-1-i] }

func (h *history) save() {
	if h.path == "" {
		return
	}
	_ = os.WriteFile(h.path, []byte(strings.Join(h.lines, "\n")+"\n"), 0o600)
}
