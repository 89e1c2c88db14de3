package x86dis

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// Inst is one decoded instruction.
type Inst struct {
	Addr  uint64
	Bytes []byte
	// Text is objdump's rendering: the mnemonic padded to six columns
	// and a space, then the operands ("mov    %rsp,%rbp"), or the bare
	// mnemonic ("ret").
	Text string
	// Target is the destination of a direct call or jump (0 otherwise).
	Target uint64
}

// Mnemonic is the instruction's mnemonic with its prefixes ("lock add").
func (i Inst) Mnemonic() string {
	if k := strings.Index(i.Text, "  "); k >= 0 {
		return i.Text[:k]
	}
	if k := strings.LastIndexByte(i.Text, ' '); k >= 0 && strings.ContainsAny(i.Text[k:], "%$0(") {
		return i.Text[:k]
	}
	return i.Text
}

// special are instructions x86asm does not decode, by their bytes, with
// objdump's text.
var special = []struct {
	b    []byte
	text string
}{
	{[]byte{0xf3, 0x0f, 0x1e, 0xfa}, "endbr64"},
	{[]byte{0xf3, 0x0f, 0x1e, 0xfb}, "endbr32"},
	{[]byte{0x0f, 0x01, 0xca}, "clac"},
	{[]byte{0x0f, 0x01, 0xcb}, "stac"},
	{[]byte{0x0f, 0x01, 0xe8}, "serialize"},
	{[]byte{0x0f, 0x01, 0xd6}, "xtest"},
	{[]byte{0x0f, 0x01, 0xf9}, "rdtscp"},
	{[]byte{0x0f, 0x01, 0xd5}, "xend"},
	{[]byte{0x0f, 0x01, 0xcf}, "encls"},
	{[]byte{0x0f, 0x0b}, "ud2"},
	{[]byte{0xcc}, "int3"},
	{[]byte{0x0f, 0x01, 0xc8}, "monitor %rax,%ecx,%edx"},
	{[]byte{0x48, 0x0f, 0x07}, "sysretq"},
	{[]byte{0xf3, 0x0f, 0x01, 0xd9}, "vmgexit"},
	{[]byte{0x0f, 0x01, 0xc1}, "vmcall"},
	{[]byte{0x0f, 0x01, 0xd9}, "vmmcall"},
	{[]byte{0x0f, 0x01, 0xee}, "rdpkru"},
	{[]byte{0x0f, 0x01, 0xef}, "wrpkru"},
	{[]byte{0xc4, 0xe2, 0x78, 0x49, 0xc0}, "tilerelease"},
	{[]byte{0x0f, 0x07}, "sysretl"},
	{[]byte{0x0f, 0x01, 0xc9}, "mwait  %eax,%ecx"},
	{[]byte{0x66, 0x90}, "xchg   %ax,%ax"},
}

// Disassemble decodes code, which starts at addr, to its end.
func Disassemble(code []byte, addr uint64) []Inst {
	var out []Inst
	for off := 0; off < len(code); {
		in := decodeOne(code[off:], addr+uint64(off))
		out = append(out, in)
		off += len(in.Bytes)
	}
	return out
}

// decodeOne decodes the instruction at the start of code (at least one byte).
func decodeOne(code []byte, pc uint64) Inst {
	for _, s := range special {
		if bytes.HasPrefix(code, s.b) {
			return Inst{Addr: pc, Bytes: code[:len(s.b)], Text: s.text}
		}
	}
	inst, err := x86asm.Decode(code, 64)
	if err == x86asm.ErrTruncated {
		// Cut off by the end of the code: objdump shows the byte.
		return Inst{Addr: pc, Bytes: code[:1], Text: fmt.Sprintf(".byte 0x%x", code[0])}
	}
	if err != nil || inst.Len == 0 || inst.Op == 0 {
		return Inst{Addr: pc, Bytes: code[:1], Text: "(bad)"}
	}
	raw := code[:inst.Len]
	text, target := format(inst, raw, pc)
	return Inst{Addr: pc, Bytes: raw, Text: text, Target: target}
}

// regNames are AT&T names where they differ from x86asm's in lower case.
var regNames = map[x86asm.Reg]string{
	x86asm.SPB: "spl", x86asm.BPB: "bpl", x86asm.SIB: "sil", x86asm.DIB: "dil",
	x86asm.R8L: "r8d", x86asm.R9L: "r9d", x86asm.R10L: "r10d", x86asm.R11L: "r11d",
	x86asm.R12L: "r12d", x86asm.R13L: "r13d", x86asm.R14L: "r14d", x86asm.R15L: "r15d",
	x86asm.DR0: "db0", x86asm.DR1: "db1", x86asm.DR2: "db2", x86asm.DR3: "db3",
	x86asm.DR4: "db4", x86asm.DR5: "db5", x86asm.DR6: "db6", x86asm.DR7: "db7",
}

