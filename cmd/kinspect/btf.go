package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

func init() {
	register(&command{name: "btf", summary: "dump kernel types from BTF as C or as a pahole-style layout", run: runBTF})
}

const btfHelp = `Usage: kinspect [-c DUMP | --live] [--json] btf dump [-k FILE] [format c] [--layout] TYPE...

Dumps kernel types from the kernel's BTF (from the dump's memory, or
/sys/kernel/btf/vmlinux under --live; no kernel memory needed then).

  btf dump struct bpf_prog              C for the type and every type it
                                        needs, in dependency order, with
                                        forward declarations: it compiles
                                        (like bpftool btf dump format c)
  btf dump struct bpf_prog --layout     pahole-style layout: offsets,
                                        sizes, holes, padding, bitfields,
                                        cacheline boundaries

TYPE is a C type name: "struct task_struct", "task_struct", "u64",
"enum bpf_prog_type" (quote it, or give the words as separate arguments).

Options:
  -k, --kallsyms FILE  symbols from FILE (to find __start_BTF in a dump)
  --cacheline N        cacheline size for --layout (default 64)

JSON: for format c, {"type", "c"}; for --layout, the layout: {"type",
"size", "members": [{"name", "type", "bit_offset", "offset", "size",
"bitfield_size", "bitfield_offset", "nested", "hole_after", ...}],
"holes", "sum_holes", "padding", "cachelines", ...}.
`

var btfCommands = []*command{
	{name: "dump", summary: "print a type as C or as a layout", run: runBTFDump},
	{name: "help", summary: "this help", run: func(e *env, _ []string) error { fmt.Fprint(e.stdout, btfHelp); return nil }},
}

func runBTF(e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stdout, btfHelp)
		return fmt.Errorf("btf: want a subcommand: %w", errUsage)
	}
	c, err := lookup(btfCommands, args[0])
	if err != nil {
		return fmt.Errorf("btf: %w", err)
	}
	return c.run(e, args[1:])
}

type btfCResult struct {
	Type string `json:"type"`
	C    string `json:"c"`
}

func runBTFDump(e *env, args []string) error {
	var file string
	var words []string
	layout := false
	cacheline := uint32(btfload.DefaultCacheline)
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-h" || a == "--help" || i == 0 && a == "help":
			fmt.Fprint(e.stdout, btfHelp)
			return nil
		case a == "--layout" || a == "-l":
			layout = true
		case a == "format":
			if i+1 == len(args) || args[i+1] != "c" && args[i+1] != "layout" {
				return fmt.Errorf("btf dump format: want c or layout: %w", errUsage)
			}
			i++
			layout = args[i] == "layout"
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("btf dump %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case a == "--cacheline":
			if i+1 == len(args) {
				return fmt.Errorf("btf dump --cacheline: want a size: %w", errUsage)
			}
			i++
			if _, err := fmt.Sscan(args[i], &cacheline); err != nil || cacheline == 0 {
				return fmt.Errorf("btf dump --cacheline %q: want a positive size: %w", args[i], errUsage)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("btf dump: unknown option %q: %w", a, errUsage)
		default:
			words = append(words, a)
		}
	}
	names := splitTypeNames(words)
	if len(names) == 0 {
		return fmt.Errorf("btf dump: want a type name: %w", errUsage)
	}
	spec, done, err := openTypes(e, file)
	if err != nil {
		return err
	}
	defer done()
	var types []btf.Type
	for _, n := range names {
		t, err := spec.Type(n)
		if err != nil {
			return fmt.Errorf("btf dump: %w", err)
		}
		types = append(types, t)
	}
	if layout {
		var ls []*btfload.Layout
		for _, t := range types {
			l, err := btfload.NewLayout(t, cacheline)
			if err != nil {
				return fmt.Errorf("btf dump --layout: %w", err)
			}
			ls = append(ls, l)
		}
		if e.json {
			if len(ls) == 1 {
				return writeJSON(e, ls[0])
			}
			return writeJSON(e, ls)
		}
		for i, l := range ls {
			if i > 0 {
				fmt.Fprintln(e.stdout)
			}
			printLayout(e.stdout, l)
		}
		return nil
	}
	c := btfload.FormatC(types...)
	if e.json {
		return writeJSON(e, btfCResult{Type: strings.Join(names, ", "), C: c})
	}
	fmt.Fprint(e.stdout, c)
	return nil
}

