package kallsyms

import (
	"cmp"
	"strings"
)

// maxSuggestions is how many close names a *NotFoundError carries.
const maxSuggestions = 5

// suggestion is a candidate close name, ranked: a case-insensitive match,
// then names starting with the query, then names containing it, then
// names within a small edit distance.
type suggestion struct {
	name       string
	rank, dist int
}

func (a suggestion) compare(b suggestion) int {
	if c := cmp.Compare(a.rank, b.rank); c != 0 {
		return c
	}
	if c := cmp.Compare(a.dist, b.dist); c != 0 {
		return c
	}
	if c := cmp.Compare(len(a.name), len(b.name)); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// suggest returns up to k names close to query, best first.
func (t *Table) suggest(query string, k int) []string {
	if query == "" || k <= 0 {
		return nil
	}
	maxDist := min(1+len(query)/5, 4)
	best := make([]suggestion, 0, k+1)
	seen := map[string]bool{}
	consider := func(name string) {
		if seen[name] {
			return
		}
		s, ok := score(query, name, maxDist)
		if !ok {
			return
		}
		if len(best) == k && s.compare(best[k-1]) >= 0 {
			return
		}
		seen[name] = true
		i := len(best)
		best = append(best, s)
		for i > 0 && best[i].compare(best[i-1]) < 0 {
			best[i], best[i-1] = best[i-1], best[i]
			i--
		}
		if len(best) > k {
			delete(seen, best[k].name)
			best = best[:k]
		}
	}
	if im, err := t.image(); err == nil {
		prev := ""
		for _, i := range im.byName {
			if n := im.name(int(i)); n != prev {
				consider(n)
				prev = n
			}
		}
	}
	t.mu.RLock()
	for _, s := range t.extra {
		consider(s.Name)
	}
	t.mu.RUnlock()
	out := make([]string, len(best))
	for i, s := range best {
		out[i] = s.name
	}
	return out
}

// score ranks name as a suggestion for query.
func score(query, name string, maxDist int) (suggestion, bool) {
	switch {
	case name == query:
		return suggestion{}, false
	case strings.EqualFold(name, query):
		return suggestion{name, 0, 0}, true
	case strings.HasPrefix(name, query):
		return suggestion{name, 1, len(name) - len(query)}, true
	case strings.Contains(name, query):
		return suggestion{name, 2, len(name) - len(query)}, true
	}
	if d := len(name) - len(query); d > maxDist || -d > maxDist {
		return suggestion{}, false
	}
	if d, ok := levenshtein(query, name, maxDist); ok {
		return suggestion{name, 3, d}, true
	}
	return suggestion{}, false
}

// levenshtein returns the edit distance of a and b in bytes, or false
// when it exceeds limit.
func levenshtein(a, b string, limit int) (int, bool) {
	if len(a) > 256 || len(b) > 256 {
		return 0, false
	}
	var rows [2][257]int
	prev, cur := &rows[0], &rows[1]
	for j := 0; j <= len(b); j++ {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c = 1 + min(prev[j-1], prev[j], cur[j-1])
			}
			cur[j] = c
			rowMin = min(rowMin, c)
		}
		if rowMin > limit {
			return 0, false
		}
		prev, cur = cur, prev
	}
	d := prev[len(b)]
	return d, d <= limit
}