func regName(r x86asm.Reg) string {
	if r >= x86asm.X0 && r <= x86asm.X15 {
		return fmt.Sprintf("%%xmm%d", r-x86asm.X0)
	}
	if s, ok := regNames[r]; ok {
		return "%" + s
	}
	return "%" + strings.ToLower(r.String())
}

// regBits is a general register's width (0 for others).
func regBits(r x86asm.Reg) int {
	switch {
	case r >= x86asm.AL && r <= x86asm.R15B:
		return 8
	case r >= x86asm.AX && r <= x86asm.R15W:
		return 16
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return 32
	case r >= x86asm.RAX && r <= x86asm.R15:
		return 64
	}
	return 0
}

// mnemonics are objdump's names where they are not x86asm's in lower case.
var mnemonics = map[x86asm.Op]string{
	x86asm.CDQE: "cltq", x86asm.CQO: "cqto", x86asm.CDQ: "cltd", x86asm.CWD: "cwtd",
	x86asm.CBW: "cbtw", x86asm.CWDE: "cwtl", x86asm.RET: "ret", x86asm.LRET: "lret",
	x86asm.LEAVE: "leave", x86asm.CALL: "call", x86asm.JMP: "jmp", x86asm.INT: "int",
	x86asm.MOVSXD: "movslq", x86asm.IRETQ: "iretq", x86asm.PUSHFQ: "pushf", x86asm.POPFQ: "popf",
	x86asm.STOSB: "stos", x86asm.STOSW: "stos", x86asm.STOSD: "stos", x86asm.STOSQ: "stos",
	x86asm.LODSB: "lods", x86asm.LODSW: "lods", x86asm.LODSD: "lods", x86asm.LODSQ: "lods",
	x86asm.SCASB: "scas", x86asm.SCASW: "scas", x86asm.SCASD: "scas", x86asm.SCASQ: "scas",
	x86asm.MOVSD: "movsl", x86asm.CMPSD: "cmpsl",
}

func suffix(bits int) string {
	switch bits {
	case 8:
		return "b"
	case 16:
		return "w"
	case 32:
		return "l"
	case 64:
		return "q"
	}
	return ""
}

// memLayout finds, from the encoding, whether the memory operand has a
// displacement and a SIB byte without an index: what objdump shows as
// "0x0(%rax)" and "(%rax,%riz,1)" and x86asm's Mem does not record.
func memLayout(raw []byte) (hasDisp, sibNoIndex bool) {
	i := 0
	for i < len(raw) {
		switch raw[i] {
		case 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65:
			i++
			continue
		}
		break
	}
	if i < len(raw) && raw[i]&0xf0 == 0x40 {
		i++
	}
	if i >= len(raw) {
		return false, false
	}
	if raw[i] == 0x0f {
		i++
		if i < len(raw) && (raw[i] == 0x38 || raw[i] == 0x3a) {
			i++
		}
	}
	i++ // the opcode
	if i >= len(raw) {
		return false, false
	}
	modrm := raw[i]
	mod, rm := modrm>>6, modrm&7
	if mod == 3 {
		return false, false
	}
	base := rm
	if rm == 4 && i+1 < len(raw) {
		sib := raw[i+1]
		base = sib & 7
		sibNoIndex = (sib>>3)&7 == 4 && raw[prefixREX(raw)]&0x02 == 0 && base != 4
	}
	switch {
	case mod == 1 || mod == 2:
		hasDisp = true
	case mod == 0 && rm == 5:
		hasDisp = true
	case mod == 0 && rm == 4 && base == 5:
		hasDisp = true
	}
	return hasDisp, sibNoIndex
}

// prefixREX returns the index of the REX byte (or of the opcode when
// there is none, whose bit 1 is then not REX.X: callers test 0x40 first).
func prefixREX(raw []byte) int {
	i := 0
	for i < len(raw)-1 {
		switch raw[i] {
		case 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65:
			i++
			continue
		}
		break
	}
	if raw[i]&0xf0 == 0x40 {
		return i
	}
	return len(raw) - 1 // a byte that is not a REX; see sibNoIndex's use
}

func hexSigned(x int64) string {
	if x < 0 {
		return fmt.Sprintf("-0x%x", uint64(-x))
	}
	return fmt.Sprintf("0x%x", x)
}

