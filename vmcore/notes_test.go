package vmcore

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseNotes(t *testing.T) {
	area := synthNotes(3, "OSRELEASE=x\n", 0x1000, cr4LA57)
	notes, err := parseNotes(area, 0x200)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 7 {
		t.Fatalf("%d notes, want 7", len(notes))
	}
	if notes[0].Name != "CORE" || notes[0].Type != ntPrstatus || notes[0].Off != 0x200 || len(notes[0].Desc) != prstatusSize {
		t.Errorf("note 0 = %v", notes[0])
	}
	ni, err := decodeNotes(notes)
	if err != nil {
		t.Fatal(err)
	}
	if len(ni.cpus) != 3 || string(ni.vmcoreinfo) != "OSRELEASE=x\n" {
		t.Fatalf("cpus %d, vmcoreinfo %q", len(ni.cpus), ni.vmcoreinfo)
	}
	c := ni.cpus[2]
	if c.Index != 2 || c.PID != 102 || c.Regs.RBP != synthReg(2, 4) || c.Regs.RIP != synthReg(2, 16) || c.Regs.SS != synthReg(2, 20) {
		t.Errorf("cpu 2 = %+v", c)
	}
	if c.QEMU == nil || c.QEMU.CR[3] != 0x1000 || c.QEMU.CR[4] != cr4LA57 {
		t.Errorf("QEMU = %+v", c.QEMU)
	}

	// Trailing zero padding is fine; a header cut short is not.
	if _, err := parseNotes(append(area, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0); err != nil {
		t.Errorf("padded: %v", err)
	}
	bad := append([]byte{}, area...)
	bad = append(bad, 5, 0, 0, 0)
	if _, err := parseNotes(bad, 0); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated header: %v", err)
	}
	short := make([]byte, 12+8+16)
	binary.LittleEndian.PutUint32(short, 5)
	binary.LittleEndian.PutUint32(short[4:], 16)
	binary.LittleEndian.PutUint32(short[8:], ntPrstatus)
	copy(short[12:], "CORE")
	ns, err := parseNotes(short, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeNotes(ns); !errors.Is(err, ErrFormat) {
		t.Errorf("short NT_PRSTATUS: %v", err)
	}
}

func FuzzELFNotes(f *testing.F) {
	f.Add(synthNotes(2, newSynthKernel(4).vmcoreinfo(), 0x1000, 0))
	f.Add(synthNotes(1, "", 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := parseNotes(b, 0)
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Fatal(err)
		}
		for _, n := range ns {
			if len(n.Desc) > len(b) {
				t.Fatal("descriptor larger than the input")
			}
		}
		if _, err := decodeNotes(ns); err != nil && !errors.Is(err, ErrFormat) {
			t.Fatal(err)
		}
	})
}

// TestNoteExtras: makedumpfile's ERASEINFO note is kept; GNUBuildID and
// PRStatus find their notes in an area (as /sys/kernel/notes and a
// crash_notes buffer hold them).
func TestNoteExtras(t *testing.T) {
	note := func(name string, typ uint32, desc []byte) []byte {
		b := make([]byte, 12)
		binary.LittleEndian.PutUint32(b, uint32(len(name)+1))
		binary.LittleEndian.PutUint32(b[4:], uint32(len(desc)))
		binary.LittleEndian.PutUint32(b[8:], typ)
		n := append([]byte(name), 0)
		for len(n)%4 != 0 {
			n = append(n, 0)
		}
		b = append(b, n...)
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	erase := "erase jiffies size 8\n"
	area := append(note("ERASEINFO", 0, []byte(erase)), note("GNU", ntGNUBuildID, []byte{0xde, 0xad, 0xbe, 0xef})...)
	ns, err := parseNotes(area, 0)
	if err != nil {
		t.Fatal(err)
	}
	ni, err := decodeNotes(ns)
	if err != nil || string(ni.eraseinfo) != erase {
		t.Errorf("eraseinfo %q, %v", ni.eraseinfo, err)
	}
	if id, ok := GNUBuildID(area); !ok || id != "deadbeef" {
		t.Errorf("build id %q %v", id, ok)
	}
	if _, ok := PRStatus(area); ok {
		t.Error("PRStatus found a note in an area without one")
	}
	desc := make([]byte, prstatusSize)
	binary.LittleEndian.PutUint32(desc[prstatusPIDOff:], 77)
	if c, ok := PRStatus(note("CORE", ntPrstatus, desc)); !ok || c.PID != 77 || !c.HasRegs {
		t.Errorf("PRStatus = %+v, %v", c, ok)
	}
}
