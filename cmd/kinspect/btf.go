package main

import (
	"bufio"
	"strconv"

	"fmt"
	"io"
	"strings"

	"github.com/kinspect/kinspect/bpf"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
)

func init() {
	register(&command{name: "btf", summary: "dump kernel types from BTF as C or as a pahole-style layout", run: runBTF,
		help: btfHelp, verbs: btfCommands, opts: []*option{optKallsyms}, bpftool: true})
}

const btfHelp = `Usage: kinspect [-c DUMP | --live] [--json] btf dump [-k FILE] [format c] [--layout] TYPE...
       kinspect [-c DUMP | --live] [--json] btf funcs [--arg TYPE] [--ret TYPE] [NAME-GLOB]

Dumps kernel types from the kernel's BTF (from the dump's memory, or
/sys/kernel/btf/vmlinux under --live; no kernel memory needed then).

  btf dump struct bpf_prog              C for the type and every type it
                                        needs, in dependency order, with
                                        forward declarations: it compiles
                                        (like bpftool btf dump format c)
  btf dump struct bpf_prog --layout     pahole-style layout: offsets,
                                        sizes, holes, padding, bitfields,
                                        cacheline boundaries

  btf dump id N [format raw|c]         a BTF object of the kernel (vmlinux,
                                        a module's, a program's or map's),
                                        as bpftool btf dump id N: raw type
                                        records, or C (format c)
  btf show [id N]                       list the BTF objects (btf_idr) with
                                        the programs and maps using them
  btf funcs [--arg TYPE] [--ret TYPE] [NAME-GLOB]
                                        vmlinux's functions by their BTF
                                        prototype, with address and whether
                                        ftrace (fentry, kprobe) can trace them

btf funcs lists the functions (BTF FUNC, in id order) taking an argument
of type --arg, returning --ret, named as NAME-GLOB (a shell pattern:
'tcp_*'), each with its address and whether it can be traced: the
kernel's ftrace records (ftrace_pages_start's dyn_ftrace records, named
by kallsyms as available_filter_functions names them) have one not
disabled in its symbol, so fentry/fexit and a kprobe at its start attach.
A TYPE is C: 'struct sk_buff *', 'const struct sock *', 'unsigned int',
'u32'. Qualifiers (const, volatile, restrict) are ignored at every level;
a TYPE naming a typedef matches that typedef only ('u32': not 'unsigned
int'), a TYPE without one matches through typedefs too ('unsigned int'
finds u32 arguments).

TYPE is a C type name: "struct task_struct", "task_struct", "u64",
"enum bpf_prog_type" (quote it, or give the words as separate arguments).

Options:
  -k, --kallsyms FILE  symbols from FILE (to find __start_BTF in a dump)
  --cacheline N        cacheline size for --layout (default 64)

JSON: for format c, {"type", "c"}; for --layout, the layout: {"type",
"size", "members": [{"name", "type", "bit_offset", "offset", "size",
"bitfield_size", "bitfield_offset", "nested", "hole_after", ...}],
"holes", "sum_holes", "padding", "cachelines", ...}; for funcs,
{"funcs": [{"name", "btf_id", "linkage", "proto", "args" (the positions
of the arguments --arg matched), "addr", "traceable"}], "ftrace_records",
"ftrace_disabled", "ftrace_error" (why traceable may be false where it
is not)}.
`

