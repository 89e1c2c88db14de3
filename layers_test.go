package kinspect

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// module is this module's import path.
const module = "github.com/kinspect/kinspect"

// layers is the import order of the library, lowest first: a package may
// import only packages of lower layers (docs/architecture.md). Tools and
// test support outside the library (lab, internal/*) are checked by
// their own rules below.
var layers = map[string]int{
	"vmcore":       0,
	"btfload":      0,
	"bpfinsn":      0,
	"x86dis":       0,
	"bpfvm":        1,
	"kallsyms":     1,
	"objects":      2,
	"linux":        3,
	"bpf":          4,
	".":            5, // kinspect.Open
	"orc":          6,
	"triage":       7,
	"bpfrun":       7,
	"script":       8,
	"cmd/kinspect": 9,
}

// exclusive are third-party packages only the named package may import.
var exclusive = map[string][]string{
	"github.com/klauspost/compress": {"vmcore", "lab", "internal/dumpedit"},
	"github.com/anchore/go-lzo":     {"vmcore"},
	"github.com/dop251/goja":        {"script", "cmd/kinspect"},
}

// TestLayers fails when a package's (non-test) imports break the layer
// order, when a decompressor or the JavaScript engine is imported outside
// its package, or when anything imports the command.
func TestLayers(t *testing.T) {
	imports := map[string]map[string]bool{} // package dir -> imports
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != "." && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if imports[dir] == nil {
			imports[dir] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			imports[dir][p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < len(layers) {
		t.Fatalf("found %d packages, fewer than the layer table's %d", len(imports), len(layers))
	}
	for _, p := range checkLayers(imports) {
		t.Error(p)
	}
	// The check catches each kind of mistake.
	for _, bad := range []map[string]map[string]bool{
		{"objects": {module + "/bpf": true}},
		{"bpf": {module + "/bpf": true, module + "/orc": true}},
		{"linux": {"github.com/dop251/goja": true}},
		{"kallsyms": {"github.com/klauspost/compress/zstd": true}},
		{"script": {module + "/cmd/kinspect": true}},
		{"objects": {module + "/internal/labdata": true}},
		{"newpkg": {}},
	} {
		if len(checkLayers(bad)) == 0 {
			t.Errorf("checkLayers(%v) found nothing", bad)
		}
	}
}

// checkLayers returns the problems of a package -> imports table.
func checkLayers(imports map[string]map[string]bool) []string {
	var out []string
	var dirs []string
	for d := range imports {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		rank, inLib := layers[dir]
		if !inLib && !strings.HasPrefix(dir, "internal/") && !strings.HasPrefix(dir, "lab") {
			out = append(out, dir+": a package the layer table does not place: add it to layers (and docs/architecture.md)")
		}
		var ps []string
		for p := range imports[dir] {
			ps = append(ps, p)
		}
		sort.Strings(ps)
		for _, p := range ps {
			for prefix, allowed := range exclusive {
				if strings.HasPrefix(p, prefix) && !slices.Contains(allowed, dir) {
					out = append(out, fmt.Sprintf("%s imports %s: only %v may", dir, p, allowed))
				}
			}
			if p != module && !strings.HasPrefix(p, module+"/") {
				continue
			}
			target := "."
			if p != module {
				target = strings.TrimPrefix(p, module+"/")
			}
			switch {
			case target == "cmd/kinspect":
				out = append(out, dir+" imports the command")
			case strings.HasPrefix(target, "internal/"):
				if inLib {
					out = append(out, dir+" imports test support "+target)
				}
			case inLib:
				if tr, ok := layers[target]; ok && tr >= rank {
					out = append(out, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports go to lower layers only", dir, rank, target, tr))
				}
			}
		}
	}
	return out
}
