package linux

import (
	"encoding/binary"
	"testing"

	sk "github.com/kinspect/kinspect/internal/synthkernel"
)

// TestCrashNoteCPUs: what crash_save_cpu wrote in a CPU's crash_notes
// buffer is that CPU's; an empty buffer (a CPU that did not stop) is
// none.
func TestCrashNoteCPUs(t *testing.T) {
	k := newKernel(t, sk.LinuxLayout{})
	// crash_notes holds the per-CPU offset of the note_buf_t: CPU c's
	// buffer is at it plus __per_cpu_offset[c].
	const off = 0x4000
	k.M.U64(k.M.Global(k.Syms, "crash_notes", 8), off)
	// CPU 1's buffer: the Elf64_Nhdr of an NT_PRSTATUS note named "CORE"
	// (include/uapi/linux/elf.h), then struct elf_prstatus: pr_pid at 32,
	// pr_reg (struct user_regs_struct: r15 ... rip at index 16) at 112.
	note := make([]byte, 12+8+336)
	binary.LittleEndian.PutUint32(note[0:], 5)
	binary.LittleEndian.PutUint32(note[4:], 336)
	binary.LittleEndian.PutUint32(note[8:], 1)
	copy(note[12:], "CORE")
	desc := note[20:]
	binary.LittleEndian.PutUint32(desc[32:], 4242)
	binary.LittleEndian.PutUint64(desc[112+16*8:], 0xffffffff81234567)
	k.M.Write(sk.PerCPUBase+1*sk.PerCPUStride+off, note)
	k.M.Write(sk.PerCPUBase+0*sk.PerCPUStride+off, make([]byte, len(note)))
	cpus, err := CrashNoteCPUs(k.p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) != 1 || cpus[0].Index != 1 || cpus[0].PID != 4242 || cpus[0].Regs.RIP != 0xffffffff81234567 {
		t.Errorf("crash notes: %+v", cpus)
	}
}
