package kallsyms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// ProcPath is where the running kernel lists its symbols.
const ProcPath = "/proc/kallsyms"

// procSource names /proc/kallsyms-format text in errors.
const procSource = "kallsyms text"

// maxProcLine bounds a line: KSYM_NAME_LEN (512) plus a module name.
const maxProcLine = 4096

// ParseProcKallsyms parses text in the format of /proc/kallsyms: lines
// "ADDR TYPE NAME" for vmlinux, then "ADDR TYPE NAME\t[MODULE]" for
// modules, BPF ("[bpf]") and the kernel's pseudo-modules
// ("[__builtin__ftrace]", "[__builtin__kprobes]"). The vmlinux lines keep
// their order; module symbols have no sizes (each extends to its module's
// next symbol). When every address is zero — kptr_restrict, or a reader
// without CAP_SYSLOG — Info().Hidden is set, names still resolve (to 0),
// and LookupAddr fails with ErrHidden.
//
// Errors wrap ErrFormat (a *FormatError naming the line) or the reader's
// error.
func ParseProcKallsyms(r io.Reader) (*Table, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxProcLine), maxProcLine)
	b := newBuilder(1 << 12)
	t := &Table{}
	line := 0
	nonzero := false
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if b.im.len()+len(t.extra) >= maxSyms*4 {
			return nil, lineErr(procSource, line, "more than %d symbols", maxSyms*4)
		}
		s, name, err := parseProcLine(text)
		if err != nil {
			return nil, lineErr(procSource, line, "%v: %q", err, truncate(text, 80))
		}
		nonzero = nonzero || s.Addr != 0
		if s.Module == "" {
			b.add(name, s.Addr, s.Type)
			continue
		}
		s.Name = string(name)
		t.extra = append(t.extra, s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, lineErr(procSource, line+1, "line longer than %d bytes", maxProcLine)
		}
		return nil, fmt.Errorf("read %s: %w", procSource, err)
	}
	im := b.done()
	im.info = Info{Source: ProcPath, Encoding: EncodingText, Symbols: im.len(), Hidden: line > 0 && !nonzero}
	im.finish()
	t.core = im
	t.once.Do(func() {})
	t.dirty = true
	return t, nil
}

// OpenLive reads the running kernel's /proc/kallsyms. Errors are the
// file's, or ParseProcKallsyms's.
func OpenLive() (*Table, error) {
	f, err := os.Open(ProcPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ParseProcKallsyms(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ProcPath, err)
	}
	return t, nil
}

// parseProcLine parses "ADDR TYPE NAME" with an optional "[MODULE]".
func parseProcLine(line []byte) (Symbol, []byte, error) {
	var s Symbol
	f, rest := field(line)
	if len(f) == 0 || len(f) > 16 {
		return s, nil, errors.New("want a hex address of 1 to 16 digits")
	}
	for _, c := range f {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return s, nil, fmt.Errorf("bad hex digit %q in address", c)
		}
		s.Addr = s.Addr<<4 | uint64(d)
	}
	f, rest = field(rest)
	if len(f) != 1 || f[0] <= ' ' || f[0] > '~' {
		return s, nil, errors.New("want a one-letter type")
	}
	s.Type = f[0]
	name, rest := field(rest)
	if len(name) == 0 {
		return s, nil, errors.New("no name")
	}
	if len(name) > maxExpandedName {
		return s, nil, fmt.Errorf("name longer than %d bytes", maxExpandedName)
	}
	mod, rest := field(rest)
	if len(mod) > 0 {
		if len(mod) < 3 || mod[0] != '[' || mod[len(mod)-1] != ']' {
			return s, nil, errors.New("want [MODULE] after the name")
		}
		s.Module = string(mod[1 : len(mod)-1])
	}
	if f, _ := field(rest); len(f) > 0 {
		return s, nil, errors.New("extra fields")
	}
	return s, name, nil
}

// field splits off the first space- or tab-separated field.
func field(b []byte) (f, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
