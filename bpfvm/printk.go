package bpfvm

import (
	"fmt"
	"net/netip"
	"strings"
)

// Limits of kernel/bpf/helpers.c.
const (
	maxBprintfBuf      = 512 // MAX_BPRINTF_BUF
	maxTracePrintkArgs = 3   // MAX_TRACE_PRINTK_VARARGS
	maxBprintfVarargs  = 12  // MAX_BPRINTF_VARARGS
	maxFormatLen       = 1 << 16
)

// Bprintf formats format with args as the kernel's bpf_bprintf_prepare
// and bstr_printf do for bpf_trace_printk and bpf_snprintf: flags
// "0+- " and a width; %d %i %u %x %X with l or ll, %c, %s (read from
// memory, empty if unreadable), %% and the pointers %p %pK %px (printed
// as %px: the kernel's hashing of %p and %pK uses a boot-time key),
// %pS %ps %pB (the symbol when Options.Syms names the address, else
// %px), %pks %pus, %pI4 %pi4 %pI6 %pi6 %pI6c (read from memory, zeros if
// unreadable). It returns the text, or a negative errno (-EINVAL) for a
// format the kernel refuses: an unknown conversion, more conversions than
// args, a character neither printable nor space.
func (m *Machine) Bprintf(format string, args []uint64) (string, int) {
	var out strings.Builder
	spec := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if !isPrint(c) && !isSpace(c) {
			return "", -errnoEINVAL
		}
		if c != '%' {
			out.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			out.WriteByte('%')
			i++
			continue
		}
		if spec >= len(args) {
			return "", -errnoEINVAL
		}
		arg := args[spec]
		spec++
		i++
		// Flags and width.
		var flags []byte
		for i < len(format) && strings.IndexByte("0+- ", format[i]) >= 0 {
			flags = append(flags, format[i])
			i++
		}
		width := ""
		if i < len(format) && format[i] >= '1' && format[i] <= '9' {
			j := i
			for i < len(format) && format[i] >= '0' && format[i] <= '9' {
				i++
			}
			width = format[j:i]
		}
		at := func(k int) byte {
			if k < len(format) {
				return format[k]
			}
			return 0
		}
		verb := func(conv byte, drop string) string {
			f := "%"
			for _, fl := range flags {
				if strings.IndexByte(drop, fl) < 0 {
					f += string(fl)
				}
			}
			return f + width + string(conv)
		}
		switch at(i) {
		case 'p':
			n := at(i + 1)
			switch {
			case (n == 'k' || n == 'u') && at(i+2) == 's':
				if !strEnd(at(i + 3)) {
					return "", -errnoEINVAL
				}
				i += 2
				fmt.Fprintf(&out, verb('s', "+0 "), m.bprintfString(arg))
			case n == 0 || isSpace(n) || isPunct(n) || n == 'K' || n == 'x':
				if n == 'K' || n == 'x' {
					i++
				}
				fmt.Fprintf(&out, "%016x", arg)
			case n == 's' || n == 'S' || n == 'B':
				i++
				if name, ok := m.symbol(arg); ok {
					out.WriteString(name)
				} else {
					fmt.Fprintf(&out, "%016x", arg)
				}
			case (n == 'i' || n == 'I') && (at(i+2) == '4' || at(i+2) == '6'):
				i += 2
				if at(i) == '4' {
					var ip [4]byte
					if m.Read(arg, ip[:]) != nil {
						ip = [4]byte{}
					}
					f := "%d.%d.%d.%d"
					if n == 'i' {
						f = "%03d.%03d.%03d.%03d"
					}
					fmt.Fprintf(&out, f, ip[0], ip[1], ip[2], ip[3])
					break
				}
				var ip [16]byte
				if m.Read(arg, ip[:]) != nil {
					ip = [16]byte{}
				}
				switch {
				case n == 'I' && at(i+1) == 'c':
					i++
					out.WriteString(netip.AddrFrom16(ip).String())
				case n == 'I':
					for k := 0; k < 16; k += 2 {
						if k > 0 {
							out.WriteByte(':')
						}
						fmt.Fprintf(&out, "%02x%02x", ip[k], ip[k+1])
					}
				default:
					fmt.Fprintf(&out, "%x", ip[:])
				}
			default:
				return "", -errnoEINVAL
			}
		case 's':
			if !strEnd(at(i + 1)) {
				return "", -errnoEINVAL
			}
			fmt.Fprintf(&out, verb('s', "+0 "), m.bprintfString(arg))
		case 'c':
			fmt.Fprintf(&out, verb('c', "+0 "), rune(byte(arg)))
		default:
			long := 0
			for long < 2 && at(i) == 'l' {
				long++
				i++
			}
			conv := at(i)
			switch conv {
			case 'd', 'i':
				if long == 0 {
					fmt.Fprintf(&out, verb('d', ""), int32(arg))
				} else {
					fmt.Fprintf(&out, verb('d', ""), int64(arg))
				}
			case 'u', 'x', 'X':
				if conv == 'u' {
					conv = 'd'
				}
				if long == 0 {
					fmt.Fprintf(&out, verb(conv, "+ "), uint32(arg))
				} else {
					fmt.Fprintf(&out, verb(conv, "+ "), arg)
				}
			default:
				return "", -errnoEINVAL
			}
		}
	}
	return out.String(), 0
}

