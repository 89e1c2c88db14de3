package vmcore

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// maxNotesSize bounds a note area we are willing to load (PT_NOTE or the
// kdump sub-header's note area). Real ones are a few KiB per CPU.
const maxNotesSize = 64 << 20

// note is one ELF note.
type note struct {
	Name string
	Type uint32
	Desc []byte
	Off  int64 // file offset of the note header
}

// parseNotes splits an ELF note area (Elf64_Nhdr records, 4-byte aligned
// as Linux writes them) that was read from file offset base. A damaged
// note ends the area with an error naming its offset; the notes before it
// are returned.
func parseNotes(b []byte, base int64) ([]note, error) {
	var out []note
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			// Trailing padding (QEMU and the kernel leave zeros).
			if allZero(b[off:]) {
				break
			}
			return out, formatErr("ELF note", base+int64(off), "truncated note header (%d bytes left)", len(b)-off)
		}
		namesz := binary.LittleEndian.Uint32(b[off:])
		descsz := binary.LittleEndian.Uint32(b[off+4:])
		typ := binary.LittleEndian.Uint32(b[off+8:])
		if namesz == 0 && descsz == 0 && typ == 0 {
			// Zero padding at the end of the area (the kernel's final
			// empty note, or a size rounded up).
			if allZero(b[off:]) {
				break
			}
		}
		p := off + 12
		nameEnd := p + int(align4(uint64(namesz)))
		if uint64(namesz) > uint64(len(b)) || nameEnd > len(b) || nameEnd < p {
			return out, formatErr("ELF note", base+int64(off), "name size %d beyond the note area (%d bytes)", namesz, len(b))
		}
		descEnd := nameEnd + int(descsz)
		if uint64(descsz) > uint64(len(b)) || descEnd > len(b) || descEnd < nameEnd {
			return out, formatErr("ELF note", base+int64(off), "descriptor size %d beyond the note area (%d bytes)", descsz, len(b))
		}
		name := b[p : p+int(namesz)]
		name = bytes.TrimRight(name, "\x00")
		out = append(out, note{Name: string(name), Type: typ, Desc: b[nameEnd:descEnd], Off: base + int64(off)})
		next := nameEnd + int(align4(uint64(descsz)))
		if next > len(b) {
			break
		}
		off = next
	}
	return out, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// noteInfo is what the notes of a dump say.
type noteInfo struct {
	vmcoreinfo    []byte // the VMCOREINFO note's text
	vmcoreinfoOff int64
	eraseinfo     []byte // makedumpfile's ERASEINFO note (ELF output)
	cpus          []CPU
}

// decodeNotes extracts per-CPU registers and VMCOREINFO from notes.
// NT_PRSTATUS notes and QEMU's CPU-state notes are matched in order: the
// i-th of each belongs to CPU i, as QEMU and the kernel write them.
func decodeNotes(notes []note) (noteInfo, error) {
	var ni noteInfo
	var pr, qemu []note
	for _, n := range notes {
		switch {
		case n.Name == "CORE" && n.Type == ntPrstatus:
			pr = append(pr, n)
		case n.Name == "QEMU" && n.Type == 0:
			qemu = append(qemu, n)
		case n.Name == "VMCOREINFO" && ni.vmcoreinfo == nil:
			ni.vmcoreinfo = n.Desc
			ni.vmcoreinfoOff = n.Off
		case n.Name == "ERASEINFO" && ni.eraseinfo == nil:
			ni.eraseinfo = n.Desc
		}
	}
	ncpu := max(len(pr), len(qemu))
	for i := range ncpu {
		c := CPU{Index: i}
		if i < len(pr) {
			if err := decodePrstatus(&c, pr[i]); err != nil {
				return ni, err
			}
		}
		if i < len(qemu) {
			if err := decodeQEMUCPUState(&c, qemu[i]); err != nil {
				return ni, err
			}
		}
		ni.cpus = append(ni.cpus, c)
	}
	return ni, nil
}

