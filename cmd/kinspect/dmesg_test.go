package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/linux"
)

func TestPrintDmesg(t *testing.T) {
	var out bytes.Buffer
	printDmesg(&out, []linux.PrintkRecord{
		{TsNsec: 0, Text: "Linux version 6.1.0"},
		{TsNsec: 101555533999, Text: "RIP: 0010:x\nRSP: 0018:y"},
	})
	want := "[    0.000000] Linux version 6.1.0\n[  101.555533] RIP: 0010:x\n[  101.555533] RSP: 0018:y\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// dmesgPrefix checks that want's lines are got's first lines: a dump
// taken after the truth may have more at the end.
func dmesgPrefix(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) < len(want) {
		t.Errorf("%d lines, truth %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("line %d:\n got  %q\n want %q", i+1, got[i], want[i])
		}
	}
}

func lines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestDmesgLab: dmesg on every scenario's dumps prints the guest's dmesg.
func TestDmesgLab(t *testing.T) {
	for _, s := range labdata.Built(t) {
		if s.Live {
			continue
		}
		b, err := os.ReadFile(s.Path("truth/dmesg.txt"))
		if err != nil {
			t.Fatal(err)
		}
		truth := lines(b)
		for _, f := range []string{"kdump-zlib", "elf"} {
			fm, ok := s.Format(f)
			if !ok {
				continue
			}
			t.Run(s.Scenario+"/"+f, func(t *testing.T) {
				var out, errb bytes.Buffer
				if code := run([]string{"-c", s.Path(fm.Path), "dmesg"}, &out, &errb); code != 0 {
					t.Fatalf("exit %d: %s", code, errb.String())
				}
				got := lines(out.Bytes())
				dmesgPrefix(t, got, truth)
				t.Logf("%d truth lines match; the dump has %d more", len(truth), len(got)-len(truth))
				var recs []linux.DmesgRecord
				runJSON(t, &recs, "--json", "-c", s.Path(fm.Path), "dmesg")
				if len(recs) == 0 || recs[0].Seq != 0 || !strings.HasPrefix(recs[0].Text, "Linux version") || recs[0].Level != 5 {
					t.Errorf("first record %+v", recs[0])
				}
			})
		}
	}
}
