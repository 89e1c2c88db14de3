// Package labkernel opens the lab's dumps for tests, through
// kinspect.Open as the command line does. It is for tests outside the
// packages Open is built from (their external _test packages, orc, script,
// cmd): those packages' own tests use synthetic kernels.
package labkernel

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/objects"
	"github.com/kinspect/kinspect/vmcore"
)

var (
	mu    sync.Mutex
	cache = map[string]*kinspect.Kernel{}
)

// Open opens a scenario's dump in the named format, once per test
// binary (the kernel is shared: don't close it). A scenario without that
// format skips the test.
func Open(tb testing.TB, s *labdata.Scenario, format string) *kinspect.Kernel {
	tb.Helper()
	f, ok := s.Format(format)
	if !ok {
		tb.Skipf("%s has no %s dump", s.Scenario, format)
	}
	key := s.Scenario + "/" + format
	mu.Lock()
	defer mu.Unlock()
	if k, ok := cache[key]; ok {
		return k
	}
	k, err := kinspect.Open(context.Background(), kinspect.Options{Dump: s.Path(f.Path)})
	if err != nil {
		tb.Fatalf("%s: %v", key, err)
	}
	cache[key] = k
	return k
}

// All opens, for every built scenario with dumps, the dumps in the
// formats named (every format when none is), keyed "scenario/format".
func All(tb testing.TB, formats ...string) map[string]*kinspect.Kernel {
	tb.Helper()
	out := map[string]*kinspect.Kernel{}
	for _, s := range labdata.Built(tb) {
		if s.Live {
			continue
		}
		for _, f := range s.Formats {
			if len(formats) > 0 && !slices.Contains(formats, f.Name) {
				continue
			}
			out[s.Scenario+"/"+f.Name] = Open(tb, s, f.Name)
		}
	}
	return out
}

// Programs is All's kernels' object engines.
func Programs(tb testing.TB, formats ...string) map[string]*objects.Program {
	tb.Helper()
	out := map[string]*objects.Program{}
	for name, k := range All(tb, formats...) {
		out[name] = k.Program()
	}
	return out
}

// Scenario returns the scenario of a "scenario/format" name of All.
func Scenario(name string) *labdata.Scenario {
	s, _ := labdata.Load(strings.SplitN(name, "/", 2)[0])
	return s
}

// FatalUnlessDropped ends a test on err: a skip when makedumpfile dropped
// the page from a filtered dump of a kernel it does not know (1.7.2
// frees live slab pages of 6.10+ at -d 31, see lab/README.md), a failure
// otherwise. name is a "scenario/format" name of All.
func FatalUnlessDropped(t testing.TB, name string, err error) {
	t.Helper()
	sc := Scenario(name)
	f, _ := sc.Format(strings.SplitN(name, "/", 2)[1])
	if why := sc.Misfiltered(f); why != "" && errors.Is(err, vmcore.ErrPageExcluded) {
		t.Skipf("%v: %s", err, why)
	}
	t.Fatal(err)
}

// Formats are the dump formats the object layers' lab tests read, one of
// each kind: ELF, a zlib kdump, a filtered flattened lzo one, zstd.
var Formats = []string{"elf", "kdump-zlib", "kdump-lzo-d31.flat", "kdump-zstd"}

// SkipVolatileTruth skips a test that compares counters the kernel keeps
// changing (memory, slab, thread counts) with the truth, on a kdump
// scenario: its truth was taken well before the crash (the workload and
// the crash's own trigger ran between), so those counters moved. name is
// a "scenario/format" name of All.
func SkipVolatileTruth(t testing.TB, name string) {
	t.Helper()
	if sc := Scenario(name); sc != nil && sc.Kdump {
		t.Skipf("%s: a kdump scenario's truth was taken before the crash; the counters compared moved since", name)
	}
}
