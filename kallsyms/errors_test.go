package kallsyms

import (
	"errors"
	"testing"
)

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
		is   error
	}{
		{"table", tableErr("kallsyms_names", 12, 0xffffffff82000010, "length 0"), "kallsyms_names[12] at 0xffffffff82000010: length 0", ErrFormat},
		{"table no index", tableErr("kallsyms_num_syms", -1, 0xffffffff82000000, "0 symbols"), "kallsyms_num_syms at 0xffffffff82000000: 0 symbols", ErrFormat},
		{"line", lineErr("/proc/kallsyms", 7, "bad address %q", "zz"), `/proc/kallsyms line 7: bad address "zz"`, ErrFormat},
		{"name", &NotFoundError{Name: "schedul", suggest: func() []string { return []string{"schedule", "schedule_tail"} }}, `no symbol named "schedul" (did you mean schedule, schedule_tail?)`, ErrNotFound},
		{"name bare", &NotFoundError{Name: "zzz"}, `no symbol named "zzz"`, ErrNotFound},
		{"addr", &NotFoundError{Addr: 0x1234, ByAddr: true}, "no symbol at 0x1234", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !errors.Is(tt.err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.is)
			}
		})
	}
}
