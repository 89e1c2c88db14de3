package bpf_test

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/bpf"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
)

// rawBTFType is one type of bpftool's raw dump (btf dump file ...):
// "[ID] KIND 'name' type_id=N ..." and, for a FUNC_PROTO, its
// "\t'arg' type_id=T" lines.
type rawBTFType struct {
	kind, name string
	typeID     int   // type_id= (ret_type_id= of a FUNC_PROTO)
	params     []int // a FUNC_PROTO's arguments' type ids
	fwdUnion   bool
}

var (
	rawTypeLine  = regexp.MustCompile(`^\[(\d+)\] (\S+) '([^']*)'(.*)$`)
	rawParamLine = regexp.MustCompile(`^\s+'[^']*' type_id=(\d+)`)
	rawTypeID    = regexp.MustCompile(`\b(?:ret_)?type_id=(\d+)`)
)

// readRawBTF parses the truth's btf/vmlinux.txt: bpftool's own reading
// of /sys/kernel/btf/vmlinux in the guest.
func readRawBTF(t *testing.T, b []byte) map[int]*rawBTFType {
	t.Helper()
	types := map[int]*rawBTFType{}
	var last *rawBTFType
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := rawTypeLine.FindStringSubmatch(line); m != nil {
			id, _ := strconv.Atoi(m[1])
			last = &rawBTFType{kind: m[2], name: m[3], typeID: -1, fwdUnion: strings.Contains(m[4], "fwd_kind=union")}
			if tm := rawTypeID.FindStringSubmatch(m[4]); tm != nil {
				last.typeID, _ = strconv.Atoi(tm[1])
			}
			types[id] = last
			continue
		}
		if m := rawParamLine.FindStringSubmatch(line); m != nil && last != nil && last.kind == "FUNC_PROTO" {
			id, _ := strconv.Atoi(m[1])
			last.params = append(last.params, id)
		}
	}
	if len(types) == 0 {
		t.Fatal("btf/vmlinux.txt: no types")
	}
	return types
}

// spell spells type id as the test's matching rule reads bpftool's
// dump: qualifiers dropped, typedefs kept or (resolve) followed.
func spell(types map[int]*rawBTFType, id int, resolve bool) string {
	for range 64 {
		if id == 0 {
			return "void"
		}
		ty := types[id]
		if ty == nil {
			return fmt.Sprintf("?%d", id)
		}
		switch ty.kind {
		case "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG":
			id = ty.typeID
		case "TYPEDEF":
			if !resolve {
				return ty.name
			}
			id = ty.typeID
		case "PTR":
			s := spell(types, ty.typeID, resolve)
			if strings.HasSuffix(s, "*") {
				return s + "*"
			}
			return s + " *"
		case "STRUCT":
			return "struct " + ty.name
		case "UNION":
			return "union " + ty.name
		case "ENUM", "ENUM64":
			return "enum " + ty.name
		case "FWD":
			if ty.fwdUnion {
				return "union " + ty.name
			}
			return "struct " + ty.name
		case "FUNC_PROTO":
			return "function"
		case "ARRAY":
			return spell(types, ty.typeID, resolve) + "[]"
		default:
			return ty.name
		}
	}
	return "?"
}

