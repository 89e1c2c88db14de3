package x86dis

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

// TestObjdumpListing disassembles the bytes of objdumpListing and
// compares each instruction with objdump's line.
func TestObjdumpListing(t *testing.T) {
	type line struct {
		addr  uint64
		bytes []byte
		text  string
	}
	var want []line
	var code []byte
	for _, l := range strings.Split(strings.TrimSpace(objdumpListing), "\n") {
		parts := strings.Split(l, "\t")
		a, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(parts[0]), ":"), 16, 64)
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(parts[1]), " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		code = append(code, b...)
		if len(parts) < 3 {
			want[len(want)-1].bytes = append(want[len(want)-1].bytes, b...)
			continue
		}
		want = append(want, line{a, b, strings.Join(strings.Fields(parts[2]), " ")})
	}
	got := Disassemble(code, 0xffffffffc0000000)
	if len(got) != len(want) {
		t.Errorf("%d instructions, objdump %d", len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		g, w := got[i], want[i]
		if g.Addr != w.addr || string(g.Bytes) != string(w.bytes) {
			t.Fatalf("instruction %d: %#x %x, objdump %#x %x", i, g.Addr, g.Bytes, w.addr, w.bytes)
		}
		if strings.Join(strings.Fields(g.Text), " ") != w.text {
			t.Errorf("%#x %x: %q, objdump %q", g.Addr, g.Bytes, g.Text, w.text)
		}
	}
}

func TestMnemonic(t *testing.T) {
	for text, want := range map[string]string{
		"mov    %rsp,%rbp":        "mov",
		"lock add %r15,0x0(%rax)": "lock add",
		"ret":                     "ret",
		"movabs $0x1,%rdi":        "movabs",
	} {
		if got := (Inst{Text: text}).Mnemonic(); got != want {
			t.Errorf("%q: %q, want %q", text, got, want)
		}
	}
}

// FuzzDisassemble: any bytes decode to instructions that cover them
// exactly, without a panic.
func FuzzDisassemble(f *testing.F) {
	f.Add([]byte{0x0f, 0x1f, 0x44, 0x00, 0x00, 0x66, 0x90, 0x55, 0x48, 0x89, 0xe5})
	f.Add([]byte{0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x01, 0xca, 0x65, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		for _, in := range Disassemble(b, 0xffffffffc0000000) {
			if len(in.Bytes) == 0 || in.Text == "" {
				t.Fatalf("empty instruction at %#x", in.Addr)
			}
			n += len(in.Bytes)
		}
		if n != len(b) {
			t.Fatalf("instructions cover %d of %d bytes", n, len(b))
		}
	})
}
