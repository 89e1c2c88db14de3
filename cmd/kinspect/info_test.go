package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/internal/labdata"
)

// tinyCore writes a minimal ELF core: a VMCOREINFO note, one NT_PRSTATUS
// and one PT_LOAD of 4 pages (no page tables, so no address space).
func tinyCore(t *testing.T) string {
	t.Helper()
	le := binary.LittleEndian
	var notes bytes.Buffer
	note := func(name string, typ uint32, desc []byte) {
		nm := append([]byte(name), 0)
		binary.Write(&notes, le, [3]uint32{uint32(len(nm)), uint32(len(desc)), typ})
		notes.Write(nm)
		notes.Write(make([]byte, (4-len(nm)%4)%4))
		notes.Write(desc)
		notes.Write(make([]byte, (4-len(desc)%4)%4))
	}
	pr := make([]byte, 336)
	le.PutUint32(pr[32:], 7)                        // pr_pid
	le.PutUint64(pr[112+16*8:], 0xffffffff81234567) // rip
	le.PutUint64(pr[112+19*8:], 0xffffc90000123f00) // rsp
	note("CORE", 1, pr)
	note("VMCOREINFO", 0, []byte("OSRELEASE=6.1.0-test\nBUILD-ID=abcdef\nPAGESIZE=4096\nKERNELOFFSET=1e000000\nCRASHTIME=1700000000\n"))
	hdr := make([]byte, 64+2*56)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le.PutUint16(hdr[16:], 4)
	le.PutUint16(hdr[18:], 62)
	le.PutUint64(hdr[32:], 64)
	le.PutUint16(hdr[54:], 56)
	le.PutUint16(hdr[56:], 2)
	off := uint64(len(hdr))
	ph := hdr[64:]
	le.PutUint32(ph, 4)
	le.PutUint64(ph[8:], off)
	le.PutUint64(ph[32:], uint64(notes.Len()))
	le.PutUint64(ph[40:], uint64(notes.Len()))
	ph = hdr[64+56:]
	le.PutUint32(ph, 1)
	le.PutUint64(ph[8:], off+uint64(notes.Len()))
	le.PutUint64(ph[32:], 4*4096)
	le.PutUint64(ph[40:], 4*4096)
	b := append(hdr, notes.Bytes()...)
	b = append(b, make([]byte, 4*4096)...)
	p := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(p, b, 0o400); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInfoTinyCore(t *testing.T) {
	core := tinyCore(t)
	var out bytes.Buffer
	if code := run([]string{"-c", core, "info"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	for _, want := range []string{"RELEASE: 6.1.0-test", "BUILD ID: abcdef", "KASLR OFFSET: (unknown)", "MEMORY: 16.0 KiB (16384 bytes)",
		"CRASH TIME: 2023-11-14T22:13:20Z", "0xffffffff81234567", "0xffffc90000123f00", "(elf)", "note: kernel address space"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"-c", core, "--json", "info"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	var r kinspect.Info
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.Release != "6.1.0-test" || r.NumCPUs != 1 || r.CPUs[0].PID != 7 || !strings.Contains(out.String(), `"rip":"0xffffffff81234567"`) || r.MemoryBytes != 16384 {
		t.Errorf("json: %s", out.String())
	}
}

func TestInfoErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, bytes.Repeat([]byte("x"), 100), 0o400)
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"info"}, 2, "give -c DUMP or --live"},
		{[]string{"-c", bad, "info"}, 1, "unknown magic"},
		{[]string{"--json", "-c", bad, "info"}, 1, `{"error":`},
		{[]string{"-c", "/nonexistent", "info"}, 1, "no such file"},
		{[]string{"-c", bad, "--live", "info"}, 2, "exclude each other"},
		{[]string{"--page-cache", "-1", "-c", bad, "info"}, 2, "--page-cache"},
		{[]string{"-c", bad, "info", "extra"}, 2, "no arguments"},
		{[]string{"info", "help"}, 0, "Usage: kinspect"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if code := run(tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.contains) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s", code, tt.code, tt.contains, out.String())
			}
		})
	}
}

