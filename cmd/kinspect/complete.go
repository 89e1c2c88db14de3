package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/linux"
)

// "kinspect __complete WORD... CUR" is what the completion scripts
// (completion.go) call, as cobra's scripts call "__complete": WORDs are
// the words of the line after "kinspect", CUR the word being completed
// (maybe empty). It prints the candidates for CUR, one a line as
// "WORD\tDESCRIPTION" (or "WORD"), then ":N", a directive for the
// shell: 0, nothing more; 1, complete file names (the candidates are
// none). Nouns, verbs, keywords and options come from the command
// tables (command.syntax, command.opts); with -c DUMP or --live on the
// line, the values of PROG_ID, MAP_NAME, PID, ... are read from the
// kernel (valueCompleters).

func init() {
	register(&command{name: "__complete", summary: "the candidates completing a command line", run: runComplete, raw: true, hidden: true})
}

// candidate is one completion.
type candidate struct {
	word, desc string
}

// The directives the completion scripts read.
const (
	directiveNone  = 0
	directiveFiles = 1
)

func runComplete(e *env, args []string) error {
	cands, dir := completeLine(args)
	w := bufio.NewWriter(e.stdout)
	for _, c := range cands {
		w.WriteString(c.word)
		if c.desc != "" {
			w.WriteString("\t" + strings.ReplaceAll(c.desc, "\n", " "))
		}
		w.WriteByte('\n')
	}
	fmt.Fprintf(w, ":%d\n", dir)
	return w.Flush()
}

// completeLine returns the candidates completing the last of words.
func completeLine(words []string) ([]candidate, int) {
	if len(words) == 0 {
		words = []string{""}
	}
	words = joinEquals(words)
	for i := range words[:len(words)-1] {
		words[i] = unquote(words[i])
	}
	cur := words[len(words)-1]
	cl, _ := parseLine(words[:len(words)-1])
	if cl.pending != nil {
		return optionValues(cl.pending, "", cur)
	}
	if cl.cmd != nil && cl.cmd.raw {
		return nil, directiveNone
	}
	if strings.HasPrefix(cur, "-") && !cl.literal {
		if name, v, ok := strings.Cut(cur, "="); ok && strings.HasPrefix(cur, "--") {
			o := cl.cmd.option(name)
			if o == nil {
				o = findOption(globalOptions, name)
			}
			if o == nil || o.value == "" {
				return nil, directiveNone
			}
			return optionValues(o, name+"=", v)
		}
		return optionCandidates(cl, cur), directiveNone
	}
	switch {
	case cl.verbatim:
		return nil, directiveFiles
	case cl.evalGiven && cl.noun == "":
		return nil, directiveNone // -e's arguments
	case cl.noun == "":
		return commandCandidates(commands, cur), directiveNone
	case cl.cmd == nil:
		return nil, directiveNone
	}
	verb, args, vals := splitArgs(cl.cmd, cl.args)
	c := cl.cmd
	if c.verbs != nil {
		if verb == nil {
			if len(args) == 0 {
				return commandCandidates(c.verbs, cur), directiveNone
			}
			return nil, directiveNone // not a verb
		}
		c = verb
	}
	syn, err := parseSyntax(c.syntax)
	if err != nil {
		return nil, directiveNone
	}
	terms, _ := syn.next(args)
	var out []candidate
	dir := directiveNone
	values := &kernelValues{cl: cl, kallsyms: vals[optKallsyms]}
	defer values.close()
	for _, t := range terms {
		if !isValue(t.word) {
			out = append(out, candidate{word: t.word})
			continue
		}
		if fileValue(t.word) {
			dir = directiveFiles
			continue
		}
		out = append(out, values.of(t.word)...)
	}
	return filterCandidates(out, cur), dir
}

// splitArgs takes a command's arguments apart: its verb (a noun's),
// the words its syntax reads, and the values of its options.
func splitArgs(c *command, args []string) (verb *command, words []string, vals map[*option]string) {
	vals = map[*option]string{}
	unknownVerb := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if o := c.option(a); o != nil {
			if o.value != "" && i+1 < len(args) {
				i++
				vals[o] = args[i]
			}
			continue
		}
		if a == "--" {
			continue
		}
		if c.verbs != nil && verb == nil && !unknownVerb {
			v, err := lookup(c.verbs, a)
			if err != nil {
				unknownVerb = true
				words = append(words, a)
				continue
			}
			verb = v
			continue
		}
		words = append(words, a)
	}
	return verb, words, vals
}