// splitTypeNames joins words into type names: "struct" "bpf_prog" "u64"
// is "struct bpf_prog" and "u64"; a quoted "struct bpf_prog" stays one.
func splitTypeNames(words []string) []string {
	var out []string
	cur := ""
	for _, w := range words {
		if strings.Contains(w, " ") {
			if cur != "" {
				out = append(out, cur)
				cur = ""
			}
			out = append(out, w)
			continue
		}
		if cur != "" {
			switch last := cur[strings.LastIndexByte(cur, ' ')+1:]; last {
			case "struct", "union", "enum", "const":
				cur += " " + w
				continue
			case "unsigned", "signed", "long", "short":
				switch w {
				case "int", "long", "short", "char", "unsigned", "signed":
					cur += " " + w
					continue
				}
			}
			if w == "*" || strings.HasPrefix(w, "[") {
				cur += " " + w
				continue
			}
			out = append(out, cur)
		}
		cur = w
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// printLayout renders a layout as pahole does.
func printLayout(w io.Writer, l *btfload.Layout) {
	fmt.Fprintf(w, "%s {\n", l.Type)
	printMembers(w, l.Members, 1)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "\t/* size: %d, cachelines: %d, members: %d */\n", l.Size, l.Cachelines, len(l.Members))
	if l.Holes > 0 || l.BitHoles > 0 {
		fmt.Fprintf(w, "\t/* sum members: %d, holes: %d, sum holes: %d */\n", l.SumMembers, l.Holes, l.SumHoles)
	}
	if l.BitHoles > 0 {
		fmt.Fprintf(w, "\t/* bit holes: %d, sum bit holes: %d bits */\n", l.BitHoles, l.SumBitHoles)
	}
	if l.SumBitfields > 0 {
		fmt.Fprintf(w, "\t/* sum bitfield members: %d bits (%d bytes) */\n", l.SumBitfields, l.SumBitfields/8)
	}
	if l.Padding > 0 {
		fmt.Fprintf(w, "\t/* padding: %d */\n", l.Padding)
	}
	if l.LastCacheline != 0 && l.LastCacheline != l.Cacheline {
		fmt.Fprintf(w, "\t/* last cacheline: %d bytes */\n", l.LastCacheline)
	}
	fmt.Fprintln(w, "};")
}

func printMembers(w io.Writer, ms []btfload.MemberPlace, depth int) {
	ind := strings.Repeat("\t", depth)
	for _, m := range ms {
		if m.CachelineBefore > 0 {
			fmt.Fprintf(w, "%s/* --- cacheline %d boundary (%d bytes) --- */\n", ind, m.CachelineBefore, m.CachelineBefore*64)
		}
		var decl string
		if m.Nested != nil {
			kw := "struct"
			if strings.HasPrefix(m.Nested.Type, "union") {
				kw = "union"
			}
			fmt.Fprintf(w, "%s%s {\n", ind, kw)
			printMembers(w, m.Nested.Members, depth+1)
			decl = "}"
			if m.Name != "" {
				decl += " " + m.Name
			}
			decl += ";"
			fmt.Fprintf(w, "%s%-40s /* %5d %5d */\n", ind, decl, m.Offset, m.Size)
		} else {
			decl = m.Decl
			if m.BitfieldSize > 0 {
				decl += fmt.Sprintf(":%d", m.BitfieldSize)
			}
			decl += ";"
			if m.BitfieldSize > 0 {
				fmt.Fprintf(w, "%s%-40s /* %5d:%2d %3d */\n", ind, decl, m.Offset, m.BitfieldOffset, m.Size)
			} else {
				fmt.Fprintf(w, "%s%-40s /* %5d %5d */\n", ind, decl, m.Offset, m.Size)
			}
		}
		if m.HoleAfter > 0 {
			fmt.Fprintf(w, "\n%s/* XXX %d bytes hole, try to pack */\n\n", ind, m.HoleAfter)
		}
		if m.BitHoleAfter > 0 {
			fmt.Fprintf(w, "\n%s/* XXX %d bits hole, try to pack */\n\n", ind, m.BitHoleAfter)
		}
	}
}
