package btfload

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/cilium/ebpf/btf"
)

// TypeSyntax is a parsed C type name: "const struct list_head *[4]" is
// Base "struct list_head", Pointers 1, Dims [4].
type TypeSyntax struct {
	// Tag is "struct", "union", "enum" or "" for a typedef or base type.
	Tag string
	// Name is the tag's name, a typedef's name, or a base type's canonical
	// BTF spelling ("long unsigned int", "void").
	Name string
	// Pointers counts the '*'s.
	Pointers int
	// Dims are the array dimensions, outermost first.
	Dims []uint32
}

// String spells the type in C.
func (t TypeSyntax) String() string {
	var b strings.Builder
	if t.Tag != "" {
		b.WriteString(t.Tag + " ")
	}
	b.WriteString(t.Name)
	if t.Pointers > 0 {
		b.WriteString(" " + strings.Repeat("*", t.Pointers))
	}
	for _, d := range t.Dims {
		fmt.Fprintf(&b, "[%d]", d)
	}
	return b.String()
}

// token kinds of the type and declaration languages.
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c):
			j := i
			for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		case strings.ContainsRune("*[](),;", c):
			toks = append(toks, string(c))
			i++
		default:
			return nil, fmt.Errorf("unexpected %q at column %d of %q: %w", c, i+1, s, ErrFormat)
		}
	}
	return toks, nil
}

var intWords = map[string]bool{"signed": true, "unsigned": true, "char": true, "short": true, "int": true, "long": true, "_Bool": true, "__int128": true}

var qualifierWords = map[string]bool{"const": true, "volatile": true, "restrict": true, "__restrict": true}

// parseTypeSyntax reads a type name from toks, returning the tokens left.
func parseTypeSyntax(toks []string) (TypeSyntax, []string, error) {
	var t TypeSyntax
	skipQuals := func() {
		for len(toks) > 0 && qualifierWords[toks[0]] {
			toks = toks[1:]
		}
	}
	skipQuals()
	if len(toks) == 0 {
		return t, nil, fmt.Errorf("missing type name: %w", ErrFormat)
	}
	switch toks[0] {
	case "struct", "union", "enum":
		if len(toks) < 2 || !isIdent(toks[1]) {
			return t, nil, fmt.Errorf("%s without a name: %w", toks[0], ErrFormat)
		}
		t.Tag, t.Name, toks = toks[0], toks[1], toks[2:]
	default:
		var words []string
		for len(toks) > 0 && (intWords[toks[0]] || qualifierWords[toks[0]]) {
			if intWords[toks[0]] {
				words = append(words, toks[0])
			}
			toks = toks[1:]
		}
		if len(words) > 0 {
			name, err := canonicalInt(words)
			if err != nil {
				return t, nil, err
			}
			t.Name = name
		} else {
			if !isIdent(toks[0]) {
				return t, nil, fmt.Errorf("expected a type name, found %q: %w", toks[0], ErrFormat)
			}
			t.Name, toks = toks[0], toks[1:]
		}
	}
	skipQuals()
	for len(toks) > 0 && toks[0] == "*" {
		t.Pointers++
		toks = toks[1:]
		skipQuals()
	}
	dims, rest, err := parseDims(toks)
	if err != nil {
		return t, nil, err
	}
	t.Dims = dims
	return t, rest, nil
}

func parseDims(toks []string) ([]uint32, []string, error) {
	var dims []uint32
	for len(toks) > 0 && toks[0] == "[" {
		if len(toks) < 3 || toks[2] != "]" {
			return nil, nil, fmt.Errorf("array dimension: want [N]: %w", ErrFormat)
		}
		n, err := strconv.ParseUint(toks[1], 0, 32)
		if err != nil {
			return nil, nil, fmt.Errorf("array dimension %q: %w", toks[1], ErrFormat)
		}
		dims = append(dims, uint32(n))
		toks = toks[3:]
	}
	return dims, toks, nil
}

func isIdent(s string) bool {
	if s == "" || !(s[0] == '_' || unicode.IsLetter(rune(s[0]))) {
		return false
	}
	for _, c := range s {
		if !(c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c)) {
			return false
		}
	}
	return true
}

