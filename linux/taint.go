package linux

import (
	"fmt"
	"math/bits"

	"github.com/kinspect/kinspect/objects"
)

// taintNames are the TAINT_* bits of include/linux/panic.h (macros, not
// in BTF), as Documentation/admin-guide/tainted-kernels.rst names them;
// 6.12+ keeps a description in taint_flags[] itself, which wins.
var taintNames = []string{
	"proprietary module was loaded", "module was force loaded", "kernel running on an out of specification system",
	"module was force unloaded", "processor reported a Machine Check Exception", "bad page referenced or unexpected page flags",
	"taint requested by userspace application", "kernel died recently (OOPS or BUG)", "ACPI table overridden by user",
	"kernel issued warning", "staging driver was loaded", "workaround for bug in platform firmware applied",
	"externally-built (out-of-tree) module was loaded", "unsigned module was loaded", "soft lockup occurred",
	"kernel has been live patched", "auxiliary taint, defined for and used by distros", "kernel was built with the struct randomization plugin",
	"an in-kernel test has been run", "a firmware control driver was loaded",
}

// maxTaintFlags bounds taint_flags[] (TAINT_FLAGS_COUNT is 19 in 6.1,
// 20 in 6.15).
const maxTaintFlags = 64

// TaintFlag is one taint bit the kernel has set.
type TaintFlag struct {
	Bit  int    `json:"bit"`
	Char string `json:"char"`
	Desc string `json:"desc"`
	// Modules are the modules that brought it (their taints), for the
	// flags a module can set.
	Modules []string `json:"modules,omitempty"`
}

// Taint is the kernel's taint: the text print_tainted gives it, as the
// kernel prints it after "Tainted: " in its reports ("G           OE
// "; "" for an untainted kernel, which prints "Not tainted"), and each
// flag set.
type Taint struct {
	Mask  uint64      `json:"mask"`
	Text  string      `json:"text"`
	Flags []TaintFlag `json:"flags"`
}

// ReadTaint reads tainted_mask and renders it through the kernel's own
// taint_flags[] table (kernel/panic.c: c_true, c_false, module), as
// print_tainted does, naming the modules that set each module flag.
func ReadTaint(p *objects.Program) (*Taint, error) {
	mv, err := p.Variable("tainted_mask")
	if err != nil {
		return nil, err
	}
	mask, err := mv.Uint()
	if err != nil {
		return nil, fmt.Errorf("tainted_mask: %w", err)
	}
	t := &Taint{Mask: mask}
	flags, err := taintFlags(p)
	if err != nil {
		return t, err
	}
	mods := map[int][]string{}
	for mod, err := range ForEachModule(p) {
		if err != nil {
			if objects.IsDamage(err) {
				continue
			}
			break
		}
		m, err := NewModule(mod)
		if err != nil {
			continue
		}
		for b := m.Taints; b != 0; b &= b - 1 {
			i := bits.TrailingZeros64(b)
			mods[i] = append(mods[i], m.Name)
		}
	}
	text := make([]byte, 0, len(flags))
	for i, f := range flags {
		if mask&(1<<i) != 0 {
			text = append(text, f.cTrue)
			tf := TaintFlag{Bit: i, Char: string(f.cTrue), Desc: f.desc}
			if f.module {
				tf.Modules = mods[i]
			}
			t.Flags = append(t.Flags, tf)
		} else {
			text = append(text, f.cFalse)
		}
	}
	if mask != 0 {
		t.Text = string(text)
	}
	return t, nil
}

type taintFlag struct {
	cTrue, cFalse byte
	module        bool
	desc          string
}

// taintFlags reads taint_flags[]: its length is the symbol's size over
// struct taint_flag's, bounded, and ends at an entry that is no letter.
func taintFlags(p *objects.Program) ([]taintFlag, error) {
	addr, err := p.Symbol("taint_flags")
	if err != nil {
		return nil, err
	}
	t, err := p.Type("struct taint_flag")
	if err != nil {
		return nil, err
	}
	var out []taintFlag
	for i := range maxTaintFlags {
		v := p.Object(t, addr)
		size, err := v.Size()
		if err != nil || size == 0 {
			return out, fmt.Errorf("struct taint_flag: %v", err)
		}
		v = p.Object(t, addr+uint64(i*size))
		ct, err1 := v.MemberUint("c_true")
		cf, err2 := v.MemberUint("c_false")
		mod, err3 := v.MemberUint("module")
		if err1 != nil || err2 != nil || err3 != nil || ct < 'A' || ct > 'Z' || (cf != ' ' && (cf < 'A' || cf > 'Z')) {
			break
		}
		f := taintFlag{cTrue: byte(ct), cFalse: byte(cf), module: mod != 0}
		if dv, err := v.Member("desc"); err == nil {
			f.desc, _ = dv.CString()
		}
		if f.desc == "" && i < len(taintNames) {
			f.desc = taintNames[i]
		}
		out = append(out, f)
	}
	return out, nil
}