func format(inst x86asm.Inst, raw []byte, pc uint64) (string, uint64) {
	name := mnemonics[inst.Op]
	if name == "" {
		name = strings.ToLower(inst.Op.String())
	}
	var args []x86asm.Arg
	for _, a := range inst.Args {
		if a == nil {
			break
		}
		args = append(args, a)
	}
	// The operand size: of a general register operand, else of memory.
	opBits := 0
	hasReg, hasMem := false, false
	for _, a := range args {
		switch a := a.(type) {
		case x86asm.Reg:
			if b := regBits(a); b > 0 && !(a == x86asm.CL && isShift(inst.Op)) {
				hasReg = true
				if opBits == 0 {
					opBits = b
				}
			}
		case x86asm.Mem:
			hasMem = true
		}
	}
	if opBits == 0 {
		if hasMem && inst.MemBytes > 0 {
			opBits = inst.MemBytes * 8
		} else {
			opBits = inst.DataSize
		}
	}
	var target uint64
	switch inst.Op {
	case x86asm.MOVZX, x86asm.MOVSX:
		src := 0
		if len(args) == 2 {
			if r, ok := args[1].(x86asm.Reg); ok {
				src = regBits(r)
			} else {
				src = inst.MemBytes * 8
			}
		}
		if inst.Op == x86asm.MOVSX {
			name = "movs" + suffix(src) + suffix(opBits)
		} else {
			name = "movz" + suffix(src) + suffix(opBits)
		}
	case x86asm.MOV:
		if len(args) == 2 {
			// B8+r with REX.W: the only 64-bit immediate.
			if op := inst.Opcode >> 24; op >= 0xb8 && op <= 0xbf && opBits == 64 {
				name = "movabs"
			}
		}
	case x86asm.LRET:
		// A far return with REX.W pops a 64-bit CS:RIP: lretq.
		if inst.DataSize == 64 {
			name = "lretq"
		}
	case x86asm.CALL, x86asm.JMP, x86asm.PUSH, x86asm.POP, x86asm.RET, x86asm.LEAVE:
		// No suffix in 64-bit mode (binutils 2.37+).
		hasMem = false
	}
	if hasMem && !hasReg && needsSuffix(inst.Op) && !strings.HasPrefix(name, "set") {
		name += suffix(opBits)
	}
	var prefixes []string
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		if p&x86asm.PrefixImplicit != 0 {
			continue
		}
		switch p &^ (x86asm.PrefixIgnored | x86asm.PrefixInvalid) {
		case x86asm.PrefixLOCK:
			prefixes = append(prefixes, "lock")
		case x86asm.PrefixREP:
			if isString(inst.Op) {
				prefixes = append(prefixes, "rep")
			}
		case x86asm.PrefixREPN:
			if isString(inst.Op) {
				prefixes = append(prefixes, "repnz")
			}
		case x86asm.PrefixCS:
			if p&x86asm.PrefixIgnored != 0 || inst.Op == x86asm.NOP {
				prefixes = append(prefixes, "cs")
			}
		}
	}
	// A repeated operand-size prefix: objdump names each extra one.
	n66 := 0
	for _, c := range raw {
		if c == 0x66 {
			n66++
			continue
		}
		if c == 0x2e || c == 0x3e || c == 0x26 || c == 0x36 || c == 0x64 || c == 0x65 || c == 0xf0 || c == 0xf2 || c == 0xf3 || c == 0x67 {
			continue
		}
		break
	}
	for ; n66 > 1; n66-- {
		prefixes = append([]string{"data16"}, prefixes...)
	}
	if len(prefixes) > 0 {
		name = strings.Join(prefixes, " ") + " " + name
	}
	hasDisp, sibNoIndex := memLayout(raw)
	comment := ""
	ops := make([]string, 0, len(args))
	for k := len(args) - 1; k >= 0; k-- {
		switch a := args[k].(type) {
		case x86asm.Reg:
			s := regName(a)
			if a == x86asm.DX && (inst.Op == x86asm.IN || inst.Op == x86asm.OUT || inst.Op == x86asm.INSB || inst.Op == x86asm.OUTSB) {
				s = "(%dx)"
			}
			if isIndirect(inst.Op) {
				s = "*" + s
			}
			ops = append(ops, s)
		case x86asm.Imm:
			if op := inst.Opcode >> 24; isShift(inst.Op) && (op == 0xd0 || op == 0xd1) {
				// The shift-by-one forms have no immediate: binutils
				// 2.40 prints none ("shl    %rdi").
				continue
			}
			bits := opBits
			if isShift(inst.Op) || inst.Op == x86asm.ENTER || inst.Op == x86asm.INT || inst.Op == x86asm.RET {
				bits = 64
			}
			x := uint64(a)
			if bits < 64 {
				x &= 1<<bits - 1
			}
			ops = append(ops, fmt.Sprintf("$0x%x", x))
		case x86asm.Rel:
			target = pc + uint64(inst.Len) + uint64(int64(a))
			ops = append(ops, fmt.Sprintf("0x%x", target))
		case x86asm.Mem:
			s := memString(a, hasDisp, sibNoIndex, inst.AddrSize)
			if isIndirect(inst.Op) {
				s = "*" + s
			}
			if a.Base == x86asm.RIP {
				comment = fmt.Sprintf("        # 0x%x", pc+uint64(inst.Len)+uint64(int64(int32(a.Disp))))
			}
			ops = append(ops, s)
		}
	}
	if len(ops) == 0 {
		return name, target
	}
	// A RIP-relative operand's target follows all operands as a comment.
	return fmt.Sprintf("%-6s %s", name, strings.Join(ops, ",")) + comment, target
}