// canonicalInt maps C integer specifiers, in any order, to the spelling
// gcc writes into DWARF and so BTF: "unsigned long" → "long unsigned int".
func canonicalInt(words []string) (string, error) {
	n := map[string]int{}
	for _, w := range words {
		n[w]++
	}
	bad := func() (string, error) {
		return "", fmt.Errorf("%q is not a C integer type: %w", strings.Join(words, " "), ErrFormat)
	}
	if n["signed"] > 0 && n["unsigned"] > 0 || n["short"] > 0 && n["long"] > 0 || n["long"] > 2 {
		return bad()
	}
	switch {
	case n["_Bool"] > 0:
		if len(words) != 1 {
			return bad()
		}
		return "_Bool", nil
	case n["__int128"] > 0:
		if n["unsigned"] > 0 {
			return "__int128 unsigned", nil
		}
		return "__int128", nil
	case n["char"] > 0:
		if n["short"]+n["long"]+n["int"] > 0 {
			return bad()
		}
		switch {
		case n["unsigned"] > 0:
			return "unsigned char", nil
		case n["signed"] > 0:
			return "signed char", nil
		}
		return "char", nil
	}
	u := n["unsigned"] > 0
	switch {
	case n["short"] > 0:
		if u {
			return "short unsigned int", nil
		}
		return "short int", nil
	case n["long"] == 2:
		if u {
			return "long long unsigned int", nil
		}
		return "long long int", nil
	case n["long"] == 1:
		if u {
			return "long unsigned int", nil
		}
		return "long int", nil
	}
	if u {
		return "unsigned int", nil
	}
	return "int", nil
}

// baseInts describes the C integer types, for synthesizing one the BTF
// does not hold (BTF only has the types vmlinux uses).
var baseInts = map[string]btf.Int{
	"_Bool":                  {Name: "_Bool", Size: 1, Encoding: btf.Bool},
	"char":                   {Name: "char", Size: 1, Encoding: btf.Signed | btf.Char},
	"signed char":            {Name: "signed char", Size: 1, Encoding: btf.Signed | btf.Char},
	"unsigned char":          {Name: "unsigned char", Size: 1, Encoding: btf.Char},
	"short int":              {Name: "short int", Size: 2, Encoding: btf.Signed},
	"short unsigned int":     {Name: "short unsigned int", Size: 2},
	"int":                    {Name: "int", Size: 4, Encoding: btf.Signed},
	"unsigned int":           {Name: "unsigned int", Size: 4},
	"long int":               {Name: "long int", Size: 8, Encoding: btf.Signed},
	"long unsigned int":      {Name: "long unsigned int", Size: 8},
	"long long int":          {Name: "long long int", Size: 8, Encoding: btf.Signed},
	"long long unsigned int": {Name: "long long unsigned int", Size: 8},
	"__int128":               {Name: "__int128", Size: 16, Encoding: btf.Signed},
	"__int128 unsigned":      {Name: "__int128 unsigned", Size: 16},
}

// ParseType parses a C type name without resolving it.
func ParseType(s string) (TypeSyntax, error) {
	toks, err := tokenize(s)
	if err != nil {
		return TypeSyntax{}, fmt.Errorf("type %q: %w", s, err)
	}
	t, rest, err := parseTypeSyntax(toks)
	if err != nil {
		return t, fmt.Errorf("type %q: %w", s, err)
	}
	if len(rest) > 0 {
		return t, fmt.Errorf("type %q: unexpected %q: %w", s, rest[0], ErrFormat)
	}
	return t, nil
}

// Type resolves a C type name: "struct task_struct", "task_struct" (any
// struct, union, enum or typedef of that name; typedefs and base types
// first), "unsigned long", "u64", "char *", "struct list_head [4]".
// Pointer and array types are built on the fly. Errors wrap ErrFormat for
// bad syntax or ErrNotFound, with the closest names the BTF has.
func (s *Spec) Type(name string) (btf.Type, error) { return s.lookup(name, true) }