var btfCommands = []*command{
	{name: "dump", summary: "print a type as C or as a layout, or a BTF object (id N)", run: runBTFDump,
		syntax: "id BTF_ID [format {raw | c}] | TYPE... [format {c | layout}]",
		opts:   []*option{{short: "-l", long: "--layout", help: "a pahole-style layout"}, {long: "--cacheline", value: "N", help: "cacheline size for --layout"}}},
	{name: "show", summary: "list BTF objects (btf_idr)", run: runBTFShow, syntax: "[id BTF_ID]"},
	{name: "list", summary: "list BTF objects (btf_idr)", run: runBTFShow, syntax: "[id BTF_ID]"},
	{name: "funcs", summary: "functions by BTF prototype, with address and whether ftrace can trace them", run: runBTFFuncs,
		syntax: "[NAME-GLOB]",
		opts:   []*option{{long: "--arg", value: "TYPE", help: "an argument of this C type"}, {long: "--ret", value: "TYPE", help: "returning this C type"}}},
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
		case a == "format" && len(words) >= 2 && words[0] == "id":
			words = append(words, a) // bpftool's "btf dump id N format raw|c"
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
	if len(words) >= 2 && words[0] == "id" {
		return runBTFDumpID(e, file, words[1:], layout)
	}
	names := splitTypeNames(words)
	if len(names) == 0 {
		return fmt.Errorf("btf dump: want a type name: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	var types []btf.Type
	for _, n := range names {
		t, err := k.LookupType(n)
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

// runBTFShow lists the kernel's BTF objects as bpftool's "btf show".
func runBTFShow(e *env, args []string) error {
	o, err := parseObjArgs("btf show", args)
	if err != nil {
		return err
	}
	if len(o.rest) > 0 || o.name != "" {
		return fmt.Errorf("btf show: unexpected arguments: %w", errUsage)
	}
	k, err := openKernel(e, o.kallsyms)
	if err != nil {
		return err
	}
	defer k.Close()
	objs, err := bpf.SelectBTFs(k.Program(), o.selector())
	if err != nil {
		if len(objs) == 0 {
			return fmt.Errorf("btf show: %w", err)
		}
		fmt.Fprintf(e.stderr, "kinspect: %v\n", err)
	}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	if e.json {
		j := newJSONW(bw, e.pretty)
		if !o.hasID {
			j.BeginArray()
		}
		for _, b := range objs {
			u := b.BTFUsers
			j.BeginObject()
			j.UintField("id", uint64(b.ID))
			j.UintField("size", uint64(b.Size))
			j.Name("prog_ids")
			j.BeginArray()
			for _, id := range u.ProgIDs {
				j.Uint(uint64(id))
			}
			j.EndArray()
			j.Name("map_ids")
			j.BeginArray()
			for _, id := range u.MapIDs {
				j.Uint(uint64(id))
			}
			j.EndArray()
			j.BoolField("kernel", b.Kernel)
			if b.Name != "" {
				j.StringField("name", b.Name)
			}
			j.EndObject()
		}
		if !o.hasID {
			j.EndArray()
		}
		bw.WriteByte('\n')
		return nil
	}
	for _, b := range objs {
		fmt.Fprintf(bw, "%d: ", b.ID)
		switch {
		case b.Kernel:
			fmt.Fprintf(bw, "name [%s]  ", b.Name)
		case b.Name != "":
			fmt.Fprintf(bw, "name %s  ", b.Name)
		default:
			fmt.Fprint(bw, "name <anon>  ")
		}
		fmt.Fprintf(bw, "size %dB", b.Size)
		for i, id := range b.ProgIDs {
			fmt.Fprintf(bw, "%s%d", pick(i == 0, "  prog_ids ", ","), id)
		}
		for i, id := range b.MapIDs {
			fmt.Fprintf(bw, "%s%d", pick(i == 0, "  map_ids ", ","), id)
		}
		fmt.Fprintln(bw)
	}
	return nil
}

// runBTFDumpID dumps a BTF object as "bpftool btf dump id N [format
// raw|c]": words are N and the optional format.
func runBTFDumpID(e *env, file string, words []string, layout bool) error {
	id, err := strconv.ParseUint(words[0], 0, 32)
	if err != nil {
		return fmt.Errorf("btf dump id %q: want a number: %w", words[0], errUsage)
	}
	format := "raw"
	switch {
	case len(words) == 1:
	case len(words) == 3 && words[1] == "format" && (words[2] == "raw" || words[2] == "c"):
		format = words[2]
	default:
		return fmt.Errorf("btf dump id %d: want [format raw|c], got %q: %w", id, strings.Join(words[1:], " "), errUsage)
	}
	if layout {
		return fmt.Errorf("btf dump id: --layout applies to a type: %w", errUsage)
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	o, err := bpf.BTFByID(k.Program(), uint32(id))
	if err != nil {
		return fmt.Errorf("btf dump: %w", err)
	}
	if format == "c" {
		c, err := o.DumpC()
		if err != nil {
			return fmt.Errorf("btf dump id %d: %w", id, err)
		}
		if e.json {
			return writeJSON(e, btfCResult{Type: fmt.Sprintf("id %d", id), C: c})
		}
		fmt.Fprint(e.stdout, c)
		return nil
	}
	rb, err := o.Raw(k.Types())
	if err != nil {
		return fmt.Errorf("btf dump id %d: %w", id, err)
	}
	bw := bufio.NewWriterSize(e.stdout, 256<<10)
	defer bw.Flush()
	if e.json {
		j := newJSONW(bw, e.pretty)
		j.BeginObject()
		j.Name("types")
		j.BeginArray()
		for i := range rb.Types {
			rawTypeJSON(j, rb, &rb.Types[i])
		}
		j.EndArray()
		j.EndObject()
		bw.WriteByte('\n')
		return nil
	}
	for i := range rb.Types {
		rawTypePlain(bw, rb, &rb.Types[i])
	}
	return nil
}

// btfStr is bpftool's btf_str: "(anon)" for offset 0.
func btfStr(rb *btfload.RawBTF, off uint32, name string) string {
	if off == 0 {
		return "(anon)"
	}
	if !rb.StrOK(off) {
		return "(invalid)"
	}
	return name
}

var btfIntEnc = map[uint8]string{0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}

func intEnc(e uint8) string {
	if s, ok := btfIntEnc[e]; ok {
		return s
	}
	return "UNKN"
}

// linkageStr names a FUNC's or VAR's linkage as bpftool does.
func linkageStr(l uint32) string {
	switch {
	case l == 0:
		return "static"
	case l == 1:
		return "global"
	case l == 2:
		return "extern"
	}
	return "(unknown)"
}

// rawTypePlain is bpftool's dump_btf_type in text.
func rawTypePlain(w *bufio.Writer, rb *btfload.RawBTF, t *btfload.RawBTFType) {
	fmt.Fprintf(w, "[%d] %s '%s'", t.ID, t.KindName(), btfStr(rb, t.NameOff, t.Name))
	switch t.Kind {
	case btfload.BTFKindInt:
		fmt.Fprintf(w, " size=%d bits_offset=%d nr_bits=%d encoding=%s", t.SizeOrType, t.IntOffset, t.IntBits, intEnc(t.IntEncoding))
	case btfload.BTFKindPtr, btfload.BTFKindConst, btfload.BTFKindVolatile, btfload.BTFKindRestrict, btfload.BTFKindTypedef, btfload.BTFKindTypeTag:
		fmt.Fprintf(w, " type_id=%d", t.SizeOrType)
	case btfload.BTFKindArray:
		fmt.Fprintf(w, " type_id=%d index_type_id=%d nr_elems=%d", t.ArrayType, t.ArrayIndexType, t.ArrayNelems)
	case btfload.BTFKindStruct, btfload.BTFKindUnion:
		fmt.Fprintf(w, " size=%d vlen=%d", t.SizeOrType, t.Vlen)
		for _, m := range t.Members {
			fmt.Fprintf(w, "\n\t'%s' type_id=%d bits_offset=%d", btfStr(rb, m.NameOff, m.Name), m.Type, m.BitOffset)
			if m.BitfieldSize != 0 {
				fmt.Fprintf(w, " bitfield_size=%d", m.BitfieldSize)
			}
		}
	case btfload.BTFKindEnum, btfload.BTFKindEnum64:
		fmt.Fprintf(w, " encoding=%s size=%d vlen=%d", pick(t.KindFlag, "SIGNED", "UNSIGNED"), t.SizeOrType, t.Vlen)
		for _, v := range t.Values {
			n := btfStr(rb, v.NameOff, v.Name)
			switch {
			case t.Kind == btfload.BTFKindEnum && t.KindFlag:
				fmt.Fprintf(w, "\n\t'%s' val=%d", n, int32(v.Val))
			case t.Kind == btfload.BTFKindEnum:
				fmt.Fprintf(w, "\n\t'%s' val=%d", n, uint32(v.Val))
			case t.KindFlag:
				fmt.Fprintf(w, "\n\t'%s' val=%dLL", n, int64(v.Val))
			default:
				fmt.Fprintf(w, "\n\t'%s' val=%dULL", n, v.Val)
			}
		}
	case btfload.BTFKindFwd:
		fmt.Fprintf(w, " fwd_kind=%s", pick(t.KindFlag, "union", "struct"))
	case btfload.BTFKindFunc:
		fmt.Fprintf(w, " type_id=%d linkage=%s", t.SizeOrType, linkageStr(uint32(t.Vlen)))
	case btfload.BTFKindFuncProto:
		fmt.Fprintf(w, " ret_type_id=%d vlen=%d", t.SizeOrType, t.Vlen)
		for _, m := range t.Members {
			fmt.Fprintf(w, "\n\t'%s' type_id=%d", btfStr(rb, m.NameOff, m.Name), m.Type)
		}
	case btfload.BTFKindVar:
		fmt.Fprintf(w, " type_id=%d, linkage=%s", t.SizeOrType, linkageStr(t.Linkage))
	case btfload.BTFKindDatasec:
		fmt.Fprintf(w, " size=%d vlen=%d", t.SizeOrType, t.Vlen)
		for _, v := range t.Vars {
			fmt.Fprintf(w, "\n\ttype_id=%d offset=%d size=%d", v.Type, v.Offset, v.Size)
			// bpftool names the variable (kind and name) when its id exists.
			if vt := rb.TypeByID(v.Type); vt != nil {
				fmt.Fprintf(w, " (%s '%s')", vt.KindName(), rb.Str(vt.NameOff))
			}
		}
	case btfload.BTFKindFloat:
		fmt.Fprintf(w, " size=%d", t.SizeOrType)
	case btfload.BTFKindDeclTag:
		fmt.Fprintf(w, " type_id=%d component_idx=%d", t.SizeOrType, t.ComponentIdx)
	}
	fmt.Fprintln(w)
}

// rawTypeJSON is bpftool's dump_btf_type in JSON.
func rawTypeJSON(j *jsonw, rb *btfload.RawBTF, t *btfload.RawBTFType) {
	j.BeginObject()
	defer j.EndObject()
	j.UintField("id", uint64(t.ID))
	j.StringField("kind", t.KindName())
	j.StringField("name", btfStr(rb, t.NameOff, t.Name))
	switch t.Kind {
	case btfload.BTFKindInt:
		j.UintField("size", uint64(t.SizeOrType))
		j.UintField("bits_offset", uint64(t.IntOffset))
		j.UintField("nr_bits", uint64(t.IntBits))
		j.StringField("encoding", intEnc(t.IntEncoding))
	case btfload.BTFKindPtr, btfload.BTFKindConst, btfload.BTFKindVolatile, btfload.BTFKindRestrict, btfload.BTFKindTypedef, btfload.BTFKindTypeTag:
		j.UintField("type_id", uint64(t.SizeOrType))
	case btfload.BTFKindArray:
		j.UintField("type_id", uint64(t.ArrayType))
		j.UintField("index_type_id", uint64(t.ArrayIndexType))
		j.UintField("nr_elems", uint64(t.ArrayNelems))
	case btfload.BTFKindStruct, btfload.BTFKindUnion:
		j.UintField("size", uint64(t.SizeOrType))
		j.UintField("vlen", uint64(t.Vlen))
		j.Name("members")
		j.BeginArray()
		for _, m := range t.Members {
			j.BeginObject()
			j.StringField("name", btfStr(rb, m.NameOff, m.Name))
			j.UintField("type_id", uint64(m.Type))
			j.UintField("bits_offset", uint64(m.BitOffset))
			if m.BitfieldSize != 0 {
				j.UintField("bitfield_size", uint64(m.BitfieldSize))
			}
			j.EndObject()
		}
		j.EndArray()
	case btfload.BTFKindEnum, btfload.BTFKindEnum64:
		j.StringField("encoding", pick(t.KindFlag, "SIGNED", "UNSIGNED"))
		j.UintField("size", uint64(t.SizeOrType))
		j.UintField("vlen", uint64(t.Vlen))
		j.Name("values")
		j.BeginArray()
		for _, v := range t.Values {
			j.BeginObject()
			j.StringField("name", btfStr(rb, v.NameOff, v.Name))
			switch {
			case t.Kind == btfload.BTFKindEnum && t.KindFlag:
				j.IntField("val", int64(int32(v.Val)))
			case t.KindFlag:
				j.IntField("val", int64(v.Val))
			default:
				j.UintField("val", v.Val)
			}
			j.EndObject()
		}
		j.EndArray()
	case btfload.BTFKindFwd:
		j.StringField("fwd_kind", pick(t.KindFlag, "union", "struct"))
	case btfload.BTFKindFunc:
		j.UintField("type_id", uint64(t.SizeOrType))
		j.StringField("linkage", linkageStr(uint32(t.Vlen)))
	case btfload.BTFKindFuncProto:
		j.UintField("ret_type_id", uint64(t.SizeOrType))
		j.UintField("vlen", uint64(t.Vlen))
		j.Name("params")
		j.BeginArray()
		for _, m := range t.Members {
			j.BeginObject()
			j.StringField("name", btfStr(rb, m.NameOff, m.Name))
			j.UintField("type_id", uint64(m.Type))
			j.EndObject()
		}
		j.EndArray()
	case btfload.BTFKindVar:
		j.UintField("type_id", uint64(t.SizeOrType))
		j.StringField("linkage", linkageStr(t.Linkage))
	case btfload.BTFKindDatasec:
		j.UintField("size", uint64(t.SizeOrType))
		j.UintField("vlen", uint64(t.Vlen))
		j.Name("vars")
		j.BeginArray()
		for _, v := range t.Vars {
			j.BeginObject()
			j.UintField("type_id", uint64(v.Type))
			j.UintField("offset", uint64(v.Offset))
			j.UintField("size", uint64(v.Size))
			j.EndObject()
		}
		j.EndArray()
	case btfload.BTFKindFloat:
		j.UintField("size", uint64(t.SizeOrType))
	case btfload.BTFKindDeclTag:
		j.UintField("type_id", uint64(t.SizeOrType))
		j.IntField("component_idx", int64(t.ComponentIdx))
	}
}

func runBTFFuncs(e *env, args []string) error {
	var file string
	var q bpf.FuncQuery
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-h" || a == "--help" || i == 0 && a == "help":
			fmt.Fprint(e.stdout, btfHelp)
			return nil
		case a == "--arg" || a == "--ret" || a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("btf funcs %s: want a value: %w", a, errUsage)
			}
			i++
			switch a {
			case "--arg":
				q.Arg = args[i]
			case "--ret":
				q.Ret = args[i]
			default:
				file = args[i]
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("btf funcs: unknown option %q: %w", a, errUsage)
		case q.Glob != "":
			return fmt.Errorf("btf funcs: one NAME-GLOB, not %q and %q: %w", q.Glob, a, errUsage)
		default:
			q.Glob = a
		}
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	res, err := bpf.FindBTFFuncs(k.Program(), k.Symbols(), q)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, res)
	}
	w := bufio.NewWriter(e.stdout)
	fmt.Fprintf(w, "%-16s  %-5s %s\n", "ADDRESS", "TRACE", "FUNCTION")
	for _, f := range res.Funcs {
		tr := "no"
		if f.Traceable {
			tr = "yes"
		}
		fmt.Fprintf(w, "%016x  %-5s %s\n", uint64(f.Addr), tr, f.Proto)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if res.FtraceError != "" {
		fmt.Fprintf(e.stderr, "note: which functions ftrace can trace is incomplete: %s\n", res.FtraceError)
	}
	return nil
}
