package main

import (
	"fmt"
	"strings"
	"unicode"
)

// A command's arguments are declared in its table (command.syntax) in
// bpftool's help notation, and that one declaration drives completion,
// the man page's synopsis and the tests that hold the parsers to it:
//
//	keyword          a word typed as is (lower case): id, xlated, format
//	VALUE            a value (upper case): PROG_ID, FILE, PID; the
//	                 placeholders below expand to their definitions
//	[ X ]            X or nothing
//	{ X | Y }        X or Y ("X | Y" alone at the top level too)
//	X...             X once or more
//
// Keywords match any prefix the user types, as bpftool's is_prefix; a
// value matches any word but a keyword of the syntax, typed in full
// (in "TYPE... [format c]", "format" ends the TYPEs).

// placeholders are the values defined by other syntax, as bpftool's
// HELP_SPEC_PROGRAM and HELP_SPEC_MAP.
var placeholders = map[string]string{
	"PROG":           "id PROG_ID | tag PROG_TAG | name PROG_NAME | pinned FILE",
	"MAP":            "id MAP_ID | name MAP_NAME | pinned FILE",
	"STRUCT_OPS_MAP": "id STRUCT_OPS_ID | name STRUCT_OPS_NAME",
}

type synKind int

const (
	synWord synKind = iota // a keyword or a value
	synSeq                 // kids in order
	synAlt                 // one of kids
	synOpt                 // kids[0] or nothing
	synRep                 // kids[0] once or more
)

// synNode is a parsed syntax.
type synNode struct {
	kind synKind
	word string // synWord
	kids []*synNode
}

// isValue says a word of the notation is a value (upper case), not a keyword.
func isValue(w string) bool {
	r := []rune(w)
	return len(r) > 0 && unicode.IsUpper(r[0])
}

// parseSyntax parses the notation; "" is the empty sequence.
func parseSyntax(s string) (*synNode, error) {
	return parseSyntaxDepth(s, 0)
}

func parseSyntaxDepth(s string, depth int) (*synNode, error) {
	if depth > 8 {
		return nil, fmt.Errorf("syntax %q: placeholders nest too deep", s)
	}
	p := &synParser{toks: synTokens(s), depth: depth}
	n, err := p.alt()
	if err != nil {
		return nil, fmt.Errorf("syntax %q: %w", s, err)
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("syntax %q: unexpected %q", s, p.toks[p.i])
	}
	return n, nil
}

// synTokens splits the notation into words, brackets, bars and "...".
func synTokens(s string) []string {
	var toks []string
	word := func(w string) {
		if rest, ok := strings.CutSuffix(w, "..."); ok && rest != "" {
			toks = append(toks, rest, "...")
			return
		}
		if w != "" {
			toks = append(toks, w)
		}
	}
	start := 0
	for i, r := range s {
		switch r {
		case ' ', '\t', '\n', '[', ']', '{', '}', '|':
			word(s[start:i])
			if r != ' ' && r != '\t' && r != '\n' {
				toks = append(toks, string(r))
			}
			start = i + 1
		}
	}
	word(s[start:])
	return toks
}

type synParser struct {
	toks  []string
	i     int
	depth int
}

