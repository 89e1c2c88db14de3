package btfload

import (
	"errors"
	"strings"
	"testing"
)

func TestParseType(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"struct task_struct", "struct task_struct"},
		{"unsigned long", "long unsigned int"},
		{"long unsigned", "long unsigned int"},
		{"unsigned", "unsigned int"},
		{"const char *", "char *"},
		{"unsigned long long", "long long unsigned int"},
		{"short", "short int"},
		{"signed char", "signed char"},
		{"struct list_head *[4]", "struct list_head *[4]"},
		{"u64", "u64"},
		{"void **", "void **"},
	} {
		got, err := ParseType(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "struct", "unsigned char int", "int [x]", "int $"} {
		if _, err := ParseType(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("%q: err %v, want ErrFormat", bad, err)
		}
	}
}

func TestSpecType(t *testing.T) {
	s := liveSpec(t)
	for _, tc := range []struct {
		in, want string
		size     int
	}{
		{"struct task_struct", "struct task_struct", -1},
		{"task_struct", "struct task_struct", -1},
		{"u64", "u64", 8},
		{"unsigned long", "long unsigned int", 8},
		{"long long", "long long int", 8},
		{"char *", "char *", 8},
		{"struct list_head [4]", "struct list_head [4]", 64},
		{"enum bpf_prog_type", "enum bpf_prog_type", 4},
		{"union bpf_attr", "union bpf_attr", -1},
	} {
		typ, err := s.Type(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := TypeString(typ); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		if tc.size >= 0 {
			if n, _ := sizeofType(typ); n != tc.size {
				t.Errorf("%q: size %d, want %d", tc.in, n, tc.size)
			}
		}
	}
}

func TestTypeSuggestions(t *testing.T) {
	s := liveSpec(t)
	for _, tc := range []struct{ in, suggest string }{
		{"struct task_strct", "struct task_struct"},
		{"struct bpf_porg", "struct bpf_prog"},
		{"lsit_head", "struct list_head"},
	} {
		_, err := s.Type(tc.in)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%q: err %v, want ErrNotFound", tc.in, err)
		}
		if !strings.Contains(err.Error(), "no type named") || !strings.Contains(err.Error(), tc.suggest) {
			t.Errorf("%q: %v; want a suggestion of %s", tc.in, err, tc.suggest)
		}
	}
}

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cands []string
		want  string
	}{
		{"comm", []string{"comm", "com", "pid", "tgid"}, "com"},
		{"pidd", []string{"pid", "tgid", "prio"}, "pid"},
		{"xyzzy", []string{"pid", "tgid"}, ""},
	} {
		got := strings.Join(Closest(tc.name, tc.cands, 1), ",")
		if got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
