package script

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/objects"
)

// TestDocs checks docs/scripting.md against the API: every property of
// the kernel, kernel.bpf and kinspect objects, every accessor of kernel
// values and every global is documented, and the lists the engine keeps
// (for completion) match what it defines.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/scripting.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	e, err := New(Config{Kernel: kinspect.FromProgram(objects.NewProgram(nil, nil, nil)), Stdout: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	keys := func(path string) []string {
		v, err := e.rt.RunString(path)
		if err != nil {
			t.Fatal(err)
		}
		ks := v.(*goja.Object).Keys()
		slices.Sort(ks)
		return ks
	}
	same := func(what string, got, want []string) {
		g, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Errorf("%s: defined %v, listed %v", what, g, w)
		}
	}
	kernelKeys := keys("kernel")
	same("kernel", kernelKeys, append(slices.Clone(kernelFuncs), kernelProps...))
	same("kernel.bpf", keys("kernel.bpf"), bpfFuncs)
	same("kernel.slab", keys("kernel.slab"), slabFuncs)
	same("kernel.mm", keys("kernel.mm"), mmFuncs)
	same("kinspect", keys("kinspect"), kinspectProps)
	same("value prototype", e.proto.Keys(), valueMethods)

	need := func(spelling string) {
		if !strings.Contains(doc, spelling) {
			t.Errorf("docs/scripting.md does not document %s", spelling)
		}
	}
	for _, k := range kernelFuncs {
		need("`kernel." + k + "(")
	}
	for _, k := range kernelProps {
		need("`kernel." + k)
	}
	for _, k := range bpfFuncs {
		need("`kernel.bpf." + k + "(")
	}
	for _, k := range slabFuncs {
		need("`kernel.slab." + k + "(")
	}
	for _, k := range mmFuncs {
		need("`kernel.mm." + k + "(")
	}
	for _, k := range kinspectProps {
		need("`kinspect." + k)
	}
	for _, m := range debuggerMethods {
		need("`d." + m + "(")
	}
	for _, k := range valueMethods {
		need("`." + k + "(")
	}
	for _, k := range valueProps {
		need("`." + k + "`")
	}
	for _, g := range globalNames {
		need("`" + g)
	}
	for _, g := range []string{"kernel", "kinspect", "console", "print"} {
		if v := e.rt.Get(g); v == nil || goja.IsUndefined(v) {
			t.Errorf("global %s is not defined", g)
		}
	}
	// Every error code is documented.
	for _, c := range []string{"fault", "page_excluded", "no_memory", "not_found", "type", "corrupt", "limit", "read_only", "argument"} {
		need("`" + c + "`")
	}
}