// TestInfoLive: with /proc/kcore the live kernel is described; without
// it (as on the build machines), info still gives the release and says
// why the rest is missing.
func TestInfoLive(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--live", "--json", "info"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	var r kinspect.Info
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skip(err)
	}
	if r.Release != strings.TrimSpace(string(rel)) {
		t.Errorf("release %q, uname says %q", r.Release, rel)
	}
	if _, err := os.Stat("/proc/kcore"); err != nil && !strings.Contains(r.Unavailable, "/proc/kcore") {
		t.Errorf("no /proc/kcore, but unavailable = %q", r.Unavailable)
	}
}

// TestInfoLab: info on every format of each built scenario agrees (but
// for the dump's own description) and gives the truth's release.
func TestInfoLab(t *testing.T) {
	for _, s := range labdata.Built(t) {
		t.Run(s.Scenario, func(t *testing.T) {
			b, err := os.ReadFile(s.Path("truth/uname.txt"))
			if err != nil {
				t.Fatal(err)
			}
			uname := strings.TrimSpace(string(b))
			var first []byte
			cpuTasks := map[int]kinspect.CPUInfo{} // as the formats that could read them say
			for _, f := range s.Formats {
				var out, errb bytes.Buffer
				code := run([]string{"-c", s.Path(f.Path), "--json", "info"}, &out, &errb)
				// A misfiltered dump lacks pages the symbol walkers need
				// at open: they go past them, and say so (exit 3).
				if code != 0 && (code != exitDamaged || s.Misfiltered(f) == "") {
					t.Errorf("%s: exit %d: %s%s", f.Name, code, out.String(), errb.String())
					continue
				}
				var r kinspect.Info
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					t.Fatal(err)
				}
				if r.Release != uname {
					t.Errorf("%s: release %q, truth %q", f.Name, r.Release, uname)
				}
				if len(r.Problems) > 0 {
					t.Errorf("%s: problems %v", f.Name, r.Problems)
				}
				// A misfiltered dump may lack a running task's
				// task_struct: its pid and comm are unknown, and said so.
				for i, c := range r.CPUs {
					switch w, ok := cpuTasks[c.CPU]; {
					case c.TaskError != "" && s.Misfiltered(f) == "":
						t.Errorf("%s: CPU %d: %s", f.Name, c.CPU, c.TaskError)
					case c.TaskError == "" && ok && (w.PID != c.PID || w.Comm != c.Comm):
						t.Errorf("%s: CPU %d runs %d %q, %d %q in another format", f.Name, c.CPU, c.PID, c.Comm, w.PID, w.Comm)
					case c.TaskError == "":
						cpuTasks[c.CPU] = c
					}
					r.CPUs[i].PID, r.CPUs[i].Comm, r.CPUs[i].TaskError = 0, "", ""
				}
				checkInfoCPUs(t, s, f.Name, cpuTasks, &r)
				if s.NoVMCOREINFO {
					// QEMU without -device vmcoreinfo: the kernel's own
					// page, found in memory, and KASLR as the guest's
					// kallsyms has it.
					if !strings.HasPrefix(r.VMCOREINFO, "found in memory at phys 0x") {
						t.Errorf("%s: VMCOREINFO from %q, want found in memory", f.Name, r.VMCOREINFO)
					}
					checkInfoKASLR(t, s, f.Name, &r)
				} else if want := map[bool]string{true: "ELF note", false: "kdump sub-header"}[f.Layout == "elf"]; r.VMCOREINFO != want {
					t.Errorf("%s: VMCOREINFO from %q, want %q", f.Name, r.VMCOREINFO, want)
				}
				if r.Symbols != "kallsyms tables in memory, located by VMCOREINFO" {
					t.Errorf("%s: symbols from %q", f.Name, r.Symbols)
				}
				// Where the dump keeps its VMCOREINFO is the dump's own.
				r.Dump, r.VMCOREINFO = kinspect.DumpInfo{}, ""
				kernelPart, _ := json.Marshal(r)
				if first == nil {
					first = kernelPart
				} else if !bytes.Equal(kernelPart, first) {
					t.Errorf("%s: info differs from the first format:\n%s\n%s", f.Name, kernelPart, first)
				}
			}
		})
	}
}