// Lookup is Type without the search for close names on a miss (what
// costs when a miss is expected: a type that only a module's BTF has).
func (s *Spec) Lookup(name string) (btf.Type, error) { return s.lookup(name, false) }

func (s *Spec) lookup(name string, suggest bool) (btf.Type, error) {
	s.mu.Lock()
	t, ok := s.byName[name]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	syn, err := ParseType(name)
	if err != nil {
		return nil, err
	}
	t, err = s.resolve(syn, suggest)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.byName[name] = t
	s.mu.Unlock()
	return t, nil
}

// Resolve builds the type a TypeSyntax names.
func (s *Spec) Resolve(syn TypeSyntax) (btf.Type, error) { return s.resolve(syn, true) }

func (s *Spec) resolve(syn TypeSyntax, suggest bool) (btf.Type, error) {
	t, err := s.named(syn.Tag, syn.Name, suggest)
	if err != nil {
		return nil, err
	}
	for range syn.Pointers {
		t = &btf.Pointer{Target: t}
	}
	for i := len(syn.Dims) - 1; i >= 0; i-- {
		t = &btf.Array{Index: &btf.Int{Name: "unsigned int", Size: 4}, Type: t, Nelems: syn.Dims[i]}
	}
	return t, nil
}

// named finds the type of a tag (or none) and name.
func (s *Spec) named(tag, name string, suggest bool) (btf.Type, error) {
	if tag == "" && name == "void" {
		return (*btf.Void)(nil), nil
	}
	cands := s.anyByName(name)
	rank := func(t btf.Type) int {
		switch t := t.(type) {
		case *btf.Struct:
			if tag == "struct" || tag == "" {
				return 3
			}
		case *btf.Union:
			if tag == "union" || tag == "" {
				return 3
			}
		case *btf.Enum:
			if tag == "enum" || tag == "" {
				return 3
			}
		case *btf.Typedef, *btf.Int, *btf.Float:
			if tag == "" {
				return 4
			}
		case *btf.Fwd:
			if tag == "" || tag == "struct" && t.Kind == btf.FwdStruct || tag == "union" && t.Kind == btf.FwdUnion {
				return 1
			}
		}
		return 0
	}
	var best btf.Type
	bestRank := 0
	for _, c := range cands {
		if r := rank(c); r > bestRank {
			best, bestRank = c, r
		}
	}
	if best != nil {
		return best, nil
	}
	if tag == "" {
		if bi, ok := baseInts[name]; ok {
			i := bi
			return &i, nil
		}
	}
	full := name
	if tag != "" {
		full = tag + " " + name
	}
	if !suggest {
		return nil, fmt.Errorf("no type named %s: %w", full, ErrNotFound)
	}
	return nil, fmt.Errorf("no type named %s%s: %w", full, s.suggestTypes(full), ErrNotFound)
}

// suggestTypes returns "; did you mean ...?" for a type name.
func (s *Spec) suggestTypes(full string) string {
	var names []string
	bare := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(full, "struct "), "union "), "enum ")
	seen := map[string]bool{}
	s.TypeNames(func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		names = append(names, n)
	})
	// Compare the bare names, so "task_strct" finds "struct task_struct".
	bares := make([]string, len(names))
	full2 := map[string][]string{}
	for i, n := range names {
		b := n
		if j := strings.IndexByte(n, ' '); j >= 0 && (n[:j] == "struct" || n[:j] == "union" || n[:j] == "enum") {
			b = n[j+1:]
		}
		bares[i] = b
		full2[b] = append(full2[b], n)
	}
	var out []string
	for _, b := range Closest(bare, bares, 5) {
		out = append(out, full2[b]...)
	}
	if len(out) > 5 {
		out = out[:5]
	}
	return SuggestSuffix(out)
}

// TypeString spells t in C as a type name: "struct task_struct *",
// "char [16]", "u64", "int (*)(void *)".
func TypeString(t btf.Type) string { return cDecl(t, "", plainBase) }

// DeclString declares name of type t in C: "struct sk_buff *skb",
// "void (*cb)(struct sock *)".
func DeclString(t btf.Type, name string) string { return cDecl(t, name, plainBase) }