func (p *synParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *synParser) alt() (*synNode, error) {
	var alts []*synNode
	for {
		s, err := p.seq()
		if err != nil {
			return nil, err
		}
		alts = append(alts, s)
		if p.peek() != "|" {
			break
		}
		p.i++
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &synNode{kind: synAlt, kids: alts}, nil
}

func (p *synParser) seq() (*synNode, error) {
	var items []*synNode
	for {
		switch p.peek() {
		case "", "|", "]", "}":
			if len(items) == 1 {
				return items[0], nil
			}
			return &synNode{kind: synSeq, kids: items}, nil
		}
		n, err := p.item()
		if err != nil {
			return nil, err
		}
		items = append(items, n)
	}
}

func (p *synParser) item() (*synNode, error) {
	var n *synNode
	switch t := p.toks[p.i]; t {
	case "[", "{":
		p.i++
		inner, err := p.alt()
		if err != nil {
			return nil, err
		}
		closing := map[string]string{"[": "]", "{": "}"}[t]
		if p.peek() != closing {
			return nil, fmt.Errorf("%q without %q", t, closing)
		}
		p.i++
		n = inner
		if t == "[" {
			n = &synNode{kind: synOpt, kids: []*synNode{inner}}
		}
	case "...":
		return nil, fmt.Errorf("\"...\" follows nothing")
	default:
		p.i++
		n = &synNode{kind: synWord, word: t}
		if def, ok := placeholders[t]; ok {
			var err error
			if n, err = parseSyntaxDepth(def, p.depth+1); err != nil {
				return nil, err
			}
		}
	}
	if p.peek() == "..." {
		p.i++
		n = &synNode{kind: synRep, kids: []*synNode{n}}
	}
	return n, nil
}

// matches says the typed word w stands for the word node n: any word
// but a reserved one for a value, a prefix of a keyword (bpftool's
// is_prefix).
func (n *synNode) matches(w string, reserved map[string]bool) bool {
	if isValue(n.word) {
		return !reserved[w]
	}
	return w != "" && strings.HasPrefix(n.word, w)
}

// next returns the words (keyword and value nodes) that may follow
// words in n, and whether n may end after them.
func (n *synNode) next(words []string) (terms []*synNode, end bool) {
	seen := map[*synNode]bool{}
	reserved := map[string]bool{}
	for _, k := range n.keywords() {
		reserved[k] = true
	}
	n.walk(words, reserved, func(rest []string) {
		if len(rest) == 0 {
			end = true
		}
	}, func(t *synNode) {
		if !seen[t] {
			seen[t] = true
			terms = append(terms, t)
		}
	})
	return terms, end
}

// walk matches n against a prefix of words in every way it can, calling
// cont with what is left after each; a word node met with no words left
// is passed to want (it could come next).
func (n *synNode) walk(words []string, reserved map[string]bool, cont func([]string), want func(*synNode)) {
	switch n.kind {
	case synWord:
		if len(words) == 0 {
			want(n)
		} else if n.matches(words[0], reserved) {
			cont(words[1:])
		}
	case synSeq:
		var step func(i int, rest []string)
		step = func(i int, rest []string) {
			if i == len(n.kids) {
				cont(rest)
				return
			}
			n.kids[i].walk(rest, reserved, func(r []string) { step(i+1, r) }, want)
		}
		step(0, words)
	case synAlt:
		for _, k := range n.kids {
			k.walk(words, reserved, cont, want)
		}
	case synOpt:
		cont(words)
		n.kids[0].walk(words, reserved, cont, want)
	case synRep:
		n.kids[0].walk(words, reserved, func(rest []string) {
			cont(rest)
			if len(rest) < len(words) {
				n.walk(rest, reserved, cont, want)
			}
		}, want)
	}
}

// accepts says words are a whole sentence of n.
func (n *synNode) accepts(words []string) bool {
	_, end := n.next(words)
	return end
}

// sentences lists sentences of n, values filled by fill: every
// alternative, optional parts with and without, repeats once and twice.
func (n *synNode) sentences(fill func(value string) string) [][]string {
	switch n.kind {
	case synWord:
		if isValue(n.word) {
			return [][]string{{fill(n.word)}}
		}
		return [][]string{{n.word}}
	case synSeq:
		out := [][]string{nil}
		for _, k := range n.kids {
			var next [][]string
			for _, head := range out {
				for _, tail := range k.sentences(fill) {
					next = append(next, append(append([]string(nil), head...), tail...))
				}
			}
			out = next
		}
		return out
	case synAlt:
		var out [][]string
		for _, k := range n.kids {
			out = append(out, k.sentences(fill)...)
		}
		return out
	case synOpt:
		return append([][]string{nil}, n.kids[0].sentences(fill)...)
	case synRep:
		one := n.kids[0].sentences(fill)
		out := append([][]string(nil), one...)
		for _, s := range one {
			out = append(out, append(append([]string(nil), s...), s...))
		}
		return out
	}
	return nil
}

// keywords lists the keywords of n, for the help and man page tests.
func (n *synNode) keywords() []string {
	var out []string
	var rec func(*synNode)
	rec = func(n *synNode) {
		if n.kind == synWord {
			if !isValue(n.word) {
				out = append(out, n.word)
			}
			return
		}
		for _, k := range n.kids {
			rec(k)
		}
	}
	rec(n)
	return out
}
