package x86dis_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/kinspect/kinspect/internal/labdata"
	"github.com/kinspect/kinspect/internal/labkernel"
	"github.com/kinspect/kinspect/x86dis"
)

// TestKernelTextObjdump disassembles 4 MiB of the basic guest's kernel
// text from its dump, from the symbol $KINSPECT_OBJDUMP_SYM (default
// _stext), and compares every instruction objdump finds with ours.
// It needs binutils' objdump and runs only when that variable is set.
func TestKernelTextObjdump(t *testing.T) {
	sym := os.Getenv("KINSPECT_OBJDUMP_SYM")
	if sym == "" {
		t.Skip("set KINSPECT_OBJDUMP_SYM=_stext (or another text symbol) to compare with objdump")
	}
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Skip("no objdump")
	}
	k := labkernel.Open(t, labdata.Require(t, "basic"), "elf")
	start, err := k.Symbols().Addr(sym)
	if err != nil {
		t.Fatal(err)
	}
	start &^= 0xfff
	b := make([]byte, 4<<20)
	if err := k.Program().Read(b, start); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir() + "/text.bin"
	os.WriteFile(bin, b, 0o644)
	out, err := exec.Command("objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "--adjust-vma=0x"+strconv.FormatUint(start, 16), bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{}
	for _, l := range strings.Split(string(out), "\n") {
		parts := strings.Split(l, "\t")
		if len(parts) < 3 {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(parts[0]), ":"), 16, 64)
		if err != nil {
			continue
		}
		want[a] = strings.Join(strings.Fields(parts[2]), " ")
	}
	total, same := 0, 0
	seen := map[string]int{}
	for _, in := range x86dis.Disassemble(b, start) {
		w, ok := want[in.Addr]
		if !ok {
			continue
		}
		total++
		g := strings.Join(strings.Fields(in.Text), " ")
		if g == w {
			same++
			continue
		}
		k := strings.Fields(w)[0] + " | " + strings.Fields(g + " x")[0]
		if seen[k] < 1 && len(seen) < 15 {
			t.Logf("%#x %x: %q objdump %q", in.Addr, in.Bytes, g, w)
		}
		seen[k]++
	}
	if same < total-total/1000 {
		t.Errorf("fewer than 99.9%% of the instructions as objdump prints them")
	}
	t.Logf("%s: %d/%d instructions as objdump prints them (objdump decoded %d)", sym, same, total, len(want))
}