// optionCandidates are the options of the line's command (its verb's
// and its own) and the global ones.
func optionCandidates(cl cmdline, cur string) []candidate {
	var opts []*option
	if cl.cmd != nil {
		verb, _, _ := splitArgs(cl.cmd, cl.args)
		opts = append(opts, cl.cmd.opts...)
		if verb != nil {
			opts = append(opts, verb.opts...)
		} else {
			for _, v := range cl.cmd.verbs {
				opts = append(opts, v.opts...)
			}
		}
	}
	for _, o := range globalOptions {
		if cl.cmd.option(o.short) == nil && cl.cmd.option(o.long) == nil {
			opts = append(opts, o)
		}
	}
	var out []candidate
	seen := map[string]bool{}
	for _, o := range opts {
		for _, n := range []string{o.long, o.short} {
			if n != "" && !seen[n] && strings.HasPrefix(n, cur) {
				seen[n] = true
				out = append(out, candidate{word: n, desc: o.help})
			}
		}
	}
	return out
}

// optionValues completes the value of o, prefixed by prefix ("--order=").
func optionValues(o *option, prefix, cur string) ([]candidate, int) {
	if fileValue(o.value) {
		return nil, directiveFiles
	}
	var out []candidate
	for _, c := range o.choices {
		if strings.HasPrefix(c, cur) {
			out = append(out, candidate{word: prefix + c})
		}
	}
	return out, directiveNone
}

// fileValue says a value is a file's name.
func fileValue(v string) bool {
	return v == "FILE" || v == "DUMP"
}

func commandCandidates(table []*command, cur string) []candidate {
	var out []candidate
	for _, c := range table {
		if !c.hidden && strings.HasPrefix(c.name, cur) {
			out = append(out, candidate{word: c.name, desc: c.summary})
		}
	}
	return out
}

// filterCandidates keeps the candidates cur begins, once each.
func filterCandidates(cands []candidate, cur string) []candidate {
	var out []candidate
	seen := map[string]bool{}
	for _, c := range cands {
		if strings.HasPrefix(c.word, cur) && !seen[c.word] {
			seen[c.word] = true
			out = append(out, c)
		}
	}
	return out
}

