package kallsyms

import (
	"slices"
	"testing"
)

func TestLevenshtein(t *testing.T) {
	tests := []struct {
		a, b  string
		limit int
		want  int
		ok    bool
	}{
		{"schedule", "schedule", 2, 0, true},
		{"shedule", "schedule", 2, 1, true},
		{"schedlue", "schedule", 2, 2, true},
		{"kitten", "sitting", 3, 3, true},
		{"kitten", "sitting", 2, 0, false},
		{"", "abc", 3, 3, true},
		{"abc", "", 2, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			got, ok := levenshtein(tt.a, tt.b, tt.limit)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("levenshtein(%q, %q, %d) = %d, %v; want %d, %v", tt.a, tt.b, tt.limit, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tab := textTable(t, `ffffffff81000000 T _text
ffffffff81001000 T schedule
ffffffff81001100 T schedule_tail
ffffffff81001200 t __schedule
ffffffff81001300 T schedule_timeout
ffffffff81001400 T Schedule_odd
ffffffff81001500 T preempt_schedule
ffffffff81001600 T do_exit
ffffffff81001700 T do_exit
ffffffff81002000 D _end
ffffffffc0001000 t modfunc	[mymod]
`)
	tests := []struct {
		query string
		want  []string
	}{
		{"schedul", []string{"schedule", "schedule_tail", "schedule_timeout", "__schedule", "preempt_schedule"}},
		{"shedule", []string{"schedule"}},
		{"schedule_odd", []string{"Schedule_odd"}},
		{"do_exi", []string{"do_exit"}},
		{"modfun", []string{"modfunc"}},
		{"zzzzzzzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := tab.suggest(tt.query, maxSuggestions); !slices.Equal(got, tt.want) {
				t.Errorf("suggest(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}
