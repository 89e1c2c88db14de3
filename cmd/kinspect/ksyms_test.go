package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
)

// truthExtraSyms reads the module and [bpf] lines of truth/kallsyms.txt
// (not the ftrace trampolines' [__builtin__ftrace]) as "ADDR T NAME [MOD]".
func truthExtraSyms(t *testing.T, s *labdata.Scenario) []string {
	t.Helper()
	f, err := os.Open(s.Path("truth/kallsyms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 4 && fs[3] != "[__builtin__ftrace]" {
			out = append(out, strings.Join(fs, " "))
		}
	}
	return out
}

// TestDumpSymbolsLab: the table sym opens from a dump holds every module
// and BPF symbol of the guest's /proc/kallsyms, with its address and type,
// and nothing else beside vmlinux's; sym resolves them both ways.
func TestDumpSymbolsLab(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		truth := truthExtraSyms(t, s)
		for _, f := range []string{"kdump-zlib", "elf"} {
			fm, ok := s.Format(f)
			if !ok {
				continue
			}
			t.Run(s.Scenario+"/"+f, func(t *testing.T) {
				e := &env{globals: globals{dump: s.Path(fm.Path)}}
				k, err := openKernel(e, "")
				if err != nil {
					t.Fatal(err)
				}
				defer k.Close()
				if err := k.SymbolErr(); err != nil {
					t.Errorf("module and BPF symbols: %v", err)
				}
				syms := k.Symbols()
				got := map[string]bool{}
				for sym := range syms.All() {
					if sym.Module != "" {
						got[fmt.Sprintf("%016x %c %s [%s]", sym.Addr, sym.Type, sym.Name, sym.Module)] = true
					}
				}
				var missing []string
				mods, bpf := 0, 0
				for _, l := range truth {
					if !got[l] {
						missing = append(missing, l)
						continue
					}
					delete(got, l)
					if strings.HasSuffix(l, "[bpf]") {
						bpf++
					} else {
						mods++
					}
				}
				t.Logf("%d module and %d BPF symbols of /proc/kallsyms match (address, type, name); %d missing, %d extra", mods, bpf, len(missing), len(got))
				if len(missing) > 0 || len(got) > 0 {
					t.Errorf("missing %d (%v...), extra %d", len(missing), missing[:min(5, len(missing))], len(got))
				}
			})
		}
		// Both ways through the command: a module function and a BPF
		// program, by name and by an address inside them.
		t.Run(s.Scenario+"/sym", func(t *testing.T) {
			var mod, prog []string
			for _, l := range truth {
				fs := strings.Fields(l)
				if mod == nil && fs[1] == "t" && fs[3] == "[virtio]" || mod == nil && fs[1] == "t" && fs[3] == "[9pnet]" {
					mod = fs
				}
				if prog == nil && fs[3] == "[bpf]" && strings.HasPrefix(fs[2], "bpf_prog_") {
					prog = fs
				}
			}
			for _, fs := range [][]string{mod, prog} {
				if fs == nil {
					t.Fatal("no module or BPF function in the truth")
				}
				var out bytes.Buffer
				args := []string{"-c", s.Path(s.Formats[0].Path), "sym", fs[2], fs[2] + "+0x4"}
				if code := run(args, &out, &out); code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, out.String())
				}
				mod := strings.Trim(fs[3], "[]")
				if !strings.Contains(out.String(), fs[0]+" "+fs[1]+" "+fs[2]+" ["+mod+"]") ||
					!strings.Contains(out.String(), fs[2]+"+0x4/") || !strings.Contains(out.String(), " ["+mod+"]\n") {
					t.Errorf("%v:\n%s", args, out.String())
				}
			}
		})
	}
}
