package bpf

import (
	"fmt"
	"path"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/kinspect/kinspect/btfload"
	"github.com/kinspect/kinspect/kallsyms"
	"github.com/kinspect/kinspect/linux"
	"github.com/kinspect/kinspect/objects"
)

// btf funcs: the kernel functions by their BTF prototypes (FUNC ->
// FUNC_PROTO), with the address kallsyms gives and whether ftrace (and so
// fentry, fexit and a kprobe at the function's start) can attach to
// them.

// FuncQuery selects functions by prototype and name. A type is written
// as C ("struct sk_buff *", "const struct sock *", "unsigned int",
// "u32"); qualifiers (const, volatile, restrict) are ignored at every
// level, on both sides. A type naming a typedef matches that typedef
// only ("u32": not "unsigned int", nor "__u32"); a type without one
// matches through typedefs too ("unsigned int" finds u32 arguments;
// "struct sk_buff *" an argument whose typedef stands for it).
type FuncQuery struct {
	Arg  string // a type one of the arguments has ("" any)
	Ret  string // the return type ("" any)
	Glob string // a shell pattern the name matches (path.Match; "" any)
}

// BTFFunc is one function of vmlinux's BTF.
type BTFFunc struct {
	Name    string `json:"name"`
	BTFID   uint32 `json:"btf_id"` // the FUNC's id in vmlinux's BTF
	Linkage string `json:"linkage"`
	// Proto is the prototype in C, with the arguments' names.
	Proto string `json:"proto"`
	// Args are the positions (from 0) of the arguments --arg matched.
	Args []int `json:"args,omitempty"`
	// Addr is the function's address: the symbol holding its ftrace
	// record, else the first kallsyms symbol of its name; 0 when kallsyms
	// has none (a function inlined everywhere, or renamed .isra/.constprop).
	Addr objects.Hex `json:"addr"`
	// Traceable: an ftrace record not FTRACE_FL_DISABLED is in vmlinux's
	// symbol of this name, so available_filter_functions lists it and
	// fentry/fexit and kprobes at its start can attach.
	Traceable bool `json:"traceable"`
}

// BTFFuncs is btf funcs' result.
type BTFFuncs struct {
	Funcs []BTFFunc `json:"funcs"`
	// FtraceRecords counts the kernel's ftrace records (vmlinux's and the
	// modules'), FtraceDisabled those FTRACE_FL_DISABLED.
	FtraceRecords  int `json:"ftrace_records"`
	FtraceDisabled int `json:"ftrace_disabled"`
	// FtraceError says why Traceable may be false where it is not: the
	// records could not all be read.
	FtraceError string `json:"ftrace_error,omitempty"`
}

// typePattern is a FuncQuery type, spelled as spellType spells BTF types.
type typePattern struct {
	text     string // as written
	plain    string // qualifiers dropped, typedefs kept
	resolved string // typedefs resolved ("" when the type names a typedef)
}

func parsePattern(spec *btfload.Spec, s string) (*typePattern, error) {
	if s == "" {
		return nil, nil
	}
	syn, err := btfload.ParseType(s)
	if err != nil {
		return nil, err
	}
	if len(syn.Dims) > 0 {
		return nil, fmt.Errorf("type %q: an argument cannot be an array: %w", s, btfload.ErrFormat)
	}
	base, err := spec.Resolve(btfload.TypeSyntax{Tag: syn.Tag, Name: syn.Name})
	if err != nil {
		return nil, err
	}
	stars := func(b string) string {
		if syn.Pointers == 0 {
			return b
		}
		return b + " " + strings.Repeat("*", syn.Pointers)
	}
	p := &typePattern{text: s, plain: stars(spellType(base, false))}
	if _, ok := base.(*btf.Typedef); !ok {
		p.resolved = stars(spellType(base, true))
	}
	return p, nil
}

func (p *typePattern) match(t btf.Type) bool {
	return spellType(t, false) == p.plain || p.resolved != "" && spellType(t, true) == p.resolved
}

// spellType spells a type in C without qualifiers, through typedefs
// with resolve: "struct sk_buff *", "long unsigned int", "u32".
func spellType(t btf.Type, resolve bool) string {
	for range 64 {
		switch tt := t.(type) {
		case nil, *btf.Void:
			return "void"
		case *btf.Const:
			t = tt.Type
		case *btf.Volatile:
			t = tt.Type
		case *btf.Restrict:
			t = tt.Type
		case *btf.TypeTag:
			t = tt.Type
		case *btf.Typedef:
			if !resolve {
				return tt.Name
			}
			t = tt.Type
		case *btf.Pointer:
			s := spellType(tt.Target, resolve)
			if strings.HasSuffix(s, "*") {
				return s + "*"
			}
			return s + " *"
		case *btf.Struct:
			return "struct " + tt.Name
		case *btf.Union:
			return "union " + tt.Name
		case *btf.Enum:
			return "enum " + tt.Name
		case *btf.Fwd:
			if tt.Kind == btf.FwdUnion {
				return "union " + tt.Name
			}
			return "struct " + tt.Name
		case *btf.FuncProto:
			return "function"
		case *btf.Array:
			return spellType(tt.Type, resolve) + "[]"
		default:
			return t.TypeName()
		}
	}
	return "?"
}