// checkInfoKASLR checks info's KASLR offset against the guest's
// /proc/kallsyms: _text's address less __START_KERNEL (x86-64's
// 0xffffffff81000000).
func checkInfoKASLR(t *testing.T, s *labdata.Scenario, format string, r *kinspect.Info) {
	t.Helper()
	b, err := os.ReadFile(s.Path("truth/kallsyms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^([0-9a-f]{16}) T _text$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: no _text in truth/kallsyms.txt", s.Scenario)
	}
	text, _ := strconv.ParseUint(string(m[1]), 16, 64)
	if r.KASLROffset == nil || uint64(*r.KASLROffset) != text-0xffffffff81000000 {
		t.Errorf("%s: KASLR offset %v, the truth's _text %#x gives %#x", format, r.KASLROffset, text, text-0xffffffff81000000)
	}
}

// panicLine is the console's "CPU: N PID: P Comm: C" after the panic.
var panicLine = regexp.MustCompile(`CPU: (\d+) PID: (\d+) Comm: (\S+)`)

// checkInfoCPUs checks info's panic CPU and each CPU's task against the
// guest's own words: the spinner (workload.json) runs on its CPU; a
// panicked guest's console names the panicking CPU and task after
// "Kernel panic - not syncing", a kdump scenario's crash.json the
// crashing CPU and task; a guest that did not panic has none.
func checkInfoCPUs(t *testing.T, s *labdata.Scenario, format string, byCPU map[int]kinspect.CPUInfo, r *kinspect.Info) {
	t.Helper()
	var w struct {
		Spinner struct {
			TID  int    `json:"tid"`
			Comm string `json:"comm"`
			CPU  int    `json:"cpu"`
		} `json:"spinner"`
	}
	labdata.ReadJSON(t, s.Path("truth/workload.json"), &w)
	if c, ok := byCPU[w.Spinner.CPU]; ok && c.PID != w.Spinner.TID || c.Comm != w.Spinner.Comm {
		t.Errorf("%s: CPU %d runs %d %q, the spinner is %d %q", format, w.Spinner.CPU, c.PID, c.Comm, w.Spinner.TID, w.Spinner.Comm)
	}
	if c := s.Crash; c != nil {
		// A kdump scenario: the crashing kernel's console (crash.json)
		// names the CPU, and the task the report was printed by.
		if r.PanicCPU == nil || *r.PanicCPU != c.CPU {
			t.Errorf("%s: panic CPU %v, the console says %d", format, r.PanicCPU, c.CPU)
		}
		if got, ok := byCPU[c.CPU]; ok && (got.PID != c.PID || got.Comm != c.Comm) {
			t.Errorf("%s: CPU %d runs %d %q, the console says %d %q", format, c.CPU, got.PID, got.Comm, c.PID, c.Comm)
		}
		return
	}
	if !s.Panic {
		if r.PanicCPU != nil {
			t.Errorf("%s: panic CPU %d in a guest that did not panic", format, *r.PanicCPU)
		}
		return
	}
	con, err := os.ReadFile(s.Path("console.log"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(con), "Kernel panic - not syncing")
	m := panicLine.FindStringSubmatch(string(con[max(i, 0):]))
	if i < 0 || m == nil {
		t.Fatalf("the console has no panic report")
	}
	cpu, _ := strconv.Atoi(m[1])
	pid, _ := strconv.Atoi(m[2])
	if r.PanicCPU == nil || *r.PanicCPU != cpu {
		t.Errorf("%s: panic CPU %v, the console says %d", format, r.PanicCPU, cpu)
	}
	if c := byCPU[cpu]; c.PID != pid || c.Comm != m[3] {
		t.Errorf("%s: CPU %d runs %d %q, the console says %d %q", format, cpu, c.PID, c.Comm, pid, m[3])
	}
}