func memString(m x86asm.Mem, hasDisp, sibNoIndex bool, addrSize int) string {
	var b strings.Builder
	if m.Segment != 0 {
		b.WriteString(regName(m.Segment) + ":")
	}
	if m.Base == 0 && m.Index == 0 {
		x := uint64(m.Disp)
		if addrSize == 32 {
			x &= 0xffffffff
		}
		fmt.Fprintf(&b, "0x%x", x)
		return b.String()
	}
	// x86asm keeps a 32-bit displacement zero-extended; it is signed.
	disp := int64(int32(m.Disp))
	if hasDisp || disp != 0 {
		b.WriteString(hexSigned(disp))
	}
	b.WriteByte('(')
	if m.Base != 0 {
		b.WriteString(regName(m.Base))
	}
	switch {
	case m.Index != 0:
		fmt.Fprintf(&b, ",%s,%d", regName(m.Index), m.Scale)
	case sibNoIndex:
		riz := "%riz"
		if addrSize == 32 {
			riz = "%eiz"
		}
		fmt.Fprintf(&b, ",%s,%d", riz, max(m.Scale, 1))
	}
	b.WriteByte(')')
	return b.String()
}

func isShift(op x86asm.Op) bool {
	switch op {
	case x86asm.SHL, x86asm.SHR, x86asm.SAR, x86asm.ROL, x86asm.ROR, x86asm.RCL, x86asm.RCR, x86asm.SHLD, x86asm.SHRD:
		return true
	}
	return false
}

func isIndirect(op x86asm.Op) bool {
	return op == x86asm.CALL || op == x86asm.JMP || op == x86asm.LJMP || op == x86asm.LCALL
}

func isString(op x86asm.Op) bool {
	switch op {
	case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ, x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
		x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ, x86asm.CMPSB, x86asm.CMPSW, x86asm.CMPSD, x86asm.CMPSQ,
		x86asm.SCASB, x86asm.SCASW, x86asm.SCASD, x86asm.SCASQ:
		return true
	}
	return false
}

// needsSuffix says whether an operation takes a size suffix when no
// register gives its size.
func needsSuffix(op x86asm.Op) bool {
	if isString(op) {
		return false
	}
	switch op {
	case x86asm.LDMXCSR, x86asm.STMXCSR, x86asm.FXSAVE64, x86asm.FXRSTOR64, x86asm.XSAVE64, x86asm.XRSTOR64,
		x86asm.XSAVEOPT64, x86asm.XSAVEC, x86asm.XSAVEC64, x86asm.XSAVES, x86asm.XSAVES64, x86asm.XRSTORS, x86asm.XRSTORS64:
		return false
	case x86asm.VERW, x86asm.VERR, x86asm.LLDT, x86asm.LTR, x86asm.SLDT, x86asm.STR, x86asm.LMSW, x86asm.SMSW,
		x86asm.SGDT, x86asm.SIDT, x86asm.XSAVE, x86asm.XRSTOR, x86asm.XSAVEOPT,
		x86asm.LEA, x86asm.CALL, x86asm.JMP, x86asm.LGDT, x86asm.LIDT, x86asm.CLFLUSH, x86asm.PREFETCHNTA,
		x86asm.PREFETCHT0, x86asm.PREFETCHT1, x86asm.PREFETCHT2, x86asm.PREFETCHW, x86asm.INVLPG, x86asm.FXSAVE, x86asm.FXRSTOR:
		return false
	}
	return true
}