// joinEquals undoes bash's split of "--opt=value" into "--opt", "=",
// "value" (COMP_WORDBREAKS has '=').
func joinEquals(words []string) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "=" && len(out) > 0 && strings.HasPrefix(out[len(out)-1], "--") && !strings.Contains(out[len(out)-1], "=") {
			out[len(out)-1] += "="
			if i+1 < len(words) {
				i++
				out[len(out)-1] += words[i]
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

// unquote undoes the quoting a word has on a bash line: one pair of
// quotes around it, backslash escapes, a leading ~/.
func unquote(w string) string {
	if len(w) >= 2 && (w[0] == '\'' || w[0] == '"') && w[len(w)-1] == w[0] {
		w = w[1 : len(w)-1]
	} else if strings.Contains(w, `\`) {
		var b strings.Builder
		for i := 0; i < len(w); i++ {
			if w[i] == '\\' && i+1 < len(w) {
				i++
			}
			b.WriteByte(w[i])
		}
		w = b.String()
	}
	if rest, ok := strings.CutPrefix(w, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			w = filepath.Join(home, rest)
		}
	}
	return w
}

// kernelValues reads values from the kernel the line names, opening it
// on first use; with no -c or --live on the line there are none.
type kernelValues struct {
	cl       cmdline
	kallsyms string
	k        *kinspect.Kernel
	failed   bool
}

func (kv *kernelValues) kernel() *kinspect.Kernel {
	if kv.k == nil && !kv.failed {
		if kv.cl.dump == "" && !kv.cl.live {
			kv.failed = true
			return nil
		}
		k, err := openKernel(&env{globals: kv.cl.globals}, kv.kallsyms)
		if err != nil {
			kv.failed = true
			return nil
		}
		kv.k = k
	}
	return kv.k
}

func (kv *kernelValues) close() {
	if kv.k != nil {
		kv.k.Close()
	}
}

// of lists the values of a placeholder of the syntax.
func (kv *kernelValues) of(value string) []candidate {
	f := valueCompleters[value]
	if f == nil {
		return nil
	}
	k := kv.kernel()
	if k == nil {
		return nil
	}
	return f(k)
}

// valueCompleters list the kernel's values of the syntax's placeholders.
var valueCompleters = map[string]func(k *kinspect.Kernel) []candidate{
	"PROG_ID": func(k *kinspect.Kernel) (out []candidate) {
		for p, err := range bpf.ProgForEach(k.Program()) {
			if err != nil || p == nil {
				break
			}
			out = append(out, candidate{strconv.FormatUint(uint64(p.ID), 10), p.TypeName + " " + p.FullName()})
		}
		return out
	},
	"PROG_NAME": func(k *kinspect.Kernel) (out []candidate) {
		for p, err := range bpf.ProgForEach(k.Program()) {
			if err != nil || p == nil {
				break
			}
			out = append(out, candidate{p.FullName(), fmt.Sprintf("%s id %d", p.TypeName, p.ID)})
		}
		return out
	},
	"PROG_TAG": func(k *kinspect.Kernel) (out []candidate) {
		for p, err := range bpf.ProgForEach(k.Program()) {
			if err != nil || p == nil {
				break
			}
			out = append(out, candidate{fmt.Sprintf("%x", p.Tag), fmt.Sprintf("%s id %d", p.FullName(), p.ID)})
		}
		return out
	},
	"MAP_ID": func(k *kinspect.Kernel) (out []candidate) {
		for m, err := range bpf.MapForEach(k.Program()) {
			if err != nil || m == nil {
				break
			}
			out = append(out, candidate{strconv.FormatUint(uint64(m.ID), 10), m.TypeName + " " + m.Name})
		}
		return out
	},
	"MAP_NAME": func(k *kinspect.Kernel) (out []candidate) {
		for m, err := range bpf.MapForEach(k.Program()) {
			if err != nil || m == nil {
				break
			}
			out = append(out, candidate{m.Name, fmt.Sprintf("%s id %d", m.TypeName, m.ID)})
		}
		return out
	},
	"LINK_ID": func(k *kinspect.Kernel) (out []candidate) {
		for l, err := range bpf.LinkForEach(k.Program()) {
			if l == nil {
				break
			}
			if err == nil {
				out = append(out, candidate{strconv.FormatUint(uint64(l.ID), 10), fmt.Sprintf("%s prog %d", l.TypeName, l.ProgID)})
			}
		}
		return out
	},
	"BTF_ID": func(k *kinspect.Kernel) (out []candidate) {
		for b, err := range bpf.BTFForEach(k.Program()) {
			if b == nil {
				break
			}
			if err == nil {
				out = append(out, candidate{strconv.FormatUint(uint64(b.ID), 10), b.Name})
			}
		}
		return out
	},
	"STRUCT_OPS_ID": func(k *kinspect.Kernel) (out []candidate) {
		for s, err := range bpf.StructOpsForEach(k.Program()) {
			if err != nil || s == nil {
				break
			}
			out = append(out, candidate{strconv.FormatUint(uint64(s.Map.ID), 10), s.Map.Name + " " + s.KernelStruct})
		}
		return out
	},
	"STRUCT_OPS_NAME": func(k *kinspect.Kernel) (out []candidate) {
		for s, err := range bpf.StructOpsForEach(k.Program()) {
			if err != nil || s == nil {
				break
			}
			out = append(out, candidate{s.Map.Name, fmt.Sprintf("%s id %d", s.KernelStruct, s.Map.ID)})
		}
		return out
	},
	"PID": func(k *kinspect.Kernel) (out []candidate) {
		type task struct {
			tid  int
			comm string
		}
		var tasks []task
		for v, err := range linux.ForEachTask(k.Program()) {
			if err != nil {
				break
			}
			t, err := linux.NewTask(v)
			if err != nil {
				continue
			}
			tasks = append(tasks, task{t.TID, t.Comm})
		}
		slices.SortFunc(tasks, func(a, b task) int { return a.tid - b.tid })
		for _, t := range tasks {
			out = append(out, candidate{strconv.Itoa(t.tid), t.comm})
		}
		return out
	},
}
