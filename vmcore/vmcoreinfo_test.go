package vmcore

import (
	"errors"
	"testing"
	"time"
)

func TestParseVMCOREINFO(t *testing.T) {
	// Lines as kernel/vmcore_info.c and arch/x86/kernel/vmcore_info_64.c
	// print them (formats %s, %lx, %ld, %lu).
	text := "OSRELEASE=6.1.0-56-amd64\nBUILD-ID=8a2ac4b0e4e0c4f4\nPAGESIZE=4096\n" +
		"SYMBOL(init_uts_ns)=ffffffffb0a13540\nOFFSET(uts_namespace.name)=4\nSYMBOL(swapper_pg_dir)=ffffffffb060a000\n" +
		"SIZE(page)=64\nLENGTH(zone.free_area)=11\nNUMBER(NR_FREE_PAGES)=0\nNUMBER(phys_base)=-2013265920\n" +
		"NUMBER(PAGE_OFFSET)=0xffff888000000000\nKERNELOFFSET=2ea00000\nCRASHTIME=1700000000\nCONFIG_X86_PAE=y\n" +
		"garbage line\nNOEQUALS\n=novalue\nUNKNOWN(x)=1\n\x00\x00trailing"
	vi, err := ParseVMCOREINFO([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if vi.OSRelease != "6.1.0-56-amd64" || vi.BuildID != "8a2ac4b0e4e0c4f4" || vi.PageSize != 4096 {
		t.Errorf("got %+v", vi)
	}
	if !vi.HasKernelOffset || vi.KernelOffset != 0x2ea00000 {
		t.Errorf("KernelOffset = %#x", vi.KernelOffset)
	}
	if !vi.CrashTime.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("CrashTime = %v", vi.CrashTime)
	}
	checks := []struct {
		name string
		got  uint64
		ok   bool
		want uint64
	}{}
	add := func(name string, got uint64, ok bool, want uint64) {
		checks = append(checks, struct {
			name string
			got  uint64
			ok   bool
			want uint64
		}{name, got, ok, want})
	}
	g, ok := vi.Symbol("swapper_pg_dir")
	add("SYMBOL(swapper_pg_dir)", g, ok, 0xffffffffb060a000)
	g, ok = vi.Offset("uts_namespace", "name")
	add("OFFSET", g, ok, 4)
	g, ok = vi.Size("page")
	add("SIZE", g, ok, 64)
	g, ok = vi.Length("zone.free_area")
	add("LENGTH", g, ok, 11)
	n, ok := vi.Number("phys_base")
	add("NUMBER(phys_base)", uint64(n), ok, uint64(0xffffffff88000000))
	n, ok = vi.Number("PAGE_OFFSET")
	add("NUMBER(PAGE_OFFSET) hex", uint64(n), ok, 0xffff888000000000)
	for _, c := range checks {
		if !c.ok || c.got != c.want {
			t.Errorf("%s = %#x, %v; want %#x", c.name, c.got, c.ok, c.want)
		}
	}
	if vi.Configs["CONFIG_X86_PAE"] != "y" {
		t.Errorf("configs %v", vi.Configs)
	}
	if v, ok := vi.Value("UNKNOWN(x)"); !ok || v != "1" {
		t.Errorf("Value(UNKNOWN(x)) = %q, %v", v, ok)
	}
	var nilInfo *VMCoreInfo
	if _, ok := nilInfo.Symbol("x"); ok {
		t.Error("nil VMCoreInfo has symbols")
	}
}

func TestParseVMCOREINFOErrors(t *testing.T) {
	tests := []struct{ name, text string }{
		{"bad symbol", "OSRELEASE=x\nSYMBOL(a)=zz\n"},
		{"bad pagesize", "PAGESIZE=-1\n"},
		{"bad kerneloffset", "KERNELOFFSET=0xg\n"},
		{"bad number", "NUMBER(x)=1.5\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseVMCOREINFO([]byte(tt.text))
			var fe *FormatError
			if !errors.Is(err, ErrFormat) || !errors.As(err, &fe) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func FuzzVMCOREINFO(f *testing.F) {
	f.Add([]byte(newSynthKernel(4).vmcoreinfo()))
	f.Add([]byte("SYMBOL(x)=1\nNUMBER(y)=-1\nOFFSET(a.b)=2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vi, err := ParseVMCOREINFO(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		_ = vi.OSRelease
	})
}