// TestLabBTFFuncs: btf funcs --arg 'struct sk_buff *' (and other types)
// is the list computed from the guest's bpftool btf dump of
// /sys/kernel/btf/vmlinux (every FUNC whose FUNC_PROTO has an argument of
// that type, qualifiers dropped; typedefs followed unless the type names
// one), each traceable exactly when available_filter_functions lists its
// name among vmlinux's (not a module's) functions; the addresses of
// traceable functions with a unique name are /proc/kallsyms'. Where the
// truth lacks those files (k612, kdump scenarios of an older lab), the
// result is checked for consistency only.
func TestLabBTFFuncs(t *testing.T) {
	// The test's own reading of each query: the type spelled with
	// qualifiers dropped (plain), and with typedefs followed (resolved,
	// "" when the query names a typedef, which matches only itself).
	queries := []struct {
		q               bpf.FuncQuery
		plain, resolved string
		ret             bool
	}{
		{q: bpf.FuncQuery{Arg: "struct sk_buff *"}, plain: "struct sk_buff *", resolved: "struct sk_buff *"},
		{q: bpf.FuncQuery{Arg: "const struct sock *"}, plain: "struct sock *", resolved: "struct sock *"},
		{q: bpf.FuncQuery{Arg: "u32"}, plain: "u32"},
		{q: bpf.FuncQuery{Arg: "unsigned int"}, plain: "unsigned int", resolved: "unsigned int"},
		{q: bpf.FuncQuery{Ret: "struct sk_buff *"}, plain: "struct sk_buff *", resolved: "struct sk_buff *", ret: true},
	}
	for name, k := range labkernel.All(t, "elf", "kdump-zlib") {
		t.Run(name, func(t *testing.T) {
			p, syms := k.Program(), k.Symbols()
			sc := labkernel.Scenario(name)
			for _, qq := range queries {
				res, err := bpf.FindBTFFuncs(p, syms, qq.q)
				if err != nil {
					t.Fatal(err)
				}
				if res.FtraceError != "" || res.FtraceRecords == 0 {
					t.Errorf("%+v: %d ftrace records: %s", qq.q, res.FtraceRecords, res.FtraceError)
				}
				for _, f := range res.Funcs {
					if f.Traceable && f.Addr == 0 {
						t.Errorf("%s: traceable at address 0", f.Name)
					}
				}
				t.Logf("%+v: %d functions, %d ftrace records (%d disabled)", qq.q, len(res.Funcs), res.FtraceRecords, res.FtraceDisabled)
			}
			if !sc.TruthCaptured("btf/vmlinux.txt") && !sc.TruthCaptured("proc/available_filter_functions.txt") {
				t.Skipf("%s: the truth has no btf/vmlinux.txt or available_filter_functions (an older lab): checked for consistency only", name)
			}
			types := readRawBTF(t, labdata.TruthFile(t, sc, "btf/vmlinux.txt"))
			avail := map[string]bool{}
			for _, l := range strings.Split(string(labdata.TruthFile(t, sc, "proc/available_filter_functions.txt")), "\n") {
				if l != "" && !strings.Contains(l, " [") {
					avail[l] = true
				}
			}
			kallsyms := map[string][]uint64{}
			for _, l := range strings.Split(string(labdata.TruthFile(t, sc, "kallsyms.txt")), "\n") {
				fs := strings.Fields(l)
				if len(fs) == 3 && (fs[1] == "t" || fs[1] == "T") {
					a, _ := strconv.ParseUint(fs[0], 16, 64)
					kallsyms[fs[2]] = append(kallsyms[fs[2]], a)
				}
			}
			for _, qq := range queries {
				var want []string
				for id := 1; id <= len(types)+1; id++ {
					fn := types[id]
					if fn == nil || fn.kind != "FUNC" {
						continue
					}
					proto := types[fn.typeID]
					match := func(tid int) bool {
						return spell(types, tid, false) == qq.plain || qq.resolved != "" && spell(types, tid, true) == qq.resolved
					}
					ok := false
					if qq.ret {
						ok = match(proto.typeID)
					} else {
						for _, a := range proto.params {
							ok = ok || match(a)
						}
					}
					if ok {
						want = append(want, fmt.Sprintf("[%d] %s traceable=%v", id, fn.name, avail[fn.name]))
					}
				}
				res, err := bpf.FindBTFFuncs(p, syms, qq.q)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				traceable := 0
				for _, f := range res.Funcs {
					got = append(got, fmt.Sprintf("[%d] %s traceable=%v", f.BTFID, f.Name, f.Traceable))
					if f.Traceable {
						traceable++
						if as := kallsyms[f.Name]; len(as) == 1 && as[0] != uint64(f.Addr) {
							t.Errorf("%s: address %#x, /proc/kallsyms %#x", f.Name, uint64(f.Addr), as[0])
						}
					}
				}
				t.Logf("%+v: %d functions (%d traceable), the truth's %d", qq.q, len(got), traceable, len(want))
				if len(want) == 0 {
					t.Errorf("%+v: none in the truth", qq.q)
				}
				gs, ws := map[string]bool{}, map[string]bool{}
				for _, g := range got {
					gs[g] = true
				}
				for _, w := range want {
					ws[w] = true
				}
				labdata.CompareSets(t, fmt.Sprintf("%+v", qq.q), gs, ws)
			}
		})
	}
}
