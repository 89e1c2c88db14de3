package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kinspect/kinspect/linux"
)

func init() {
	register(&command{name: "dis", summary: "disassemble kernel text in objdump's syntax, with symbols (like crash's dis)", run: runDis,
		help: disHelp, syntax: "{ SYMBOL | ADDR } [N]", opts: []*option{optKallsyms}})
}

const disHelp = `Usage: kinspect [-c DUMP | --live] [--json] dis [-k FILE] SYMBOL|ADDR [N]

Disassembles kernel text as crash's dis: the bytes in memory (as the
kernel patched them: ftrace, alternatives, static keys) in objdump's AT&T
syntax, each instruction after its address and place (<schedule+5>,
offsets in decimal as crash prints them). The address a call or a jump
goes to, and that of a RIP-relative operand, are followed by the symbol
they fall in, as objdump names them in a linked object (<__schedule>).

A SYMBOL (a function's name) disassembles the whole function, up to the
next symbol; an ADDR (hex: 0x-prefixed or 8 or more digits, or
SYMBOL+OFF) one instruction; N instructions when N is given. The text of modules
and BPF programs is disassembled as well.

Options:
  -k, --kallsyms FILE  symbols from FILE, a copy of the kernel's /proc/kallsyms

JSON: {"function", "start", "insns": [{"address", "symbol", "opcodes"
(the bytes in hex), "text"}]}.
`

func runDis(e *env, args []string) error {
	var file string
	var words []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case i == 0 && a == "help", a == "-h", a == "--help":
			fmt.Fprint(e.stdout, disHelp)
			return nil
		case a == "-k" || a == "--kallsyms":
			if i+1 == len(args) {
				return fmt.Errorf("dis %s: want a file: %w", a, errUsage)
			}
			i++
			file = args[i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return fmt.Errorf("dis: unknown option %q (see kinspect dis help): %w", a, errUsage)
		default:
			words = append(words, a)
		}
	}
	if len(words) == 0 || len(words) > 2 {
		return fmt.Errorf("dis: give a SYMBOL or an ADDR, and a count N: %w", errUsage)
	}
	count := -1
	if len(words) == 2 {
		n, err := strconv.Atoi(words[1])
		if err != nil || n <= 0 {
			return fmt.Errorf("dis: N %q is not a positive number: %w", words[1], errUsage)
		}
		count = n
	}
	k, err := openKernel(e, file)
	if err != nil {
		return err
	}
	defer k.Close()
	addr, err := parseAddr(k, words[0])
	if err != nil {
		return fmt.Errorf("dis: %w", err)
	}
	if count < 0 {
		count = disDefaultCount(words[0])
	}
	d, err := linux.Disassemble(k.Program(), k.Symbols(), addr, count)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e, d)
	}
	printDis(e.stdout, d)
	return nil
}

// disDefaultCount is crash's default: a function's name, the whole
// function (0); an address, one instruction.
func disDefaultCount(target string) int {
	if isSymbolName(target) {
		return 0
	}
	return 1
}

// isSymbolName: the word is a symbol's name, not an address or
// SYMBOL+OFF (parseAddr's other forms).
func isSymbolName(s string) bool {
	return !strings.HasPrefix(strings.ToLower(s), "0x") && !(len(s) >= 8 && len(s) <= 16 && isHex(s)) && !strings.Contains(s, "+")
}

// printDis prints as crash's dis: "0xADDR <sym+off>:\ttext".
func printDis(w io.Writer, d *linux.Disassembly) {
	width := 0
	for _, in := range d.Insns {
		width = max(width, len(in.Symbol))
	}
	for _, in := range d.Insns {
		place := ""
		if in.Symbol != "" {
			place = " <" + in.Symbol + ">:"
		} else {
			place = ":"
		}
		fmt.Fprintf(w, "%#x%-*s %s\n", uint64(in.Addr), width+4, place, in.Text)
	}
}