func decodePrstatus(c *CPU, n note) error {
	d := n.Desc
	if len(d) < prstatusRegOff+prstatusNRegs*8 {
		return formatErr("NT_PRSTATUS note", n.Off, "descriptor of %d bytes, want %d", len(d), prstatusSize)
	}
	c.PID = int(int32(binary.LittleEndian.Uint32(d[prstatusPIDOff:])))
	var r [prstatusNRegs]uint64
	for i := range r {
		r[i] = binary.LittleEndian.Uint64(d[prstatusRegOff+8*i:])
	}
	c.Regs = Regs{
		R15: r[0], R14: r[1], R13: r[2], R12: r[3], RBP: r[4], RBX: r[5],
		R11: r[6], R10: r[7], R9: r[8], R8: r[9], RAX: r[10], RCX: r[11],
		RDX: r[12], RSI: r[13], RDI: r[14], OrigRAX: r[15], RIP: r[16],
		CS: r[17], EFlags: r[18], RSP: r[19], SS: r[20],
		FSBase: r[21], GSBase: r[22], DS: r[23], ES: r[24], FS: r[25], GS: r[26],
	}
	c.HasRegs = true
	return nil
}

func decodeQEMUCPUState(c *CPU, n note) error {
	d := n.Desc
	if len(d) < qemuCPUStateMinSize {
		return formatErr("QEMU CPU note", n.Off, "descriptor of %d bytes, want at least %d", len(d), qemuCPUStateMinSize)
	}
	var s rawQEMUCPUState
	if _, err := binary.Decode(d[:qemuCPUStateMinSize], binary.LittleEndian, &s); err != nil {
		// The size was checked: Decode cannot fail short of a bug.
		return formatErr("QEMU CPU note", n.Off, "%v", err)
	}
	var kgs uint64
	if int(s.Size) >= qemuCPUStateKGSOff+8 && len(d) >= qemuCPUStateKGSOff+8 {
		kgs = binary.LittleEndian.Uint64(d[qemuCPUStateKGSOff:])
	}
	q := &QEMUState{
		CR:           s.CR,
		KernelGSBase: kgs,
		GDTBase:      s.GDT.Base,
		IDTBase:      s.IDT.Base,
		FSBase:       s.FS.Base,
		GSBase:       s.GS.Base,
	}
	c.QEMU = q
	if !c.HasRegs {
		// Without NT_PRSTATUS, take the registers from QEMU's own note.
		c.Regs = Regs{
			RAX: s.RAX, RBX: s.RBX, RCX: s.RCX, RDX: s.RDX, RSI: s.RSI, RDI: s.RDI,
			RSP: s.RSP, RBP: s.RBP, R8: s.R8, R9: s.R9, R10: s.R10, R11: s.R11,
			R12: s.R12, R13: s.R13, R14: s.R14, R15: s.R15, RIP: s.RIP, EFlags: s.RFlags,
			CS: uint64(s.CS.Selector), SS: uint64(s.SS.Selector), DS: uint64(s.DS.Selector),
			ES: uint64(s.ES.Selector), FS: uint64(s.FS.Selector), GS: uint64(s.GS.Selector),
			FSBase: s.FS.Base, GSBase: s.GS.Base,
		}
		c.HasRegs = true
	}
	return nil
}

// String names a note for messages.
func (n note) String() string { return fmt.Sprintf("%s/%d at %#x", n.Name, n.Type, n.Off) }

// ntGNUBuildID is NT_GNU_BUILD_ID.
const ntGNUBuildID = 3

// GNUBuildID returns the build ID in an ELF note area, such as the
// running kernel's /sys/kernel/notes: the descriptor of its "GNU"
// NT_GNU_BUILD_ID note, in hex; false when there is none.
func GNUBuildID(notes []byte) (string, bool) {
	ns, _ := parseNotes(notes, 0)
	for _, n := range ns {
		if n.Type == ntGNUBuildID && n.Name == "GNU" {
			return fmt.Sprintf("%x", n.Desc), true
		}
	}
	return "", false
}

// PRStatus decodes the first NT_PRSTATUS ("CORE") note of an ELF note
// area, such as a CPU's crash_notes buffer in kernel memory, into a CPU
// (Index left 0); false when the area holds none.
func PRStatus(area []byte) (CPU, bool) {
	ns, _ := parseNotes(area, 0)
	for _, n := range ns {
		if n.Name == "CORE" && n.Type == ntPrstatus {
			var c CPU
			if decodePrstatus(&c, n) == nil {
				return c, true
			}
		}
	}
	return CPU{}, false
}