// bprintfString reads a %s argument: at most what the kernel's buffer
// holds, empty if unreadable.
func (m *Machine) bprintfString(addr uint64) string {
	s, _, err := m.ReadCString(addr, maxBprintfBuf)
	if err != nil {
		return ""
	}
	return string(s)
}

func (m *Machine) symbol(addr uint64) (string, bool) {
	if m.opts.Syms == nil {
		return "", false
	}
	return m.opts.Syms.SymbolAt(addr)
}

func isPrint(c byte) bool { return c >= 0x20 && c < 0x7f }
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
func isPunct(c byte) bool {
	return isPrint(c) && c != ' ' && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z')
}

// strEnd says c may follow %s: the kernel refuses "%sx" forms.
func strEnd(c byte) bool { return c == 0 || isSpace(c) || isPunct(c) }

// readFormat reads a helper's format: the bytes before the NUL within
// size bytes (bpf_bprintf_prepare's strnchr), ok false without one.
func (m *Machine) readFormat(addr uint64, size uint64) (string, bool, error) {
	if size > maxFormatLen {
		size = maxFormatLen
	}
	s, found, err := m.ReadCString(addr, int(size))
	if err != nil {
		return "", false, err
	}
	return string(s), found, nil
}

func (m *Machine) addPrintk(s string) {
	if len(s) > maxBprintfBuf-1 {
		s = s[:maxBprintfBuf-1]
	}
	m.printk = append(m.printk, s)
}

// helperTracePrintk is bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3):
// the length of the message.
func helperTracePrintk(m *Machine, a [5]uint64) (uint64, error) {
	f, ok, err := m.readFormat(a[0], uint64(uint32(a[1])))
	if err != nil {
		return 0, err
	}
	if !ok {
		return Errno(errnoEINVAL), nil
	}
	s, errno := m.Bprintf(f, a[2:5])
	if errno != 0 {
		return uint64(int64(errno)), nil
	}
	m.addPrintk(s)
	return uint64(len(s)), nil
}

// readArgs reads data_len bytes of u64 arguments at data.
func (m *Machine) readArgs(data, dataLen uint64) ([]uint64, bool, error) {
	if dataLen%8 != 0 || dataLen > maxBprintfVarargs*8 || (dataLen != 0 && data == 0) {
		return nil, false, nil
	}
	args := make([]uint64, dataLen/8)
	for i := range args {
		v, err := m.load(data+uint64(i)*8, 8)
		if err != nil {
			return nil, false, err
		}
		args[i] = v
	}
	return args, true, nil
}

// helperTraceVprintk is bpf_trace_vprintk(fmt, fmt_size, args, data_len).
func helperTraceVprintk(m *Machine, a [5]uint64) (uint64, error) {
	args, ok, err := m.readArgs(a[2], uint64(uint32(a[3])))
	if err != nil {
		return 0, err
	}
	if !ok {
		return Errno(errnoEINVAL), nil
	}
	f, ok, err := m.readFormat(a[0], uint64(uint32(a[1])))
	if err != nil {
		return 0, err
	}
	if !ok {
		return Errno(errnoEINVAL), nil
	}
	s, errno := m.Bprintf(f, args)
	if errno != 0 {
		return uint64(int64(errno)), nil
	}
	m.addPrintk(s)
	return uint64(len(s)), nil
}

// helperSnprintf is bpf_snprintf(str, str_size, fmt, data, data_len): the
// length with the NUL, the string truncated to str_size.
func helperSnprintf(m *Machine, a [5]uint64) (uint64, error) {
	str, size := a[0], uint32(a[1])
	args, ok, err := m.readArgs(a[3], uint64(uint32(a[4])))
	if err != nil {
		return 0, err
	}
	if !ok {
		return Errno(errnoEINVAL), nil
	}
	f, ok, err := m.readFormat(a[2], maxFormatLen)
	if err != nil {
		return 0, err
	}
	if !ok {
		return Errno(errnoEINVAL), nil
	}
	s, errno := m.Bprintf(f, args)
	if errno != 0 {
		return uint64(int64(errno)), nil
	}
	if size > 0 {
		if err := m.checkBuf(str, uint64(size), true); err != nil {
			return 0, err
		}
		b := []byte(s)
		if len(b) > int(size)-1 {
			b = b[:size-1]
		}
		if err := m.Write(str, append(b, 0)); err != nil {
			return 0, err
		}
	}
	return uint64(len(s) + 1), nil
}
