package linux

import (
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// RealMinusBoot returns CLOCK_REALTIME minus CLOCK_BOOTTIME in ns, the
// wall-clock time of boot: the timekeeper's offs_real - offs_boot. A
// load_time plus it is the wall-clock time bpftool prints as loaded_at
// (it takes the same difference from the live clocks).
//
// The timekeeper is tk_core.timekeeper; tk_core is typed by BTF as
// struct tk_data where that exists (6.13+, "timekeeping: Define a
// struct type for tk_core to make it reusable"), else its anonymous type
// has no BTF and the copy
// timekeeping_advance works on and mirrors, shadow_timekeeper (a struct
// timekeeper), is read instead.
//
// It is computed once per Program.
func RealMinusBoot(p *objects.Program) (int64, error) {
	v, err := p.Memo("linux.RealMinusBoot", func() (any, error) { return realMinusBoot(p) })
	n, _ := v.(int64)
	return n, err
}

func realMinusBoot(p *objects.Program) (int64, error) {
	var tk objects.Value
	if t, err := p.Type("struct tk_data"); err == nil {
		addr, err := p.Symbol("tk_core")
		if err != nil {
			return 0, fmt.Errorf("timekeeper: %w", err)
		}
		if tk, err = p.Object(t, addr).Member("timekeeper"); err != nil {
			return 0, fmt.Errorf("timekeeper: %w", err)
		}
	} else {
		t, err := p.Type("struct timekeeper")
		if err != nil {
			return 0, fmt.Errorf("timekeeper: %w", err)
		}
		addr, err := p.Symbol("shadow_timekeeper")
		if err != nil {
			return 0, fmt.Errorf("timekeeper: %w", err)
		}
		tk = p.Object(t, addr)
	}
	var offs [2]int64
	for i, name := range []string{"offs_real", "offs_boot"} {
		v, err := tk.Member(name)
		if err == nil {
			offs[i], err = v.Int()
		}
		if err != nil {
			return 0, fmt.Errorf("timekeeper %s: %w", name, err)
		}
	}
	return offs[0] - offs[1], nil
}
