package vmcore

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// maxVMCOREINFOSize bounds the VMCOREINFO text we parse; the kernel's is
// one page (VMCOREINFO_BYTES).
const maxVMCOREINFOSize = 1 << 20

// VMCoreInfo is the kernel's VMCOREINFO note, parsed: the lines
// "KEY=VALUE" written by kernel/vmcore_info.c (crash_core.c before 6.9)
// and arch_crash_save_vmcoreinfo.
type VMCoreInfo struct {
	OSRelease string // OSRELEASE
	BuildID   string // BUILD-ID, hex
	PageSize  int    // PAGESIZE
	// KernelOffset is KERNELOFFSET, the KASLR slide of kernel text.
	KernelOffset    uint64
	HasKernelOffset bool
	// CrashTime is CRASHTIME, written when the kernel itself crashed
	// (kexec); zero otherwise.
	CrashTime time.Time

	Symbols map[string]uint64 // SYMBOL(name)=hex: run-time addresses
	Numbers map[string]int64  // NUMBER(name)=decimal (or 0x-hex on some arches)
	Offsets map[string]uint64 // OFFSET(type.member)=decimal, keyed "type.member"
	Sizes   map[string]uint64 // SIZE(type)=decimal
	Lengths map[string]uint64 // LENGTH(name)=decimal
	Configs map[string]string // CONFIG_X=y

	// Entries is every line in order, including ones parsed above and
	// keys this package does not know.
	Entries []VMCoreInfoEntry
}

// VMCoreInfoEntry is one KEY=VALUE line.
type VMCoreInfoEntry struct {
	Key, Value string
}

// Symbol returns SYMBOL(name).
func (v *VMCoreInfo) Symbol(name string) (uint64, bool) {
	if v == nil {
		return 0, false
	}
	x, ok := v.Symbols[name]
	return x, ok
}

// Number returns NUMBER(name).
func (v *VMCoreInfo) Number(name string) (int64, bool) {
	if v == nil {
		return 0, false
	}
	x, ok := v.Numbers[name]
	return x, ok
}

// Offset returns OFFSET(typ.member).
func (v *VMCoreInfo) Offset(typ, member string) (uint64, bool) {
	if v == nil {
		return 0, false
	}
	x, ok := v.Offsets[typ+"."+member]
	return x, ok
}

// Size returns SIZE(typ).
func (v *VMCoreInfo) Size(typ string) (uint64, bool) {
	if v == nil {
		return 0, false
	}
	x, ok := v.Sizes[typ]
	return x, ok
}

// Length returns LENGTH(name).
func (v *VMCoreInfo) Length(name string) (uint64, bool) {
	if v == nil {
		return 0, false
	}
	x, ok := v.Lengths[name]
	return x, ok
}

// Value returns the raw value of the first line with key, e.g.
// "SYMBOL(_stext)" or "KERNELOFFSET".
func (v *VMCoreInfo) Value(key string) (string, bool) {
	if v == nil {
		return "", false
	}
	for _, e := range v.Entries {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// ParseVMCOREINFO parses VMCOREINFO text. Lines it cannot read are kept
// in Entries but otherwise ignored, so that one odd line does not hide the
// rest; a value of a known key that does not parse is an error wrapping
// ErrFormat, naming the byte offset of the line in b.
func ParseVMCOREINFO(b []byte) (*VMCoreInfo, error) {
	if len(b) > maxVMCOREINFOSize {
		return nil, formatErr("VMCOREINFO", 0, "%d bytes, more than %d", len(b), maxVMCOREINFOSize)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	v := &VMCoreInfo{
		Symbols: map[string]uint64{},
		Numbers: map[string]int64{},
		Offsets: map[string]uint64{},
		Sizes:   map[string]uint64{},
		Lengths: map[string]uint64{},
		Configs: map[string]string{},
	}
	off := 0
	for len(b) > 0 {
		line := b
		n := bytes.IndexByte(b, '\n')
		if n >= 0 {
			line, b = b[:n], b[n+1:]
		} else {
			b = nil
		}
		lineOff := off
		off += len(line) + 1
		eq := bytes.IndexByte(line, '=')
		if eq <= 0 {
			continue
		}
		key, val := string(line[:eq]), strings.TrimSpace(string(line[eq+1:]))
		v.Entries = append(v.Entries, VMCoreInfoEntry{Key: key, Value: val})
		bad := func() error {
			return formatErr("VMCOREINFO", int64(lineOff), "bad value %q for %s", val, key)
		}
		switch {
		case key == "OSRELEASE":
			v.OSRelease = val
		case key == "BUILD-ID":
			v.BuildID = val
		case key == "PAGESIZE":
			x, err := strconv.ParseInt(val, 10, 64)
			if err != nil || x <= 0 || x > 1<<30 {
				return nil, bad()
			}
			v.PageSize = int(x)
		case key == "KERNELOFFSET":
			x, err := strconv.ParseUint(val, 16, 64)
			if err != nil {
				return nil, bad()
			}
			v.KernelOffset, v.HasKernelOffset = x, true
		case key == "CRASHTIME":
			x, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, bad()
			}
			v.CrashTime = time.Unix(x, 0).UTC()
		case strings.HasPrefix(key, "CONFIG_"):
			v.Configs[key] = val
		default:
			kind, name, ok := splitCall(key)
			if !ok {
				continue
			}
			switch kind {
			case "SYMBOL":
				x, err := strconv.ParseUint(strings.TrimPrefix(val, "0x"), 16, 64)
				if err != nil {
					return nil, bad()
				}
				v.Symbols[name] = x
			case "NUMBER":
				x, err := parseNumber(val)
				if err != nil {
					return nil, bad()
				}
				v.Numbers[name] = x
			case "OFFSET", "SIZE", "LENGTH":
				x, err := parseNumber(val)
				if err != nil {
					return nil, bad()
				}
				m := map[string]map[string]uint64{"OFFSET": v.Offsets, "SIZE": v.Sizes, "LENGTH": v.Lengths}[kind]
				m[name] = uint64(x)
			}
		}
	}
	return v, nil
}

// splitCall splits "SYMBOL(name)" into "SYMBOL" and "name".
func splitCall(key string) (kind, name string, ok bool) {
	i := strings.IndexByte(key, '(')
	if i <= 0 || !strings.HasSuffix(key, ")") || len(key) < i+2 {
		return "", "", false
	}
	return key[:i], key[i+1 : len(key)-1], true
}

// parseNumber reads a NUMBER value: decimal as the kernel prints it with
// %ld, or 0x-prefixed hex as some architectures print theirs.
func parseNumber(s string) (int64, error) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		x, err := strconv.ParseUint(h, 16, 64)
		return int64(x), err
	}
	if x, err := strconv.ParseInt(s, 10, 64); err == nil {
		return x, nil
	}
	// %lu values above MaxInt64.
	x, err := strconv.ParseUint(s, 10, 64)
	return int64(x), err
}