// protoString spells a function's prototype in C with its arguments'
// names: "int tcp_v4_rcv(struct sk_buff *skb)".
func protoString(name string, fp *btf.FuncProto) string {
	var ps []string
	for i, p := range fp.Params {
		if _, ok := p.Type.(*btf.Void); (ok || p.Type == nil) && i == len(fp.Params)-1 && i > 0 {
			ps = append(ps, "...")
			continue
		}
		ps = append(ps, btfload.DeclString(p.Type, p.Name))
	}
	if len(ps) == 0 {
		ps = []string{"void"}
	}
	return btfload.DeclString(fp.Return, name+"("+strings.Join(ps, ", ")+")")
}

// FindBTFFuncs lists vmlinux's BTF functions that q selects, in BTF id
// order, each with its address and whether it can be traced, from the
// kernel's ftrace records (linux.ForEachFtraceRecord) named by syms as
// available_filter_functions names them (kallsyms_lookup of rec->ip).
// Records that cannot be read leave Traceable false and say why in
// FtraceError. Errors wrap btfload.ErrFormat or objects.ErrNotFound for
// a bad type or pattern (path.ErrBadPattern), or the BTF's errors.
func FindBTFFuncs(p *objects.Program, syms *kallsyms.Table, q FuncQuery) (*BTFFuncs, error) {
	spec := p.Types()
	if spec == nil {
		return nil, fmt.Errorf("btf funcs: no BTF: %w", objects.ErrNotFound)
	}
	arg, err := parsePattern(spec, q.Arg)
	if err != nil {
		return nil, fmt.Errorf("btf funcs --arg: %w", err)
	}
	ret, err := parsePattern(spec, q.Ret)
	if err != nil {
		return nil, fmt.Errorf("btf funcs --ret: %w", err)
	}
	if q.Glob != "" {
		if _, err := path.Match(q.Glob, ""); err != nil {
			return nil, fmt.Errorf("btf funcs %q: %w", q.Glob, err)
		}
	}
	res := &BTFFuncs{Funcs: []BTFFunc{}}
	traced := map[string]uint64{} // vmlinux symbol name -> its address
	recs, rerr := linux.ForEachFtraceRecord(p)
	if rerr != nil {
		res.FtraceError = rerr.Error()
	}
	res.FtraceRecords = len(recs)
	for _, r := range recs {
		if r.Disabled {
			res.FtraceDisabled++
			continue
		}
		if syms == nil {
			continue
		}
		l, err := syms.LookupAddr(uint64(r.IP))
		if err != nil || l.Module != "" {
			continue
		}
		if _, ok := traced[l.Name]; !ok {
			traced[l.Name] = l.Addr
		}
	}
	for t, err := range spec.BTF().All() {
		if err != nil {
			return nil, fmt.Errorf("btf funcs: %w", err)
		}
		fn, ok := t.(*btf.Func)
		if !ok {
			continue
		}
		if q.Glob != "" {
			if m, _ := path.Match(q.Glob, fn.Name); !m {
				continue
			}
		}
		fp, ok := fn.Type.(*btf.FuncProto)
		if !ok {
			continue
		}
		if ret != nil && !ret.match(fp.Return) {
			continue
		}
		var args []int
		if arg != nil {
			for i, pa := range fp.Params {
				if arg.match(pa.Type) {
					args = append(args, i)
				}
			}
			if len(args) == 0 {
				continue
			}
		}
		id, err := spec.BTF().TypeID(fn)
		if err != nil {
			return nil, fmt.Errorf("btf funcs: %s: %w", fn.Name, err)
		}
		f := BTFFunc{Name: fn.Name, BTFID: uint32(id), Linkage: fn.Linkage.String(), Proto: protoString(fn.Name, fp), Args: args}
		if a, ok := traced[fn.Name]; ok {
			f.Addr, f.Traceable = objects.Hex(a), true
		} else if syms != nil {
			// The first of vmlinux's symbols of that name (static
			// functions of several files may share it).
			ss, _ := syms.Lookup(fn.Name)
			for _, s := range ss {
				if s.Module == "" {
					f.Addr = objects.Hex(s.Addr)
					break
				}
			}
		}
		res.Funcs = append(res.Funcs, f)
	}
	return res, nil
}
